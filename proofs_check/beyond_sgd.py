"""Minibatch SGD students: exact moments, noise floor, stability limit, denoising (docs/theory.md §10),
claim ids ``sgd.*``.

Measurements: ≥ 10⁴ minibatch-SGD runs of the linkd engine in one compiled vmap
(:func:`linkd.engine.simulate_seeds`, float64, batches of B = 2 drawn with replacement, one key per
run) and their Monte Carlo moments (:func:`linkd.engine.seed_moments`). Predictions:
:mod:`linkd.closed_form.sgd` (the exact (m, C) recursion, the noise floor by conjugate gradients,
the limit 1/ρ(𝒯) by power iteration). The two routes share no code: the engine draws indices and
applies optax steps, the closed form never samples.

Setting (fast): n = 40, d = 6, x ~ N(0, diag(2, 1.6, 1.3, 1, .8, .6)), y = Xw* + ε (w* ~ N(0, I),
ε ~ N(0, 1)), η = 0.5·η_max, 200 steps recorded every 20.
Heavy tails: the second moment of a multiplicative-noise process is carried by rare runs. Near the
limit (and after ~100 steps even at η = 0.5·η_max on interpolable targets) a 10⁴-run sample mean
falls far below the exact second moment while every run converges (``sgd.typical_vs_mean_square``);
the claims compare where 10⁴ runs resolve the moments (stated per claim).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form, data, engine, stability
from linkd.claims import Choice, Domain, Int, Outcome, Real
from linkd.claims import Claim as PointClaim
from proofs_check._common import cached, eig, key, np64, pick
from proofs_check.registry import Breaker, ClaimResult, active_corrupt, apply, jsonable, qualitative, register

__all__ = ["moments_entries", "moments_chi2", "noise_floor", "stability_limit", "typical_vs_mean_square", "denoise",
           "shuffled_control", "homogenized_gap"]

P = "beyond"
N, D, B = 40, 6, 2
POP = (2.0, 1.6, 1.3, 1.0, 0.8, 0.6)
FRACTION = 0.5  # η = FRACTION · η_max
STEPS, EVERY = 200, 20
T_TEACHER = 10  # the fixed teacher: GD from 0 on y, stopped after 10 steps
MOMENT_IDX = (1, 2, 3)  # records t = 20, 40, 60
RATE_IDX = (1, 4)  # window t = 20 .. 80 for the decay rate
FLOOR_IDX = -1  # t = 200 (≈ 16 relaxation times 1/(1 - ρ))
N_SE = 4.0
RUNS = 10_000  # engine runs per domain point (the fast size), t <= 60
FLOOR_RUNS = 4_000  # engine runs per domain point of the 200-step claims (1e4 x 200 steps take 0.4 s a point)
MC_REASON = ("Monte Carlo with >= 1e4 runs: every entry within 4 standard errors (SE from the sample of the "
             "same runs); with <= 100 entries per claim a 4-SE excursion happens with probability < 1%.")

DOUBLE_B = Breaker("batch size doubled in the prediction (half the gradient noise)", lambda b: 2 * b, part="batch_size")
NO_NOISE = Breaker("no gradient noise (the GD covariance: B -> infinity)", lambda b: 10**12, part="batch_size")
FINITE_POP = Breaker("finite-population factor (n-B)/(n-1) of sampling without replacement applied",
                     lambda s: "without_replacement", part="sampling")
LR_OFF = Breaker("step 5% too large in the prediction", lambda lr: 1.05 * lr, part="lr")
ADDITIVE = Breaker("additive-noise floor: C = ACA + Q (fourth-moment term F(C) - Sigma C Sigma dropped)",
                   lambda flag: True, part="additive")


#: A problem of the §10 setting: (data seed, batch size B, label-noise scale, step fraction eta/eta_max).
PK = (0, B, 1.0, FRACTION)


@cached
def _problem(pk: tuple = PK):
    """Design, labels, eigenbasis, step, init, fixed teacher (GD, T_TEACHER steps) of the §10 setting."""
    seed, batch, noise, fraction = pk
    k1, k2, k3, k4 = jax.random.split(key(seed), 4)
    X = np64(data.gaussian_design(k1, N, jnp.asarray(POP)))
    w_star = np64(jax.random.normal(k2, (D,), jnp.float64))
    y = X @ w_star + noise * np64(jax.random.normal(k3, (N,), jnp.float64))
    lam, V = eig(X)
    limit = float(closed_form.sgd_lr_limit(X, batch_size=batch))
    lr = fraction * limit
    w0 = 0.5 * np64(jax.random.normal(k4, (D,), jnp.float64))
    wT = np.zeros(D)
    for _ in range(T_TEACHER):
        wT = wT - lr * X.T @ (X @ wT - y) / N
    return {"X": X, "y": y, "lam": lam, "V": V, "lr": lr, "limit": limit, "w0": w0, "wT": wT, "B": batch}


@cached
def _perron(pk: tuple = PK) -> np.ndarray:
    p = _problem(pk)
    return _perron_matrix(p["X"], p["limit"], p["B"])


def _perron_matrix(X, lr: float, batch: int = B) -> np.ndarray:
    """The Perron matrix of L at ``lr`` in w-coordinates, trace 9 (power iteration): the init covariance
    whose second moment grows at exactly rho(L) per step (experiment design, not a prediction)."""
    lam, Xr = stability.sgd_rowspace(X)
    s = stability.sgd_noise_scale(X.shape[0], batch)
    Pm = np.eye(lam.size)
    for _ in range(2000):
        Q = stability.sgd_second_moment_map(Pm, lam, Xr, lr, s)
        Pm = Q / np.trace(Q)
    Vr = np.linalg.svd(X, full_matrices=False)[2][: lam.size].T  # the basis of sgd_rowspace
    return 9.0 * Vr @ Pm @ Vr.T


def _spec(sampling: str = "with_replacement", steps: int = STEPS, every: int = EVERY, batch: int = B) -> engine.EngineSpec:
    return engine.EngineSpec(family="mse", steps=steps, record_every=every, batch_size=batch, sampling=sampling)


@cached
def _runs(targets: str, init: str, lr: float, seeds: int, sampling: str = "with_replacement", seed: int = 0,
          steps: int = STEPS, every: int = EVERY, pk: tuple = PK):
    """Coefficients (S, R, d) in the eigenbasis of S runs of the engine (one compiled vmap)."""
    p = _problem(pk)
    tg = p["y"] if targets == "raw" else p["X"] @ p["wT"]
    w0 = {"w0": p["w0"], "zero": np.zeros(D), "perron": p["wT"]}[init]
    cov0 = jnp.asarray(_perron(pk)) if init == "perron" else None
    d = engine.Data(jnp.asarray(p["X"]), jnp.asarray(tg), basis=jnp.asarray(p["V"]))
    tr = engine.simulate_seeds(jnp.asarray(w0), d, engine.Hyper(lr=float(lr)), _spec(sampling, steps, every, p["B"]),
                               key(100 + seed), seeds, init_cov=cov0, check=False)
    return np64(tr.coeffs)


def _seeds(size: str) -> int:
    return pick(size, 10_000, 40_000)


#: The runs of domain points: a bounded cache (one point's 1e4 runs take ~5 MB; the breakers rerun the default point).
_point_runs = functools.lru_cache(maxsize=16)(_runs.__wrapped__)


def _predict(targets: str, init: str, corrupt, steps: int = STEPS, pk: tuple = PK):
    """The exact moments (closed form) for the claim's runs, in the engine's basis; breakers act on
    batch_size, sampling and lr."""
    p = _problem(pk)
    tg = p["y"] if targets == "raw" else p["X"] @ p["wT"]
    w0 = {"w0": p["w0"], "zero": np.zeros(D)}[init]
    Bp = apply(corrupt, "batch_size", p["B"])
    samp = apply(corrupt, "sampling", "with_replacement")
    lr = apply(corrupt, "lr", p["lr"])
    m = closed_form.sgd_moments(p["X"], tg, w0, lr, steps, batch_size=Bp, sampling=samp, record_every=EVERY)
    R = p["V"].T @ np64(m.basis)  # closed-form basis -> engine basis (identity up to round-off)
    mean = np64(m.mean) @ R.T
    cov = np.einsum("ij,tjk,lk->til", R, np64(m.cov), R)
    return mean, cov


def _z_entries(c, mean, cov, idx):
    """z-scores of every mean and covariance entry (upper triangle) at the records ``idx``."""
    mm = engine.seed_moments(c, centre=mean)
    iu = np.triu_indices(D)
    z = []
    for i in idx:
        z.append((mm.mean[i] - mean[i]) / mm.se_mean[i])
        z.append(((mm.cov[i] - cov[i]) / mm.se_cov[i])[iu])
    return np.concatenate(z)


POINT_N_SE = 5.0
POINT_MC_REASON = ("Monte Carlo with 1e4 runs per point (4e3 for the 200-step claims), compared in standard errors: a --domain 128 screen makes "
                   "~1e4 comparisons of ~N(0,1) z-scores, so the per-entry threshold is 5 SE (P(|z| > 5) = 5.7e-7: "
                   "< 1% that a correct claim fails anywhere in a screen), not the fixed run's 4 SE.")


#: Point thresholds of the moment claims, from the screens' multiple comparisons (a --domain 256 screen: 257 points)
#: at a 1% family-wise false-alarm rate, plus the heavy-tail excess the screens measured (docs/theory.md §10.3):
#: entries, 81 two-sided z a point: Phi^-1(1 - 0.01/(2 x 257 x 81)) = 5.03, and the worst |z| over 2 x 129 points
#: was 5.08 where ~N(0,1) z would reach ~4.1 (excess ~1: SEs of covariance entries are sample fourth moments, heavy
#: tailed under SGD), so 6; Hotelling z, 3 a point: Phi^-1(1 - 0.01/(2 x 257 x 3)) = 4.36, worst 4.42, so 5 (the
#: finite-population breaker gives 5.2 at the default point: 5 is also the most that keeps it failing).
MOMENTS_N_SE, CHI2_N_SE = 6.0, 5.0
MOMENTS_REASON = ("Monte Carlo with 1e4 runs per point, 81 z-scores a point: Bonferroni over a 257-point screen at a 1% "
                  "family-wise false alarm gives 5.03 SE; the screens measured |z| up to 5.08 (heavy-tailed fourth "
                  "moments in the SEs, ~1 SE above the ~N(0,1) maximum), so 6 SE; the breakers give >= 8.5 SE.")


def _pk(p) -> tuple:
    return (p["seed"], p["B"], p["noise"], p["fraction"])


def _sgd_domain(fraction: Real, where=None) -> Domain:
    return Domain(seed=Int(0, 999, default=0), B=Choice((1, 2, 4), default=2), noise=Real(0.25, 2.0, default=1.0),
                  fraction=fraction, mc_seed=Int(0, 999, default=0), where=where)


#: Hypotheses of the exact SGD moments (docs/theory.md §10.1): least squares, batches of B drawn with
#: replacement (B in {1, 2, 4}), any data draw and label noise (seed, noise), any init and step. The Monte Carlo
#: side needs moments that 1e4 runs resolve: eta <= 0.5 eta_max (eta_max = 1/rho(T), linkd.stability;
#: closer to the limit the second moment is carried by rare runs, sgd.typical_vs_mean_square) and t <= 60
#: (records t = 20, 40, 60 as in the fixed run); mc_seed keys the runs.
MOMENTS_DOMAIN = _sgd_domain(Real(0.05, 0.5, default=FRACTION))


def _moments_data(p, corrupt):
    """(runs (S, 4, d), exact mean, exact cov) at t = 0, 20, 40, 60 for a domain point."""
    pk = _pk(p)
    c = _point_runs("raw", "w0", _problem(pk)["lr"], RUNS, seed=p["mc_seed"], steps=60, pk=pk)
    mean, cov = _predict("raw", "w0", corrupt, steps=60, pk=pk)
    return c, mean, cov


def _moments_at(p):
    c, mean, cov = _moments_data(p, active_corrupt())
    z = _z_entries(c, mean, cov, MOMENT_IDX)
    return Outcome(measured=z, predicted=np.zeros_like(z))


@register(id="sgd.moments_entries", paper=P, kind="exact", tolerance=N_SE,
          statement="Exact first and second moments of with-replacement minibatch SGD on least squares "
                    "(docs/theory.md §10.1): m_{t+1} = A m_t + eta b, C_{t+1} = A C_t A + eta^2/B [F(C_t) + "
                    "(1/n) sum_i r_i(m_t)^2 x_i x_i^T - Sigma C_t Sigma - g g^T]. Every mean and covariance entry "
                    "of the eigen-coefficients at t = 20, 40, 60 (n = 40, d = 6, B = 2, w_0 != 0) agrees with "
                    "1e4 engine runs within 4 SE.",
          tolerance_reason=MC_REASON, breakers=(DOUBLE_B, NO_NOISE, LR_OFF),
          point=PointClaim("sgd.moments_entries", "every mean and covariance entry of the eigen-coefficients at t = 20, "
                           "40, 60 agrees with 1e4 engine runs: z = (Monte Carlo - exact)/SE, |z| <= 6 (SE units)",
                           "exact", _moments_at, MOMENTS_DOMAIN, tolerance=MOMENTS_N_SE,
                           tolerance_reason=MOMENTS_REASON, paper=P))
def moments_entries(size="fast", corrupt=None):
    p = _problem()
    c = _runs("raw", "w0", p["lr"], _seeds(size))
    mean, cov = _predict("raw", "w0", corrupt, steps=60)
    z = _z_entries(c[:, : len(mean)], apply(corrupt, "prediction", mean), cov, MOMENT_IDX)
    err = float(np.max(np.abs(z)))
    return ClaimResult(jsonable(np.abs(z).max()), "|z| <= 4", err, bool(np.isfinite(err) and err <= N_SE),
                       {"n": N, "d": D, "B": B, "lr": p["lr"], "seeds": c.shape[0], "times": [20, 40, 60]},
                       f"{z.size} entries (6 means + 21 covariances at 3 times); max |z| = {err:.3g}, "
                       f"rms z = {float(np.sqrt(np.mean(z * z))):.3g}")


def _hotelling(c, mean, cov) -> tuple[float, int]:
    """Hotelling T² of the stacked vector [c - m, vech((c - m)(c - m)^T)] against [0, vech C]
    (its sample covariance estimated from the runs); ≈ chi-square with p = d + d(d+1)/2 degrees."""
    iu = np.triu_indices(D)
    dev = c - mean
    u = np.concatenate([dev, (dev[:, :, None] * dev[:, None, :])[:, iu[0], iu[1]]], axis=1)
    diff = u.mean(axis=0) - np.concatenate([np.zeros(D), cov[iu]])
    om = np.cov(u, rowvar=False)
    return float(c.shape[0] * diff @ np.linalg.solve(om, diff)), u.shape[1]


def _wilson_hilferty(t2: float, p: int) -> float:
    """The chi-square(p) statistic as an approximately standard normal z (Wilson–Hilferty)."""
    return ((t2 / p) ** (1.0 / 3.0) - (1.0 - 2.0 / (9 * p))) / math.sqrt(2.0 / (9 * p))


def _chi2_at(p):
    c, mean, cov = _moments_data(p, active_corrupt())
    z = np.array([_wilson_hilferty(*_hotelling(c[:, i], mean[i], cov[i])) for i in MOMENT_IDX])
    return Outcome(measured=z, predicted=np.zeros(3))


@register(id="sgd.moments_chi2", paper=P, kind="exact", tolerance=N_SE,
          statement="Aggregate test of the exact SGD moments (docs/theory.md §10.1): at each of t = 20, 40, 60 "
                    "the Hotelling T^2 of the 27-vector [c - m_t, vech((c - m_t)(c - m_t)^T)] over 1e4 engine runs "
                    "against [0, vech C_t] is chi-square(27); its Wilson-Hilferty z is at most 4 at every time.",
          tolerance_reason="Wilson-Hilferty maps chi-square(27) to N(0,1) within ~0.05 in the upper tail; z > 4 has "
                           "probability ~3e-5 per time under the claim.",
          breakers=(DOUBLE_B, NO_NOISE, FINITE_POP, LR_OFF),
          point=PointClaim("sgd.moments_chi2", "Wilson-Hilferty z of the Hotelling T^2 (chi-square(27)) of 1e4 engine "
                           "runs against the exact moments at t = 20, 40, 60: |z| <= 5 (SE units, two-sided)", "exact",
                           _chi2_at, MOMENTS_DOMAIN, tolerance=CHI2_N_SE,
                           tolerance_reason="3 z-scores a point: Bonferroni over a 257-point screen at a 1% family-wise "
                                            "false alarm gives 4.36; the screens measured z up to 4.42 (heavy-tailed "
                                            "fourth moments in the T^2 covariance), so 5; two-sided, so a T^2 far too small "
                                            "fails too; the breakers give >= 5.2 at the default point.",
                           paper=P))
def moments_chi2(size="fast", corrupt=None):
    p = _problem()
    c = _runs("raw", "w0", p["lr"], _seeds(size))
    mean, cov = _predict("raw", "w0", corrupt, steps=60)
    mean = apply(corrupt, "prediction", mean)
    stats = [_hotelling(c[:, i], mean[i], cov[i]) for i in MOMENT_IDX]
    z = np.array([_wilson_hilferty(t2, q) for t2, q in stats])
    err = float(np.max(z))
    return ClaimResult(jsonable([s[0] for s in stats]), f"chi-square({stats[0][1]})", err,
                       bool(np.isfinite(err) and err <= N_SE),
                       {"n": N, "d": D, "B": B, "seeds": c.shape[0], "times": [20, 40, 60]},
                       f"T^2 = {', '.join(f'{s[0]:.1f}' for s in stats)} (p = {stats[0][1]}); Wilson-Hilferty z = "
                       f"{', '.join(f'{v:.2f}' for v in z)}")


def _additive_floor(p) -> np.ndarray:
    """Breaker: the floor of an additive-noise model, C = ACA + Q (Lyapunov, eigen-coordinates)."""
    lam, V, X, lr = p["lam"], p["V"], p["X"], p["lr"]
    Xt = X @ V
    r = X @ np.linalg.lstsq(X, p["y"], rcond=None)[0] - p["y"]
    Q = lr * lr / p["B"] * (Xt.T * r**2) @ Xt / N
    a = 1.0 - lr * lam
    return Q / (1.0 - np.outer(a, a))


def _floor(corrupt, pk: tuple = PK):
    p = _problem(pk)
    fl = closed_form.sgd_noise_floor(p["X"], p["y"], apply(corrupt, "lr", p["lr"]),
                                     batch_size=apply(corrupt, "batch_size", p["B"]),
                                     sampling=apply(corrupt, "sampling", "with_replacement"))
    R = p["V"].T @ np64(fl.basis)
    cov = R @ np64(fl.cov) @ R.T
    if apply(corrupt, "additive", False):
        cov = _additive_floor(p)
    return R @ np64(fl.mean), cov


def _stationary(p) -> bool:
    """t = 200 is >= 8 relaxation times of the slowest mean direction: 200 eta lambda_min >= 8 (the transient
    e^-8 |c_0 - c*| is then far below the Monte Carlo SE). Needs the point's data draw: evaluated point by point."""
    pr = _problem(_pk(p))
    return bool(STEPS * pr["lr"] * float(pr["lam"][-1]) >= 8.0)


#: Hypotheses of the noise floor (docs/theory.md §10.2): n > d (n = 40, d = 6) and noisy labels (noise > 0),
#: B in {1, 2, 4} with replacement, eta < eta_max. The floor is the t -> infinity limit: the runs must be
#: stationary at t = 200, i.e. 200 eta lambda_min >= 8 (found by the screen: at seed 756, B = 1, eta = 0.31
#: eta_max, eta lambda_min = 0.015 and the mean is 45 SE from X^+ y at t = 200: the transient
#: (1 - eta lambda_min)^200 = 0.05 remains); eta >= 0.3 eta_max; eta <= 0.5 eta_max so that the Monte Carlo runs
#: resolve the second moments (heavy tails nearer the limit).
FLOOR_DOMAIN = _sgd_domain(Real(0.3, 0.5, default=FRACTION), where={"200 eta lambda_min >= 8 (stationary)": _stationary})


def _floor_z(p, corrupt) -> np.ndarray:
    pk = _pk(p)
    c = _point_runs("raw", "w0", _problem(pk)["lr"], FLOOR_RUNS, seed=p["mc_seed"], pk=pk)[:, FLOOR_IDX]
    mean, cov = _floor(corrupt, pk)
    return _z_entries(c[:, None], mean[None], cov[None], (0,))


def _floor_at(p):
    z = _floor_z(p, active_corrupt())
    return Outcome(measured=z, predicted=np.zeros_like(z))


@register(id="sgd.noise_floor", paper=P, kind="exact", tolerance=N_SE,
          statement="Noise floor of SGD on noisy labels (n > d; docs/theory.md §10.2): the stationary covariance "
                    "solves C = L(C) + eta^2/B (1/n) sum_i r*_i^2 x_i x_i^T, r* the least-squares residual, and the "
                    "stationary mean is X^+ y. 1e4 engine runs after 200 steps (~16 relaxation times 1/(1 - rho)): every mean "
                    "and covariance entry within 4 SE.",
          tolerance_reason=MC_REASON, breakers=(DOUBLE_B, ADDITIVE),
          point=PointClaim("sgd.noise_floor", "mean and covariance of 4e3 engine runs at t = 200 match the stationary "
                           "floor (C = L(C) + eta^2/B (1/n) sum r*_i^2 x_i x_i^T, mean X^+ y): |z| <= 5 (SE units)",
                           "exact", _floor_at, FLOOR_DOMAIN, tolerance=POINT_N_SE, tolerance_reason=POINT_MC_REASON,
                           paper=P))
def noise_floor(size="fast", corrupt=None):
    p = _problem()
    c = _runs("raw", "w0", p["lr"], _seeds(size))[:, FLOOR_IDX]
    mean, cov = _floor(corrupt)
    mean = apply(corrupt, "prediction", mean)
    z = _z_entries(c[:, None], mean[None], cov[None], (0,))
    err = float(np.max(np.abs(z)))
    rel = float(np.max(np.abs(np.diag(engine.seed_moments(c[:, None], centre=mean[None]).cov[0]) / np.diag(cov) - 1)))
    return ClaimResult(jsonable(np.diag(engine.seed_moments(c[:, None]).cov[0])), jsonable(np.diag(cov)), err,
                       bool(np.isfinite(err) and err <= N_SE),
                       {"n": N, "d": D, "B": B, "lr": p["lr"], "steps": STEPS, "seeds": c.shape[0]},
                       f"27 entries, max |z| = {err:.3g}; per-direction variances within {100 * rel:.2g}% of the floor; "
                       "shown: Monte Carlo vs predicted per-direction variance")


STAB_FACTORS = (0.9, 1.1)
STAB_IDX = (1, 5)  # t = 1 and 5 steps


def _stability(pk: tuple, factors, corrupt, seeds: int, mc_seed: int, runs=_runs):
    """(eta_max used, signed SE units per (factor, t), ratios E||e_t||^2/E||e_0||^2): engine runs from the Perron
    init at factor x eta_max (eta_max from the closed form, breakers on part "limit")."""
    p = _problem(pk)
    limit = apply(corrupt, "limit", p["limit"])
    limit = 2.0 / float(p["lam"][0]) if limit is None else limit
    out, ratios = [], []
    for f in factors:
        e = _sq_error(runs("kd", "perron", f * limit, seeds, seed=mc_seed, steps=max(STAB_IDX), every=1, pk=pk), p)
        for i in STAB_IDX:
            ratio = float(e[:, i].mean() / e[:, 0].mean())
            se = float((e[:, i] - ratio * e[:, 0]).std(ddof=1) / (math.sqrt(e.shape[0]) * e[:, 0].mean()))
            ratios.append(ratio)
            out.append((ratio - 1.0) / se if f < 1 else (1.0 - ratio) / se)
    return limit, out, ratios


def _stability_at(p):
    _, out, _ = _stability(_pk(dict(p, fraction=FRACTION)), (p["below"], p["above"]), active_corrupt(), RUNS,
                           p["mc_seed"], _point_runs)
    return Outcome(measured=np.asarray(out), predicted=np.zeros(len(out)))


#: Hypotheses of the limit (docs/theory.md §10.3): least squares, B in {1, 2, 4} with replacement, any data and
#: label noise (the runs use the teacher's outputs: pure multiplicative noise), the Perron init, one step factor
#: below and one above eta_max. The Monte Carlo side: t = 1, 5 steps and factors within [0.5, 0.95] and
#: [1.1, 1.25] of eta_max, where 1e4 runs resolve the change of E||w_t - w_T||^2 (heavy tails further above).
#: A bound in SE units holds up to noise: the point form allows 3 SE (STAB_N_SE). The default factor below is 0.95,
#: not the fixed run's 0.9: under the breaker "limit 20% too high" the runs are then at 1.14 eta_max and grow by
#: 4.2 SE (at 0.9 -> 1.08 eta_max only 2.6 SE, which a 3-SE tolerance would pass).
STAB_N_SE = 3.0
STABILITY_DOMAIN = Domain(seed=Int(0, 999, default=0), B=Choice((1, 2, 4), default=2), noise=Real(0.25, 2.0, default=1.0),
                          below=Real(0.5, 0.95, default=0.95), above=Real(1.1, 1.25, default=STAB_FACTORS[1]),
                          mc_seed=Int(0, 999, default=0))


def _sq_error(c, p) -> np.ndarray:
    """‖w_t - w_T‖² per run and record (coordinates in an orthonormal basis)."""
    cT = p["V"].T @ p["wT"]
    return np.sum((c - cT) ** 2, axis=-1)


@register(id="sgd.stability_limit", paper=P, kind="bound", tolerance=0.0,
          statement="Second-moment stability limit of SGD (docs/theory.md §10.3): eta_max = 1/rho(T), stricter than "
                    "GD's 2/lambda_max (0.198 vs 0.791 here). On the teacher's outputs (pure multiplicative noise), from "
                    "w_0 ~ N(w_T, P) (P the Perron matrix of L at eta_max, trace 9), 1e4 engine runs at 0.9 eta_max "
                    "shrink E||w_t - w_T||^2 over t = 1 and 5 steps and at 1.1 eta_max grow it.",
          tolerance_reason="signed sample estimates in SE units must lie on the claimed side of 1: below, "
                           "(E_t/E_0 - 1)/SE <= 0; above, (1 - E_t/E_0)/SE <= 0. Short horizons because near the limit "
                           "1e4 runs stop resolving the second moment after ~40 steps (heavy tails; "
                           "sgd.typical_vs_mean_square).",
          breakers=(Breaker("limit 20% too high", lambda x: 1.2 * x, part="limit"),
                    Breaker("limit 20% too low", lambda x: 0.8 * x, part="limit"),
                    Breaker("the GD limit 2/lambda_max", lambda x: None, part="limit")),
          point=PointClaim("sgd.stability_limit", "1e4 engine runs from the Perron init shrink E||w_t - w_T||^2 at "
                           "below x eta_max and grow it at above x eta_max (t = 1, 5): signed SE units <= 3", "bound",
                           _stability_at, STABILITY_DOMAIN, tolerance=STAB_N_SE,
                           tolerance_reason="4 signed z a point, one-sided: where the true change is within the noise "
                                            "(just below the limit, t = 5) tolerance 0 fails about half the time: +0.39 SE "
                                            "measured at 0.93 eta_max, the worst of 256 domain points; "
                                            "3 SE is the one-sided 0.13% level (Bonferroni over 257 x 4 at 1% would be 4.3, "
                                            "which the breaker limit x 1.2, at 4.2 SE, would pass); the breakers give >= "
                                            "4.2 SE at the default point.", paper=P))
def stability_limit(size="fast", corrupt=None):
    limit, out, ratios = _stability(PK, STAB_FACTORS, corrupt, _seeds(size), 0)
    err = float(max(out))
    return ClaimResult(jsonable(ratios), "< 1 below, > 1 above", err, bool(np.isfinite(err) and err <= 0.0),
                       {"n": N, "d": D, "B": B, "eta_max": limit, "factors": list(STAB_FACTORS), "t": list(STAB_IDX),
                        "seeds": _seeds(size)},
                       f"E||e_t||^2 / E||e_0||^2 at t = 1, 5: {ratios[0]:.3g}, {ratios[1]:.3g} at {STAB_FACTORS[0]} "
                       f"eta_max; {ratios[2]:.3g}, {ratios[3]:.3g} at {STAB_FACTORS[1]} eta_max (signed SE units "
                       f"{', '.join(f'{v:.1f}' for v in out)})")


@register(id="sgd.typical_vs_mean_square", paper=P, kind="qualitative", tolerance=None,
          statement="Past the second-moment limit the typical run still converges (docs/theory.md §10.3): at 1.1 "
                    "eta_max on the teacher's outputs the exact E||w_t - w_T||^2 grows as rho^t (rho = 1.09) while the "
                    "median of 1e4 engine runs falls by orders of magnitude over 200 steps, and the sample mean "
                    "falls with it: a Monte Carlo mean of 1e4 runs cannot see mean-square divergence here.",
          tolerance_reason="a finding, reported either way: reproduced when the exact second moment at t = 200 is "
                           "above its t = 0 value while the sample median is below 1e-3 of it.")
def typical_vs_mean_square(size="fast", corrupt=None):
    p = _problem()
    lr = STAB_FACTORS[1] * p["limit"]
    e = _sq_error(_runs("kd", "perron", lr, _seeds(size)), p)
    m = closed_form.sgd_moments(p["X"], p["X"] @ p["wT"], p["wT"], lr, STEPS, batch_size=B, cov0=_perron(),
                                record_every=EVERY, keep_cov=False)
    cT = np64(m.basis).T @ p["wT"]
    exact = np.sum(np64(m.var), axis=1) + np.sum((np64(m.mean) - cT) ** 2, axis=1)
    med, mean = np.median(e, axis=0), e.mean(axis=0)
    ok = bool(exact[-1] > exact[0] and med[-1] < 1e-3 * med[0])
    return qualitative(ok, {"median_t200": float(med[-1]), "sample_mean_t200": float(mean[-1])},
                       {"exact_second_moment_t200": float(exact[-1])},
                       params={"eta": lr, "rho": closed_form.sgd_spectral_radius(p["X"], lr, batch_size=B), "seeds": e.shape[0]},
                       note=f"E||e_0||^2 = {exact[0]:.3g}; at t = 200 exact E = {exact[-1]:.3g}, sample mean "
                            f"{mean[-1]:.3g}, median {med[-1]:.3g}; sample mean at t = 20, 60, 100: "
                            + ", ".join(f"{mean[t]:.3g} (exact {exact[t]:.3g})" for t in (1, 3, 5)))


def _log_var(v, se):
    return np.log(v), se / v


def _denoise(pk: tuple, corrupt, seeds: int, mc_seed: int, runs=_runs, kd_steps: int = STEPS) -> dict:
    """Log-variance decay rates of the distilled runs and the raw-label floor, with their z-scores."""
    p = _problem(pk)
    ckd = runs("kd", "zero", p["lr"], seeds, seed=mc_seed, steps=kd_steps, pk=pk)
    mean, cov = _predict("kd", "zero", corrupt, steps=RATE_IDX[1] * EVERY, pk=pk)
    mm = engine.seed_moments(ckd[:, : len(mean)], centre=mean, full=False)
    (l1, s1), (l2, s2) = (_log_var(mm.var[i], mm.se_var[i]) for i in RATE_IDX)
    meas = (l2 - l1) / ((RATE_IDX[1] - RATE_IDX[0]) * EVERY)
    pv = np.diagonal(cov, axis1=1, axis2=2)
    pred = (np.log(pv[RATE_IDX[1]]) - np.log(pv[RATE_IDX[0]])) / ((RATE_IDX[1] - RATE_IDX[0]) * EVERY)
    if apply(corrupt, "gd_rate", False):
        pred = 2.0 * np.log(np.abs(1.0 - p["lr"] * p["lam"]))
    pred = apply(corrupt, "prediction", pred)
    z_rate = (meas - pred) / (np.hypot(s1, s2) / ((RATE_IDX[1] - RATE_IDX[0]) * EVERY))
    craw = runs("raw", "w0", p["lr"], seeds, seed=mc_seed, pk=pk)[:, FLOOR_IDX]
    fmean, fcov = _floor(corrupt, pk)
    raw = engine.seed_moments(craw[:, None], centre=fmean[None], full=False)
    z_floor = (raw.var[0] - np.diag(fcov)) / raw.se_var[0]
    return {"p": p, "meas": meas, "pred": pred, "z_rate": z_rate, "raw": raw, "fcov": fcov, "z_floor": z_floor,
            "ckd": ckd}


def _denoise_at(p):
    r = _denoise(_pk(p), active_corrupt(), FLOOR_RUNS, p["mc_seed"], _point_runs, RATE_IDX[1] * EVERY)
    z = np.concatenate([r["z_rate"], r["z_floor"]])
    return Outcome(measured=z, predicted=np.zeros_like(z))


@register(id="sgd.denoise", paper=P, kind="exact", tolerance=N_SE,
          statement="Distillation as a gradient denoiser, per eigendirection (docs/theory.md §10.4): a student "
                    "trained by SGD on a fixed teacher's outputs Xw_T has residual 0 at w_T, so Var c_k decays "
                    "geometrically (here over t = 20..80 at the rate of the exact recursion, -> rho(L) = 0.858), "
                    "while the student on the raw labels keeps the per-direction floor of docs/theory.md §10.2. "
                    "1e4 engine runs each: log-variance ratios and floors within 4 SE.",
          tolerance_reason=MC_REASON + " The SE of a log-variance ratio adds the two SEs in quadrature (positively "
                                       "correlated estimates: conservative).",
          breakers=(Breaker("each direction decays at its own GD rate (1 - eta lambda_k)^2", lambda flag: True,
                            part="gd_rate"), DOUBLE_B, ADDITIVE),
          point=PointClaim("sgd.denoise", "per-direction log-variance decay rate of 4e3 distilled runs (t = 20..80) "
                           "and raw-label floor variances at t = 200 match the exact recursion and floor: |z| <= 5 "
                           "(SE units)", "exact", _denoise_at, FLOOR_DOMAIN, tolerance=POINT_N_SE,
                           tolerance_reason=POINT_MC_REASON, paper=P))
def denoise(size="fast", corrupt=None):
    r = _denoise(PK, corrupt, _seeds(size), 0)
    p, meas, pred, z_rate, raw, fcov, z_floor, ckd = (r[k] for k in ("p", "meas", "pred", "z_rate", "raw", "fcov",
                                                                     "z_floor", "ckd"))
    err = float(max(np.max(np.abs(z_rate)), np.max(np.abs(z_floor))))
    rho = closed_form.sgd_spectral_radius(p["X"], p["lr"], batch_size=B)
    return ClaimResult(jsonable({"rate": np.exp(meas), "floor": raw.var[0]}),
                       jsonable({"rate": np.exp(pred), "floor": np.diag(fcov)}), err,
                       bool(np.isfinite(err) and err <= N_SE),
                       {"n": N, "d": D, "B": B, "lr": p["lr"], "teacher_steps": T_TEACHER, "window": [20, 80],
                        "seeds": ckd.shape[0]},
                       f"per-step variance decay of the distilled student {np.round(np.exp(meas), 4).tolist()} vs "
                       f"exact {np.round(np.exp(pred), 4).tolist()} (rho(L) = {rho:.4f}; GD rates "
                       f"{np.round((1 - p['lr'] * p['lam']) ** 2, 4).tolist()}); raw-label floor max |z| "
                       f"{np.max(np.abs(z_floor)):.2f}, rate max |z| {np.max(np.abs(z_rate)):.2f}")


@register(id="sgd.shuffled_control", paper=P, kind="qualitative", tolerance=None,
          statement="Negative control (docs/theory.md §10.5): SGD with shuffled epochs (each epoch a permutation cut "
                    "into n/B batches) is not covered by the with-replacement moments. 1e4 engine runs with the same "
                    "data, init and step deviate from them by more than 4 SE; the deviation is measured and stated.",
          tolerance_reason="a negative control, reported either way: reproduced when some mean or covariance entry at "
                           "t = 20..60 or at the floor (t = 200) deviates by more than 4 SE.")
def shuffled_control(size="fast", corrupt=None):
    p = _problem()
    c = _runs("raw", "w0", p["lr"], _seeds(size), sampling="shuffled")
    mean, cov = _predict("raw", "w0", None, steps=60)
    z = _z_entries(c[:, : len(mean)], mean, cov, MOMENT_IDX)
    fmean, fcov = _floor(None)
    zf = _z_entries(c[:, FLOOR_IDX][:, None], fmean[None], fcov[None], (0,))
    tot = float(np.trace(engine.seed_moments(c[:, FLOOR_IDX][:, None], centre=fmean[None]).cov[0]) / np.trace(fcov))
    zmax = float(max(np.max(np.abs(z)), np.max(np.abs(zf))))
    return qualitative(zmax > N_SE, {"max_abs_z_t20_60": float(np.max(np.abs(z))), "max_abs_z_floor": float(np.max(np.abs(zf))),
                                     "total_variance_ratio_floor": tot},
                       "deviation > 4 SE", error=zmax,
                       params={"n": N, "d": D, "B": B, "lr": p["lr"], "seeds": c.shape[0], "epoch_batches": N // B},
                       note=f"shuffled epochs vs with-replacement prediction: max |z| {np.max(np.abs(z)):.1f} at t = 20..60, "
                            f"{np.max(np.abs(zf)):.1f} at the floor; total floor variance x{tot:.3f} of the "
                            "with-replacement floor")


HOM_DIMS = {"fast": (16, 32, 64), "full": (16, 32, 64, 128, 256)}


def _hom_gap(d: int, seed: int) -> float:
    """Max over t of |exact E L(w_t) - homogenized psi_t| / exact (n = 2d, B = 1, eta = 0.5 / tr Sigma)."""
    rng = np.random.default_rng(1000 * d + seed)
    n = 2 * d
    X = rng.standard_normal((n, d)) * np.sqrt(np.linspace(0.5, 2.0, d))
    y = X @ rng.standard_normal(d) / math.sqrt(d) + 0.5 * rng.standard_normal(n)
    lr = 0.5 / float(np.trace(X.T @ X / n))
    m = closed_form.sgd_moments(X, y, None, lr, 5 * d, batch_size=1, keep_cov=False)
    exact = np64(closed_form.sgd_expected_loss(m, X, y))
    hom = closed_form.sgd_homogenized_risk(X, y, None, lr, 5 * d, batch_size=1)
    return float(np.max(np.abs(exact - hom) / exact))


@register(id="sgd.homogenized_gap", paper=P, kind="qualitative", tolerance=None,
          statement="Large n, d (docs/theory.md §10.6): the homogenized-SGD deterministic equivalent of the risk "
                    "(Paquette et al. 2021/2022, reconstructed in discrete time) approaches the exact finite-size "
                    "expected risk of SGD; with n = 2d, B = 1, eta = 0.5/tr(Sigma), 5d steps, the maximum relative gap "
                    "falls at least as fast as 1/sqrt(d) (fitted log-log slope <= -1/2).",
          tolerance_reason="a finding about an approximation, reported either way with the fitted slope; both "
                           "curves are deterministic (no Monte Carlo), 3 data draws per d.")
def homogenized_gap(size="fast", corrupt=None):
    dims = HOM_DIMS[size]
    gaps = np.array([np.mean([_hom_gap(d, s) for s in range(3)]) for d in dims])
    slope = float(np.polyfit(np.log(dims), np.log(gaps), 1)[0])
    return qualitative(slope <= -0.5, {"gap": gaps.tolist(), "slope": slope}, "slope <= -0.5 (1/sqrt(d))",
                       error=slope, params={"d": list(dims), "n": "2d", "B": 1, "steps": "5d"},
                       note="max relative gap " + ", ".join(f"d={d}: {g:.2e}" for d, g in zip(dims, gaps))
                            + f"; log-log slope {slope:.2f}; gap*sqrt(d) = "
                            + ", ".join(f"{g * math.sqrt(d):.3f}" for d, g in zip(dims, gaps)))
