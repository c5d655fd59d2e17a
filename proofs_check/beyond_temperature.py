"""Multiclass students at temperature τ in the linear model (docs/theory.md §8), claim ids ``tau.*``.

The leading term is Hinton et al. (2015), eq. 4: at high temperature, distillation matches centred
logits. Every measurement comes from the linkd engine (``dynamics`` with family ``multiclass`` or
``binary``, τ²-scaled KD loss, float64, W₀ = 0 unless stated); every prediction from
:mod:`linkd.closed_form.temperature`. The two routes share no code. τ ≠ 1 everywhere.

Setting (§8): n = 300, d = 5, x ~ N(0.3·1, diag(3, 1.5, .8, .4, .2)), teacher entries
W_T ~ N(0, 0.8²), η = 0.3·C/λ_max, 400 GD steps; slopes are least-squares fits of log e against
log τ over τ ∈ {32, 64, 128, 256, 512} (τ ≥ 4Λ, Λ ≈ 7.1–7.5 the largest centred teacher logit).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form, data, engine
from linkd.claims import Choice, Domain, Int, LogReal, Outcome, Real
from linkd.claims import Claim as PointClaim
from proofs_check._common import cached, eig, key, np64
from proofs_check.registry import Breaker, ClaimResult, active_corrupt, apply, exact, register, scale

__all__ = [
    "gradient_exact",
    "class_sum_invariant",
    "leading_filter_slope",
    "correction_slope",
    "correction_improves",
    "no_first_order_term",
    "correction_vanishes",
    "binary_mse_limit",
]

P = "beyond"
N, D, STEPS = 300, 5, 400
POP = (3.0, 1.5, 0.8, 0.4, 0.2)
TAUS = (32.0, 64.0, 128.0, 256.0, 512.0)
SLOPE_TOL = 0.1
SLOPE_REASON = ("a fit of log e against log tau over tau = 32..512 (tau >= 4 Lambda); the next order of the "
                "expansion bends the line by ~(Lambda/tau): measured slopes lie within 0.05 of the prediction, "
                "0.1 allows other seeds; a wrong filter or correction moves the slope by >= 0.9.")

WRONG_STEP = Breaker("leading filter with step eta instead of eta/C", lambda C: 1, part="C_filter")
FLIP_CORRECTION = Breaker("1/tau correction with the wrong sign", lambda g: -g, part="correction")
DOUBLE_CORRECTION = Breaker("1/tau correction twice too large (eta/C instead of eta/(2C))", lambda g: 2 * g,
                            part="correction")


@cached
def _problem(seed: int, C: int, symmetric: bool = False, fraction: float = 0.3):
    """Design, teacher, eigenbasis, M3 and step eta = fraction C/lambda_max of one §8 setting (symmetric: each
    point and its negation)."""
    k1, k2 = jax.random.split(key(seed))
    X = data.gaussian_design(k1, N, jnp.asarray(POP)) + 0.3
    if symmetric:
        X = jnp.concatenate([X[: N // 2], -X[: N // 2]])
    W_T = 0.8 * jax.random.normal(k2, (D, C), jnp.float64)
    lam, V = eig(X)
    lr = fraction * C / float(lam[0])
    Lam = float(np.max(np.abs(np64(closed_form.centre_classes(X @ W_T)))))
    return np64(X), np64(W_T), lam, V, lr, Lam


@cached
def _measure(seed: int, C: int, symmetric: bool, taus: tuple, fraction: float = 0.3, steps: int = STEPS):
    """Engine: one vmapped sweep over τ; returns the progress p_k(s) (len(taus), S+1, d)."""
    X, W_T, lam, V, lr, Lam = _problem(seed, C, symmetric, fraction)
    spec = engine.EngineSpec(family="multiclass", steps=steps, tau2_scale=True)
    d = engine.Data(jnp.asarray(X), jnp.asarray(X @ W_T), basis=jnp.asarray(V))
    tr = engine.sweep(jnp.zeros((D, C)), d, engine.Hyper(lr=lr, tau=jnp.asarray(taus)), spec)
    assert tr.coeffs is not None  # a basis was given, so the engine records eigen-coefficients
    return np64(closed_form.centred_progress(tr.coeffs, V.T @ W_T))


def _predict(seed: int, C: int, symmetric: bool, corrupt, fraction: float = 0.3, steps: int = STEPS):
    """(F (S+1, d), correction of the progress ⟨γ¹, γ^T⟩/‖γ^T‖² (S+1, d)) from the closed form."""
    X, W_T, lam, V, lr, Lam = _problem(seed, C, symmetric, fraction)
    gT = V.T @ W_T
    C_f = apply(corrupt, "C_filter", C)
    F = np64(closed_form.tempered_filter(lam, lr, np.arange(steps + 1), num_classes=C)) if C_f == C else \
        np64(closed_form.gd_filter(lam, lr / C_f, np.arange(steps + 1)))
    M3 = apply(corrupt, "M3", (np64(closed_form.third_moment(X, V)), X, V))[0]
    g1 = np64(closed_form.first_order_correction(lam, M3, gT, np.zeros_like(gT), lr, steps, num_classes=C))
    g1 = apply(corrupt, "correction", g1)
    return F, np64(closed_form.centred_progress(g1, gT)), Lam, lr


def _errors(seed, C, symmetric, taus, corrupt, fraction: float = 0.3, steps: int = STEPS):
    p = _measure(seed, C, symmetric, taus, fraction, steps)
    F, pc, Lam, lr = _predict(seed, C, symmetric, corrupt, fraction, steps)
    t = np.asarray(taus)[:, None, None]
    e0 = np.max(np.abs(p - F[None]), axis=(1, 2))
    e1 = np.max(np.abs(p - F[None] - pc[None] / t), axis=(1, 2))
    return e0, e1, Lam, lr


def _slope(taus, e) -> float:
    return float(np.polyfit(np.log(np.asarray(taus)), np.log(np64(e)), 1)[0])


def _errors_at(p) -> tuple[tuple, np.ndarray, np.ndarray]:
    """(taus, e0, e1) at a domain point: five temperatures tau = ratio Lambda 2^k, k = 0..4, Lambda the largest
    centred teacher logit of the point's data (engine sweep against the closed form)."""
    sym = p.get("data", "generic") == "symmetric"
    Lam = _problem(p["seed"], p["C"], sym, p["fraction"])[5]
    taus = tuple(float(p["ratio"] * Lam * 2.0 ** k) for k in range(5))
    e0, e1, _, _ = _errors(p["seed"], p["C"], sym, taus, active_corrupt(), p["fraction"])
    return taus, e0, e1


def _leading_at(p):
    taus, e0, _ = _errors_at(p)
    return Outcome(measured=_slope(taus, e0), predicted=-1.0)


def _correction_at(p):
    taus, _, e1 = _errors_at(p)
    return Outcome(measured=_slope(taus, e1), predicted=-2.0)


IMPROVE_BOUND = 0.8  # e1/e0 over SLOPE_DOMAIN (the fixed draw's 1/2 is draw-dependent)
LEADING_POINT_TOL = 0.2  # slope of e0 over SLOPE_DOMAIN, tau_min >= 4 Lambda


def _improves_at(p):
    _, e0, e1 = _errors_at(p)
    return Outcome(measured=e1 / e0, predicted=IMPROVE_BOUND)


def _no_first_order_at(p):
    taus, e0, _ = _errors_at(p)
    return Outcome(measured=_slope(taus, e0), predicted=-2.0)


#: The step hypothesis of every tempered closed form: eta = fraction C/lambda_max below the descent bound
#: 4/lambda_max of the tau^2-scaled loss (linkd.stability.tempered_descent).
DESCENT = {"eta lambda_max < 4 (descent bound)": lambda p: p["fraction"] * p["C"] < 4.0}
VANISH = {"C = 2 or symmetric data": lambda p: (p["C"] == 2) | (p["data"] == "symmetric")}


def _slope_domain(C: Choice, seed: int, ratio: LogReal, where: dict, **extra) -> Domain:
    return Domain(seed=Int(0, 999, default=seed), C=C, ratio=ratio, fraction=Real(0.05, 1.0, default=0.3),
                  where=where, **extra)


#: Hypotheses of the 1/tau expansion (docs/theory.md §8), W_0 = 0: tau >> Lambda (the five temperatures
#: tau = ratio Lambda 2^k, ratio in [4, 16]: tau_min >= 4 Lambda as in the fixed run, tau_max = 16 ratio Lambda),
#: monotone leading filters (eta = fraction C/lambda_max, 0 < fraction <= 1, and eta < 4/lambda_max), 400 steps
#: as in the fixed run (a horizon parameter would add compilations), generic data with C >= 3 classes (for C = 2, H = 0 and the 1/tau term vanishes: tau.no_first_order_term).
#: The fixed run's constants are those of its draw. Over this domain the screens (256 points; their worst draws
#: re-run at the corner tau_min = 4 Lambda) measured a slope of e0 up to 0.13 from -1 (seed 286, C = 3: the 1/tau^2
#: term bends the fit by ~0.5 Lambda/tau_min) and e1/e0 up to 0.70 (seed 257, C = 4, tau = 4 Lambda): the point
#: forms state 0.2 and 4/5 (tau.leading_filter_slope, tau.correction_improves), not the fixed run's 0.1 and 1/2.
SLOPE_DOMAIN = _slope_domain(Choice((3, 4, 5), default=3), 11, LogReal(4.0, 16.0, default=4.4), DESCENT)
#: The vanishing cases of the 1/tau term: C = 2 (H = 0) on generic data, or data symmetric under x -> -x
#: (M3 = 0) with any C; eta and steps as in SLOPE_DOMAIN; ratio from 3.5 (the fixed run's symmetric case has
#: tau_min = 32 = 3.75 Lambda).
VANISHING_DOMAIN = _slope_domain(Choice((2, 3, 4, 5), default=4), 13, LogReal(3.5, 16.0, default=3.75),
                                 {**VANISH, **DESCENT}, data=Choice(("symmetric", "generic")))


_engine_grad = jax.jit(jax.grad(engine.objective.objective), static_argnums=6)  # autodiff of the engine's loss


def _grad_pair(seed: int, C: int, tau: float, w_scale: float, corrupt):
    """(engine autodiff gradient, closed-form gradient), both divided by max|autodiff gradient|."""
    X, W_T, lam, V, lr, Lam = _problem(seed, C)
    W = np64(w_scale * jax.random.normal(key(seed + 1), (D, C), jnp.float64))
    spec = engine.EngineSpec(family="multiclass", tau2_scale=True)
    hyper = engine.Hyper(lr=lr, tau=tau)
    g = _engine_grad(jnp.asarray(W), jnp.asarray(X), jnp.asarray(X @ W_T), None, hyper, jnp.asarray(0), spec)
    s = float(jnp.max(jnp.abs(g)))
    tf = apply(corrupt, "tau_factor", tau)
    cf = np64(closed_form.kd_gradient(jnp.asarray(X), jnp.asarray(W), jnp.asarray(W_T), tau=tau)) * (tf / tau)
    return np64(g) / s, cf / s


def _gradient_at(p):
    """The normalised gradient at one domain point: engine autodiff against the closed form."""
    meas, pred = _grad_pair(p["seed"], p["C"], p["tau"], p["w_scale"], active_corrupt())
    return Outcome(measured=meas, predicted=pred)


#: Hypotheses of the gradient formula: any design and teacher (seed), any number of classes C >= 2,
#: any temperature tau > 0 (here 0.05..1000, far from 1 on both sides) and any student W (its scale).
GRADIENT_DOMAIN = Domain(seed=Int(0, 999, default=5), C=Choice((2, 3, 4, 6), default=4),
                         tau=LogReal(0.05, 1000.0, default=3.0), w_scale=LogReal(0.05, 5.0, default=0.5))


@register(id="tau.gradient_exact", paper=P, kind="exact", tolerance=1e-12,
          statement="Exact gradient of the tau^2-scaled tempered softmax KD loss (mean over examples): "
                    "grad L_tau = (tau/n) X^T [softmax(XW/tau) - softmax(XW_T/tau)], at random W, C = 4, "
                    "tau in {0.5, 3, 20}, against autodiff of the engine's objective.",
          tolerance_reason="float64 round-off of a 300x5 product and a softmax (~1e-15 relative); 1e-12 relative "
                           "to max|grad| leaves margin.",
          breakers=(scale(), Breaker("tau^2 scaling dropped (factor 1/tau instead of tau)", lambda t: 1.0 / t,
                                     part="tau_factor")),
          point=PointClaim("tau.gradient_exact", "grad L_tau (engine autodiff) = (tau/n) X^T [softmax(XW/tau) - "
                           "softmax(XW_T/tau)], relative to max|grad|", "exact", _gradient_at, GRADIENT_DOMAIN,
                           tolerance=1e-12, paper=P))
def gradient_exact(size="fast", corrupt=None):
    meas, pred = [], []
    for tau in (0.5, 3.0, 20.0):
        g, cf = _grad_pair(5, 4, tau, 0.5, corrupt)
        meas.append(g)
        pred.append(apply(corrupt, "prediction", cf))
    return exact(np.stack(meas), np.stack(pred), 1e-12, params={"n": N, "d": D, "C": 4, "taus": [0.5, 3, 20]},
                 shown=(float(np.abs(np.stack(meas)).max()), float(np.abs(np.stack(pred)).max())),
                 note="relative to max|grad| per tau; shown: max |entry| (normalised)")


@cached
def _invariant_run(tau: float, seed: int = 7, C: int = 4, w_scale: float = 0.7, fraction: float = 0.3):
    X, W_T, lam, V, lr, Lam = _problem(seed, C, False, fraction)
    W0 = np64(w_scale * jax.random.normal(key(seed + 1), (D, C), jnp.float64))
    spec = engine.EngineSpec(family="multiclass", steps=STEPS, tau2_scale=True)
    d = engine.Data(jnp.asarray(X), jnp.asarray(X @ W_T), basis=jnp.asarray(V))
    tr = engine.simulate(jnp.asarray(W0), d, engine.Hyper(lr=lr, tau=tau), spec)
    return np64(tr.coeffs), W0, X, W_T, V, lr


def _class_sums(run, corrupt):
    """(simulated V^T W_s 1_C, predicted V^T W_0 1_C at every step) of one engine run."""
    coeffs, W0, X, W_T, V, lr = run
    meas = coeffs.sum(axis=-1)  # (S+1, d)
    pred = np.broadcast_to(V.T @ np64(closed_form.class_sum(W0)), meas.shape)
    if apply(corrupt, "drift", False):  # uncentred MSE, step eta/C: sums relax toward W_T 1_C
        lam = eig(X)[0]
        pred = np64(closed_form.gd.gd_mse_trajectory(lam, V.T @ W_T.sum(1), V.T @ W0.sum(1), lr / W0.shape[1],
                                                     np.arange(meas.shape[0])))
    return meas, pred


def _invariant_at(p):
    """The class sums of one engine run at a domain point against W_0 1_C."""
    run = _invariant_run(p["tau"], p["seed"], p["C"], p["w_scale"], p["fraction"])
    meas, pred = _class_sums(run, active_corrupt())
    return Outcome(measured=meas, predicted=pred)


#: Hypotheses of the invariant: any design, teacher and init W_0 (seed, scale), C >= 2, tau > 0 (0.1..200,
#: both sides of 1), every step of 400 recorded, and a step eta = fraction C/lambda_max below the descent bound
#: 4/lambda_max of the tau^2-scaled loss (fraction C < 4; the algebra holds at any step, the bound keeps
#: the iterates finite).
INVARIANT_DOMAIN = Domain(seed=Int(0, 999, default=7), C=Choice((2, 4, 6), default=4),
                          tau=LogReal(0.1, 200.0, default=3.0), w_scale=LogReal(0.1, 3.0, default=0.7),
                          fraction=Real(0.02, 1.0, default=0.3), where=DESCENT)


@register(id="tau.class_sum_invariant", paper=P, kind="exact", tolerance=1e-12,
          statement="Exact invariant of GD on L_tau: W_s 1_C = W_0 1_C at every step (each row of "
                    "softmax(Z/tau) - softmax(Z_T/tau) sums to 0); C = 4, random W_0, tau in {3, 40}, 400 steps, "
                    "checked in the eigenbasis (V^T W_s 1_C).",
          tolerance_reason="float64 round-off: the class sum of each update is ~1e-17 per step, accumulated over 400 "
                           "steps and amplified by tau (measured <= 1e-13); 1e-12 absolute with |W_0 1_C| ~ 1.",
          breakers=(scale(), Breaker("class sums drifting like uncentred MSE on logits (target W_T 1_C)",
                                     lambda flag: True, part="drift")),
          point=PointClaim("tau.class_sum_invariant", "W_s 1_C = W_0 1_C at every GD step on L_tau (engine run)",
                           "exact", _invariant_at, INVARIANT_DOMAIN, tolerance=1e-11,
                           tolerance_reason="float64 round-off of the class sum of each update (~1e-17 x tau x |grad|) "
                                            "accumulated over 400 steps grows with tau and |W_0|: measured up to 7.5e-13 "
                                            "over 256 domain points (tau = 97, C = 6); 1e-11 absolute, the fixed run's "
                                            "1e-12 holds at tau <= 40.", paper=P))
def class_sum_invariant(size="fast", corrupt=None):
    worst_m, worst_p = [], []
    for tau in (3.0, 40.0):
        meas, pred = _class_sums(_invariant_run(tau), corrupt)
        worst_m.append(meas)
        worst_p.append(apply(corrupt, "prediction", pred))
    return exact(np.stack(worst_m), np.stack(worst_p), 1e-12, params={"C": 4, "taus": [3, 40], "steps": STEPS},
                 shown=(float(np.abs(np.stack(worst_m)).max()), float(np.abs(np.stack(worst_p)).max())),
                 note="shown: max |class sum| simulated vs predicted")


@register(id="tau.leading_filter_slope", paper=P, kind="exact", tolerance=SLOPE_TOL,
          statement="Leading order (Hinton eq. 4): a student from W_0 = 0 at temperature tau follows MSE-GD on centred "
                    "logits with step eta/C, progress p_k(s) = 1 - (1 - eta lambda_k/C)^s + O(1/tau); the error "
                    "e0 = max_{k,s} |p_k - F_k| has log-log slope -1 in tau for C = 3 and C = 4 (generic data; within 0.1 "
                    "at this draw, within 0.2 over other draws: the domain form).",
          tolerance_reason=SLOPE_REASON, breakers=(scale(1.5), WRONG_STEP),
          point=PointClaim("tau.leading_filter_slope", "log-log slope in tau of e0 = max_{k,s} |p_k - F_k| is -1 "
                           "within 0.2 (tau = ratio Lambda 2^k, k = 0..4, tau_min >= 4 Lambda)", "exact", _leading_at,
                           SLOPE_DOMAIN, tolerance=LEADING_POINT_TOL,
                           tolerance_reason="the fit starts at tau_min = 4..16 Lambda, where the 1/tau^2 term still bends "
                                            "it by ~0.5 Lambda/tau_min: measured up to 0.13 from -1 (seed 286, C = 3, "
                                            "tau_min = 4 Lambda; 0.07 there at 8 Lambda) over 256 domain points and the "
                                            "corner; 0.2 leaves 0.07, the breakers move the slope by >= 0.5.", paper=P))
def leading_filter_slope(size="fast", corrupt=None):
    meas, pred, info = {}, {}, {}
    for C in (3, 4):
        e0, e1, Lam, lr = _errors(11, C, False, TAUS, corrupt)
        meas[f"C={C}"] = _slope(TAUS, e0)
        pred[f"C={C}"] = -1.0
        info[f"e0(C={C})"] = [float(v) for v in e0]
        info[f"Lambda(C={C})"] = Lam
    pred_arr = apply(corrupt, "prediction", np.array(list(pred.values())))
    return exact(np.array(list(meas.values())), pred_arr, SLOPE_TOL, params={"taus": list(TAUS), **info},
                 note="measured: fitted slopes of e0 for C = 3, 4; predicted -1")


@register(id="tau.correction_slope", paper=P, kind="exact", tolerance=SLOPE_TOL,
          statement="With the first-order correction gamma^(1) (M3, H, S), the error e1 = max_{k,s} |p_k - F_k - "
                    "<gamma_k^(1), gamma_k^T>/(tau ||gamma_k^T||^2)| has log-log slope -2 in tau (C = 3 and 4).",
          tolerance_reason=SLOPE_REASON, breakers=(scale(1.5), FLIP_CORRECTION, DOUBLE_CORRECTION),
          point=PointClaim("tau.correction_slope", "log-log slope in tau of e1 (error of the first-order prediction) "
                           "is -2 (tau = ratio Lambda 2^k, k = 0..4)", "exact", _correction_at, SLOPE_DOMAIN,
                           tolerance=SLOPE_TOL, paper=P))
def correction_slope(size="fast", corrupt=None):
    meas, info = [], {}
    for C in (3, 4):
        e0, e1, Lam, lr = _errors(11, C, False, TAUS, corrupt)
        meas.append(_slope(TAUS, e1))
        info[f"e1(C={C})"] = [float(v) for v in e1]
    pred = apply(corrupt, "prediction", np.array([-2.0, -2.0]))
    return exact(np.array(meas), pred, SLOPE_TOL, params={"taus": list(TAUS), **info},
                 note="measured: fitted slopes of e1 for C = 3, 4; predicted -2")


@register(id="tau.correction_improves", paper=P, kind="bound", tolerance=0.0,
          statement="In the regime tau >> Lambda the correction reduces the error: at this draw (seed 11) e1 <= e0/2 "
                    "at every tau in {32, ..., 512} (C = 3, 4; tau >= 4 Lambda; measured e1/e0 from 0.28 at tau = 32 "
                    "down to 0.009); over other draws the constant is 4/5 (the domain form).",
          tolerance_reason="an inequality on measured errors, each 1e-6..1e-2, far above float64 round-off; the "
                           "factor 1/2 is loose (e1/e0 ~ Lambda/tau).",
          breakers=(FLIP_CORRECTION, DOUBLE_CORRECTION),
          point=PointClaim("tau.correction_improves", "e1/e0 <= 4/5 at each tau = ratio Lambda 2^k, k = 0..4 "
                           "(tau >= 4 Lambda)", "bound", _improves_at, SLOPE_DOMAIN, tolerance=0.0,
                           tolerance_reason="e1/e0 ~ c Lambda/tau with a draw-dependent c: measured up to 0.585 over 256 "
                                            "domain points and 0.70 at the corner tau = 4 Lambda (seed 257, C = 4; 1/2 "
                                            "holds there from ~8 Lambda); the bound 4/5 leaves 0.1; the breakers give "
                                            "e1/e0 >= 1.16 at the default point.", paper=P))
def correction_improves(size="fast", corrupt=None):
    ratios = []
    for C in (3, 4):
        e0, e1, Lam, lr = _errors(11, C, False, TAUS, corrupt)
        ratios.append(e1 / e0)
    r = np.concatenate(ratios)
    worst = float(r.max())
    return ClaimResult([float(v) for v in r], 0.5, worst - 0.5, bool(worst <= 0.5),
                       {"taus": list(TAUS), "C": [3, 4]}, "measured: e1/e0 per (C, tau); bound 0.5")


def _vanishes_at(p):
    """max |<gamma^(1), gamma^T>|/||gamma^T||^2 over k, s of the closed form at a domain point (claimed 0)."""
    F, pc, Lam, lr = _predict(p["seed"], p["C"], p["data"] == "symmetric", active_corrupt(), p["fraction"])
    return Outcome(measured=float(np.abs(pc).max()), predicted=0.0)


#: Hypotheses: C = 2 (H = 0) on generic data, or data symmetric under x -> -x (M3 = 0) with any C; any
#: design and teacher (seed), step fraction C/lambda_max (0 < fraction <= 1) and horizon.
ZERO_DOMAIN = Domain(seed=Int(0, 999, default=13), C=Choice((2, 3, 4, 5), default=4),
                     data=Choice(("symmetric", "generic")), fraction=Real(0.05, 1.0, default=0.3),
                     where={**VANISH, **DESCENT})


UNSYM_M3 = Breaker("M3 from the unsymmetrised half of the data",
                   lambda t: (np64(closed_form.third_moment(t[1][: N // 2], t[2])), t[1], t[2]), part="M3")


@register(id="tau.no_first_order_term", paper=P, kind="exact", tolerance=SLOPE_TOL,
          statement="Without a 1/tau term the leading filter is already O(1/tau^2): e0 = max_{k,s} |p_k - F_k| has "
                    "log-log slope -2 for C = 2 (H = 0) and for data symmetric under x -> -x (M3 = 0, C = 4).",
          tolerance_reason=SLOPE_REASON, breakers=(scale(1.5), WRONG_STEP),
          point=PointClaim("tau.no_first_order_term", "log-log slope in tau of e0 is -2 for C = 2 or symmetric data "
                           "(tau = ratio Lambda 2^k, k = 0..4)", "exact", _no_first_order_at, VANISHING_DOMAIN,
                           tolerance=SLOPE_TOL, paper=P))
def no_first_order_term(size="fast", corrupt=None):
    meas, info = [], {}
    for C, sym in ((2, False), (4, True)):
        e0, _, Lam, lr = _errors(13, C, sym, TAUS, corrupt)
        meas.append(_slope(TAUS, e0))
        info[f"e0(C={C},{'sym' if sym else 'generic'})"] = [float(v) for v in e0]
    pred = apply(corrupt, "prediction", np.array([-2.0, -2.0]))
    return exact(np.array(meas), pred, SLOPE_TOL, params={"taus": list(TAUS), **info},
                 note="measured: slopes of e0 for C = 2 and for symmetric data (C = 4); predicted -2")


@register(id="tau.correction_vanishes", paper=P, kind="exact", tolerance=1e-14,
          statement="The closed-form 1/tau correction gamma^(1) is exactly 0 for C = 2 (H_bc = 0: with two classes "
                    "the centred rows are +-a, so a o a = |a|^2/2 1) and for data symmetric under x -> -x (M3 = 0); "
                    "the same closed form on the generic C = 4 data is O(1) (control, in params).",
          tolerance_reason="float64 round-off of sums of cancelling cubes (M3) and of centred squares (H), ~1e-16 x "
                           "the O(1) scale of the terms, over 400 steps.",
          breakers=(UNSYM_M3,),
          point=PointClaim("tau.correction_vanishes", "the closed-form 1/tau correction is 0 for C = 2 or symmetric "
                           "data", "exact", _vanishes_at, ZERO_DOMAIN, tolerance=1e-12,
                           tolerance_reason="float64 round-off of H (centred squares) and M3 (cancelling cubes), ~1e-16, "
                                            "multiplied by the kernel sums S over 400 steps (up to ~1/(1 - rho) ~ 1e2-1e3 "
                                            "in slow directions at small eta): measured up to 1.7e-13 over 256 domain "
                                            "points (seed 517, C = 2); the fixed run's 1e-14 holds at its two points.",
                           paper=P))
def correction_vanishes(size="fast", corrupt=None):
    vals = []
    for C, sym in ((2, False), (4, True)):
        F, pc, Lam, lr = _predict(13, C, sym, corrupt)
        vals.append(float(np.abs(pc).max()))
    _, control, _, _ = _predict(11, 4, False, None)
    return exact(np.array(vals), apply(corrupt, "prediction", np.zeros(2)), 1e-14,
                 params={"C=4 generic max|correction| (control)": float(np.abs(control).max())},
                 note="measured: max |<gamma^(1), gamma^T>|/||gamma^T||^2 over k, s for C = 2 and symmetric data")


BIN_TAUS = (16.0, 32.0, 64.0, 128.0, 256.0)


@cached
def _binary_problem(seed: int, w_scale: float = 1.5):
    """Design, teacher vector, eigenbasis and Lambda = max_i |x_i.w_T| of the binary setting."""
    k1, k2 = jax.random.split(key(seed))
    X = np64(data.gaussian_design(k1, N, jnp.asarray(POP)) + 0.3)
    w_T = np64(w_scale * jax.random.normal(k2, (D,), jnp.float64))
    lam, V = eig(X)
    return X, w_T, lam, V, float(np.max(np.abs(X @ w_T)))


@cached
def _binary_logits(seed: int, w_scale: float = 1.5, fraction: float = 0.9, taus: tuple = BIN_TAUS):
    X, w_T, lam, V, Lam = _binary_problem(seed, w_scale)
    lr = fraction * 4.0 / float(lam[0])  # eta lambda_max / 4 = fraction <= 1: the limit MSE-GD is monotone
    spec = engine.EngineSpec(family="binary", steps=STEPS, tau2_scale=True)
    d = engine.Data(jnp.asarray(X), jnp.asarray(X @ w_T), basis=jnp.asarray(V))
    tr = engine.sweep(jnp.zeros(D), d, engine.Hyper(lr=lr, tau=jnp.asarray(taus)), spec)
    return X, w_T, lam, V, lr, np64(tr.coeffs)  # (taus, S+1, d)


def _binary_errors(run, corrupt) -> np.ndarray:
    """Max logit error per tau of the engine runs against MSE-GD on the logit with step eta/4 (closed form)."""
    X, w_T, lam, V, lr, coeffs = run
    div = apply(corrupt, "step_divisor", 4.0)
    lim = np64(closed_form.binary_logit_limit(lam, V.T @ w_T, jnp.zeros(D), lr * 4.0 / div, STEPS))
    return np.max(np.abs(np.einsum("nd,tsd->tsn", X @ V, coeffs - lim[None])), axis=(1, 2))


def _binary_at(p):
    """Fitted slope of the max logit error over tau = ratio Lambda 2^k, k = 0..4, at a domain point."""
    Lam = _binary_problem(p["seed"], p["w_scale"])[4]
    taus = tuple(float(p["ratio"] * Lam * 2.0 ** k) for k in range(5))
    errs = _binary_errors(_binary_logits(p["seed"], p["w_scale"], p["fraction"], taus), active_corrupt())
    return Outcome(measured=_slope(taus, errs), predicted=-2.0)


#: Hypotheses of the binary limit: tau >> Lambda = max_i |x_i.w_T| (tau = ratio Lambda 2^k, ratio in [1.8, 8];
#: the fixed run has tau_min = 16 = 1.83 Lambda), a step with eta lambda_max/4 = fraction in (0, 1] (the
#: limit MSE-GD on the logit monotone, below the descent bound 8/lambda_max), any design and teacher scale.
BINARY_DOMAIN = Domain(seed=Int(0, 999, default=17), w_scale=LogReal(0.3, 3.0, default=1.5),
                       fraction=Real(0.05, 1.0, default=0.9), ratio=LogReal(1.8, 8.0, default=1.83))


@register(id="tau.binary_mse_limit", paper=P, kind="exact", tolerance=SLOPE_TOL,
          statement="Binary soft-CE at temperature tau (tau^2-scaled) tends to MSE-GD on the logit with step eta/4: "
                    "the max logit error max_{i,s} |x_i.(w_s - w_s^MSE)| has log-log slope -2 in tau (no 1/tau term: "
                    "sigma - 1/2 is odd); tau in {16, ..., 256}, eta lambda_max = 3.6.",
          tolerance_reason="a fit over tau = 16..256; the next order bends the line by ~(Lambda/tau)^2; measured "
                           "within 0.02; a wrong step (eta/2) gives slope ~0.",
          breakers=(scale(1.5), Breaker("limit with step eta/2 (the C = 2 multiclass rate)", lambda f: 2.0,
                                        part="step_divisor")),
          point=PointClaim("tau.binary_mse_limit", "log-log slope in tau of the max logit error of binary soft-CE "
                           "against MSE-GD with step eta/4 is -2 (tau = ratio Lambda 2^k, k = 0..4)", "exact",
                           _binary_at, BINARY_DOMAIN, tolerance=SLOPE_TOL, paper=P))
def binary_mse_limit(size="fast", corrupt=None):
    run = _binary_logits(17)
    X, w_T, lam, V, lr, coeffs = run
    errs = _binary_errors(run, corrupt)
    slope = _slope(BIN_TAUS, errs)
    pred = apply(corrupt, "prediction", np.array([-2.0]))
    return exact(np.array([slope]), pred, SLOPE_TOL,
                 params={"taus": list(BIN_TAUS), "max_logit_error": [float(v) for v in errs], "lr": lr},
                 note="measured: fitted slope of the max logit error; predicted -2")

