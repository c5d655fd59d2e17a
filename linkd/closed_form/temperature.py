r"""Multiclass distillation at temperature τ in the linear model, trained by GD (docs/theory.md §8).

Teacher :math:`W_T \in \mathbb{R}^{d\times C}`, student :math:`Z = XW`,
:math:`L_\tau = \frac{\tau^2}{n}\sum_i \mathrm{KL}(\mathrm{softmax}(z_{T,i}/\tau)\,\|\,\mathrm{softmax}(z_i/\tau))`
(the engine's ``kd_softmax`` with ``tau2_scale``: same gradient). With :math:`J = I_C - 11^\top/C`:

* exact gradient :math:`\nabla L_\tau = \frac{\tau}{n}X^\top[\mathrm{softmax}(Z/\tau) - \mathrm{softmax}(Z_T/\tau)]`,
  exact invariant :math:`W_s 1_C = W_0 1_C` (:func:`class_sum`); descent for :math:`\eta < 4/\lambda_\max`;
* centred coefficients :math:`\gamma_k(s) = v_k^\top W_s J` follow, up to :math:`O(\tau^{-2})`,

  .. math:: \gamma_k(s) = \gamma_k^T + \rho_k^s(\gamma_k(0) - \gamma_k^T) + \tau^{-1}\gamma_k^{(1)}(s),
            \qquad \rho_k = 1 - \eta\lambda_k/C,

  the leading term being MSE-GD on centred logits with step η/C (Hinton et al. 2015, eq. 4), and
  :math:`\gamma^{(1)}` the first-order correction built from the third moment
  :math:`M_3[a,b,c] = \frac1n\sum_i (x_i\cdot v_a)(x_i\cdot v_b)(x_i\cdot v_c)` (:func:`first_order_correction`);
* progress :math:`p_k = \langle\gamma_k, \gamma_k^T\rangle/\|\gamma_k^T\|^2` (:func:`centred_progress`).
* Binary soft-CE at temperature τ is MSE-GD on the logit with step η/4 up to :math:`O(\tau^{-2})`
  (:func:`binary_logit_limit`).

Names follow the closed-form conventions: the teacher's coordinates :math:`\gamma^T = V^\top W_T` are
``coeffs_star``, the initial ones :math:`V^\top W_0` are ``coeffs0``; ``num_classes`` (C) and ``tau``
are keyword-only. Times follow :mod:`linkd.closed_form.gd`: filters and decays take a time ``t`` (a
scalar gives shape (d,)); trajectories, corrections and predictions take ``steps`` (an int means
0..steps, an array is used as is). GD times are integer steps; gradient flow (``gf_*``) uses
continuous times ``t = η·steps``. Time axes lead the output, then (d,) or (d, C).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from linkd import stability
from linkd.closed_form import _checks as checks
from linkd.closed_form import gd
from linkd.closed_form.decay import _gd_jax, _gf_jax, _signed_power
from linkd.closed_form.matched import MatchedGap

Array = jnp.ndarray

__all__ = [
    "TemperatureLR",
    "binary_logit_limit",
    "centre_classes",
    "centred_progress",
    "class_sum",
    "e_kernel",
    "first_order_correction",
    "gf_first_order_correction",
    "gf_tempered_filter",
    "gf_tempered_trajectory",
    "kd_gradient",
    "progress_prediction",
    "s_kernel",
    "temperature_lr",
    "tempered_decay",
    "tempered_exaggeration_gap",
    "tempered_filter",
    "tempered_prediction",
    "tempered_trajectory",
    "third_moment",
]


# ------------------------------------------------------------------------------------ validation


class TemperatureLR(NamedTuple):
    r"""Step-size limits of GD on :math:`L_\tau`: ``descent`` = :math:`4/\lambda_\max` (the Hessian is
    :math:`\preceq \tfrac12\hat\Sigma\otimes I` at every τ), ``monotone`` = :math:`C/\lambda_\max`
    (below it every :math:`\rho_k \ge 0`, so the leading filters are monotone in s)."""

    descent: float
    monotone: float


def _classes(fn: str, num_classes) -> int:
    return checks.integer(fn, "num_classes", num_classes, 2)


def _tau(fn: str, tau) -> float:
    return checks.scalar(fn, "tau", tau)


def _lam_max(fn: str, eigvals) -> float:
    lam_max = float(jnp.max(checks.eigvals(fn, eigvals)))
    if not lam_max > 0:
        raise checks.refuse(fn, "eigvals", eigvals, "eigenvalues >= 0 with a largest one > 0")
    return lam_max


def temperature_lr(eigvals: Array, num_classes: int) -> TemperatureLR:
    r""":math:`\eta < 4/\lambda_\max` (descent at every τ) and :math:`\eta \le C/\lambda_\max` (monotone filters)."""
    lam_max = _lam_max("temperature_lr", eigvals)
    return TemperatureLR(stability.tempered_descent(lam_max), stability.tempered_monotone(lam_max, _classes("temperature_lr", num_classes)))


def _lr(fn: str, lr, eigvals) -> float:
    """Refuse η outside (0, 4/λ_max): the descent bound of docs/theory.md §8."""
    return checks.lr(fn, lr, below=stability.tempered_descent(_lam_max(fn, eigvals)),
                     why=" (the descent bound 4/lambda_max of the tempered loss)")


def _spectrum_and_teacher(fn: str, eigvals, coeffs_star, coeffs0=None):
    """Validated λ (d,), γ^T (d, C) and γ(0) (d, C) (zeros when ``coeffs0`` is None)."""
    lam = checks.eigvals(fn, eigvals)
    cs = checks.coeffs(fn, "coeffs_star", coeffs_star, lam.shape[0], ndim=(2,))
    c0 = jnp.zeros_like(cs) if coeffs0 is None else checks.coeffs(fn, "coeffs0", coeffs0, lam.shape[0], ndim=(2,))
    if c0.shape != cs.shape:
        raise checks.refuse(fn, "coeffs0", f"shape {tuple(c0.shape)}", f"the shape of coeffs_star {tuple(cs.shape)}")
    return lam, cs, c0


def _third(fn: str, M3, d: int) -> Array:
    """The third moment M3 of shape (d, d, d)."""
    if jnp.shape(M3) != (d, d, d):
        raise checks.refuse(fn, "M3", f"shape {tuple(jnp.shape(M3))}", f"an array of shape ({d}, {d}, {d})")
    return checks.coeffs(fn, "M3", M3, d, ndim=(3,))


# ------------------------------------------------------------------------------------ helpers


def _classes_axis(fn: str, name: str, W) -> Array:
    W = checks.floats(W)
    if W.ndim < 1:
        raise checks.refuse(fn, name, W, "an array whose last axis runs over the classes")
    return W


def centre_classes(W: Array) -> Array:
    r"""Class-centred :math:`WJ`, :math:`J = I_C - 11^\top/C` (the last axis is the class axis)."""
    W = _classes_axis("centre_classes", "W", W)
    return W - jnp.mean(W, axis=-1, keepdims=True)


def class_sum(W: Array) -> Array:
    r""":math:`W 1_C` (last axis summed). Exact GD invariant of :math:`L_\tau`: :math:`W_s 1_C = W_0 1_C`,
    since every row of :math:`\mathrm{softmax}(Z/\tau) - \mathrm{softmax}(Z_T/\tau)` sums to 0."""
    return jnp.sum(_classes_axis("class_sum", "W", W), axis=-1)


def _design(fn: str, X) -> Array:
    X = checks.floats(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise checks.refuse(fn, "X", f"shape {tuple(X.shape)}", "a 2-d array (n, d), n >= 1")
    return X


def kd_gradient(X: Array, W: Array, W_teacher: Array, *, tau) -> Array:
    r"""Exact gradient
    :math:`\nabla_W L_\tau = \frac{\tau}{n}X^\top[\mathrm{softmax}(XW/\tau) - \mathrm{softmax}(XW_T/\tau)]`
    of the τ²-scaled tempered loss (mean over examples, sum over classes), shape (d, C)."""
    fn = "kd_gradient"
    tau = _tau(fn, tau)
    X = _design(fn, X)
    W = checks.coeffs(fn, "W", W, X.shape[1], ndim=(2,))
    WT = checks.coeffs(fn, "W_teacher", W_teacher, X.shape[1], ndim=(2,))
    if WT.shape != W.shape:
        raise checks.refuse(fn, "W_teacher", f"shape {tuple(WT.shape)}", f"the shape of W {tuple(W.shape)}")
    return _kd_gradient(X, W, WT, tau)


@jax.jit
def _kd_gradient(X: Array, W: Array, WT: Array, tau) -> Array:
    P = jax.nn.softmax(X @ W / tau, axis=-1) - jax.nn.softmax(X @ WT / tau, axis=-1)
    return tau / X.shape[0] * (X.T @ P)


def third_moment(X: Array, basis: Array) -> Array:
    r""":math:`M_3[a,b,c] = \frac1n\sum_i (x_i\cdot v_a)(x_i\cdot v_b)(x_i\cdot v_c)`, shape (m, m, m) for a
    basis (d, m). It vanishes for data symmetric under :math:`x \to -x`."""
    X = _design("third_moment", X)
    V = checks.floats(basis)
    if V.ndim != 2 or V.shape[0] != X.shape[1]:
        raise checks.refuse("third_moment", "basis", f"shape {tuple(V.shape)}", f"a 2-d array ({X.shape[1]}, m)")
    P = X @ V
    return jnp.einsum("ia,ib,ic->abc", P, P, P) / P.shape[0]


def s_kernel(rho: Array, mu: Array, s: Array) -> Array:
    r""":math:`S(\rho,\mu;s) = (\rho^s - \mu^s)/(\rho - \mu) = \sum_{j<s}\rho^{s-1-j}\mu^j`
    (:math:`s\rho^{s-1}` at :math:`\rho = \mu`), elementwise over arrays of equal rank (size-1 axes
    broadcast); s ≥ 0 integer-valued.

    Stable near :math:`\rho = \mu`: for same-sign arguments
    :math:`S = h^{s-1}\,\mathrm{expm1}(s\,\mathrm{log1p}(x))/x`, h = max(|ρ|,|μ|), x = min/max − 1,
    times :math:`(-1)^{s-1}` when both are negative; opposite signs use the direct quotient (no
    cancellation in :math:`\rho - \mu`)."""
    return _s_kernel(checks.floats(rho), checks.floats(mu), checks.times("s_kernel", "s", s))


@jax.jit
def _s_kernel(rho: Array, mu: Array, s: Array) -> Array:
    s = s.astype(rho.dtype)
    a, b = jnp.abs(rho), jnp.abs(mu)
    hi, lo = jnp.maximum(a, b), jnp.minimum(a, b)
    x = (lo - hi) / jnp.where(hi > 0, hi, 1.0)  # in [-1, 0]
    s_pos = jnp.where(s > 0, s, 1.0)
    ratio = jnp.where(x == 0, s_pos, jnp.expm1(s_pos * jnp.log1p(x)) / jnp.where(x == 0, 1.0, x))
    same = jnp.where(hi > 0, jnp.where(hi > 0, hi, 1.0) ** (s_pos - 1.0) * ratio, jnp.where(s_pos == 1.0, 1.0, 0.0))
    neg = (rho <= 0) & (mu <= 0)
    same = jnp.where(neg & (jnp.mod(s_pos, 2.0) == 0.0), -same, same)  # (-1)^(s-1)
    opposite = (rho * mu) < 0
    den = jnp.where(opposite, rho - mu, 1.0)
    direct = (_signed_power(rho, s_pos) - _signed_power(mu, s_pos)) / den
    return jnp.where(s > 0, jnp.where(opposite, direct, same), 0.0)


def e_kernel(lam: Array, m: Array, t: Array, *, num_classes: int) -> Array:
    r"""Gradient-flow kernel :math:`E(\lambda, m; t) = C(e^{-mt/C} - e^{-\lambda t/C})/(\lambda - m)`
    (:math:`t e^{-\lambda t/C}` at :math:`\lambda = m`), computed as
    :math:`C e^{-\ell t/C}(-\mathrm{expm1}(-\delta t/C))/\delta`, ℓ = min, δ = |λ − m|.
    Elementwise over arrays of equal rank; the GF limit of :math:`\eta\,S(\rho_\lambda, \mu; t/\eta)`."""
    C = float(_classes("e_kernel", num_classes))
    return _e_kernel(checks.floats(lam), checks.floats(m), checks.times("e_kernel", "t", t), C)


@jax.jit
def _e_kernel(lam: Array, m: Array, t: Array, C) -> Array:
    t = t.astype(lam.dtype)
    lo, dl = jnp.minimum(lam, m), jnp.abs(lam - m)
    safe = jnp.where(dl > 0, dl, 1.0)
    frac = jnp.where(dl > 0, -C * jnp.expm1(-safe * t / C) / safe, t)
    return jnp.exp(-lo * t / C) * frac


# ------------------------------------------------------------------------------------ leading term


def tempered_decay(eigvals: Array, lr, t, *, num_classes: int) -> Array:
    r""":math:`\rho_k^t`, :math:`\rho_k = 1 - \eta\lambda_k/C` (the MSE residual with step η/C); shape t.shape + (d,)."""
    fn = "tempered_decay"
    C = _classes(fn, num_classes)
    lam = checks.eigvals(fn, eigvals)
    return _gd_jax(lam, _lr(fn, lr, lam) / C, checks.times(fn, "t", t))


def tempered_filter(eigvals: Array, lr, t, *, num_classes: int) -> Array:
    r"""Leading filter :math:`F_k(t) = 1 - \rho_k^t` of a student from :math:`W_0 = 0` (any τ)."""
    fn = "tempered_filter"
    C = _classes(fn, num_classes)
    lam = checks.eigvals(fn, eigvals)
    return 1.0 - _gd_jax(lam, _lr(fn, lr, lam) / C, checks.times(fn, "t", t))


def gf_tempered_filter(eigvals: Array, times, *, num_classes: int) -> Array:
    r"""Gradient flow: :math:`F_k(t) = 1 - e^{-\lambda_k t/C}`."""
    fn = "gf_tempered_filter"
    C = _classes(fn, num_classes)
    return 1.0 - _gf_jax(checks.eigvals(fn, eigvals) / C, checks.times(fn, "times", times))


def tempered_trajectory(eigvals: Array, coeffs_star: Array, coeffs0: Array, lr, steps, *, num_classes: int) -> Array:
    r"""Leading order from any :math:`W_0`: :math:`\gamma_k(t) = \gamma_k^T + \rho_k^t(\gamma_k(0) - \gamma_k^T)`
    (``coeffs_star`` = :math:`V^\top W_T`, ``coeffs0`` = :math:`V^\top W_0`, (d, C), centred here). Shape
    t.shape + (d, C); ``steps`` int → t = 0..steps. Directions with :math:`\lambda_k = 0` keep their initial value."""
    fn = "tempered_trajectory"
    C = _classes(fn, num_classes)
    lam, cs, c0 = _spectrum_and_teacher(fn, eigvals, coeffs_star, coeffs0)
    eta = _lr(fn, lr, lam)
    return gd.gd_mse_trajectory(lam, centre_classes(cs), centre_classes(c0), eta / C, checks.steps(fn, "steps", steps))


def gf_tempered_trajectory(eigvals: Array, coeffs_star: Array, coeffs0: Array, times, *, num_classes: int) -> Array:
    r"""Gradient flow: :math:`\gamma_k(t) = \gamma_k^T + e^{-\lambda_k t/C}(\gamma_k(0) - \gamma_k^T)`."""
    fn = "gf_tempered_trajectory"
    C = _classes(fn, num_classes)
    lam, cs, c0 = _spectrum_and_teacher(fn, eigvals, coeffs_star, coeffs0)
    return gd.gf_mse_trajectory(lam / C, centre_classes(cs), centre_classes(c0), checks.steps(fn, "times", times))


# ------------------------------------------------------------------------------------ 1/τ correction


@jax.jit
def _sources(M3: Array, coeffs_star: Array, coeffs0: Array):
    r"""Contracted sources of the correction, with :math:`\delta_b = \gamma_b(0) - \gamma_b^T` and the
    centred product :math:`H(u, w) = (u\circ w)J`:
    ``K1[a,b]`` = :math:`2\sum_c M_3[a,b,c] H(\delta_b, \gamma_c^T)` (pairs with :math:`S(\rho_a, \rho_b)`),
    ``K2[a,b,c]`` = :math:`M_3[a,b,c] H(\delta_b, \delta_c)` (pairs with :math:`S(\rho_a, \rho_b\rho_c)`).
    Zero init (δ = −γ^T) gives :math:`-2\sum_c M_3 H_{bc}` and :math:`M_3 H_{bc}` (docs/theory.md §8)."""
    gT = coeffs_star - jnp.mean(coeffs_star, axis=-1, keepdims=True)
    delta = coeffs0 - jnp.mean(coeffs0, axis=-1, keepdims=True) - gT
    H_dg = delta[:, None, :] * gT[None, :, :]
    H_dg = H_dg - jnp.mean(H_dg, axis=-1, keepdims=True)  # (b, c, C)
    H_dd = delta[:, None, :] * delta[None, :, :]
    H_dd = H_dd - jnp.mean(H_dd, axis=-1, keepdims=True)
    K1 = 2.0 * jnp.einsum("abc,bcj->abj", M3, H_dg)
    K2 = M3[..., None] * H_dd[None]
    return K1, K2


_CHUNK = 2**22  # entries of the (times, d, d, d) kernel tensor evaluated at once


def _chunked(fn, ts: Array, d: int) -> Array:
    """fn over the flat times in equal-size chunks (the last one padded): memory ≤ _CHUNK·8 bytes per
    kernel tensor, one compilation per chunk size."""
    size = max(1, min(int(ts.shape[0]), _CHUNK // max(d ** 3, 1)))
    n = -(-int(ts.shape[0]) // size)
    pad = jnp.concatenate([ts, jnp.zeros(n * size - ts.shape[0], ts.dtype)])
    out = [fn(pad[i * size:(i + 1) * size]) for i in range(n)]
    return jnp.concatenate(out)[: ts.shape[0]]


@jax.jit
def _gd_correction(rho: Array, K1: Array, K2: Array, ts: Array) -> Array:
    r"""Σ_b S(ρ_a, ρ_b; t) K1[a,b] + Σ_bc S(ρ_a, ρ_bρ_c; t) K2[a,b,c] for times ts (T,)."""
    t2, t3 = ts[:, None, None], ts[:, None, None, None]
    S1 = _s_kernel(rho[None, :, None], rho[None, None, :], t2)
    S2 = _s_kernel(rho[None, :, None, None], (rho[:, None] * rho[None, :])[None, None], t3)
    return jnp.einsum("tab,abj->taj", S1, K1) + jnp.einsum("tabc,abcj->taj", S2, K2)


def first_order_correction(eigvals: Array, M3: Array, coeffs_star: Array, coeffs0: Array, lr, steps, *,
                           num_classes: int) -> Array:
    r"""The 1/τ correction :math:`\gamma^{(1)}_a(t)` of GD (docs/theory.md §8): with zero init,

    .. math:: \gamma_a^{(1)}(s) = -\frac{\eta}{2C}\sum_{b,c} M_3[a,b,c]\,H_{bc}\,
              [S(\rho_a, \rho_b\rho_c) - S(\rho_a, \rho_b) - S(\rho_a, \rho_c)],

    :math:`H_{bc} = \gamma_b^T\circ\gamma_c^T - \frac1C\langle\gamma_b^T,\gamma_c^T\rangle 1`; a general
    ``coeffs0`` (d, C) uses :func:`_sources`. ``steps`` int → 0..steps; output t.shape + (d, C). It vanishes for
    C = 2 (H ≡ 0) and for data symmetric under x → −x (M3 ≡ 0). Cost O(T d³ C)."""
    fn = "first_order_correction"
    C = _classes(fn, num_classes)
    lam, cs, c0 = _spectrum_and_teacher(fn, eigvals, coeffs_star, coeffs0)
    eta = _lr(fn, lr, lam)
    rho = 1.0 - eta * lam / C
    K1, K2 = _sources(_third(fn, M3, lam.shape[0]), cs, c0)
    tt = checks.steps(fn, "steps", steps)
    ts = tt.reshape(-1).astype(rho.dtype)
    out = _chunked(lambda tc: _gd_correction(rho, K1, K2, tc), ts, rho.shape[0])
    return (-eta / (2.0 * C) * out).reshape(tt.shape + out.shape[1:])


@functools.partial(jax.jit, static_argnums=4)
def _gf_correction(lam: Array, K1: Array, K2: Array, ts: Array, C: int) -> Array:
    t2, t3 = ts[:, None, None], ts[:, None, None, None]
    E1 = _e_kernel(lam[None, :, None], lam[None, None, :], t2, float(C))
    E2 = _e_kernel(lam[None, :, None, None], (lam[:, None] + lam[None, :])[None, None], t3, float(C))
    return jnp.einsum("tab,abj->taj", E1, K1) + jnp.einsum("tabc,abcj->taj", E2, K2)


def gf_first_order_correction(eigvals: Array, M3: Array, coeffs_star: Array, coeffs0: Array, times, *,
                              num_classes: int) -> Array:
    r"""Gradient flow: :math:`\eta S(\rho_a, \mu)` → :math:`E(\lambda_a, m; t)`, m ∈ {λ_b, λ_c, λ_b + λ_c}:
    :math:`\gamma_a^{(1)}(t) = -\frac{1}{2C}\sum_{b,c}M_3 H_{bc}[E(\lambda_a,\lambda_b+\lambda_c)
    - E(\lambda_a,\lambda_b) - E(\lambda_a,\lambda_c)]`."""
    fn = "gf_first_order_correction"
    C = _classes(fn, num_classes)
    lam, cs, c0 = _spectrum_and_teacher(fn, eigvals, coeffs_star, coeffs0)
    K1, K2 = _sources(_third(fn, M3, lam.shape[0]), cs, c0)
    tt = checks.steps(fn, "times", times)
    ts = tt.reshape(-1).astype(lam.dtype)
    out = _chunked(lambda tc: _gf_correction(lam, K1, K2, tc, C), ts, lam.shape[0])
    return (-1.0 / (2.0 * C) * out).reshape(tt.shape + out.shape[1:])


def tempered_prediction(eigvals: Array, M3: Array, coeffs_star: Array, coeffs0: Array, lr, steps, *,
                        num_classes: int, tau, order: int = 1) -> Array:
    r""":math:`\gamma(t) \approx \gamma^T + \rho^t(\gamma(0) - \gamma^T) + \tau^{-1}\gamma^{(1)}(t)` (``order``
    0 drops the correction); error :math:`O(\tau^{-2})` (``order=1``) in the regime τ ≫ Λ, Λ the
    largest centred teacher logit. Shape t.shape + (d, C)."""
    fn = "tempered_prediction"
    _prediction_args(fn, eigvals, M3, coeffs_star, coeffs0, lr, steps, num_classes, tau, order)
    lead = tempered_trajectory(eigvals, coeffs_star, coeffs0, lr, steps, num_classes=num_classes)
    if order == 0:
        return lead
    return lead + first_order_correction(eigvals, M3, coeffs_star, coeffs0, lr, steps, num_classes=num_classes) / tau


def _prediction_args(fn: str, eigvals, M3, coeffs_star, coeffs0, lr, steps, num_classes, tau, order) -> None:
    """Validate the arguments of a prediction under ``fn``'s name (the parts re-check them silently)."""
    _tau(fn, tau)
    _classes(fn, num_classes)
    lam, _, _ = _spectrum_and_teacher(fn, eigvals, coeffs_star, coeffs0)
    _lr(fn, lr, lam)
    _third(fn, M3, lam.shape[0])
    checks.steps(fn, "steps", steps)
    if isinstance(order, bool) or order not in (0, 1):
        raise checks.refuse(fn, "order", order, "0 (leading filter) or 1 (with the 1/tau correction)")


# ------------------------------------------------------------------------------------ progress


def centred_progress(coeffs: Array, coeffs_star: Array) -> Array:
    r"""Progress :math:`p_k = \langle\gamma_k, \gamma_k^T\rangle/\|\gamma_k^T\|^2` of (…, d, C) coefficients
    ``coeffs`` towards ``coeffs_star`` (d, C) (both centred here, so raw :math:`v_k^\top W` may be
    passed); 0 where :math:`\gamma_k^T = 0`."""
    fn = "centred_progress"
    gT = checks.floats(coeffs_star)
    if gT.ndim != 2:
        raise checks.refuse(fn, "coeffs_star", f"shape {tuple(gT.shape)}", "an array of shape (d, C)")
    g = checks.floats(coeffs)
    if g.ndim < 2 or g.shape[-2:] != gT.shape:
        raise checks.refuse(fn, "coeffs", f"shape {tuple(g.shape)}", f"an array of shape (..., {gT.shape[0]}, {gT.shape[1]})")
    g, gT = centre_classes(g), centre_classes(gT)
    norm2 = jnp.sum(gT * gT, axis=-1)
    gT_b = gT.reshape((1,) * (g.ndim - gT.ndim) + gT.shape)
    n_b = norm2.reshape(gT_b.shape[:-1])
    return jnp.where(n_b > 0, jnp.sum(g * gT_b, axis=-1) / jnp.where(n_b > 0, n_b, 1.0), 0.0)


def progress_prediction(eigvals: Array, M3: Array, coeffs_star: Array, lr, steps, *, num_classes: int, tau,
                        order: int = 1) -> Array:
    r"""Predicted :math:`p_k(t) = F_k(t) + \tau^{-1}\langle\gamma_k^{(1)}(t), \gamma_k^T\rangle/\|\gamma_k^T\|^2`
    (zero init; ``order=0``: the leading filter :math:`F_k` alone). Shape t.shape + (d,)."""
    _prediction_args("progress_prediction", eigvals, M3, coeffs_star, None, lr, steps, num_classes, tau, order)
    cs = checks.floats(coeffs_star)
    pred = tempered_prediction(eigvals, M3, cs, jnp.zeros_like(cs), lr, steps, num_classes=num_classes, tau=tau,
                               order=order)
    return centred_progress(pred, cs)


# ------------------------------------------------------------------------------------ matched progress


def tempered_exaggeration_gap(eigvals: Array, lr, q_student: ArrayLike, *, num_classes: int,
                              min_residual: float = 1e-8) -> MatchedGap:
    r"""Pairwise matched-progress gap of a *measured* progress ``q_student`` ((d,) or (..., d)) against
    the leading tempered path :math:`F_j(\sigma) = 1 - \rho_j^\sigma` (step η/C):
    ``gap[..., i, j]`` = :math:`F_j(\sigma^*_i) - p_j`, :math:`F_i(\sigma^*_i) = p_i`, for
    :math:`\lambda_i > \lambda_j > 0` (NaN elsewhere). This is
    :func:`linkd.closed_form.exaggeration_gap_from_progress` with step η/C; needs
    :math:`\eta\lambda_\max < \min(4, C)` (descent and monotone filters). Rows with
    :math:`1 - p_i <` ``min_residual`` are left out."""
    fn = "tempered_exaggeration_gap"
    C = _classes(fn, num_classes)
    lam_max = _lam_max(fn, eigvals)
    lam = checks.eigvals(fn, eigvals)
    eta = checks.lr(fn, lr, below=min(4.0, C) / lam_max,
                    why=f" (lr * max(eigvals) < min(4, C) = {min(4, C)}: descent and monotone tempered filters)")
    return gd._gap_from_progress(fn, lam, eta / C, q_student, min_residual)


# ------------------------------------------------------------------------------------ binary


def binary_logit_limit(eigvals: Array, coeffs_star: Array, coeffs0: Array, lr, steps) -> Array:
    r"""Binary soft-CE at temperature τ (``kd_binary``, τ²-scaled) → MSE-GD on the logit with step η/4:
    :math:`c_k(t) = c_k^* + (1 - \eta\lambda_k/4)^t(c_k(0) - c_k^*)` (``coeffs_star`` = the teacher's
    :math:`V^\top w_T`), error :math:`O(\tau^{-2})` (:math:`\tau(\sigma(z/\tau) - \sigma(z_T/\tau)) =
    (z - z_T)/4 + O(\tau^{-2})`: σ − ½ is odd, so no 1/τ term). Needs η < 8/λ_max (the binary descent bound)."""
    fn = "binary_logit_limit"
    lam_max = _lam_max(fn, eigvals)
    eta = checks.lr(fn, lr, below=stability.binary_descent(lam_max), why=" (the descent bound 8/lambda_max of the tempered binary loss)")
    lam = checks.eigvals(fn, eigvals)
    cs = checks.coeffs(fn, "coeffs_star", coeffs_star, lam.shape[0], ndim=(1,))
    c0 = checks.coeffs(fn, "coeffs0", coeffs0, lam.shape[0], ndim=(1,))
    return gd.gd_mse_trajectory(lam, cs, c0, eta / 4.0, checks.steps(fn, "steps", steps))
