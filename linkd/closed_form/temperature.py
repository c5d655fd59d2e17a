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

Times follow :mod:`linkd.closed_form.gd`: filters and decays take a time ``t`` (a scalar gives
shape (d,)); trajectories, corrections and predictions take ``steps`` (an int means 0..steps, an
array is used as is). GD times are integer steps; gradient flow (``gf_*``) uses continuous times
``t = η·steps``. Time axes lead the output, then (d,) or (d, C).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd.closed_form import gd
from linkd.errors import ConfigError

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
    "matched_progress_gap",
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


def _classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ConfigError("num_classes", num_classes, "an integer C >= 2", "not a number of classes")
    return int(num_classes)


def _tau(tau) -> float:
    t = float(tau)
    if not (math.isfinite(t) and t > 0):
        raise ConfigError("tau", tau, "a finite temperature tau > 0")
    return t


def _lam_max(eigvals) -> float:
    lam_max = float(jnp.max(jnp.asarray(eigvals)))
    if not lam_max > 0:
        raise ConfigError("eigvals", lam_max, "a largest eigenvalue > 0", "no positive eigenvalue")
    return lam_max


def temperature_lr(eigvals: Array, num_classes: int) -> TemperatureLR:
    r""":math:`\eta < 4/\lambda_\max` (descent at every τ) and :math:`\eta \le C/\lambda_\max` (monotone filters)."""
    lam_max = _lam_max(eigvals)
    return TemperatureLR(4.0 / lam_max, _classes(num_classes) / lam_max)


def _lr(lr, eigvals) -> float:
    """Refuse η outside (0, 4/λ_max): the descent bound of docs/theory.md §8."""
    limit = 4.0 / _lam_max(eigvals)
    if not (0.0 < float(lr) < limit):
        raise ConfigError("lr", float(lr), f"0 < lr < 4/lambda_max = {limit:.6g}",
                          "past the descent bound of the tempered softmax loss")
    return float(lr)


# ------------------------------------------------------------------------------------ helpers


def centre_classes(W: Array) -> Array:
    r"""Class-centred :math:`WJ`, :math:`J = I_C - 11^\top/C` (the last axis is the class axis)."""
    W = jnp.asarray(W)
    return W - jnp.mean(W, axis=-1, keepdims=True)


def class_sum(W: Array) -> Array:
    r""":math:`W 1_C` (last axis summed). Exact GD invariant of :math:`L_\tau`: :math:`W_s 1_C = W_0 1_C`,
    since every row of :math:`\mathrm{softmax}(Z/\tau) - \mathrm{softmax}(Z_T/\tau)` sums to 0."""
    return jnp.sum(jnp.asarray(W), axis=-1)


def kd_gradient(X: Array, W: Array, W_teacher: Array, tau) -> Array:
    r"""Exact gradient
    :math:`\nabla_W L_\tau = \frac{\tau}{n}X^\top[\mathrm{softmax}(XW/\tau) - \mathrm{softmax}(XW_T/\tau)]`
    of the τ²-scaled tempered loss (mean over examples, sum over classes), shape (d, C)."""
    tau = _tau(tau)
    X = jnp.asarray(X)
    P = jax.nn.softmax(X @ jnp.asarray(W) / tau, axis=-1) - jax.nn.softmax(X @ jnp.asarray(W_teacher) / tau, axis=-1)
    return tau / X.shape[0] * (X.T @ P)


def third_moment(X: Array, basis: Array) -> Array:
    r""":math:`M_3[a,b,c] = \frac1n\sum_i (x_i\cdot v_a)(x_i\cdot v_b)(x_i\cdot v_c)`, shape (m, m, m) for a
    basis (d, m). It vanishes for data symmetric under :math:`x \to -x`."""
    P = jnp.asarray(X) @ jnp.asarray(basis)
    return jnp.einsum("ia,ib,ic->abc", P, P, P) / P.shape[0]


def _spow(base: Array, s: Array) -> Array:
    """Integer power base**s of a possibly negative base (s float-valued integers, same shape)."""
    mag = jnp.abs(base) ** s
    return jnp.where((base < 0) & (jnp.mod(s, 2.0) == 1.0), -mag, mag)


def s_kernel(rho: Array, mu: Array, s: Array) -> Array:
    r""":math:`S(\rho,\mu;s) = (\rho^s - \mu^s)/(\rho - \mu) = \sum_{j<s}\rho^{s-1-j}\mu^j`
    (:math:`s\rho^{s-1}` at :math:`\rho = \mu`), elementwise over arrays of equal rank (size-1 axes
    broadcast); s ≥ 0 integer-valued.

    Stable near :math:`\rho = \mu`: for same-sign arguments
    :math:`S = h^{s-1}\,\mathrm{expm1}(s\,\mathrm{log1p}(x))/x`, h = max(|ρ|,|μ|), x = min/max − 1,
    times :math:`(-1)^{s-1}` when both are negative; opposite signs use the direct quotient (no
    cancellation in :math:`\rho - \mu`)."""
    rho, mu = jnp.asarray(rho), jnp.asarray(mu)
    s = jnp.asarray(s)
    s = s.astype(rho.dtype) if jnp.issubdtype(s.dtype, jnp.integer) else s
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
    direct = (_spow(rho, s_pos) - _spow(mu, s_pos)) / den
    return jnp.where(s > 0, jnp.where(opposite, direct, same), 0.0)


def e_kernel(lam: Array, m: Array, t: Array, num_classes: int) -> Array:
    r"""Gradient-flow kernel :math:`E(\lambda, m; t) = C(e^{-mt/C} - e^{-\lambda t/C})/(\lambda - m)`
    (:math:`t e^{-\lambda t/C}` at :math:`\lambda = m`), computed as
    :math:`C e^{-\ell t/C}(-\mathrm{expm1}(-\delta t/C))/\delta`, ℓ = min, δ = |λ − m|.
    Elementwise over arrays of equal rank; the GF limit of :math:`\eta\,S(\rho_\lambda, \mu; t/\eta)`."""
    C = float(_classes(num_classes))
    lam, m, t = jnp.asarray(lam), jnp.asarray(m), jnp.asarray(t)
    t = t.astype(lam.dtype) if jnp.issubdtype(t.dtype, jnp.integer) else t
    lo, dl = jnp.minimum(lam, m), jnp.abs(lam - m)
    safe = jnp.where(dl > 0, dl, 1.0)
    frac = jnp.where(dl > 0, -C * jnp.expm1(-safe * t / C) / safe, t)
    return jnp.exp(-lo * t / C) * frac


# ------------------------------------------------------------------------------------ leading term


_gd_decay = jax.jit(gd.gd_decay)  # one fused pass over (times, modes)
_gd_filter = jax.jit(gd.gd_filter)
_gf_filter = jax.jit(gd.gf_filter)


def tempered_decay(eigvals: Array, lr, num_classes: int, t) -> Array:
    r""":math:`\rho_k^t`, :math:`\rho_k = 1 - \eta\lambda_k/C` (the MSE residual with step η/C); shape t.shape + (d,)."""
    C = _classes(num_classes)
    return _gd_decay(jnp.asarray(eigvals), _lr(lr, eigvals) / C, jnp.asarray(t))


def tempered_filter(eigvals: Array, lr, num_classes: int, t) -> Array:
    r"""Leading filter :math:`F_k(t) = 1 - \rho_k^t` of a student from :math:`W_0 = 0` (any τ)."""
    C = _classes(num_classes)
    return _gd_filter(jnp.asarray(eigvals), _lr(lr, eigvals) / C, jnp.asarray(t))


def gf_tempered_filter(eigvals: Array, num_classes: int, times) -> Array:
    r"""Gradient flow: :math:`F_k(t) = 1 - e^{-\lambda_k t/C}`."""
    C = _classes(num_classes)
    return _gf_filter(jnp.asarray(eigvals) / C, jnp.asarray(times))


def tempered_trajectory(eigvals: Array, gamma_teacher: Array, gamma0: Array, lr, num_classes: int, steps) -> Array:
    r"""Leading order from any :math:`W_0`: :math:`\gamma_k(t) = \gamma_k^T + \rho_k^t(\gamma_k(0) - \gamma_k^T)`
    (:math:`\gamma_k = v_k^\top W J`; inputs are centred here). Shape t.shape + (d, C); ``steps`` int →
    t = 0..steps. Directions with :math:`\lambda_k = 0` keep their initial value."""
    C = _classes(num_classes)
    gT, g0 = centre_classes(gamma_teacher), centre_classes(gamma0)
    return gd.gd_mse_trajectory(eigvals, gT, g0, _lr(lr, eigvals) / C, steps)


def gf_tempered_trajectory(eigvals: Array, gamma_teacher: Array, gamma0: Array, num_classes: int, times) -> Array:
    r"""Gradient flow: :math:`\gamma_k(t) = \gamma_k^T + e^{-\lambda_k t/C}(\gamma_k(0) - \gamma_k^T)`."""
    C = _classes(num_classes)
    return gd.gf_mse_trajectory(jnp.asarray(eigvals) / C, centre_classes(gamma_teacher), centre_classes(gamma0), times)


# ------------------------------------------------------------------------------------ 1/τ correction


@jax.jit
def _sources(M3: Array, gamma_teacher: Array, gamma0: Array | None):
    r"""Contracted sources of the correction, with :math:`\delta_b = \gamma_b(0) - \gamma_b^T` and the
    centred product :math:`H(u, w) = (u\circ w)J`:
    ``K1[a,b]`` = :math:`2\sum_c M_3[a,b,c] H(\delta_b, \gamma_c^T)` (pairs with :math:`S(\rho_a, \rho_b)`),
    ``K2[a,b,c]`` = :math:`M_3[a,b,c] H(\delta_b, \delta_c)` (pairs with :math:`S(\rho_a, \rho_b\rho_c)`).
    Zero init (δ = −γ^T) gives :math:`-2\sum_c M_3 H_{bc}` and :math:`M_3 H_{bc}` (docs/theory.md §8)."""
    gT = centre_classes(gamma_teacher)
    delta = -gT if gamma0 is None else centre_classes(gamma0) - gT
    H_dg = centre_classes(delta[:, None, :] * gT[None, :, :])  # (b, c, C)
    H_dd = centre_classes(delta[:, None, :] * delta[None, :, :])
    M3 = jnp.asarray(M3)
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
    S1 = s_kernel(rho[None, :, None], rho[None, None, :], t2)
    S2 = s_kernel(rho[None, :, None, None], (rho[:, None] * rho[None, :])[None, None], t3)
    return jnp.einsum("tab,abj->taj", S1, K1) + jnp.einsum("tabc,abcj->taj", S2, K2)


def first_order_correction(eigvals: Array, M3: Array, gamma_teacher: Array, lr, num_classes: int, steps,
                           gamma0: Array | None = None) -> Array:
    r"""The 1/τ correction :math:`\gamma^{(1)}_a(t)` of GD (docs/theory.md §8): with zero init,

    .. math:: \gamma_a^{(1)}(s) = -\frac{\eta}{2C}\sum_{b,c} M_3[a,b,c]\,H_{bc}\,
              [S(\rho_a, \rho_b\rho_c) - S(\rho_a, \rho_b) - S(\rho_a, \rho_c)],

    :math:`H_{bc} = \gamma_b^T\circ\gamma_c^T - \frac1C\langle\gamma_b^T,\gamma_c^T\rangle 1`; a general
    ``gamma0`` (d, C) uses :func:`_sources`. ``steps`` int → 0..steps; output t.shape + (d, C). It vanishes for
    C = 2 (H ≡ 0) and for data symmetric under x → −x (M3 ≡ 0). Cost O(T d³ C)."""
    C = _classes(num_classes)
    eta = _lr(lr, eigvals)
    rho = 1.0 - eta * jnp.asarray(eigvals) / C
    K1, K2 = _sources(M3, gamma_teacher, gamma0)
    tt = gd._times(steps)
    ts = tt.reshape(-1).astype(rho.dtype)
    out = _chunked(lambda tc: _gd_correction(rho, K1, K2, tc), ts, rho.shape[0])
    return (-eta / (2.0 * C) * out).reshape(tt.shape + out.shape[1:])


@functools.partial(jax.jit, static_argnums=4)
def _gf_correction(lam: Array, K1: Array, K2: Array, ts: Array, C: int) -> Array:
    t2, t3 = ts[:, None, None], ts[:, None, None, None]
    E1 = e_kernel(lam[None, :, None], lam[None, None, :], t2, C)
    E2 = e_kernel(lam[None, :, None, None], (lam[:, None] + lam[None, :])[None, None], t3, C)
    return jnp.einsum("tab,abj->taj", E1, K1) + jnp.einsum("tabc,abcj->taj", E2, K2)


def gf_first_order_correction(eigvals: Array, M3: Array, gamma_teacher: Array, num_classes: int, times,
                              gamma0: Array | None = None) -> Array:
    r"""Gradient flow: :math:`\eta S(\rho_a, \mu)` → :math:`E(\lambda_a, m; t)`, m ∈ {λ_b, λ_c, λ_b + λ_c}:
    :math:`\gamma_a^{(1)}(t) = -\frac{1}{2C}\sum_{b,c}M_3 H_{bc}[E(\lambda_a,\lambda_b+\lambda_c)
    - E(\lambda_a,\lambda_b) - E(\lambda_a,\lambda_c)]`."""
    C = _classes(num_classes)
    lam = jnp.asarray(eigvals)
    K1, K2 = _sources(M3, gamma_teacher, gamma0)
    tt = gd._times(times)
    ts = tt.reshape(-1).astype(lam.dtype)
    out = _chunked(lambda tc: _gf_correction(lam, K1, K2, tc, C), ts, lam.shape[0])
    return (-1.0 / (2.0 * C) * out).reshape(tt.shape + out.shape[1:])


def tempered_prediction(eigvals: Array, M3: Array, gamma_teacher: Array, lr, num_classes: int, tau, steps,
                        gamma0: Array | None = None, order: int = 1) -> Array:
    r""":math:`\gamma(t) \approx \gamma^T + \rho^t(\gamma(0) - \gamma^T) + \tau^{-1}\gamma^{(1)}(t)` (``order``
    0 drops the correction); error :math:`O(\tau^{-2})` (``order=1``) in the regime τ ≫ Λ, Λ the
    largest centred teacher logit. Shape t.shape + (d, C)."""
    tau = _tau(tau)
    if order not in (0, 1):
        raise ConfigError("order", order, "0 (leading filter) or 1 (with the 1/tau correction)")
    g0 = jnp.zeros_like(jnp.asarray(gamma_teacher)) if gamma0 is None else gamma0
    lead = tempered_trajectory(eigvals, gamma_teacher, g0, lr, num_classes, steps)
    if order == 0:
        return lead
    return lead + first_order_correction(eigvals, M3, gamma_teacher, lr, num_classes, steps, gamma0) / tau


# ------------------------------------------------------------------------------------ progress


def centred_progress(gamma: Array, gamma_teacher: Array) -> Array:
    r"""Progress :math:`p_k = \langle\gamma_k, \gamma_k^T\rangle/\|\gamma_k^T\|^2` of (…, d, C) coefficients
    (both centred here, so raw :math:`v_k^\top W` may be passed); 0 where :math:`\gamma_k^T = 0`."""
    g, gT = centre_classes(gamma), centre_classes(gamma_teacher)
    norm2 = jnp.sum(gT * gT, axis=-1)
    gT_b = gT.reshape((1,) * (g.ndim - gT.ndim) + gT.shape)
    n_b = norm2.reshape(gT_b.shape[:-1])
    return jnp.where(n_b > 0, jnp.sum(g * gT_b, axis=-1) / jnp.where(n_b > 0, n_b, 1.0), 0.0)


def progress_prediction(eigvals: Array, M3: Array, gamma_teacher: Array, lr, num_classes: int, tau, steps,
                        order: int = 1) -> Array:
    r"""Predicted :math:`p_k(t) = F_k(t) + \tau^{-1}\langle\gamma_k^{(1)}(t), \gamma_k^T\rangle/\|\gamma_k^T\|^2`
    (zero init; ``order=0``: the leading filter :math:`F_k` alone). Shape t.shape + (d,)."""
    return centred_progress(tempered_prediction(eigvals, M3, gamma_teacher, lr, num_classes, tau, steps, order=order),
                    gamma_teacher)


# ------------------------------------------------------------------------------------ matched progress


def tempered_exaggeration_gap(eigvals: Array, lr, num_classes: int, p_student: Array,
                              min_residual: float = 1e-8) -> Array:
    r"""Pairwise matched-progress gap of a *measured* progress vector ``p_student`` (d,) against the
    leading tempered path :math:`F_j(\sigma) = 1 - \rho_j^\sigma` (step η/C):
    ``gap[i, j]`` = :math:`F_j(\sigma^*_i) - p_j`, :math:`F_i(\sigma^*_i) = p_i`, for
    :math:`\lambda_i > \lambda_j > 0` (0 elsewhere). This is
    :func:`linkd.closed_form.gd.exaggeration_gap_from_progress` with step η/C; needs
    :math:`\eta\lambda_\max < C` (monotone filters). Rows with :math:`1 - p_i <` ``min_residual`` are 0."""
    C = _classes(num_classes)
    eta = _lr(lr, eigvals)
    if not eta * _lam_max(eigvals) < C:
        raise ConfigError("lr", eta, f"lr * lambda_max < C = {C} (monotone tempered filters)",
                          "the matched-progress time is not unique")
    return gd.exaggeration_gap_from_progress(eigvals, eta / C, p_student, min_residual)


def matched_progress_gap(q_reference: Array, q_student: Array, eigvals: Array | None = None,
                         min_residual: float = 1e-8) -> Array:
    r"""Matched-progress gap between two *measured* trajectories, for any teacher and any loss.

    ``q_reference`` (R, d): a reference path recorded at equally spaced times (e.g. a teacher's or
    a reference student's progress per direction); ``q_student`` (d,): progress to compare.
    ``gap[i, j]`` = :math:`q_j^R(\sigma^*_i) - q_j^S` with :math:`q_i^R(\sigma^*_i) = q_i^S`; σ* is the
    first crossing, interpolated linearly in the log-residual :math:`\ell = \ln(1 - q)` (exact for
    geometric GD paths, for which this equals :func:`linkd.closed_form.gd.exaggeration_gap_from_progress`),
    and :math:`q_j^R(\sigma^*)` is read off with the same interpolation. NaN where undefined: row i if
    direction i never reaches :math:`q_i^S` on the recorded path or :math:`1 - q_i^S <` ``min_residual``
    (round-off makes σ* meaningless), entries whose reference residual is ≤ 0. With ``eigvals``, only
    pairs :math:`\lambda_i > \lambda_j > 0` are kept (others NaN)."""
    return _matched_gap(jnp.asarray(q_reference), jnp.asarray(q_student), None if eigvals is None else
                        jnp.asarray(eigvals), min_residual)


@jax.jit
def _matched_gap(qR: Array, qS: Array, eigvals: Array | None, min_residual) -> Array:
    rR, rS = 1.0 - qR, 1.0 - qS
    logR = jnp.log(jnp.where(rR > 0, rR, jnp.nan))  # (R, d)
    logS = jnp.log(jnp.where(rS >= min_residual, rS, jnp.nan))  # (d,)
    reached = jnp.transpose(rR <= rS[None, :])  # (i, R): reference residual of i has dropped to the student's
    ok = jnp.any(reached, axis=1) & ~reached[:, 0]
    hit = jnp.argmax(reached, axis=1)  # first recorded index at or past the crossing
    k0 = jnp.maximum(hit - 1, 0)
    idx = jnp.arange(qS.shape[0])
    l0, l1 = logR[k0, idx], logR[hit, idx]
    w = jnp.where(l1 != l0, (logS - l0) / jnp.where(l1 != l0, l1 - l0, 1.0), 1.0)  # fraction of the interval
    lj = logR[k0, :] * (1.0 - w[:, None]) + logR[hit, :] * w[:, None]  # (i, j)
    gap = rS[None, :] - jnp.exp(lj)
    at_start = rR[0] == rS  # the student sits exactly at the reference's first record: σ* = 0
    gap = jnp.where(at_start[:, None], rS[None, :] - rR[0][None, :], gap)
    gap = jnp.where((ok | at_start)[:, None] & jnp.isfinite(logS)[:, None], gap, jnp.nan)
    if eigvals is not None:
        lam = jnp.asarray(eigvals)
        valid = (lam[:, None] > lam[None, :]) & (lam[None, :] > 0)
        gap = jnp.where(valid, gap, jnp.nan)
    return gap


# ------------------------------------------------------------------------------------ binary


def binary_logit_limit(eigvals: Array, coeffs_teacher: Array, coeffs0: Array, lr, steps) -> Array:
    r"""Binary soft-CE at temperature τ (``kd_binary``, τ²-scaled) → MSE-GD on the logit with step η/4:
    :math:`c_k(t) = c_k^T + (1 - \eta\lambda_k/4)^t(c_k(0) - c_k^T)`, error :math:`O(\tau^{-2})`
    (:math:`\tau(\sigma(z/\tau) - \sigma(z_T/\tau)) = (z - z_T)/4 + O(\tau^{-2})`: σ − ½ is odd, so
    no 1/τ term). Needs η < 8/λ_max (the binary descent bound)."""
    lam_max = _lam_max(eigvals)
    if not 0.0 < float(lr) < 8.0 / lam_max:
        raise ConfigError("lr", float(lr), f"0 < lr < 8/lambda_max = {8.0 / lam_max:.6g}",
                          "past the descent bound of the tempered binary loss")
    return gd.gd_mse_trajectory(eigvals, coeffs_teacher, coeffs0, float(lr) / 4.0, steps)
