"""Mobahi, Farajtabar & Bartlett (NeurIPS 2020), docs/theory.md §3: self-distillation rounds in a kernel
space (RBF kernel, K points, constraint eps)."""
from __future__ import annotations

import functools

import jax
import numpy as np

from linkd import closed_form
from linkd.claims import Choice, Domain, Int, LogReal, Outcome, Real, ingredients
from linkd.claims import Claim as PointClaim
from proofs_check._common import cached, key, np64, pick
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
    "round_factors",
    "predict_rounds",
    "sparsification",
    "collapse_bounds",
    "c_increasing",
    "test_error_vs_rounds",
]

P = "mobahi"
K, ELL = 30, 0.2


def _problem(seed, noise, K=K):
    kx, ky = jax.random.split(key(seed))
    x = np.sort(np64(jax.random.uniform(kx, (K,), minval=-1.0, maxval=1.0)))
    y = np.sin(3 * x) + noise * np64(jax.random.normal(ky, (K,)))
    G = np64(closed_form.rbf_gram(x, x, ELL)) / K
    return x, y, G


@cached
def _rounds(size):
    x, y, G = _problem(41, 0.1)
    eps = 0.02 * float(np.mean(y ** 2))
    r = closed_form.self_distill_rounds(G, y, eps=eps, rounds=100)
    return x, y, G, eps, r


@functools.lru_cache(maxsize=1024)
def _kernel_rounds_cached(seed: int, K_: int, lengthscale: float, noise: float, ratio: float):
    x, y, G = ingredients.kernel_problem(seed, K_, lengthscale, noise)
    eps = float(y @ y) / (K_ * ratio)
    r = closed_form.self_distill_rounds(G, y, eps=eps, rounds=ROUNDS_MAX)  # T_c < ratio <= 100: one shape for all points
    return x, y, G, eps, r


ROUNDS_MAX = 101


def _kernel_rounds(p):
    """Mobahi's problem at one domain point (ingredients.kernel_problem: K points, RBF lengthscale, label
    noise, seed) with eps = ||y_0||^2/(K ratio), and its eps-mode rounds until collapse (T_c < ratio <= 100);
    cached: the domain's constraint and the point function share it (do not modify the arrays)."""
    return _kernel_rounds_cached(int(p["seed"]), int(p["K"]), float(p["lengthscale"]), float(p["noise"]),
                                 float(p["ratio"]))


def _cond(r) -> float:
    """max_t cond(c_t I + G) = (d_1 + c_t)/(d_K + c_t) over the rounds before collapse (inf if some c_t + d_K = 0)."""
    Tc = int(r.collapsed_at) if r.collapsed_at >= 0 else r.c.shape[0]
    d, c = np64(r.eigvals), np64(r.c)[:Tc]
    if c.size == 0:
        return 1.0
    lo = d[-1] + c
    return float(np.max(np.where(lo > 0, (d[0] + c) / np.where(lo > 0, lo, 1.0), np.inf)))


COND_MAX = 1e10


def _resolvable(p):
    """Every round's cond(c_t I + G) <= COND_MAX (point by point also on whole columns)."""
    if np.ndim(p["K"]):
        n = len(p["K"])
        return np.array([_resolvable({k: v[i] for k, v in p.items()}) for i in range(n)])
    return bool(_cond(_kernel_rounds(p)[4]) <= COND_MAX)


def _round_factors_at(p):
    """Direct solves against the diagonal form V B_t V^T y_0 (and the library's rounds against it), relative to
    max|y|, and the constraint ratio (1/K)||y_t - y_{t-1}||^2/eps against 1, at one domain point; all divided by
    max(1, 1e-5 cond) (round-off grows as ~2e-16 cond(c_t I + G), measured: the tolerance 1e-10 becomes 1e-15 cond above cond 1e5)."""
    x, y, G, eps, r = _kernel_rounds(p)
    Tc, direct, pred, lib, cons = _factor_parts(y, G, r, active_corrupt())
    g = max(1.0, 1e-5 * _cond(r))
    s = float(np.max(np.abs(y))) * g
    return Outcome(measured=np.concatenate([direct.ravel() / s, lib.ravel() / s, cons / (eps * g)]),
                   predicted=np.concatenate([pred.ravel() / s, pred.ravel() / s, np.ones(Tc) / g]))


#: Hypotheses of §3.1–3.2 for the rounds: an RBF Gram matrix G = g(x_j, x_k)/K (positive definite) of K >= 2
#: points in [-1, 1] (lengthscale l), any targets y = sin 3x + noise, and an active constraint eps < ||y_0||^2/K,
#: i.e. ratio = ||y_0||^2/(K eps) > 1 (at ratio <= 1 the targets have collapsed before round 1); K <= 40 and
#: l <= 1 keep the points cheap. Constraint: G positive definite *in float64*: every round's cond(c_t I + G) <=
#: 1e10. Where G is numerically singular (large l, K) and the noise forces c_1 ~ 1e-17, float64 cannot resolve
#: the identity (error ~ 1e-16 cond, measured), and where its clipped null space holds more than eps of y the
#: constraint cannot be met at all (h(0) >= eps: c_t = 0, docs/theory.md §3.1), outside the theorem.
ROUNDS_DOMAIN = Domain(K=Int(2, 40, default=30), ratio=LogReal(1.01, 100.0, default=50.0),
                       lengthscale=LogReal(0.05, 1.0, default=ELL), noise=Real(0.0, 0.5, default=0.1),
                       seed=Int(0, 999, default=41),
                       where={"float64-positive-definite: cond(c_t I + G) <= 1e10 every round": _resolvable})


def _factor_parts(y, G, r, corrupt):
    """Rounds until collapse by direct solves (measured) and by the diagonal form V B_t V^T y_0 (predicted,
    breakers of parts "c" and "B" applied), the library's rounds and the constraint ratios
    (1/K)||y_t - y_{t-1}||^2 / eps (eps = r's; 1 each round)."""
    Tc = int(r.collapsed_at) if r.collapsed_at >= 0 else r.c.shape[0]
    c = np64(r.c)[:Tc]
    ys = [y]
    for ct in c:  # residual form y - c (cI+G)^{-1} y: the same matrix, better conditioned in float64
        ys.append(ys[-1] - ct * np.linalg.solve(ct * np.eye(y.shape[0]) + G, ys[-1]))
    direct = np.array(ys[1:])
    d, V = np64(r.eigvals), np64(r.basis)
    cp = apply(corrupt, "c", c)
    B = apply(corrupt, "B", np.cumprod(d[None, :] / (d[None, :] + cp[:, None]), axis=0))
    pred = (B * (V.T @ y)[None, :]) @ V.T
    lib = np64(r.y)[1:Tc + 1]
    cons = np.mean(np.diff(np.vstack([y[None, :], direct]), axis=0) ** 2, axis=1)
    return Tc, direct, pred, lib, cons


@register(id="mb.round_factors", paper=P, kind="exact", tolerance=1e-10,
          statement="Each round y_t = G (c_t I + G)^{-1} y_{t-1} computed by direct linear solves equals the diagonal "
                    "form V B_t V^T y_0 with B_t[k,k] = prod_{i<=t} d_k/(d_k + c_i), and every round meets the constraint "
                    "(1/K)||y_t - y_{t-1}||^2 = eps (RBF l=0.2, K=30, y = sin 3x + 0.1 noise, eps = 0.02 mean y^2).",
          tolerance_reason="float64 linear solves with cond(c I + G) <~ 1e6: relative error <~ 1e-10 (measured ~1e-14).",
          breakers=(scale(), Breaker("c_t shifted by 1e-3 relative", lambda c: c * (1 + 1e-3), part="c"),
                    Breaker("last round's factor dropped (B_{t-1} for B_t)", lambda B: np.vstack([np.ones((1, B.shape[1])), B[:-1]]),
                            part="B")),
          point=PointClaim("mb.round_factors", "y_t by direct solves = V B_t V^T y_0, B_t[k,k] = prod_{i<=t} d_k/(d_k + c_i), "
                           "and (1/K)||y_t - y_{t-1}||^2 = eps every round until collapse", "exact", _round_factors_at,
                           ROUNDS_DOMAIN, tolerance=1e-10, paper=P,
                           tolerance_reason="float64 solves: relative to max|y| the error grows as ~2e-16 cond(c_t I + G) "
                                            "(measured over the domain), so all entries are divided by max(1, 1e-5 cond): "
                                            "1e-10 up to cond 1e5, 1e-15 cond above (cond <= 1e10 by the domain)."))
def round_factors(size="fast", corrupt=None):
    x, y, G, eps, r = _rounds(size)
    Tc, direct, pred, lib_y, cons_ms = _factor_parts(y, G, r, corrupt)
    V = np64(r.basis)
    pred = apply(corrupt, "prediction", pred)
    s = float(np.max(np.abs(y)))
    res = exact(direct / s, np64(pred) / s, 1e-10, params={"K": K, "eps": eps, "rounds_to_collapse": Tc},
                shown=(float(np.linalg.norm(direct[-1])), float(np.linalg.norm(np64(pred)[-1]))),
                note="shown: ||y_Tc|| direct vs diagonal form")
    lib = float(np.max(np.abs(lib_y - (np64(r.B)[:Tc] * (V.T @ y)[None, :]) @ V.T))) / s
    cons = float(np.max(np.abs(cons_ms / eps - 1.0)))
    res.params.update(library_y_vs_direct=lib, constraint_rel_error=cons)
    res.error = max(res.error, lib, cons)
    res.passed = bool(res.passed and lib <= 1e-10 and cons <= 1e-10)
    return res


def _direct_predictions(G, gt, y, c):
    """Independent route: f_t(x) = g_x^T (c_t I + G)^{-1} y_{t-1}, y_t = G (c_t I + G)^{-1} y_{t-1}
    by direct numpy solves, round by round (t = 1..len(c))."""
    ys, fs = [y], []
    for ct in c:
        a = np.linalg.solve(ct * np.eye(G.shape[0]) + G, ys[-1])
        fs.append(gt @ a)
        ys.append(G @ a)
    return np.array(fs), np.array(ys[1:])


def _predict_parts(x, y, G, r, ell, lam, R, corrupt):
    """(direct solves, library; both relative to max|y|, breaker "rounds" applied to the library, T_c, test points):
    eps-mode predictions f_t on 50 test points and R ridge rounds y_t (lambda = lam)."""
    Tc = int(r.collapsed_at) if r.collapsed_at >= 0 else r.c.shape[0]
    xt = np.linspace(-1.0, 1.0, 50)
    gt = np64(closed_form.rbf_gram(xt, x, ell)) / x.shape[0]
    c = np64(r.c)[:Tc]
    f_direct, _ = _direct_predictions(G, gt, y, c)
    f_lib = apply(corrupt, "rounds", np64(closed_form.self_distill_predict(gt, r))[:Tc])
    rr = closed_form.ridge_self_distill(G, y, lam, R)
    _, y_direct = _direct_predictions(G, gt, y, np.full(R, lam))
    y_lib = apply(corrupt, "rounds", np64(rr.y)[1:R + 1])
    s = float(np.max(np.abs(y)))
    m = np.concatenate([f_direct.ravel(), y_direct.ravel()]) / s
    return m, np.concatenate([f_lib.ravel(), y_lib.ravel()]) / s, Tc, xt.size


def _predict_at(p):
    """Direct solves against the library (eps-mode test predictions, ridge rounds) at one domain point, relative to
    max|y| and divided by max(1, 1e-4 cond) (test-point predictions amplify the solve's round-off, ~3e-15 cond
    measured: the tolerance 1e-9 becomes 1e-13 cond above cond 1e4)."""
    x, y, G, eps, r = _kernel_rounds(p)
    m, pred, _, _ = _predict_parts(x, y, G, r, float(p["lengthscale"]), float(p["ridge_lambda"]), int(p["ridge_rounds"]),
                                   active_corrupt())
    g = max(1.0, 1e-4 * _cond(r))
    return Outcome(measured=m / g, predicted=pred / g)


#: Hypotheses: those of ROUNDS_DOMAIN (float64-positive-definite RBF problem, active constraint) for the eps-mode
#: rounds, plus a fixed ridge lambda > 0 (Born-again: any lambda > 0 and any number of rounds; 1e-4..1e-1 keeps
#: cond(lambda I + G) <= ~1e4) and 1, 3 or 6 ridge rounds. K and the ridge rounds take a few values only: the
#: library's predictions and ridge rounds are jax code compiled once per shape.
PREDICT_DOMAIN = Domain(dict(ROUNDS_DOMAIN.params, K=Choice((5, 12, 20, 30, 40), default=30),
                             ridge_lambda=LogReal(1e-4, 1e-1, default=1e-3), ridge_rounds=Choice((1, 3, 6), default=6)),
                        where=dict(ROUNDS_DOMAIN.constraints))


@register(id="mb.predict_rounds", paper=P, kind="exact", tolerance=1e-9,
          statement="Round-t predictions on test points, closed_form.self_distill_predict (eps mode) and the rounds of "
                    "closed_form.ridge_self_distill (fixed lambda = 1e-3, Born-again), equal direct linear solves "
                    "f_t(x) = g_x^T (c_t I + G)^{-1} y_{t-1} round by round (round 1 = the fit to y).",
          tolerance_reason="float64 solves with cond(c I + G) <~ 1e8 at the first rounds, relative to max|y|: ~1e-12 "
                           "measured, 1e-9 leaves margin.",
          breakers=(scale(), Breaker("rounds shifted by one (f_{t+1} reported as f_t)", lambda f: np.vstack([f[1:], f[-1:]]),
                                     part="rounds")),
          point=PointClaim("mb.predict_rounds", "self_distill_predict and ridge_self_distill rounds = direct solves "
                           "f_t(x) = g_x^T (c_t I + G)^{-1} y_{t-1}", "exact", _predict_at, PREDICT_DOMAIN, tolerance=1e-9,
                           paper=P, tolerance_reason="float64 solves, relative to max|y|, divided by max(1, 1e-4 "
                                                     "cond(c_t I + G)) (round-off grows with the conditioning; cond <= 1e10 "
                                                     "by the domain)."))
def predict_rounds(size="fast", corrupt=None):
    x, y, G, eps, r = _rounds(size)
    lam, R = 1e-3, 6
    m, pred, Tc, n_test = _predict_parts(x, y, G, r, ELL, lam, R, corrupt)
    pred = apply(corrupt, "prediction", pred)
    return exact(m, pred, 1e-9, params={"K": K, "eps": eps, "rounds": Tc, "test_points": n_test, "ridge_lambda": lam,
                                        "ridge_rounds": R},
                 shown=(float(np.linalg.norm(m)), float(np.linalg.norm(np64(pred)))),
                 note="shown: norms of all rounds' predictions (direct solves vs library), relative to max|y|")


def _sparsity(r, corrupt, resolve: float = 0.0):
    """(max over pairs d_j < d_k and rounds of ratio_t/ratio_{t-1} - 1, library B vs the formula (0 under a
    breaker), number of pairs, rounds) for the rounds r (pairs with d > 1e-6 d_1). ``resolve`` > 0 also leaves
    out (pair, round) entries whose exact change (c_t/d_j)(1 - d_j/d_k)/(1 + c_t/d_j), from the uncorrupted c_t,
    is below ``resolve`` (nearly equal eigenvalues: the decrease is real but below float64 round-off)."""
    Tc = int(r.collapsed_at) if r.collapsed_at >= 0 else r.c.shape[0]
    d = np64(r.eigvals)
    keep = d > 1e-6 * d[0]  # pairs whose strict decrease is resolvable above round-off
    d = d[keep]
    c = apply(corrupt, "c", np64(r.c)[:Tc])
    B = np.vstack([np.ones((1, d.size)), np.cumprod(d[None, :] / (d[None, :] + c[:, None]), axis=0)])
    lib = float(np.max(np.abs(B[1:] - np64(r.B)[:Tc][:, keep]))) if corrupt is None else 0.0
    ratio = B[:, :, None] / B[:, None, :]  # [t, j, k] = B_t[j]/B_t[k]
    smaller = d[:, None] < d[None, :]
    change = ratio[1:] / ratio[:-1] - 1.0
    if resolve > 0.0:
        q = np64(r.c)[:Tc, None, None] / d[None, :, None]  # c_t/d_j
        exact_change = q * (1.0 - d[None, :, None] / d[None, None, :]) / (1.0 + q)
        change = np.where(exact_change >= resolve, change, -np.inf)
    sel = change[:, smaller] if Tc else np.zeros(0)
    worst = float(np.max(sel)) if np.isfinite(sel).any() else -1.0  # no resolvable pair (equal d): vacuous
    return worst, lib, int(smaller.sum()), Tc


def _sparsification_at(p):
    """[largest ratio change, library B vs formula] against [-tiny (strict < 0), 1e-12] at one domain point
    (pairs and rounds whose exact decrease is >= 1e-12, i.e. resolvable in float64)."""
    worst, lib, _, _ = _sparsity(_kernel_rounds(p)[4], active_corrupt(), resolve=1e-12)
    return Outcome(measured=[worst, lib], predicted=[-np.finfo(np.float64).tiny, 1e-12])


#: The sparsification statement holds for any PSD G and every round with c_t > 0 (docs/theory.md §3.2), so the
#: hypotheses are those of ROUNDS_DOMAIN (same parameters and float64 constraint: cond(c_t I + G) <= 1e10 keeps
#: c_t/d_j >= ~1e-10 for the kept pairs d_j > 1e-6 d_1, so each round's factor 1 - c_t (1/d_j - 1/d_k) + ... is
#: resolvable above round-off).
SPARSITY_DOMAIN = ROUNDS_DOMAIN


@register(id="mb.sparsification", paper=P, kind="bound", tolerance=0.0,
          statement="Sparsification: for d_j < d_k the ratio B_t[j,j]/B_t[k,k] strictly decreases with every round t "
                    "(all pairs with d > 1e-6 d_1, all rounds before collapse).",
          tolerance_reason="deterministic strict inequality: the largest ratio_t/ratio_{t-1} - 1 must be < 0.",
          breakers=(Breaker("c_t = 0 (interpolation: no regularisation)", lambda c: 0.0 * c, part="c"),),
          point=PointClaim("mb.sparsification", "for d_j < d_k, B_t[j,j]/B_t[k,k] strictly decreases every round (and the "
                           "library's B_t equals the product formula to 1e-12)", "bound", _sparsification_at,
                           SPARSITY_DOMAIN, tolerance=0.0, paper=P,
                           tolerance_reason="strict inequality: the largest ratio_t/ratio_{t-1} - 1 must lie below -2.2e-308 "
                                            "(the smallest normal float), and the library's B_t within 1e-12 of the formula."))
def sparsification(size="fast", corrupt=None):
    x, y, G, eps, r = _rounds(size)
    worst, lib, pairs, Tc = _sparsity(r, corrupt)
    ok = worst < 0.0 and lib <= 1e-12
    return ClaimResult(worst, "< 0", worst, bool(ok), {"pairs": pairs, "rounds": Tc,
                                                       "library_B_vs_formula": lib},
                       "measured: max over pairs and rounds of ratio_t/ratio_{t-1} - 1")


def _collapse_at(p):
    """The collapse-round interval at one domain point: measured [T_c, lower] against [upper, T_c], so the
    error max(T_c - upper, lower - T_c) is the distance outside the interval (``linkd check --domain``)."""
    x, y, G, eps, r = _kernel_rounds(p)
    Tc = r.collapsed_at if r.collapsed_at >= 0 else np.inf
    b = closed_form.collapse_round_bounds(float(np.linalg.norm(y)), apply(active_corrupt(), "K", p["K"]), eps)
    return Outcome(measured=[Tc, b.lower], predicted=[b.upper, Tc])


#: Hypotheses of the §3.2 bounds: any K, RBF lengthscale, label noise and ratio ||y0||^2/(K eps) > 1
#: (at ratio <= 1 the targets have collapsed before the first round).
COLLAPSE_DOMAIN = Domain(K=Int(1, 40, default=30), ratio=LogReal(1.01, 100.0, default=50.0),
                         lengthscale=LogReal(0.05, 1.0, default=ELL), noise=Real(0.0, 0.5, default=0.1),
                         seed=Int(0, 999, default=41))


@register(id="mb.collapse_bounds", paper=P, kind="bound", tolerance=0.0,
          statement="The collapse round T_c (first t with ||y_t||^2/K <= eps) satisfies ||y_0||/sqrt(K eps) - 1 <= T_c <= "
                    "||y_0||^2/(K eps) (docs/theory.md §3.2 check: T_c = 9 in [6.07, 50]).",
          tolerance_reason="integer T_c against two real bounds: the error is the distance outside the interval (0 inside).",
          breakers=(Breaker("1/K normalisation forgotten (K = 1 in the bounds)", lambda k: 1, part="K"),),
          point=PointClaim("mb.collapse_bounds", "||y_0||/sqrt(K eps) - 1 <= T_c <= ||y_0||^2/(K eps)", "bound",
                           _collapse_at, COLLAPSE_DOMAIN, tolerance=0.0, paper=P))
def collapse_bounds(size="fast", corrupt=None):
    x, y, G, eps, r = _rounds(size)
    Tc = int(r.collapsed_at)
    b = closed_form.collapse_round_bounds(float(np.linalg.norm(y)), apply(corrupt, "K", K), eps)
    lo, hi = apply(corrupt, "prediction", (b.lower, b.upper))
    err = max(float(lo) - Tc, Tc - float(hi), 0.0) if Tc >= 0 else float("inf")
    return ClaimResult(Tc, [float(lo), float(hi)], err, bool(Tc >= 0 and err <= 0.0), {"K": K, "eps": eps})


@cached
def _c_runs(size):
    out = []
    for seed in range(pick(size, 4, 20)):
        x, y, G = _problem(50 + seed, 0.3 if seed % 2 else 0.0)
        eps = 0.02 * float(np.mean(y ** 2))
        r = closed_form.self_distill_rounds(G, y, eps=eps, rounds=100)
        Tc = int(r.collapsed_at) if r.collapsed_at >= 0 else 100
        out.append(np64(r.c)[:Tc])
    return out


def _c_at(p):
    """c_1, ..., c_{T_c} at one domain point (the sequence claimed increasing)."""
    r = _kernel_rounds(p)[4]
    Tc = int(r.collapsed_at) if r.collapsed_at >= 0 else r.c.shape[0]
    return Outcome(measured=np64(r.c)[:Tc])


#: Where amplified regularisation is claimed (docs/theory.md §3.2, observed, not proved): every eps-mode run of
#: §3.1 with an active constraint: K >= 2 RBF points (K = 1 has one round, vacuous), any lengthscale and label
#: noise, ratio ||y_0||^2/(K eps) > 1. No float64 constraint (unlike ROUNDS_DOMAIN): c_t comes from a bracketing
#: root search, not from solves with c_t I + G, and where a numerically singular G gives c_1 = 0 (h(0) >= eps,
#: §3.1) the later c_t are positive, so the sequence still increases. The fixed run draws y with noise 0 and 0.3
#: (seeds 50..); the default point is that of the other rounds claims.
C_DOMAIN = Domain(K=Int(2, 40, default=30), ratio=LogReal(1.01, 100.0, default=50.0),
                  lengthscale=LogReal(0.05, 1.0, default=ELL), noise=Real(0.0, 0.5, default=0.1),
                  seed=Int(0, 999, default=41))


@register(id="mb.c_increasing", paper=P, kind="monotone", tolerance=0.0,
          statement="Amplified regularisation: the per-round c_t strictly increases with t until collapse (noisy and "
                    "clean y, several draws; docs/theory.md §3.2 marks this as observed, not proved).",
          tolerance_reason="deterministic root finding (brentq, relative 1e-15): the smallest relative increase "
                           "(c_t - c_{t-1})/c_t must be > 0.",
          point=PointClaim("mb.c_increasing", "c_t increases with t until collapse (observed, not proved)", "monotone",
                           _c_at, C_DOMAIN, tolerance=0.0, direction="increasing", paper=P,
                           tolerance_reason="deterministic root finding: no step of c_t may fall (error = the largest "
                                            "c_{t-1} - c_t, must be <= 0; a run with one round before collapse is "
                                            "vacuous)."))
def c_increasing(size="fast", corrupt=None):
    runs = _c_runs(size)
    sign = 1.0 if apply(corrupt, "order", True) else -1.0  # REVERSE_ORDER claims a decrease
    rel = [float(np.min(sign * np.diff(c) / c[1:])) for c in runs if c.size > 1]
    worst = min(rel)
    return ClaimResult(worst, "> 0", -worst, bool(worst > 0.0), {"draws": len(runs), "rounds": [int(c.size) for c in runs],
                                                                  "c_first_draw": runs[0]},
                       "measured: smallest relative increase of c_t over all draws and rounds")


def _curve(noise, frac, draws, xt):
    errs = []
    for s in range(draws):
        x, y, G = _problem(200 + s, noise)
        r = closed_form.self_distill_rounds(G, y, eps=frac * float(np.mean(y ** 2)), rounds=30)
        Tc = int(r.collapsed_at) if r.collapsed_at >= 0 else 30
        g = np64(closed_form.rbf_gram(xt, x, ELL)) / K
        f = np64(closed_form.self_distill_predict(g, r))[:Tc]  # f_1 (fit to y), f_2, ... until collapse
        errs.append(np.mean((f - np.sin(3 * xt)[None, :]) ** 2, axis=1))
    m = int(np.median([e.size for e in errs]))  # rounds at which at least half of the draws have not collapsed
    E = np.array([np.pad(e[:m], (0, m - min(m, e.size)), constant_values=np.nan) for e in errs])
    return np.nanmean(E, axis=0)  # mean over the draws still alive at each round


@cached
def _ushape(size):
    draws = pick(size, 8, 40)
    xt = np.linspace(-1.0, 1.0, 400)
    curves = {f"{label}_eps{frac}": _curve(noise, frac, draws, xt)
              for frac in (0.02, 0.05) for label, noise in (("noisy", 0.5), ("clean", 0.0))}
    return curves, draws


@register(id="mb.test_error_vs_rounds", paper=P, kind="qualitative", tolerance=None,
          tolerance_reason="qualitative shape of a mean test-error curve over draws, mean over the draws not yet collapsed, up to the median collapse round.",
          statement="Test error vs rounds (eps = 0.05 mean y^2, y = sin 3x + 0.5 noise vs clean sin 3x): U-shaped for "
                    "noisy labels (minimum after >= 1 distillation round, then rising), increasing for clean labels.")
def test_error_vs_rounds(size="fast", corrupt=None):
    curves, draws = _ushape(size)
    noisy, clean = curves["noisy_eps0.05"], curves["clean_eps0.05"]
    i = int(np.argmin(noisy))
    u = 1 <= i < noisy.size - 1 and noisy[-1] > noisy[i]
    mono = bool(np.all(np.diff(clean) >= -1e-12 * clean.max()))
    n2 = curves["noisy_eps0.02"]
    return qualitative(u and mono, {"noisy": noisy, "clean": clean}, "noisy: U (argmin >= 1); clean: increasing",
                       params={"noisy_argmin_round": i, "clean_monotone": mono, "draws": draws,
                               "noisy_eps0.02": n2, "clean_eps0.02": curves["clean_eps0.02"]},
                       note=f"eps=0.05: noisy argmin after {i} distillation rounds, clean monotone: {mono}; at eps=0.02 the noisy "
                            f"argmin is round {int(np.argmin(n2))} of {n2.size}. The first rounds nearly interpolate the noise "
                            f"(c_1 ~ 1e-11..1e-17), hence the huge early test errors.")
