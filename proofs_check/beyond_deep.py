"""Deep-linear students, mode by mode (docs/theory.md §7), claim ids ``dl.*``.

The gradient-flow law is Saxe et al. (2014) and Arora et al. (2018/2019); the GD recursion, the
modified equation, distillation, time dilation and the matched-progress gap are derived in §7.
Predictions come from :mod:`linkd.closed_form.deep_linear`; measurements from routes that share no
code with it: full-matrix gradient flow on all layers by ``scipy.integrate.solve_ivp`` (DOP853,
rtol 1e-12) on X, Y of :func:`linkd.data.aligned_design`; full-matrix GD by the linkd engine
(``engine.simulate`` on a :class:`~linkd.models.DeepLinear` from
:func:`linkd.models.init_deep_aligned`), read out by :func:`linkd.spectral.mode_strengths`; scalar
ODEs σ̇ = Nλσ^{2−2/N}(c − σ) by ``solve_ivp`` (half-times by root finding on the dense output).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.optimize

from linkd import closed_form, data, models, spectral
from linkd.claims import Claim as PointClaim
from linkd.claims import Domain, Int, LogReal, Outcome, Real
from proofs_check._common import cached, key, monotone, np64, pick, sim
from proofs_check.registry import (
    Breaker,
    ClaimResult,
    active_corrupt,
    apply,
    exact,
    qualitative,
    register,
    scale,
)

__all__ = [
    "gf_closed_form",
    "g_inverse_vs_ode",
    "gd_scalar_recursion",
    "modified_equation_order",
    "gradient_flow_order",
    "modified_equation_constant",
    "distilled_student_gf",
    "distilled_student_gd",
    "time_dilation",
    "dilation_increases_with_depth",
    "gap_nonnegative",
    "gap_examples",
    "gap_negative_control",
]

P = "beyond"
EIGS = (3.0, 2.0, 1.0, 0.5, 0.3, 0.2)  # d = 6, Σ̂ spectrum
STRENGTHS = (1.0, 0.7, 0.4)  # r = 3 modes, m = 4 outputs
SIGMA0 = 1e-2
ODE_TOL = 1e-7
ODE_REASON = ("full-matrix ODE at rtol 1e-12 / atol 1e-14 over ~10 time units accumulates ~1e-9 (docs/theory.md §7 "
              "quotes 7.3e-9); 1e-7 leaves margin, a 1e-3 relative error in the prediction is 1e4 times larger.")

WRONG_DEPTH = Breaker("closed form of depth N - 1 (wrong exponent 2 - 2/N)", lambda N: max(1, N - 1), part="depth")
SHIFT_EIGS = Breaker("eigenvalues x 1.001", lambda lam: lam * 1.001, part="eigvals")
WRONG_INIT = Breaker("init sigma0 x 1.01", lambda s: s * 1.01, part="sigma0")


# ------------------------------------------------------------------------------------ routes


def _design(seed: int = 7, whitened: bool = False):
    return data.aligned_design(key(seed), 24, np.asarray(EIGS), np.asarray(STRENGTHS), 4, whitened=whitened, noise=0.3)


def _matrix_gf(X, Y, layers0, times):
    """Full-matrix gradient flow Ẇ_j = −∇_{W_j} L, L = ‖X W_eᵀ − Y‖²/(2n), by solve_ivp (independent route)."""
    X, Y = np64(X), np64(Y)
    n = X.shape[0]
    S, Syx = X.T @ X / n, Y.T @ X / n
    shapes = [np64(W).shape for W in layers0]
    sizes = np.cumsum([0] + [a * b for a, b in shapes])

    def unpack(v):
        return [v[sizes[j]:sizes[j + 1]].reshape(shapes[j]) for j in range(len(shapes))]

    def rhs(_, v):
        Ws = unpack(v)
        E = _prod(Ws) @ S - Syx
        grads = []
        for j in range(len(Ws)):
            A = _prod(Ws[j + 1:], shapes[j][0])
            B = _prod(Ws[:j], shapes[j][1])
            grads.append(-(A.T @ E @ B.T).ravel())
        return np.concatenate(grads)

    v0 = np.concatenate([np64(W).ravel() for W in layers0])
    sol = scipy.integrate.solve_ivp(rhs, (0.0, float(times[-1])), v0, method="DOP853", rtol=1e-12, atol=1e-14,
                                    t_eval=np.asarray(times, dtype=np.float64))
    return [_prod(unpack(sol.y[:, i])) for i in range(sol.y.shape[1])]


def _prod(Ws, eye: int | None = None):
    """W_k ⋯ W_1 of a list [W_1, ..., W_k] (identity of size ``eye`` if empty)."""
    if not Ws:
        assert eye is not None, "_prod: an empty product needs its size (eye)"
        return np.eye(eye)
    M = Ws[0]
    for W in Ws[1:]:
        M = W @ M
    return M


def _strengths(W_es, V, U):
    """σ_k = u_kᵀ W_e v_k and the largest off-mode |entry| of Uᵀ W_e V, per time."""
    coeffs = np.stack([np64(V).T @ W.T for W in W_es])  # (R, d, m) = Vᵀ W_eᵀ, as the engine records
    ms = spectral.mode_strengths(jnp.asarray(coeffs), U)
    return np64(ms.strengths), np64(ms.off_mode)


def _scalar_ode(lam, c, s0, N, t_end, dense=True):
    """σ̇ = Nλσ^{2−2/N}(c − σ) per mode (scalar ODEs, solve_ivp)."""
    lam, c = np64(lam), np64(c)
    f = lambda t, s: N * lam * np.abs(s) ** (2.0 - 2.0 / N) * (c - s)
    return scipy.integrate.solve_ivp(f, (0.0, float(t_end)), np.broadcast_to(np64(s0), c.shape).copy(),
                                     method="DOP853", rtol=1e-12, atol=1e-15, dense_output=dense)


# ------------------------------------------------------------------------------------ §7.1


@cached
def _gf_measured(N: int):
    X, Y, V, U, _, _ = _design()
    init = models.init_deep_aligned(V, U, SIGMA0, N, (5,) * (N - 1), key=key(11))
    times = np.linspace(0.0, 12.0, 25)
    s, off = _strengths(_matrix_gf(X, Y, init.layers, times), V, U)
    return times, s, off


def _gf_at(p):
    """Full-matrix gradient flow (solve_ivp on all layers) against the g_N closed form at one domain point:
    mode strengths at 9 times in [0, t_end] and the off-mode entries of U^T W_e V (compared with 0)."""
    N, s0 = p["N"], p["sigma0"]
    X, Y, V, U, _, _ = _design(p["seed"])
    init = models.init_deep_aligned(V, U, s0, N, (5,) * (N - 1), key=key(p["seed"] + 4))
    times = np.linspace(0.0, p["t_end"], 9)
    s, off = _strengths(_matrix_gf(X, Y, init.layers, times), V, U)
    corrupt = active_corrupt()
    pred = closed_form.deep_gf_trajectory(apply(corrupt, "eigvals", np64(EIGS[:3])), np64(STRENGTHS),
                                          apply(corrupt, "sigma0", s0), times, depth=apply(corrupt, "depth", N))
    return Outcome(measured=np.concatenate([s.ravel(), off]), predicted=np.concatenate([np64(pred).ravel(), np.zeros_like(off)]))


#: Hypotheses of §7.1 (A-al, A-init): depth N = 1..4, balanced aligned init 0 < sigma0 < min c_k (c = (1, .7, .4);
#: sigma0 in [1e-3, 0.1]), any horizon (t_end in [1, 12], the fixed run's 12 the default: past the escape of
#: every mode at sigma0 >= 1e-2); the seeds of the design (d = 6, m = 4, r = 3) and of the hidden frames vary.
GF_DOMAIN = Domain(N=Int(1, 4, default=3), sigma0=LogReal(1e-3, 0.1, default=SIGMA0), t_end=Real(1.0, 12.0, default=12.0),
                   seed=Int(0, 999, default=7))


@register(id="dl.gf_closed_form", paper=P, kind="exact", tolerance=ODE_TOL, tolerance_reason=ODE_REASON,
          statement="Gradient flow of a depth-N linear net (N = 2, 3; N = 4 at full size) with balanced aligned init "
                    "sigma0 = 1e-2 on an aligned design (d = 6, m = 4, r = 3, hidden width 5): the mode strengths "
                    "u_k^T W_e(t) v_k follow g_N(sigma_k/c_k) = g_N(sigma0/c_k) + lambda_k c_k^(2-2/N) t and every "
                    "off-mode entry of U^T W_e V stays 0 (docs/theory.md §7.1; Saxe et al. 2014).",
          breakers=(scale(), WRONG_DEPTH, SHIFT_EIGS, WRONG_INIT),
          point=PointClaim("dl.gf_closed_form", "full-matrix GF mode strengths follow g_N(sigma/c) = g_N(sigma0/c) + "
                           "lambda c^(2-2/N) t, off-mode entries 0", "exact", _gf_at, GF_DOMAIN, tolerance=ODE_TOL,
                           paper=P))
def gf_closed_form(size="fast", corrupt=None):
    lam = np64(EIGS[:3])
    worst, off_max = [], 0.0
    meas_all, pred_all = [], []
    for N in pick(size, (2, 3), (2, 3, 4)):
        times, s, off = _gf_measured(N)
        pred = closed_form.deep_gf_trajectory(apply(corrupt, "eigvals", lam), np64(STRENGTHS),
                                              apply(corrupt, "sigma0", SIGMA0), times, depth=apply(corrupt, "depth", N))
        meas_all += [s.ravel(), off]
        pred_all += [np64(apply(corrupt, "prediction", pred)).ravel(), np.zeros_like(off)]
        worst.append(float(np.max(np.abs(s - pred))))
        off_max = max(off_max, float(off.max()))
    return exact(np.concatenate(meas_all), np.concatenate(pred_all), ODE_TOL,
                 params={"depths": list(pick(size, (2, 3), (2, 3, 4))), "sigma0": SIGMA0, "t_end": 12.0},
                 shown=(worst, [0.0] * len(worst)),
                 note=f"shown: max |sigma_sim - sigma_closed| per depth; largest off-mode entry {off_max:.2g}")


@cached
def _scalar_gf(N: int):
    lam, c = np.array([2.0, 1.0, 0.5]), np.array([1.0, 0.6, 1.5])
    s0 = np.array([1e-6, 1e-3, 0.1])
    t_end = float(np.max(closed_form.deep_escape_time(lam, c, s0, depth=N))) * 3.0 + 20.0 / (lam.min() * c.min())
    times = np.linspace(0.0, t_end, 41)
    sol = _scalar_ode(lam, c, s0, N, t_end)
    return lam, c, s0, times, sol.sol(times).T


def _g_inverse_at(p):
    """One mode at one domain point: the scalar ODE (solve_ivp) against g_N^{-1} at 41 times through escape
    and saturation (``linkd check --domain``)."""
    N, lam, c = p["N"], np.array([p["lam"]]), np.array([p["c"]])
    s0 = np.array([p["y0"] * p["c"]])
    t_end = float(closed_form.deep_escape_time(lam, c, s0, depth=N)[0]) * 3.0 + 20.0 / (p["lam"] * p["c"])
    times = np.linspace(0.0, t_end, 41)
    meas = _scalar_ode(lam, c, s0, N, t_end).sol(times).T
    corrupt = active_corrupt()
    pred = closed_form.deep_gf_trajectory(lam, c, apply(corrupt, "sigma0", s0), times, depth=apply(corrupt, "depth", N))
    return Outcome(measured=meas.ravel(), predicted=np64(pred).ravel())


#: Hypotheses of the g_N law (§7.1): any depth N >= 1 (1..5, as the fast run; N = 8 from y0 = 1e-6 needs a
#: 5e4-long ODE horizon, seconds per point), lambda > 0, c > 0 and 0 < sigma0 < c (y0 = sigma0/c from 1e-6, the
#: deepest plateau the fixed run takes, to 0.07). lambda c is kept in [0.3, 3]: the horizon 3 t_escape +
#: 20/(lambda c) grows as 1/(lambda c) and the absolute ODE error with it (5e-9 is sized on horizons up to ~1e4).
G_DOMAIN = Domain(N=Int(1, 5, default=3), y0=LogReal(1e-6, 0.07, default=1e-3), lam=LogReal(0.5, 2.0, default=1.0),
                  c=LogReal(0.6, 1.5, default=1.0))


@register(id="dl.g_inverse_vs_ode", paper=P, kind="exact", tolerance=5e-9,
          tolerance_reason="scalar ODEs at rtol 1e-12 over horizons up to 8e3 time units (N = 8, escape from 1e-6) "
                           "accumulate up to 1.7e-9 (measured); the g_N table is exact to ~1e-14 (tests).",
          statement="g_N and its inverse (hyp2f1 / table) against scalar ODEs dsigma/dt = N lambda sigma^(2-2/N)(c - sigma) "
                    "for N = 1, 2, 3, 4, 5 (and 8 at full size), sigma0/c from 1e-6 to 0.07, through escape and saturation.",
          breakers=(scale(), WRONG_DEPTH, WRONG_INIT),
          point=PointClaim("dl.g_inverse_vs_ode", "g_N(sigma(t)/c) = g_N(sigma0/c) + lambda c^(2-2/N) t against the "
                           "scalar ODE (one mode)", "exact", _g_inverse_at, G_DOMAIN, tolerance=5e-9, paper=P))
def g_inverse_vs_ode(size="fast", corrupt=None):
    meas, pred, worst = [], [], {}
    depths = pick(size, (1, 2, 3, 4, 5), (1, 2, 3, 4, 5, 8))
    for N in depths:
        lam, c, s0, times, s = _scalar_gf(N)
        p = closed_form.deep_gf_trajectory(lam, c, apply(corrupt, "sigma0", s0), times, depth=apply(corrupt, "depth", N))
        p = np64(apply(corrupt, "prediction", p))
        meas.append(s.ravel())
        pred.append(p.ravel())
        worst[str(N)] = float(np.max(np.abs(s - p)))
    return exact(np.concatenate(meas), np.concatenate(pred), 5e-9, params={"depths": list(depths)},
                 shown=(worst, 0.0), note="shown: max |ODE - closed form| per depth")


# ------------------------------------------------------------------------------------ §7.2


@cached
def _engine_gd(N: int, steps: int, lr: float):
    X, Y, V, U, _, _ = _design()
    p0 = models.init_deep_aligned(V, U, SIGMA0, N, (5,) * (N - 1), key=key(12))
    tr = sim(p0, X, Y, lr, steps, basis=V)
    ms = spectral.mode_strengths(tr.coeffs, U)
    return np64(ms.strengths), np64(ms.off_mode)


GD_STEPS = 150


def _point_lr(fraction, c, N):
    """eta = fraction x the stability limit of the deep modes (eps_k < 2/N) and of a linear teacher (eta lambda < 1)."""
    lam = np64(EIGS[:3])
    return float(fraction * min(1.0 / lam.max(), 2.0 / (N * np.max(lam * np64(c) ** (2.0 - 2.0 / N)))))


def _gd_recursion_at(p):
    """Matrix GD on all layers (linkd engine) against the scalar recursion at one domain point."""
    N, s0 = p["N"], p["sigma0"]
    lam, c = np64(EIGS[:3]), np64(STRENGTHS)
    lr = _point_lr(p["fraction"], c, N)
    X, Y, V, U, _, _ = _design(p["seed"])
    p0 = models.init_deep_aligned(V, U, s0, N, (5,) * (N - 1), key=key(p["seed"] + 5))
    ms = spectral.mode_strengths(sim(p0, X, Y, lr, GD_STEPS, basis=V).coeffs, U)
    s, off = np64(ms.strengths), np64(ms.off_mode)
    corrupt = active_corrupt()
    pred = closed_form.deep_gd_trajectory(lam, c, s0, apply(corrupt, "lr", lr), GD_STEPS, depth=apply(corrupt, "depth", N))
    return Outcome(measured=np.concatenate([s.ravel(), off]), predicted=np.concatenate([np64(pred).ravel(), np.zeros_like(off)]))


#: Hypotheses of the exact recursion (§7.2, A-al + A-init): any depth N >= 1 (1..4 as the full run), balanced
#: aligned init 0 < sigma0 < min c_k (c = (1, .7, .4)), and a stable step: eta a fraction in [0.05, 0.95] of
#: min(1/lambda_max, 2/(N max_k lambda_k c_k^(2-2/N))) (eps_k < 2/N; the default 0.45 at N = 3 is the fixed
#: run's eta = 0.1); the design's and the hidden frames' seeds vary (d = 6, m = 4, r = 3, widths 5, 150 steps).
GD_DOMAIN = Domain(N=Int(1, 4, default=3), fraction=Real(0.05, 0.95, default=0.45), sigma0=LogReal(1e-3, 0.2, default=SIGMA0),
                   seed=Int(0, 999, default=7))


@register(id="dl.gd_scalar_recursion", paper=P, kind="exact", tolerance=1e-12,
          tolerance_reason="the same arithmetic in a different order (matrix products of 5x5 layers vs scalar powers): "
                           "float64 round-off ~1e-15 per step, measured 1.5e-14 (docs/theory.md §7).",
          statement="Matrix GD on all layers (linkd engine, depth N = 3 at fast size, N = 1..4 at full; eta = 0.1, "
                    "150 steps, balanced aligned init) keeps the modes decoupled: u_k^T W_e v_k equals the scalar "
                    "recursion w <- w + eta lambda_k w^(N-1)(c_k - w^N), sigma = w^N, at every step (≤ 1e-12), "
                    "and off-mode entries stay at round-off.",
          breakers=(scale(1 + 1e-9), WRONG_DEPTH, Breaker("learning rate x 1.0001", lambda lr: lr * 1.0001, part="lr")),
          point=PointClaim("dl.gd_scalar_recursion", "matrix GD mode strengths = scalar recursion w <- w + eta lambda "
                           "w^(N-1)(c - w^N), off-mode entries 0", "exact", _gd_recursion_at, GD_DOMAIN, tolerance=1e-12,
                           paper=P))
def gd_scalar_recursion(size="fast", corrupt=None):
    meas, pred, shown = [], [], {}
    for N in pick(size, (3,), (1, 2, 3, 4)):
        s, off = _engine_gd(N, 150, 0.1)
        p = closed_form.deep_gd_trajectory(np64(EIGS[:3]), np64(STRENGTHS), SIGMA0, apply(corrupt, "lr", 0.1), 150,
                                           depth=apply(corrupt, "depth", N))
        p = np64(apply(corrupt, "prediction", p))
        meas += [s.ravel(), off]
        pred += [p.ravel(), np.zeros_like(off)]
        shown[str(N)] = float(np.max(np.abs(s - p)))
    return exact(np.concatenate(meas), np.concatenate(pred), 1e-12, params={"lr": 0.1, "steps": 150},
                 shown=(shown, 0.0), note="shown: max |engine - scalar recursion| per depth (off-mode entries compared to 0)")


EPS = (0.04, 0.02)  # ε and ε/2 (fast); full adds 0.08
#: The ratio-4 statement is asymptotic: it is stated for eps <= 0.04 (halved to 0.02). The full run's eps 0.08 -> 0.04
#: pair is used by the constant and the first-order claims only (ratio 4.39 at N = 4, y0 = 0.034, eps = 0.0715).
MOD_EPS_MAX = 0.04
Y0S = (1e-3, 0.1)


@cached
def _gd_errors(N: int, size: str):
    """sup_k |y_GD − ỹ| for the modified flow and plain GF at ε and ε/2 (scalar modes, λ = ε with η = 1, c = 1)."""
    eps = np.array(pick(size, EPS, (0.08,) + EPS))
    y0s = np.array(pick(size, Y0S, (1e-6,) + Y0S))
    E, Y0 = [a.ravel() for a in np.meshgrid(eps, y0s, indexing="ij")]
    c = np.ones_like(E)
    K = int(np.ceil((closed_form.deep_g(0.999, depth=N) - closed_form.deep_g(y0s.min(), depth=N)) / eps.min()))
    gd = closed_form.deep_gd_trajectory(E, c, Y0, 1.0, K, depth=N)
    return eps, y0s, E, Y0, K, gd


def _order_ratios(size, corrupt, method):
    ratios, consts = {}, {}
    for N in (2, 3, 4):
        eps, y0s, E, Y0, K, gd = _gd_errors(N, size)
        how = apply(corrupt, "method", method)
        if how == "modified":
            pred = closed_form.deep_modified_flow(E, np.ones_like(E), Y0, 1.0, K, depth=N)
        else:
            pred = closed_form.deep_gf_trajectory(E, np.ones_like(E), Y0, np.arange(K + 1.0), depth=N)
        pred = np64(apply(corrupt, "prediction", pred))
        err = np.max(np.abs(gd - pred), axis=0).reshape(eps.size, y0s.size)
        stated = eps[:-1] <= MOD_EPS_MAX if method == "modified" else np.ones(eps.size - 1, bool)  # eps -> eps/2 pairs
        for j, y0 in enumerate(y0s):
            ratios[f"N={N},y0={y0:g}"] = (err[:-1, j] / err[1:, j])[stated]
            consts[f"N={N},y0={y0:g}"] = err[:, j] / eps ** (2 if method == "modified" else 1)
    return ratios, consts


ORDER_STEPS = {2: 1 << 12, 3: 1 << 15, 4: 1 << 17}  # one GD compilation per depth; enough to reach y = 0.999
PLATEAU_STRIDE = 64  # modified flow at every 64th step outside 1e-3 <= y_GD <= 1 - 1e-4 (slowly varying there)


def _point_errors(p, method):
    """sup_k |y_GD - route| at eps and eps/2 at one domain point (one mode: lambda = eps, c = 1, eta = 1), as
    ``_order_ratios``; the modified flow is evaluated at every step where either run has 1e-3 <= y_GD <= 1 - 1e-4
    (the transition, where the sup is attained) and at every PLATEAU_STRIDE-th step elsewhere."""
    N, y0, corrupt = p["N"], p["y0"], active_corrupt()
    E, c, K = np.array([p["eps"], p["eps"] / 2.0]), np.ones(2), ORDER_STEPS[N]
    gd = closed_form.deep_gd_trajectory(E, c, y0, 1.0, K, depth=N)
    if apply(corrupt, "method", method) == "modified":
        k = np.arange(K + 1)
        k = k[(k % PLATEAU_STRIDE == 0) | np.any((gd >= 1e-3) & (gd <= 1.0 - 1e-4), axis=1)]
        pred, gd = closed_form.deep_modified_flow(E, c, y0, 1.0, k, depth=N), gd[k]
    else:
        pred = closed_form.deep_gf_trajectory(E, c, y0, np.arange(K + 1.0), depth=N)
    pred = np64(apply(corrupt, "prediction", pred))  # a "prediction" breaker also acts on the route
    return np.max(np.abs(gd - pred), axis=0), E


def _mod_order_at(p):
    err, _ = _point_errors(p, "modified")
    return Outcome(measured=err[0] / err[1], predicted=4.0)


def _gf_order_at(p):
    err, _ = _point_errors(p, "gf")
    return Outcome(measured=err[0] / err[1], predicted=2.0)


def _mod_constant_at(p):
    err, E = _point_errors(p, "modified")
    return Outcome(measured=float(np.max(err / E ** 2)), predicted=MOD_CONSTANT)


#: Hypotheses of the §7.2 error statements: depth N = 2, 3, 4 (N = 1 is linear: GD has a closed form), initial
#: progress y0 = sigma0/c in [1e-6, 0.1] (plateaus up to 1e5 steps at N = 4) and per-mode step eps = eta lambda
#: c^(2-2/N) in [0.01, 0.08] (far inside the stability limit 2/N and the monotone range 1/N), compared with eps/2.
#: The modified-equation ratio at eps = 0.08 carries the next order, 4(1 + O(eps)): the 0.35 tolerance covers it.
ERROR_DOMAIN = Domain(N=Int(2, 4, default=3), y0=LogReal(1e-6, 0.1, default=1e-3), eps=Real(0.01, 0.08, default=0.04))
#: The ratio-4 statement is asymptotic (4(1 + O(eps))) and states eps = 0.04 -> 0.02: its domain stops at eps = 0.04.
#: Beyond it the next order leaves the 0.35 band: ratio 4.39 at N = 4, y0 = 0.034, eps = 0.0715 (screen, seed 1).
MOD_ORDER_DOMAIN = Domain(N=Int(2, 4, default=3), y0=LogReal(1e-6, 0.1, default=1e-3),
                          eps=Real(0.01, MOD_EPS_MAX, default=MOD_EPS_MAX))
MOD_CONSTANT = 0.2


@register(id="dl.modified_equation_order", paper=P, kind="exact", tolerance=0.35,
          tolerance_reason="docs/theory.md §7.2 measures ratios 3.93-4.00; the next order makes the ratio 4(1 + O(eps)) "
                           "(stated for eps <= 0.04: at eps 0.0715 -> 0.036 the ratio reaches 4.39); 0.35 admits that, a "
                           "first-order error (ratio 2) fails.",
          statement="GD vs the first-order modified equation (docs/theory.md §7.2): sup_k |y_GD - y_mod| = O(eps^2): halving "
                    "eps = eta lambda c^(2-2/N) divides the error by 4 (N = 2, 3, 4; y0 = 1e-3, 0.1; eps = 0.04 -> 0.02).",
          breakers=(Breaker("bracket term dropped (plain gradient flow)", lambda m: "gf", part="method"), scale(1.01)),
          point=PointClaim("dl.modified_equation_order", "sup_k |y_GD - y_mod| at eps over that at eps/2 = 4", "exact",
                           _mod_order_at, MOD_ORDER_DOMAIN, tolerance=0.35, paper=P))
def modified_equation_order(size="fast", corrupt=None):
    ratios, consts = _order_ratios(size, corrupt, "modified")
    r = np.concatenate(list(ratios.values()))
    c2 = np.concatenate(list(consts.values()))
    return exact(r, np.full_like(r, 4.0), 0.35, params={"eps": [e for e in pick(size, EPS, (0.08,) + EPS) if e <= MOD_EPS_MAX]},
                 note=f"ratios err(eps)/err(eps/2); C2 = err/eps^2 in [{c2.min():.3g}, {c2.max():.3g}]")


@register(id="dl.gradient_flow_order", paper=P, kind="exact", tolerance=0.2,
          tolerance_reason="first-order error C1 eps (1 + O(eps)): measured ratios 1.95-2.03; 0.2 admits the next order, "
                           "a second-order route (ratio 4) fails.",
          statement="GD vs plain gradient flow at t = eta k (docs/theory.md §7.2): sup_k |y_GD - y_GF| = C1 eps, halving eta "
                    "halves it (N = 2, 3, 4; y0 = 1e-3, 0.1).",
          breakers=(Breaker("modified equation instead of plain flow", lambda m: "modified", part="method"), scale(1.01)),
          point=PointClaim("dl.gradient_flow_order", "sup_k |y_GD - y_GF| at eps over that at eps/2 = 2", "exact",
                           _gf_order_at, ERROR_DOMAIN, tolerance=0.2, paper=P))
def gradient_flow_order(size="fast", corrupt=None):
    ratios, consts = _order_ratios(size, corrupt, "gf")
    r = np.concatenate(list(ratios.values()))
    c1 = np.concatenate(list(consts.values()))
    return exact(r, np.full_like(r, 2.0), 0.2, params={"eps": list(pick(size, EPS, (0.08,) + EPS))},
                 note=f"ratios err(eps)/err(eps/2); C1 = err/eps in [{c1.min():.3g}, {c1.max():.3g}]")


@register(id="dl.modified_equation_constant", paper=P, kind="bound", tolerance=0.0,
          tolerance_reason="an inequality; docs/theory.md §7.2 measures C2 in [0.046, 0.18] (N = 2, 3, 4), the bound 0.2 eps^2 "
                           "is the stated constant rounded up.",
          statement="sup_k |y_GD - y_mod| <= 0.2 eps^2 for N = 2, 3, 4, y0 = 1e-3, 0.1 (1e-6 at full), eps <= 0.08.",
          breakers=(Breaker("bracket term dropped (plain gradient flow)", lambda m: "gf", part="method"),),
          point=PointClaim("dl.modified_equation_constant", "sup_k |y_GD - y_mod| / eps^2 <= 0.2 (at eps and eps/2)",
                           "bound", _mod_constant_at, ERROR_DOMAIN, tolerance=0.0, paper=P))
def modified_equation_constant(size="fast", corrupt=None):
    _, consts = _order_ratios(size, corrupt, "modified")
    c2 = np.concatenate(list(consts.values()))
    return ClaimResult(float(c2.max()), 0.2, float(c2.max() - 0.2), bool(c2.max() <= 0.2),
                       {"min_C2": float(c2.min())}, "measured: largest err/eps^2; bound 0.2")


# ------------------------------------------------------------------------------------ §7.3 distillation


@cached
def _distill_gf():
    """Teacher depth 2 (σ₀ = 1e-2) to T = 4, student depth 3 on Ŷ = X W_Tᵀ, both full-matrix ODEs."""
    X, Y, V, U, _, _ = _design()
    tT = _matrix_gf(X, Y, models.init_deep_aligned(V, U, SIGMA0, 2, (5,), key=key(13)).layers, np.array([0.0, 4.0]))
    W_T = tT[-1]
    Yhat = np64(X) @ W_T.T
    times = np.linspace(0.0, 15.0, 16)
    s, off = _strengths(_matrix_gf(X, Yhat, models.init_deep_aligned(V, U, 1e-3, 3, (5, 5), key=key(14)).layers,
                                   times), V, U)
    a_meas, _ = _strengths([W_T], V, U)
    return times, a_meas[0], s, off


def _distill_gf_at(p):
    """Depth-M teacher (full-matrix GF to T) and depth-N student on Y_hat = X W_T^T (full-matrix GF to t_end), both by
    solve_ivp, against a_k = the teacher's closed form and the student's g_N law with c -> a (one domain point)."""
    M, N, s0, seed = p["teacher_depth"], p["N"], p["sigma0"], p["seed"]
    X, Y, V, U, _, _ = _design(seed)
    W_T = _matrix_gf(X, Y, models.init_deep_aligned(V, U, SIGMA0, M, (5,) * (M - 1), key=key(seed + 6)).layers,
                     np.array([0.0, p["T"]]))[-1]
    times = np.linspace(0.0, p["t_end"], 9)
    init = models.init_deep_aligned(V, U, s0, N, (5,) * (N - 1), key=key(seed + 7))
    s, off = _strengths(_matrix_gf(X, np64(X) @ W_T.T, init.layers, times), V, U)
    a_meas, _ = _strengths([W_T], V, U)
    corrupt, lam = active_corrupt(), np64(EIGS[:3])
    a = np64(apply(corrupt, "teacher", closed_form.deep_teacher_strengths(lam, np64(STRENGTHS), p["T"], depth=M,
                                                                           coeffs0=SIGMA0)))
    pred = closed_form.deep_distilled_trajectory(lam, a, s0, times, depth=apply(corrupt, "depth", N))
    return Outcome(measured=np.concatenate([a_meas[0], s.ravel(), off]),
                   predicted=np.concatenate([a, np64(pred).ravel(), np.zeros_like(off)]))


def _student_below_gf_teacher(p):
    """sigma0 < min_k a_k (teacher's closed form): the student starts below every teacher mode."""
    a = closed_form.deep_teacher_strengths(np64(EIGS[:3]), np64(STRENGTHS), p["T"], depth=p["teacher_depth"],
                                           coeffs0=SIGMA0)
    return p["sigma0"] < float(np.min(a))


#: Hypotheses of §7.3 under GF: teacher of depth M = 1..3 from the balanced aligned init sigma0 = 1e-2, trained
#: for T in [1, 6]; student of depth N = 1..4 from sigma0 in [1e-4, 1e-2] with sigma0 < min_k a_k (needed by the
#: law); horizon t_end in [2, 15] (the fixed run: M = 2, T = 4, N = 3, sigma0 = 1e-3, t_end = 15).
DISTILL_GF_DOMAIN = Domain(teacher_depth=Int(1, 3, default=2), T=Real(1.0, 6.0, default=4.0), N=Int(1, 4, default=3),
                           sigma0=LogReal(1e-4, 1e-2, default=1e-3), t_end=Real(2.0, 15.0, default=15.0),
                           seed=Int(0, 999, default=7), where={"sigma0 < min_k a_k": _student_below_gf_teacher})


@register(id="dl.distilled_student_gf", paper=P, kind="exact", tolerance=ODE_TOL, tolerance_reason=ODE_REASON,
          statement="Distillation across depths (docs/theory.md §7.3): a depth-2 teacher (GF to T = 4 from sigma0 = 1e-2) "
                    "gives a_k = sigma_k^T(T); a depth-3 student (sigma0 = 1e-3) on Y_hat = X W_T^T follows "
                    "g_3(sigma^S/a_k) = g_3(sigma0/a_k) + lambda_k a_k^(4/3) t (full-matrix ODEs for both).",
          breakers=(scale(), WRONG_DEPTH, Breaker("student on the labels' strengths c_k instead of a_k",
                                                  lambda a: np64(STRENGTHS), part="teacher")),
          point=PointClaim("dl.distilled_student_gf", "depth-N student on a depth-M teacher follows g_N(sigma/a) = "
                           "g_N(sigma0/a) + lambda a^(2-2/N) t (full-matrix ODEs)", "exact", _distill_gf_at,
                           DISTILL_GF_DOMAIN, tolerance=ODE_TOL, paper=P))
def distilled_student_gf(size="fast", corrupt=None):
    times, a_meas, s, off = _distill_gf()
    lam = np64(EIGS[:3])
    a = closed_form.deep_teacher_strengths(lam, np64(STRENGTHS), 4.0, depth=2, coeffs0=SIGMA0)
    a = np64(apply(corrupt, "teacher", a))
    pred = closed_form.deep_distilled_trajectory(lam, a, 1e-3, times, depth=apply(corrupt, "depth", 3))
    pred = np64(apply(corrupt, "prediction", pred))
    m = np.concatenate([a_meas, s.ravel(), off])
    p = np.concatenate([a, pred.ravel(), np.zeros_like(off)])
    return exact(m, p, ODE_TOL, params={"teacher_depth": 2, "T": 4.0, "student_depth": 3},
                 shown=(float(np.max(np.abs(s - pred))), 0.0),
                 note=f"shown: max |student ODE - closed form|; teacher a_k error {np.max(np.abs(a_meas - a)):.2g}")


@cached
def _distill_gd(steps_T: int, steps_S: int, lr: float):
    X, Y, V, U, _, _ = _design()
    w_T = sim(jnp.zeros((X.shape[1], Y.shape[1]), X.dtype), X, Y, lr, steps_T).params  # linear teacher, zero init
    a_meas = np64(spectral.mode_strengths(jnp.asarray(np64(V).T @ np64(w_T))[None], U).strengths[0])
    p0 = models.init_deep_aligned(V, U, 1e-3, 3, (5, 5), key=key(15))
    tr = sim(p0, X, X @ w_T, lr, steps_S, basis=V)
    ms = spectral.mode_strengths(tr.coeffs, U)
    return a_meas, np64(ms.strengths), np64(ms.off_mode)


TEACHER_STEPS = 100


def _distill_gd_at(p):
    """Linear teacher (engine GD from 0, recorded; its weights after T steps) and a depth-N engine student on its
    outputs, against c_k(1 - (1 - eta lambda_k)^T) and the scalar recursion with c -> a (one domain point)."""
    N, s0, T = p["N"], p["sigma0"], p["T"]
    lam, corrupt = np64(EIGS[:3]), active_corrupt()
    lr = _point_lr(p["fraction"], STRENGTHS, N)
    X, Y, V, U, _, _ = _design(p["seed"])
    coeffs_T = sim(jnp.zeros((X.shape[1], Y.shape[1]), X.dtype), X, Y, lr, TEACHER_STEPS, basis=V).coeffs[T]  # V^T w_T
    a_meas = np64(spectral.mode_strengths(coeffs_T[None], U).strengths[0])
    p0 = models.init_deep_aligned(V, U, s0, N, (5,) * (N - 1), key=key(p["seed"] + 8))
    ms = spectral.mode_strengths(sim(p0, X, X @ (V @ coeffs_T), lr, GD_STEPS, basis=V).coeffs, U)
    a = closed_form.deep_teacher_strengths(lam, np64(STRENGTHS), apply(corrupt, "T_teacher", T), lr=lr)
    pred = closed_form.deep_gd_trajectory(lam, a, s0, lr, GD_STEPS, depth=N)
    return Outcome(measured=np.concatenate([a_meas, np64(ms.strengths).ravel(), np64(ms.off_mode)]),
                   predicted=np.concatenate([a, np64(pred).ravel(), np.zeros(ms.off_mode.shape[0])]))


def _student_below_teacher(p):
    """sigma0 < min_k a_k, a_k = c_k(1 - (1 - eta lambda_k)^T): the student starts below every teacher mode."""
    lr = _point_lr(p["fraction"], STRENGTHS, p["N"])
    a = np64(STRENGTHS) * (1.0 - (1.0 - lr * np64(EIGS[:3])) ** p["T"])
    return p["sigma0"] < a.min()


#: Hypotheses of §7.3 with a linear teacher under GD: teacher from 0 for T in 1..100 steps, student of depth
#: N = 1..4 (the statement's N = 3 is the default) from a balanced aligned init below every teacher mode,
#: 0 < sigma0 < min a_k; a common stable step eta = fraction x min(1/lambda_max, 2/(N max lambda c^(2-2/N)))
#: (teacher monotone, a_k <= c_k, so the student's eps_k < 2/N); the seeds of the design and the frames vary.
DISTILL_GD_DOMAIN = Domain(N=Int(1, 4, default=3), T=Int(1, TEACHER_STEPS, default=40),
                           fraction=Real(0.05, 0.95, default=0.45), sigma0=LogReal(1e-4, 1e-2, default=1e-3),
                           seed=Int(0, 999, default=7), where={"sigma0 < min_k a_k": _student_below_teacher})


@register(id="dl.distilled_student_gd", paper=P, kind="exact", tolerance=1e-12,
          tolerance_reason="float64 round-off of matrix GD vs the scalar recursion (docs/theory.md §7 measures 1.5e-14).",
          statement="A linear teacher (GD from 0, T = 40 steps, eta = 0.1) gives a_k = c_k(1 - (1 - eta lambda_k)^T); a "
                    "depth-3 student trained by matrix GD (linkd engine, 150 steps) on its outputs equals the scalar GD "
                    "recursion with c_k -> a_k (docs/theory.md §7.3).",
          breakers=(scale(1 + 1e-9), Breaker("teacher one step longer", lambda T: T + 1, part="T_teacher")),
          point=PointClaim("dl.distilled_student_gd", "a_k = c_k(1 - (1 - eta lambda_k)^T); depth-N student GD = scalar "
                           "recursion with c -> a", "exact", _distill_gd_at, DISTILL_GD_DOMAIN, tolerance=1e-12, paper=P))
def distilled_student_gd(size="fast", corrupt=None):
    a_meas, s, off = _distill_gd(40, 150, 0.1)
    lam = np64(EIGS[:3])
    a = closed_form.deep_teacher_strengths(lam, np64(STRENGTHS), apply(corrupt, "T_teacher", 40), lr=0.1)
    pred = np64(apply(corrupt, "prediction", closed_form.deep_gd_trajectory(lam, a, 1e-3, 0.1, 150, depth=3)))
    m = np.concatenate([a_meas, s.ravel(), off])
    p = np.concatenate([a, pred.ravel(), np.zeros_like(off)])
    return exact(m, p, 1e-12, params={"T": 40, "student_steps": 150, "lr": 0.1},
                 shown=(float(np.max(np.abs(s - pred))), 0.0), note="shown: max |engine student - recursion|")


# ------------------------------------------------------------------------------------ §7.4


def _half_time(lam, c, s0, N):
    """Time for σ to reach c/2 from σ₀ (scalar ODE + root finding on its dense output)."""
    t_end = 4.0 * float(closed_form.deep_escape_time(np.array([lam]), np.array([c]), s0, depth=N)[0]) + 10.0 / (lam * c)
    sol = _scalar_ode(np.array([lam]), np.array([c]), s0, N, t_end)
    return scipy.optimize.brentq(lambda t: sol.sol(t)[0] - 0.5 * c, 0.0, t_end, xtol=1e-13, rtol=1e-14)


@cached
def _measured_dilation():
    out = {}
    for N in (1, 2, 3, 4, 6):
        out[N] = _half_time(1.0, 0.2, 1e-4, N) / _half_time(1.0, 1.0, 1e-4, N)
    return out


def _dilation_at(p):
    """R(N) at one domain point: half-times by scalar ODEs + root finding against the closed form."""
    N, Q, c, s0 = p["N"], p["Q"], p["c"], p["sigma0"]
    meas = _half_time(1.0, Q * c, s0, N) / _half_time(1.0, c, s0, N)
    corrupt = active_corrupt()
    R = float(closed_form.deep_time_dilation(Q, c, s0, depth=apply(corrupt, "depth", N)))
    if apply(corrupt, "Q_clock", False):  # the breaker: the slowed clock Q^-(2-2/N) left out
        R *= Q ** (2.0 - 2.0 / N)
    return Outcome(measured=meas, predicted=R)


#: Hypotheses of §7.4b: depth N >= 1 (1..6 as the fixed run), teacher progress 0 < Q < 1, c > 0, and the
#: student's half target above the init, sigma0 < Q c/2 (else t_1/2 of the student is not defined).
#: lambda = 1: R does not depend on lambda (both clocks scale with it). Q >= 0.1 and sigma0 >= 1e-5 bound the
#: student's plateau (~sigma0^-(N-2)/N / (Q c)) and with it the cost of the ODE half-times.
DILATION_DOMAIN = Domain(N=Int(1, 6, default=3), Q=Real(0.1, 0.95, default=0.2), c=LogReal(0.5, 2.0, default=1.0),
                         sigma0=LogReal(1e-5, 1e-2, default=1e-4),
                         where={"sigma0 < Q c / 2": lambda p: p["sigma0"] < 0.5 * p["Q"] * p["c"]})


@register(id="dl.time_dilation", paper=P, kind="exact", tolerance=1e-8,
          tolerance_reason="half-times from scalar ODEs at rtol 1e-12 and root finding at 1e-13: relative ~1e-10.",
          statement="Time dilation (docs/theory.md §7.4b), c = 1, sigma0 = 1e-4, teacher progress Q = 0.2: the student's time to "
                    "half its target over the reference's, R(N) = Q^-(2-2/N)[g_N(1/2) - g_N(sigma0/(Qc))]/[g_N(1/2) - "
                    "g_N(sigma0/c)] = 0.999, 4.13, 4.85, 4.97, 5.00 for N = 1, 2, 3, 4, 6 (measured by scalar ODEs).",
          breakers=(scale(), WRONG_DEPTH, Breaker("Q^-(2-2/N) clock factor dropped", lambda flag: True, part="Q_clock")),
          point=PointClaim("dl.time_dilation", "R(N) = Q^-(2-2/N)[g_N(1/2) - g_N(sigma0/(Qc))]/[g_N(1/2) - g_N(sigma0/c)] "
                           "against scalar-ODE half-times", "exact", _dilation_at, DILATION_DOMAIN, tolerance=1e-8,
                           relative=True, paper=P))
def time_dilation(size="fast", corrupt=None):
    meas = _measured_dilation()
    Ns = sorted(meas)
    pred = []
    for N in Ns:
        R = float(closed_form.deep_time_dilation(0.2, 1.0, 1e-4, depth=apply(corrupt, "depth", N)))
        if apply(corrupt, "Q_clock", False):  # the breaker: the slowed clock Q^-(2-2/N) left out
            R *= 0.2 ** (2.0 - 2.0 / N)
        pred.append(R)
    pred = np64(apply(corrupt, "prediction", np.array(pred)))
    m = np.array([meas[N] for N in Ns])
    return exact(m, pred, 1e-8, relative=True, params={"depths": Ns, "Q": 0.2, "sigma0": 1e-4})


def _dilation_order_at(p):
    """R(1), 1, R(2), R(3), R(4) at one domain point (closed form), claimed non-decreasing."""
    expo = apply(active_corrupt(), "clock_exponent", "2-2/N")
    Q, s0, R = p["Q"], p["sigma0"], []
    for N in (1, 2, 3, 4):
        r = float(closed_form.deep_time_dilation(Q, 1.0, s0, depth=N))
        if expo != "2-2/N":  # the breaker: swap the clock exponent 2 - 2/N for 2/N
            r *= Q ** (2.0 - 2.0 / N) * Q ** -(2.0 / N)
        R.append(r)
    return Outcome(measured=[R[0], 1.0, *R[1:]])


#: The fixed run's grid as a region: teacher progress Q in [0.1, 0.9] and sigma0/c in [1e-6, 1e-2] (c = 1; R
#: depends on sigma0/c only). sigma0 < Q c/2 holds throughout (the student's half target is above its init).
ORDER_DOMAIN = Domain(Q=Real(0.1, 0.9, default=0.2), sigma0=LogReal(1e-6, 1e-2, default=1e-4))


@register(id="dl.dilation_increases_with_depth", paper=P, kind="monotone", tolerance=0.0,
          tolerance_reason="a deterministic ordering of closed-form values (no noise): every step must go the right way.",
          statement="Depth strengthens the exaggeration of learning order (docs/theory.md §7.4b): R(1) <= 1 < R(2) < R(3) < R(4) "
                    "for every Q in {0.1, 0.2, 0.5, 0.9} and sigma0/c in {1e-6, 1e-4, 1e-2} (c = 1).",
          breakers=(Breaker("clock factor Q^-(2-2/N) replaced by Q^-(2/N)", lambda e: "2/N", part="clock_exponent"),),
          point=PointClaim("dl.dilation_increases_with_depth", "R(1) <= 1 <= R(2) <= R(3) <= R(4)", "monotone",
                           _dilation_order_at, ORDER_DOMAIN, tolerance=0.0, direction="increasing", paper=P))
def dilation_increases_with_depth(size="fast", corrupt=None):
    expo = apply(corrupt, "clock_exponent", "2-2/N")
    worst = None
    for Q in (0.1, 0.2, 0.5, 0.9):
        for s0 in (1e-6, 1e-4, 1e-2):
            R = []
            for N in (1, 2, 3, 4):
                r = float(closed_form.deep_time_dilation(Q, 1.0, s0, depth=N))
                if expo != "2-2/N":  # the breaker: swap the clock exponent 2 − 2/N for 2/N
                    r *= Q ** (2.0 - 2.0 / N) * Q ** -(2.0 / N)
                R.append(r)
            res = monotone([R[0], 1.0, *R[1:]], increasing=True, tol=0.0, params={"Q": Q, "sigma0": s0},
                           note="values: R(1), 1, R(2), R(3), R(4)", shown_pred="increasing")
            if worst is None or res.error > worst.error:
                worst = res
    return worst


def _teacher_student(lam, c, s0, N, qT, fractions):
    """Teacher depth N from σ₀ until q₁^T = qT; student depth N from σ₀ on it, stopped at q₁^S = f·Q₁."""
    T = (closed_form.deep_g(qT, depth=N) - closed_form.deep_g(s0 / c[0], depth=N)) / (lam[0] * c[0] ** (2 - 2 / N))
    a = closed_form.deep_gf_trajectory(lam, c, s0, np.float64(T), depth=N)
    y = np.maximum(np.asarray(fractions, dtype=np.float64), 1.001 * s0 / a[0])
    t = (closed_form.deep_g(y, depth=N) - closed_form.deep_g(s0 / a[0], depth=N)) / (lam[0] * a[0] ** (2 - 2 / N))
    return a, t


def _gap_grid(N, corrupt, grid):
    worst, excluded = np.inf, 0
    for lam, c, s0, qT in grid:
        lam, c = np64(lam), np64(c)
        a, t = _teacher_student(lam, c, s0, N, qT, np.linspace(0.05, 0.99, 12))
        lam_s = np64(apply(corrupt, "eigvals_student", lam))
        qS = closed_form.deep_distilled_trajectory(lam_s, a, s0, t, depth=N) / c[None, :]
        g = closed_form.deep_matched_progress_gap(lam, c, s0, qS, depth=N)
        excluded += g.n_excluded
        if not np.all(g.excluded):
            worst = min(worst, float(np.nanmin(g.gap)))
    return worst, excluded


def _ordered_grid(size):
    rng = np.random.default_rng(3)
    out = []
    for _ in range(pick(size, 8, 40)):
        lam = np.sort(rng.uniform(0.1, 1.0, 4))[::-1]
        c = np.sort(rng.uniform(0.2, 2.0, 4))[::-1]
        for s0 in (1e-3, 0.05):
            for qT in (0.5, 0.9, 0.99):
                if s0 < 0.5 * c.min():
                    out.append((lam, c, s0, qT))
    return out


def _gap_nonneg_at(p):
    """Gap on mode 2 at one domain point (closed forms; mode 1 = (1, 1): the gap of mode k depends on modes 1
    and k only, and on lambda, c only through the ratios lambda_2/lambda_1, c_2/c_1 and sigma0/c_1)."""
    N, s0 = p["N"], p["sigma0"]
    lam, c = np.array([1.0, p["lam2"]]), np.array([1.0, p["c2"]])
    a, t = _teacher_student(lam, c, s0, N, p["teacher_q1"], [p["fraction"]])
    lam_s = np64(apply(active_corrupt(), "eigvals_student", lam))
    qS = closed_form.deep_distilled_trajectory(lam_s, a, s0, t, depth=N) / c[None, :]
    gap = closed_form.deep_matched_progress_gap(lam, c, s0, qS, depth=N).gap
    return Outcome(measured=float(gap[0, 1]), predicted=0.0)


#: Hypotheses of the §7.4a sign statement: depth N = 1..4, mode 1 dominant in BOTH eigenvalue and strength,
#: lambda_2 <= lambda_1 and c_2 <= c_1 (the product order lambda_1 c_1 >= lambda_2 c_2 alone is false for N >= 3:
#: examples/deep_gap_product_order.py, dl.gap_negative_control), 0 < sigma0 < c_2/2 as the fixed grid; teacher
#: trained to q_1 in [0.5, 0.99], student stopped at 5%-99% of Q_1 (so 1 - q_1^S >= 0.0199: never ill-conditioned).
#: The default (N = 1, student at Q_1/2) is a point where the flattened-spectrum breaker turns the gap negative
#: (-6.5e-3; at N >= 2 that breaker moves the gap by < 1e-3 and it stays >= 0).
GAP_NONNEG_DOMAIN = Domain(N=Int(1, 4, default=1), lam2=Real(0.05, 1.0, default=0.5), c2=Real(0.1, 1.0, default=0.5),
                           sigma0=LogReal(1e-3, 0.05, default=1e-3), teacher_q1=Real(0.5, 0.99, default=0.9),
                           fraction=Real(0.05, 0.99, default=0.5),
                           where={"sigma0 < c_2/2": lambda p: p["sigma0"] < 0.5 * p["c2"]})


@register(id="dl.gap_nonnegative", paper=P, kind="bound", tolerance=1e-12,
          tolerance_reason="a lower bound 0 in float64; tau* inverts g_N, so round-off of ~1e-15 in q may move the gap "
                           "by ~1e-13; ill-conditioned rows (1 - q_1^S < 1e-6) are left out and counted.",
          statement="Matched-progress gap (docs/theory.md §7.4a) >= 0 when lambda_1 >= lambda_k and c_1 >= c_k, N = 1..4: teacher "
                    "of depth N to q_1 in {0.5, 0.9, 0.99}, student of depth N stopped at 5%-99% of Q_1, random ordered "
                    "spectra (4 modes), sigma0 in {1e-3, 0.05}.",
          breakers=(Breaker("student on a flattened spectrum sqrt(lambda lambda_1)", lambda lam: np.sqrt(lam * lam[0]),
                            part="eigvals_student"),),
          point=PointClaim("dl.gap_nonnegative", "q_2^R(tau*) - q_2^S(t) >= 0 for lambda_2 <= lambda_1, c_2 <= c_1", "bound",
                           _gap_nonneg_at, GAP_NONNEG_DOMAIN, tolerance=1e-12, sense="lower", paper=P))
def gap_nonnegative(size="fast", corrupt=None):
    grid = _ordered_grid(size)
    per, excl = {}, 0
    for N in (1, 2, 3, 4):
        per[str(N)], e = _gap_grid(N, corrupt, grid)
        excl += e
    worst = min(per.values())
    return ClaimResult(worst, 0.0, -worst, bool(worst >= -1e-12), {"min_gap_per_depth": per, "cases": len(grid),
                                                                    "excluded_ill_conditioned": excl},
                       f"measured: smallest gap (lower bound 0); {excl} rows left out (1 - q_1^S < 1e-6)")


EXAMPLES = {  # docs/theory.md §7.4: gap on mode 2, sigma0 = 1e-3, teacher q1 = 0.9, student q1^S = 0.9 Q1
    "lambda=(1,.5,.25), c=1": ((1.0, 0.5, 0.25), (1.0, 1.0, 1.0), (0.096, 0.060, 0.006, 0.003)),
    "whitened, c=(1,.5,.25)": ((1.0, 1.0, 1.0), (1.0, 0.5, 0.25), (0.0, 0.111, 0.012, 0.006)),
}


def _ode_gap(lam, c, s0, N, qT, f, T_end=None):
    """The §7.4 example by scalar ODEs only: teacher to q₁ = qT, student to f·Q₁, reference to the matched time
    (all within [0, T_end]; by default 50 escape times + 50)."""
    lam, c = np64(lam), np64(c)
    if T_end is None:
        T_end = 50.0 * float(np.max(closed_form.deep_escape_time(lam, c, s0, depth=N))) + 50.0
    ref = _scalar_ode(lam, c, s0, N, T_end)
    T = scipy.optimize.brentq(lambda t: ref.sol(t)[0] / c[0] - qT, 0.0, T_end, xtol=1e-13)
    a = ref.sol(T)
    stu = _scalar_ode(lam, a, s0, N, T_end)
    t = scipy.optimize.brentq(lambda x: stu.sol(x)[0] / a[0] - f, 0.0, T_end, xtol=1e-13)
    qS = stu.sol(t) / c
    tau = scipy.optimize.brentq(lambda x: ref.sol(x)[0] / c[0] - qS[0], 0.0, T_end, xtol=1e-13)
    return ref.sol(tau) / c - qS


def _gap_ode_at(p):
    """Gap on mode 2 at one domain point: three scalar ODE solves and root findings against the closed forms."""
    N, s0, qT, f = p["N"], p["sigma0"], p["teacher_q1"], p["fraction"]
    lam, c = np.array([1.0, p["lam2"]]), np.array([1.0, p["c2"]])
    _, t = _teacher_student(lam, c, s0, N, qT, [f])  # the horizon only: 1.5 x the longer of teacher and student runs
    T = (closed_form.deep_g(qT, depth=N) - closed_form.deep_g(s0, depth=N)) / lam[0]
    meas = float(_ode_gap(lam, c, s0, N, qT, f, T_end=1.5 * max(float(T), float(t[0])) + 1.0)[1])
    Nc = apply(active_corrupt(), "depth", N)
    a, t = _teacher_student(lam, c, s0, Nc, qT, [f])
    qS = closed_form.deep_distilled_trajectory(lam, a, s0, t, depth=Nc) / c[None, :]
    return Outcome(measured=meas, predicted=float(closed_form.deep_matched_progress_gap(lam, c, s0, qS, depth=Nc).gap[0, 1]))


#: The §7.4a construction at any 2-mode point (the gap on mode 2 depends on modes 1 and 2 only): depth N = 1..4,
#: lambda_2/lambda_1 and c_2/c_1 in [0.25, 2] (either order: the closed form is claimed for every aligned
#: spectrum), 0 < sigma0 < c_k/2, teacher to q_1 in [0.5, 0.99], student stopped at 10%-99% of Q_1 (never
#: ill-conditioned: 1 - q_1^S >= 0.0199). Ratios down to 0.25 keep the plateau of the slow mode, and with it
#: the ODE horizon, <= ~1e4 time units.
GAP_ODE_DOMAIN = Domain(N=Int(1, 4, default=2), lam2=LogReal(0.25, 2.0, default=0.5), c2=LogReal(0.25, 2.0, default=1.0),
                        sigma0=LogReal(1e-4, 1e-2, default=1e-3), teacher_q1=Real(0.5, 0.99, default=0.9),
                        fraction=Real(0.1, 0.99, default=0.9),
                        where={"sigma0 < c_2/2": lambda p: p["sigma0"] < 0.5 * min(1.0, p["c2"])})


@register(id="dl.gap_examples", paper=P, kind="exact", tolerance=1e-7,
          tolerance_reason="three scalar ODE solves and three root findings at rtol 1e-12 / xtol 1e-13; 1e-7 leaves margin. "
                           "The record also shows the 3-digit values quoted in docs/theory.md §7.4.",
          statement="The §7.4a examples (sigma0 = 1e-3, teacher q1 = 0.9, student q1^S = 0.9 Q1, mode 2): lambda = (1, .5, .25), "
                    "c = 1: +0.096, +0.060, +0.006, +0.003 for N = 1..4; whitened, c = (1, .5, .25): 0, +0.111, +0.012, "
                    "+0.006 -- not monotone in depth; with whitened inputs depth creates exaggeration.",
          breakers=(scale(1.01), WRONG_DEPTH),
          point=PointClaim("dl.gap_examples", "matched-progress gap on mode 2: closed forms against scalar ODEs", "exact",
                           _gap_ode_at, GAP_ODE_DOMAIN, tolerance=1e-7, paper=P))
def gap_examples(size="fast", corrupt=None):
    meas, pred, shown = [], [], {}
    for name, (lam, c, quoted) in EXAMPLES.items():
        for N in (1, 2, 3, 4):
            m = _ode_gap(lam, c, 1e-3, N, 0.9, 0.9)[1]
            Nc = apply(corrupt, "depth", N)
            a, t = _teacher_student(np64(lam), np64(c), 1e-3, Nc, 0.9, [0.9])
            qS = closed_form.deep_distilled_trajectory(np64(lam), a, 1e-3, t, depth=Nc) / np64(c)[None, :]
            p = float(closed_form.deep_matched_progress_gap(np64(lam), np64(c), 1e-3, qS, depth=Nc).gap[0, 1])
            meas.append(m)
            pred.append(p)
            shown[f"{name}, N={N}"] = round(p, 4)
    pred = np64(apply(corrupt, "prediction", np.array(pred)))
    quoted = np.concatenate([np64(q) for _, _, q in EXAMPLES.values()])
    rounding = float(np.max(np.abs(np.round(np.array(meas), 3) - quoted)))
    return exact(np.array(meas), pred, 1e-7, params={"sigma0": 1e-3, "teacher_q1": 0.9, "student_fraction": 0.9},
                 shown=(shown, [float(q) for q in quoted]),
                 note=f"predicted shows the values quoted in docs/theory.md §7.4; |ODE rounded to 3 digits - quoted| max {rounding:.3g}")


@cached
def _negative_grid(size):
    """λ₁c₁ ≥ λ₂c₂ with c₁ < c₂ (mode 2 larger but not faster): the regime of the negative control."""
    out = []
    for c2 in pick(size, (1.5, 10.0), (1.1, 1.5, 3.0, 10.0)):
        for rho in pick(size, (0.8, 1.0), (0.5, 0.8, 0.95, 1.0)):
            for s0 in pick(size, (1e-4, 1e-2), (1e-4, 1e-3, 1e-2)):
                for qT in (0.5, 0.9, 0.99):
                    out.append(((1.0, rho / c2), (1.0, c2), s0, qT))
    return out


@register(id="dl.gap_negative_control", paper=P, kind="qualitative", tolerance=None,
          tolerance_reason="a finding (sign of a minimum over a grid), not a tolerance comparison.",
          statement="Negative control (docs/theory.md §7.4a): with only lambda_1 c_1 >= lambda_2 c_2 and c_1 < c_2 the gap can be "
                    "< 0 for N >= 3 and is never < 0 for N <= 2 (same grid of c_2 in {1.5, 10}, lambda_2 c_2 in {0.8, 1}, "
                    "sigma0 in {1e-4, 1e-2}, teacher q1 in {0.5, 0.9, 0.99}).")
def gap_negative_control(size="fast", corrupt=None):
    grid = _negative_grid(size)
    mins = {str(N): _gap_grid(N, None, grid)[0] for N in (1, 2, 3, 4)}
    found = mins["3"] < 0 and mins["4"] < 0 and mins["1"] >= -1e-12 and mins["2"] >= -1e-12
    return qualitative(found, mins, "N <= 2: >= 0; N = 3, 4: < 0 (docs/theory.md: -1.5e-5, -6.8e-4 on its grid)",
                       error=min(mins["3"], mins["4"]), params={"cases": len(grid)},
                       note="measured: smallest gap per depth over the grid")
