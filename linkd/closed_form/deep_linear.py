r"""Deep-linear mode dynamics and distillation, mode by mode (docs/theory.md §7).

Setting (§7, A-al and A-init): :math:`W_e = W_N\cdots W_1`, loss :math:`\frac1{2n}\|XW_e^\top - Y\|_F^2`,
:math:`\hat\Sigma v_k = \lambda_k v_k`, :math:`\hat\Sigma_{yx} = \sum_k \lambda_k c_k u_k v_k^\top` and a
balanced aligned init of mode strength :math:`\sigma_0`. Each mode strength
:math:`\sigma_k = u_k^\top W_e v_k = w_k^N` then follows, independently of the others,

* gradient flow :math:`\dot\sigma_k = N\lambda_k\sigma_k^{2-2/N}(c_k-\sigma_k)`, solved by
  :math:`g_N(\sigma_k(t)/c_k) = g_N(\sigma_0/c_k) + \kappa_k t`, :math:`\kappa_k = \lambda_k c_k^{2-2/N}`, with
  :math:`g_1(y) = -\ln(1-y)`, :math:`g_2(y) = \tfrac12\ln\frac{y}{1-y}` and for N ≥ 3
  :math:`g_N(y) = -\frac{y^{-(N-2)/N}}{N-2} + \tfrac12 y^{2/N}\,{}_2F_1(1, \tfrac2N; 1+\tfrac2N; y)` (§7.1);
* gradient descent, exactly, :math:`w_k \leftarrow w_k + \eta\lambda_k w_k^{N-1}(c_k - w_k^N)` (§7.2).

Distillation (§7.3) replaces :math:`c_k` by the teacher's strength :math:`a_k`; §7.4 gives time dilation
and the matched-progress gap. Everything here is host numpy float64 except the GD recursion (a jitted
``jax.lax.scan`` over steps, vmapped over modes, returned as float64). Names follow the closed-form
conventions: the target strengths :math:`c_k` (or a teacher's :math:`a_k`) are ``coeffs_star``, the
initial strength :math:`\sigma_0` is ``coeffs0``, the depth N is keyword-only. Time arguments follow
:mod:`linkd.closed_form.gd`: ``times`` of any shape leads the output, whose last axis runs over the modes.

Inversion of :math:`g_N` (N ≥ 3): a safeguarded, vectorised Newton iteration in the logit
:math:`z = \ln\frac{y}{1-y}` (bracketed; :func:`deep_g_inverse_newton`) builds, once per depth, a table
of :math:`z(G)` on a uniform grid in :math:`\operatorname{asinh} G`; :func:`deep_g_inverse` evaluates it
by cubic Hermite interpolation with the exact slope :math:`dz/dG = N y^{1-2/N}` (error ≤ 1e-14 in
y, checked against the Newton route in the tests) and uses the asymptote
:math:`y \approx ((N-2)|G|)^{-N/(N-2)}` (relative error ≤ y) below the table.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from linkd import stability
from linkd.closed_form import _checks as checks
from linkd.closed_form.decay import _gf as _gf_decay
from linkd.closed_form.matched import MatchedGap
from linkd.dtypes import default_float

__all__ = [
    "deep_distilled_trajectory",
    "deep_escape_time",
    "deep_g",
    "deep_g_inverse",
    "deep_g_inverse_newton",
    "deep_gd_trajectory",
    "deep_gf_trajectory",
    "deep_matched_progress_gap",
    "deep_modified_flow",
    "deep_step_sizes",
    "deep_teacher_strengths",
    "deep_time_dilation",
]

ILL_CONDITIONED = 1e-6  # τ* is left out when 1 − q₁^S < this (docs/theory.md §7.4, numerics)
_Z_MAX = 700.0  # logit bracket: sigmoid(±700) is representable, its log too


# ------------------------------------------------------------------------------------ validation


def _depth(fn: str, depth, name: str = "depth") -> int:
    return checks.integer(fn, name, depth, 1)


def _positive(fn: str, name: str, x) -> np.ndarray:
    a = checks.host(x)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or not np.all(a > 0):
        raise checks.refuse(fn, name, a, "a 1-d array of finite values > 0 (one per mode)")
    return a


def _init(fn: str, coeffs0, c: np.ndarray, depth: int) -> np.ndarray:
    """σ₀ broadcast to the modes; 0 < σ₀ < c_k (0 ≤ σ₀ allowed for N = 1, where σ = 0 is not a fixed point)."""
    s = checks.host(coeffs0)
    if s.ndim > 1 or (s.ndim == 1 and s.shape != c.shape) or not np.all(np.isfinite(s)):
        raise checks.refuse(fn, "coeffs0", s, f"a finite scalar or one value per mode ({c.size})")
    s = np.broadcast_to(s, c.shape).copy()
    low_ok = s >= 0 if depth == 1 else s > 0
    if not np.all(low_ok & (s < c)):
        low = "0 <=" if depth == 1 else "0 <"
        raise checks.refuse(fn, "coeffs0", coeffs0, f"{low} coeffs0 < coeffs_star[k] for every mode (min = {c.min():.6g}; "
                            "the init lies below each mode's target, docs/theory.md §7, A-init)")
    return s


def _modes(fn: str, eigvals, coeffs_star, coeffs0, depth):
    N = _depth(fn, depth)
    lam = _positive(fn, "eigvals", eigvals)
    c = _positive(fn, "coeffs_star", coeffs_star)
    if lam.shape != c.shape:
        raise checks.refuse(fn, "coeffs_star", f"shape {c.shape}", f"shape {lam.shape} (one per eigenvalue)")
    return N, lam, c, _init(fn, coeffs0, c, N)


def _times(fn: str, times, name: str = "times") -> np.ndarray:
    return checks.host(checks.times(fn, name, times, xp=np))


def _deep_lr(fn: str, lr, lam: np.ndarray, c: np.ndarray, N: int) -> float:
    """η with every per-mode step ε_k = ηλ_k c_k^{2−2/N} < 2/N (docs/theory.md §7.2)."""
    return checks.lr(fn, lr, below=stability.deep_lr_limit(lam, c, N),
                     why=" (eps_k = lr*lambda_k*c_k^(2-2/N) < 2/N: the stability bound of docs/theory.md §7.2)")


def deep_step_sizes(eigvals, strengths, depth, lr) -> np.ndarray:
    r"""Per-mode step :math:`\varepsilon_k = \eta\lambda_k c_k^{2-2/N}` (§7.2); refuses
    :math:`\varepsilon_k \ge 2/N` (GD diverges or oscillates about :math:`c_k`) or η ≤ 0."""
    N = _depth("deep_step_sizes", depth)
    lam, c = _positive("deep_step_sizes", "eigvals", eigvals), _positive("deep_step_sizes", "strengths", strengths)
    eps = stability.deep_mode_steps(lr, lam, c, N)
    bound = stability.deep_lr_limit(lam, c, N)
    if not (float(lr) > 0 and np.all(eps < stability.deep_mode_bound(N))):
        raise checks.refuse("deep_step_sizes", "lr", lr, f"a number in (0, {bound:.6g}) (eps_k = lr*lambda_k*c_k^(2-2/N) "
                            f"< 2/N = {2.0 / N:.4g}: the stability bound of docs/theory.md §7.2)")
    return eps


# ------------------------------------------------------------------------------------ g_N


def deep_g(y, *, depth) -> np.ndarray:
    r""":math:`g_N(y)` on [0, 1] (§7.1), from ``scipy.special.hyp2f1`` for N ≥ 3; increasing, with
    :math:`g_N'(y) = 1/(N y^{2-2/N}(1-y))`; :math:`g_N(0) = -\infty` (N ≥ 2), :math:`g_N(1) = +\infty`."""
    N = _depth("deep_g", depth)
    y = checks.host(y)
    if not np.all((y >= 0) & (y <= 1)):
        raise checks.refuse("deep_g", "y", y, "values in [0, 1]")
    with np.errstate(divide="ignore"):
        if N == 1:
            return -np.log1p(-y)
        if N == 2:
            return 0.5 * (np.log(y) - np.log1p(-y))
        a = 2.0 / N
        return -y ** (-(N - 2.0) / N) / (N - 2.0) + 0.5 * y ** a * scipy.special.hyp2f1(1.0, a, 1.0 + a, y)


def _g_logit(z: np.ndarray, N: int) -> np.ndarray:
    r""":math:`g_N(\mathrm{sigmoid}(z))` in elementary functions (integer N): with :math:`s = y^{1/N}`,
    :math:`\tfrac12 y^{2/N}{}_2F_1(\cdot) = \int_0^s u/(1-u^N)\,du`, summed over the N-th roots of unity.
    Accurate at both ends (uses log y and log(1−s) from z directly)."""
    if N == 1:
        return np.logaddexp(0.0, z)
    if N == 2:
        return 0.5 * z
    a = -np.logaddexp(0.0, -z) / N  # log s
    s, oms = np.exp(a), -np.expm1(a)  # s, 1 − s
    integral = -np.log(oms)
    for j in range(1, (N - 1) // 2 + 1):
        th = 2.0 * math.pi * j / N
        integral -= (math.cos(2 * th) * np.log(oms * oms + 2.0 * s * (1.0 - math.cos(th)))
                     - 2.0 * math.sin(2 * th) * np.arctan2(s * math.sin(th), 1.0 - s * math.cos(th)))
    if N % 2 == 0:
        integral -= np.log1p(s)
    return -np.exp(-(N - 2.0) * a) / (N - 2.0) + integral / N


def _dg_dz(z: np.ndarray, N: int) -> np.ndarray:
    """d g_N / dz = y^{2/N − 1}/N."""
    return np.exp((2.0 / N - 1.0) * -np.logaddexp(0.0, -z)) / N


def _sigmoid(z):
    """1/(1 + e^{−z}): relative accuracy on both tails (0 below z ≈ −745)."""
    with np.errstate(over="ignore"):
        e = np.exp(-np.asarray(z, dtype=np.float64))
    e += 1.0
    return np.reciprocal(e, out=e) if e.ndim else 1.0 / e


def _solve(F, dF, target, z0, params=(), iters: int = 200) -> np.ndarray:
    """Vectorised safeguarded Newton for F(z, *params) = target, F increasing in z: each entry keeps
    a bracket [lo, hi] and bisects when a Newton step leaves it; only unconverged entries are
    re-evaluated. Entries beyond F(±700) return ±700."""
    tgt = np.asarray(target, dtype=np.float64).ravel()
    ps = [np.broadcast_to(np.asarray(p, dtype=np.float64), np.shape(target)).ravel() for p in params]
    z = np.clip(np.broadcast_to(np.asarray(z0, dtype=np.float64), np.shape(target)).ravel().copy(), -_Z_MAX, _Z_MAX)
    lo, hi = _bracket(F, tgt, z, ps)
    z = np.clip(z, lo, hi)
    idx = np.arange(z.size)
    for _ in range(iters):
        if idx.size == 0:
            break
        zi, pi = z[idx], [p[idx] for p in ps]
        f = F(zi, *pi) - tgt[idx]
        lo[idx] = np.where(f < 0, zi, lo[idx])
        hi[idx] = np.where(f > 0, zi, hi[idx])
        with np.errstate(invalid="ignore", divide="ignore"):
            zn = zi - f / dF(zi, *pi)
        out = ~((zn > lo[idx]) & (zn < hi[idx]))
        zn = np.where(out, 0.5 * (lo[idx] + hi[idx]), zn)
        tol = 4e-16 * np.maximum(1.0, np.abs(zi))
        done = (f == 0) | (np.abs(zn - zi) <= tol) | (hi[idx] - lo[idx] <= tol)
        z[idx] = np.where(f == 0, zi, zn)
        idx = idx[~done]
    return z.reshape(np.shape(target))


def _bracket(F, tgt, z, ps, rounds: int = 12):
    """[lo, hi] around z with F(lo) ≤ target ≤ F(hi), widening each side ×4 per round (clipped at ±700),
    so that bisection fallbacks stay near the root (Newton crawls from far left on g_N, N ≥ 3)."""
    bounds = []
    for sign in (-1.0, 1.0):
        width = np.ones_like(z)
        b = np.clip(z + sign * width, -_Z_MAX, _Z_MAX)
        idx = np.arange(z.size)
        for _ in range(rounds):
            f = F(b[idx], *[p[idx] for p in ps]) - tgt[idx]
            wrong = (f > 0) if sign < 0 else (f < 0)
            idx = idx[wrong & (np.abs(b[idx]) < _Z_MAX)]
            if idx.size == 0:
                break
            width[idx] *= 4.0
            b[idx] = np.clip(z[idx] + sign * width[idx], -_Z_MAX, _Z_MAX)
        b[idx] = sign * _Z_MAX
        bounds.append(b)
    return bounds[0], bounds[1]


def _values(fn: str, values) -> np.ndarray:
    G = checks.host(values)
    if np.any(np.isnan(G)):
        raise checks.refuse(fn, "values", G, "real numbers (not NaN; +-inf allowed)")
    return G


def deep_g_inverse_newton(values, *, depth) -> np.ndarray:
    """y = g_N⁻¹(values) by the bracketed Newton iteration (the reference route; slow, exact to round-off)."""
    N = _depth("deep_g_inverse_newton", depth)
    G = _values("deep_g_inverse_newton", values)
    if N == 1:
        return -np.expm1(-np.maximum(G, 0.0))
    return _sigmoid(_inverse_logit(G, N))


def _inverse_logit(G: np.ndarray, N: int) -> np.ndarray:
    """z = logit g_N⁻¹(G) (N ≥ 2), started from the asymptotes of g_N at y → 0 and y → 1."""
    m = max(N - 2, 1)
    z0 = np.where(G < 0, -np.log(np.maximum(m * np.abs(G), 1e-300)) * N / m, N * G)
    return _solve(lambda z: _g_logit(z, N), lambda z: _dg_dz(z, N), G, z0)


class _Table(NamedTuple):
    r0: float
    h: float
    coef: np.ndarray  # (nodes − 1, 4): z = p0 + u(p1 + u(p2 + u p3)) on [r_i, r_i + h], u ∈ [0, 1]
    g_min: float
    g_max: float


@functools.cache
def _table(N: int, nodes: int = 2**16 + 1) -> _Table:
    """Cubic Hermite pieces of z(G) on a uniform grid in r = asinh(G), from y = 1e-30 to 1 − 1e-18,
    with the exact slope dz/dr = N y^{1−2/N} cosh r at the nodes."""
    g_min = float(_g_logit(np.array(math.log(1e-30)), N))
    g_max = float(_g_logit(np.array(math.log(1e18)), N))
    r0 = math.asinh(g_min)
    h = (math.asinh(g_max) - r0) / (nodes - 1)
    r = r0 + h * np.arange(nodes)  # the same arithmetic as the lookup in deep_g_inverse
    G = np.sinh(r)
    z = _inverse_logit(G, N)
    m = h * N * _sigmoid(z) ** (1.0 - 2.0 / N) * np.cosh(r)
    dz = z[1:] - z[:-1]
    coef = np.stack([z[:-1], m[:-1], 3.0 * dz - 2.0 * m[:-1] - m[1:], m[:-1] + m[1:] - 2.0 * dz], axis=-1)
    coef = np.asfortranarray(coef)  # contiguous columns for np.take
    return _Table(r0, h, coef, float(G[0]), float(G[-1]))


_CHUNK = 1 << 15  # entries per block: the temporaries stay in cache (no page faults on 10⁷ arrays)


def _lookup(G: np.ndarray, tab: _Table, N: int, out: np.ndarray) -> None:
    """y = g_N⁻¹(G) for a 1-d block G, written into ``out`` (table pieces, asymptotes outside)."""
    u = np.clip(G, tab.g_min, tab.g_max)
    np.arcsinh(u, out=u)
    u -= tab.r0
    u *= 1.0 / tab.h
    i = u.astype(np.intp)
    np.minimum(i, tab.coef.shape[0] - 1, out=i)
    u -= i
    z = np.take(tab.coef[:, 3], i)
    for col in (2, 1, 0):  # Horner: z = ((p3 u + p2) u + p1) u + p0
        z *= u
        z += np.take(tab.coef[:, col], i)
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=out)
    below, above = G < tab.g_min, G > tab.g_max
    if below.any():
        out[below] = ((N - 2.0) * np.abs(G[below])) ** (-N / (N - 2.0))
    if above.any():
        out[above] = 1.0


def deep_g_inverse(values, *, depth) -> np.ndarray:
    r""":math:`y = g_N^{-1}(G)` ∈ [0, 1] for any array G (§7.1): closed form for N = 1, 2
    (:math:`1-e^{-G}`, :math:`\mathrm{sigmoid}(2G)`), else the cached Hermite table (module docstring),
    evaluated in cache-sized blocks."""
    N = _depth("deep_g_inverse", depth)
    G = _values("deep_g_inverse", values)
    if N == 1:
        return -np.expm1(-np.maximum(G, 0.0))
    if N == 2:
        return _sigmoid(2.0 * G)
    tab = _table(N)
    flat = np.ascontiguousarray(G).ravel()
    out = np.empty_like(flat)
    with np.errstate(over="ignore"):
        for s in range(0, flat.size, _CHUNK):
            _lookup(flat[s:s + _CHUNK], tab, N, out[s:s + _CHUNK])
    return out.reshape(G.shape)


# ------------------------------------------------------------------------------------ gradient flow


def _gf(lam, c, s0, N, t):
    """σ(t) for validated inputs; t of any shape leads the output (…, m); exactly σ₀ at t = 0."""
    flat = t.ravel()
    if N == 1:
        out = c[None, :] + (s0 - c)[None, :] * _gf_decay(lam, flat, np)
    elif N == 2:
        out = c[None, :] / (1.0 + (c / s0 - 1.0)[None, :] * _gf_decay(2.0 * lam * c, flat, np))
    else:
        out = _gf_table(lam, c, s0, N, flat)
    out[flat == 0] = s0
    return out.reshape(t.shape + c.shape)


def _gf_table(lam, c, s0, N, flat):
    """N ≥ 3: c·g_N⁻¹(g_N(σ₀/c) + κt), G built block by block of time rows (no 10⁷ temporaries)."""
    kappa = lam * c ** (2.0 - 2.0 / N)
    g0 = _g_logit(np.log(s0 / c) - np.log1p(-s0 / c), N)
    tab = _table(N)
    out = np.empty((flat.size, c.size))
    rows = max(1, _CHUNK // c.size)
    with np.errstate(over="ignore"):
        for r in range(0, flat.size, rows):
            G = flat[r:r + rows, None] * kappa[None, :]
            G += g0[None, :]
            blk = out[r:r + rows]
            _lookup(G.ravel(), tab, N, blk.reshape(-1))
            blk *= c[None, :]
    return out


def deep_gf_trajectory(eigvals, coeffs_star, coeffs0, times, *, depth) -> np.ndarray:
    r"""Gradient-flow mode strengths :math:`\sigma_k(t)` of a depth-N student (§7.1), shape
    ``times.shape + (m,)``: N = 1 :math:`c + (\sigma_0 - c)e^{-\lambda t}`, N = 2 Saxe's sigmoid
    :math:`c/(1 + (c/\sigma_0 - 1)e^{-2\lambda c t})`, N ≥ 3 :math:`c\,g_N^{-1}(g_N(\sigma_0/c) + \kappa t)`.
    ``coeffs_star`` = the targets c (m,); ``coeffs0`` = σ₀, a scalar or one value per mode with 0 < σ₀ < c_k."""
    fn = "deep_gf_trajectory"
    N, lam, c, s0 = _modes(fn, eigvals, coeffs_star, coeffs0, depth)
    return _gf(lam, c, s0, N, _times(fn, times))


def deep_escape_time(eigvals, coeffs_star, coeffs0, *, depth) -> np.ndarray:
    r"""Small-σ₀ escape-time scale (§7.1): :math:`\ln(c/\sigma_0)/(2\lambda c)` (N = 2),
    :math:`\sigma_0^{-(N-2)/N}/((N-2)\lambda c)` (N ≥ 3), :math:`1/\lambda` (N = 1)."""
    N, lam, c, s0 = _modes("deep_escape_time", eigvals, coeffs_star, coeffs0, depth)
    if N == 1:
        return 1.0 / lam
    if N == 2:
        return np.log(c / s0) / (2.0 * lam * c)
    return s0 ** (-(N - 2.0) / N) / ((N - 2.0) * lam * c)


# ------------------------------------------------------------------------------------ gradient descent


@functools.partial(jax.jit, static_argnums=(3, 5))
def _gd_scan(lam, c, w0, depth, lr, steps):
    def one(lam_k, c_k, w0_k):
        def step(w, _):
            w = w + lr * lam_k * w ** (depth - 1) * (c_k - w ** depth)
            return w, w ** depth
        _, sig = jax.lax.scan(step, w0_k, None, length=steps)
        return jnp.concatenate([(w0_k ** depth)[None], sig])

    return jax.vmap(one, out_axes=1)(lam, c, w0)


def deep_gd_trajectory(eigvals, coeffs_star, coeffs0, lr, steps: int, *, depth) -> np.ndarray:
    r"""Exact GD mode strengths (§7.2), shape (steps + 1, m): per layer
    :math:`w_k \leftarrow w_k + \eta\lambda_k w_k^{N-1}(c_k - w_k^N)` from :math:`w_k = \sigma_0^{1/N}`,
    :math:`\sigma_k = w_k^N` (balanced aligned init; equals matrix GD on :math:`W_1..W_N`).
    Refuses η past the stability bound :math:`\varepsilon_k < 2/N` (:func:`linkd.stability.deep_lr_limit`)."""
    fn = "deep_gd_trajectory"
    N, lam, c, s0 = _modes(fn, eigvals, coeffs_star, coeffs0, depth)
    eta = _deep_lr(fn, lr, lam, c, N)
    K = checks.integer(fn, "steps", steps, 0)
    dt = default_float()
    out = _gd_scan(jnp.asarray(lam, dt), jnp.asarray(c, dt), jnp.asarray(s0 ** (1.0 / N), dt), N, eta, K)
    return np.asarray(out, dtype=np.float64)


def deep_modified_flow(eigvals, coeffs_star, coeffs0, lr, steps, *, depth) -> np.ndarray:
    r"""First-order modified equation for GD (§7.2): :math:`\tilde y = \tilde\sigma/c` after k steps solves
    :math:`g_N(\tilde y) - g_N(y_0) + \frac\varepsilon2\left[\frac{N-1}N\ln\frac{\tilde y}{y_0}
    + \ln\frac{1-\tilde y}{1-y_0}\right] = \varepsilon k`, error :math:`O(\varepsilon^2)` against exact GD
    (plain GF, :math:`g_N(\tilde y) - g_N(y_0) = \varepsilon k`, is :math:`O(\varepsilon)`).
    ``steps``: an int (k = 0..steps) or an array of step counts; returns σ̃, shape ``k.shape + (m,)``."""
    fn = "deep_modified_flow"
    N, lam, c, s0 = _modes(fn, eigvals, coeffs_star, coeffs0, depth)
    eta = _deep_lr(fn, lr, lam, c, N)
    eps = stability.deep_mode_steps(eta, lam, c, N)
    k = checks.host(checks.steps(fn, "steps", steps))
    y0 = np.broadcast_to(s0 / c, k.shape + c.shape)
    z0 = np.log(y0) - np.log1p(-y0)
    e = np.broadcast_to(eps, y0.shape)
    guess = np.clip(_gf(lam, c, s0, N, eta * k) / c, 1e-300, 1.0 - 1e-16)  # plain GF at t = ηk
    zg = np.log(guess) - np.log1p(-guess)
    a = (N - 1.0) / N

    def F(z, z0_, e_):
        ly, l1y = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
        ly0, l1y0 = -np.logaddexp(0.0, -z0_), -np.logaddexp(0.0, z0_)
        return _g_logit(z, N) - _g_logit(z0_, N) + 0.5 * e_ * (a * (ly - ly0) + l1y - l1y0)

    def dF(z, z0_, e_):
        y = _sigmoid(z)
        return _dg_dz(z, N) + 0.5 * e_ * (a * (1.0 - y) - y)

    z = _solve(F, dF, e * k[..., None], zg, (z0, e))
    return np.where(k[..., None] == 0, s0, c * _sigmoid(z))


# ------------------------------------------------------------------------------------ distillation


def deep_teacher_strengths(eigvals, coeffs_star, T, *, depth: int = 1, coeffs0=0.0, lr=None) -> np.ndarray:
    r"""Teacher mode strengths :math:`a_k` after training time T (§7.3), teacher of depth M = ``depth``
    on the targets ``coeffs_star`` (c) from ``coeffs0`` (σ₀): GF (``lr=None``; M = 1 zero init gives
    :math:`c_k(1-e^{-\lambda_k T})`) or T GD steps (``lr``; M = 1 gives :math:`c_k(1-(1-\eta\lambda_k)^T)`).
    M ≥ 2 needs 0 < σ₀ < c_k."""
    fn = "deep_teacher_strengths"
    M = _depth(fn, depth)
    if lr is None:
        return deep_gf_trajectory(eigvals, coeffs_star, coeffs0, _times(fn, T, "T"), depth=M)
    return deep_gd_trajectory(eigvals, coeffs_star, coeffs0, lr, checks.integer(fn, "T", T, 0), depth=M)[-1]


def deep_distilled_trajectory(eigvals, coeffs_star, coeffs0, times, *, depth) -> np.ndarray:
    r"""Depth-N student on the teacher's outputs :math:`\hat Y = XW_T^\top` (§7.3): the GF law with the
    teacher's strengths :math:`a_k` as ``coeffs_star``,
    :math:`g_N(\sigma^S_k/a_k) = g_N(\sigma_0/a_k) + \lambda_k a_k^{2-2/N}t` (needs σ₀ < a_k)."""
    fn = "deep_distilled_trajectory"
    N, lam, a, s0 = _modes(fn, eigvals, coeffs_star, coeffs0, depth)
    return _gf(lam, a, s0, N, _times(fn, times))


def deep_time_dilation(Q, coeffs_star, coeffs0, *, depth) -> np.ndarray:
    r"""Time dilation :math:`R_k(N) = t_{1/2}^S/t_{1/2}^R` (§7.4b), half-times to half of each run's own
    target (student on :math:`a = Qc`, reference on c = ``coeffs_star``, same init σ₀ = ``coeffs0`` and λ):
    :math:`R = Q^{-(2-2/N)}\,[g_N(\tfrac12) - g_N(\sigma_0/(Qc))]/[g_N(\tfrac12) - g_N(\sigma_0/c)]`.
    Needs 0 < Q ≤ 1 and σ₀ < Qc/2."""
    fn = "deep_time_dilation"
    N = _depth(fn, depth)
    q, c, s0 = checks.host(Q), checks.host(coeffs_star), checks.host(coeffs0)
    if not np.all((q > 0) & (q <= 1)):
        raise checks.refuse(fn, "Q", q, "values in (0, 1] (teacher progress a_k/c_k)")
    if not np.all(np.isfinite(c) & (c > 0)):
        raise checks.refuse(fn, "coeffs_star", c, "finite values > 0")
    if not np.all((s0 > 0) & (s0 < 0.5 * q * c)):
        raise checks.refuse(fn, "coeffs0", s0, "values in (0, Q*coeffs_star/2) (the init is below half of both targets)")
    half = deep_g(0.5, depth=N)
    return q ** -(2.0 - 2.0 / N) * (half - deep_g(s0 / (q * c), depth=N)) / (half - deep_g(s0 / c, depth=N))


def deep_matched_progress_gap(eigvals, coeffs_star, coeffs0, q_student, *, depth, ref: int = 0,
                              min_residual: float = ILL_CONDITIONED) -> MatchedGap:
    r"""Matched-progress gap (§7.4a): the reference (depth N, trained on the targets ``coeffs_star`` from
    σ₀ = ``coeffs0``) is run to the time :math:`\tau^* = [g_N(q_{ref}^S) - g_N(\sigma_0/c_{ref})]/\kappa_{ref}`
    where its progress on mode ``ref`` equals the student's; :math:`\mathrm{Gap}_k = q_k^R(\tau^*) - q_k^S`.
    ``q_student`` (…, m): student progress σ_k^S/c_k (measured or from :func:`deep_distilled_trajectory`).
    One matched mode: ``gap`` (…, m), ``tau_star`` and ``excluded`` (…); rows are left out where
    :math:`1 - q_{ref}^S <` ``min_residual`` (ill-conditioned) or :math:`q_{ref}^S` is not past the init."""
    fn = "deep_matched_progress_gap"
    N, lam, c, s0 = _modes(fn, eigvals, coeffs_star, coeffs0, depth)
    q = checks.host(q_student)
    if q.shape[-1:] != c.shape:
        raise checks.refuse(fn, "q_student", f"shape {q.shape}", f"shape (..., {c.size}) (one progress per mode)")
    ref = checks.integer(fn, "ref", ref, 0)
    if ref >= c.size:
        raise checks.refuse(fn, "ref", ref, f"a mode index in [0, {c.size})")
    mr = checks.scalar(fn, "min_residual", min_residual, strict=False)
    qr = q[..., ref]
    y0 = s0[ref] / c[ref]
    valid = (1.0 - qr >= mr) & (qr > y0) & np.isfinite(qr)
    qs = np.where(valid, qr, 0.5 * (1.0 + y0))
    gy = float(_g_logit(np.array(math.log(y0) - math.log1p(-y0)), N)) if N >= 3 else deep_g(np.array([y0]), depth=N)[0]
    gq = deep_g(qs, depth=N) if N < 3 else _g_logit(np.log(qs) - np.log1p(-qs), N)
    tau = (gq - gy) / (lam[ref] * c[ref] ** (2.0 - 2.0 / N))
    qR = _gf(lam, c, s0, N, np.maximum(tau, 0.0)) / c
    gap = np.where(valid[..., None], qR - q, np.nan)
    reason = f"1 - q_ref^S < min_residual = {mr:g} (ill-conditioned matched time) or q_ref^S not past the init"
    return MatchedGap(gap, np.where(valid, tau, np.nan), ~valid, reason)
