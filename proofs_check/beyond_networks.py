r"""Wide two-layer networks in the lazy regime (docs/theory.md §11), claim ids ``nn.*``.

A network :math:`f(x) = m^{-1/2}\sum_j a_j\phi(w_j^\top x/\sqrt d)` trained by full-batch GD is
predicted by the linear theory on its empirical NTK K (Lee et al. 2019, O(m^{-1/2}) deviation).
Every measurement comes from the linkd engine (``engine.simulate`` on a
:class:`~linkd.networks.TwoLayer`, autodiff, float64); every prediction from :mod:`linkd.ntk` (the
Gram from the two-layer formula, the closed forms of :mod:`linkd.closed_form` in K's eigenbasis).
The two routes share no code. Negative controls (small width, a step past 2/λ_max(K/n), mean-field
scaling) are ``qualitative`` claims: the failure of the linear prediction is measured and reported.

Setting: n = 24 training and 16 test points x ~ N(0, I_4), labels y = tanh(x·(1, 2, 3, 4)/3),
η = 0.9/λ_max(K/n) of each init, 300 GD steps, every step recorded; deviation
:math:`D = \max_t \mathrm{rms}(f_t - f^\text{lin}_t)/\mathrm{rms}(y)` on the train and test points,
averaged over seeds; widths 2^6, 2^8, 2^10, 2^12 (fast, 2 seeds) or 2^6..2^13 (full, 4 seeds).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import erf

from linkd import closed_form, engine, networks, ntk
from linkd.claims import Choice, Domain, Int, Outcome, Real
from linkd.claims import Claim as PointClaim
from linkd.spectral import Spectrum
from proofs_check._common import cached, key, mc_equal, np64, pick
from proofs_check.registry import Breaker, active_corrupt, apply, exact, qualitative, register, scale, upper_bound

__all__ = ["seeds", "widths", "analytic_kernel", "linearized_wide", "deviation_slope", "deviation_rate_lee", "distill_filters", "distill_gap",
           "small_width_breaks", "catapult_breaks", "mean_field_breaks"]

P = "beyond"
N, D, N_TEST = 24, 4, 16
STEPS, EVERY, FRACTION = 300, 1, 0.9
DEV_BOUND = 0.03
SLOPE_BOUND = -0.25
LEE_SLOPE, LEE_SLACK = -0.5, 0.1
T_TEACHER, T_STUDENT, DISTILL_WIDTH = 5, 20, 4096
GAP_MIN_RESIDUAL = 0.05

GF_DECAY = Breaker("gradient-flow decay exp(-lambda t) instead of GD (1 - eta lambda)^t", lambda f: True, part="gf")
ZERO_INIT = Breaker("linearised around f_0 = 0 (the network's initial outputs dropped)", lambda f0: 0.0 * f0, part="f0")
EIGVALS_UP = Breaker("kernel eigenvalues x 1.1 (a wrong kernel scale)", lambda lam: 1.1 * lam, part="eigvals")
HALF_STEP = Breaker("prediction with step eta/2", lambda lr: 0.5 * lr, part="lr")


def widths(size: str) -> tuple:
    return pick(size, (64, 256, 1024, 4096), tuple(2 ** k for k in range(6, 14)))


def seeds(size: str) -> int:
    return pick(size, 2, 4)


@cached
def _data(seed: int = 0):
    kx, kt = jax.random.split(key(seed))
    X = jax.random.normal(kx, (N, D), jnp.float64)
    Xt = jax.random.normal(kt, (N_TEST, D), jnp.float64)
    y = jnp.tanh(X @ jnp.arange(1.0, D + 1.0) / 3.0)
    return X, Xt, y


def _run_uncached(width: int, seed: int, activation: str = "relu", scaling: str = "ntk", fraction: float = FRACTION,
                  steps: int = STEPS, every: int = EVERY, data_seed: int = 0):
    """One network trained by the engine, plus what the prediction needs (from the init only)."""
    X, Xt, y = _data(data_seed)
    p = networks.init_two_layer(key(100 + seed), D, width, activation=activation, scaling=scaling)
    K = ntk.gram_two_layer(p, X)
    sp = ntk.kernel_spectrum(K)
    lr = fraction / float(sp.eigvals[0])
    spec = engine.EngineSpec(family="mse", steps=steps, record_every=every)
    tr = engine.simulate(p, engine.Data(X, y, X_test=Xt), engine.Hyper(lr=lr), spec, check=False)
    return dict(out=np64(tr.metrics["outputs"]), out_test=np64(tr.metrics["test_outputs"]), steps=np.asarray(tr.steps),
                loss=np64(tr.metrics["train_loss"]), bad=int(tr.bad_step), lr=lr, lam=np64(sp.eigvals),
                U=np64(sp.basis), f0=np64(networks.apply(p, X)), f0_test=np64(networks.apply(p, Xt)),
                K_test=np64(ntk.gram_two_layer(p, Xt, X)), final_params=tr.params, y=np64(y))


_run = cached(_run_uncached)
#: Runs of domain points, bounded (~0.3 MB each): nn.linearized_wide and nn.deviation_slope share one domain, so a
#: screen of both trains each width-2^12 network once.
_point_run = functools.lru_cache(maxsize=600)(_run_uncached)


def _predict(r: dict, corrupt):
    """The linearised trajectory on train and test points (docs/theory.md §11) for one run."""
    y = r["y"]
    lam = apply(corrupt, "eigvals", r["lam"])
    f0 = apply(corrupt, "f0", r["f0"])
    f0_test = apply(corrupt, "f0", r["f0_test"])
    sp = Spectrum(jnp.asarray(lam), jnp.asarray(r["U"]))
    lr = apply(corrupt, "lr", r["lr"])
    if apply(corrupt, "gf", False):  # gradient flow at time eta*t in place of GD
        lin = ntk.linearized(sp, f0, y, 1e-9, r["steps"] * (lr / 1e-9), K_test=r["K_test"], f0_test=f0_test)
    else:
        lin = ntk.linearized(sp, f0, y, lr, r["steps"], K_test=r["K_test"], f0_test=f0_test)
    return apply(corrupt, "prediction", (np64(lin.train), np64(lin.test)))


def _deviation(r: dict, corrupt) -> tuple[float, float]:
    """(train, test) deviation max_t rms(f_t - f_t^lin)/rms(y)."""
    y = r["y"]
    pred_train, pred_test = _predict(r, corrupt)
    rms = lambda a: np.sqrt(np.mean(a * a, axis=-1))  # noqa: E731
    scale_y = float(rms(y))
    return float(np.max(rms(r["out"] - pred_train))) / scale_y, float(np.max(rms(r["out_test"] - pred_test))) / scale_y


def _deviations(size: str, activation: str, scaling: str, corrupt) -> np.ndarray:
    """(widths, 2): seed-averaged train/test deviations."""
    return np.array([np.mean([_deviation(_run(m, s, activation, scaling), corrupt) for s in range(seeds(size))], axis=0)
                     for m in widths(size)])


def _slope(ws, dev) -> float:
    return float(np.polyfit(np.log(np.asarray(ws, dtype=np.float64)), np.log(dev), 1)[0])


# ------------------------------------------------------------------------------ the kernel


def _kernel_measure_uncached(width: int, activation: str, seed: int = 7, d: int = 7, x_scale: float = 1.0):
    """Empirical NTK by autodiff (ntk.gram) and the Monte Carlo SE of each entry from per-neuron terms."""
    kx, kp = jax.random.split(key(seed))
    X = x_scale * jax.random.normal(kx, (6, d), jnp.float64)
    p = networks.init_two_layer(kp, d, width, activation=activation)
    K = np64(ntk.gram(p, X).K)
    W, a, Xn = np64(p.W), np64(p.a), np64(X)
    U = Xn @ W.T / math.sqrt(d)  # (n, m)
    if activation == "relu":
        h, dh = np.maximum(U, 0.0), (U > 0).astype(np.float64)
    else:
        h, dh = erf(U), 2.0 / math.sqrt(math.pi) * np.exp(-U * U)
    terms = h[:, None, :] * h[None, :, :] + (Xn @ Xn.T / d)[:, :, None] * (a * a)[None, None, :] * dh[:, None, :] * dh[None, :, :]
    se = terms.std(axis=-1, ddof=1) / math.sqrt(width)
    return K, se, Xn


_kernel_measure = cached(_kernel_measure_uncached)
_point_kernel = functools.lru_cache(maxsize=8)(_kernel_measure_uncached)


def _theta(X, act: str, corrupt) -> np.ndarray:
    """The analytic NTK on X (breakers: unscaled inputs, a wrong degree-0 term, the NNGP only)."""
    Xp = jnp.asarray(apply(corrupt, "X", X))
    terms = apply(corrupt, "terms", "ntk")
    theta = np64(ntk.analytic_ntk(Xp, activation=act))
    if terms != "ntk":
        nngp = np64(ntk.analytic_nngp(Xp, activation=act))
        theta = nngp if terms == "nngp" else nngp + 2.0 * (theta - nngp)
    return theta


def _kernel_at(p):
    """Upper-triangle entries of the empirical and analytic NTK, each divided by its Monte Carlo SE."""
    K, se, X = _point_kernel(2 ** 15, p["activation"], p["seed"], p["d"], p["x_scale"])
    iu = np.triu_indices(6)
    theta = _theta(X, p["activation"], active_corrupt())
    return Outcome(measured=K[iu] / se[iu], predicted=theta[iu] / se[iu])


#: Hypotheses of the infinite-width NTK (Cho & Saul 2009, Williams 1997): w_j ~ N(0, I_d), a_j ~ N(0, 1) i.i.d.,
#: any inputs (6 points, x ~ N(0, x_scale^2 I_d), d in {7, 3}), ReLU or erf; the empirical Gram is the mean of
#: m i.i.d. per-neuron terms, so it is compared in Monte Carlo SE; width m = 2^15 as in the fixed run (each
#: shape (d, m, activation) costs a compilation of the autodiff Gram: kept to 4).
KERNEL_DOMAIN = Domain(seed=Int(0, 999, default=7), activation=Choice(("relu", "erf")), d=Choice((7, 3)),
                       x_scale=Real(0.3, 3.0, default=1.0))


@register(id="nn.analytic_kernel", paper=P, kind="exact", tolerance=4.0,
          statement="Infinite-width NTK of f = m^{-1/2} sum_j a_j phi(w_j.x/sqrt d), w ~ N(0, I), a ~ N(0, 1): "
                    "Theta = E[phi phi'] + (x.x'/d) E[phi' phi'] (ReLU: arc-cosine kernels of degree 1 and 0, Cho & Saul "
                    "2009; erf: Williams 1997) equals the empirical NTK Gram J J^T (autodiff, ntk.gram) at large width "
                    "within 4 Monte Carlo SE per entry (6 points, d = 7, ReLU and erf).",
          tolerance_reason="the empirical Gram is a mean of m i.i.d. per-neuron terms; SE = their standard deviation / "
                           "sqrt(m), per entry; 4 SE over 2 x 21 distinct entries.",
          breakers=(scale(1.05), Breaker("inputs not scaled by 1/sqrt(d)", lambda X: X * math.sqrt(7.0), part="X"),
                    Breaker("degree-0 term (pi - theta)/pi instead of /(2 pi)", lambda t: "double", part="terms"),
                    Breaker("first-layer (degree-0) term dropped: the NNGP only", lambda t: "nngp", part="terms")),
          point=PointClaim("nn.analytic_kernel", "empirical NTK Gram (autodiff) = analytic NTK entrywise within 5 Monte "
                           "Carlo SE (6 points; measured and predicted in SE units)", "exact", _kernel_at, KERNEL_DOMAIN,
                           tolerance=5.0,
                           tolerance_reason="21 entries per point, ~2700 per --domain 128 screen: 5 SE (P(|z| > 5) = "
                                            "5.7e-7 each) keeps a correct claim's screen from failing by chance; the fixed "
                                            "run's 4 SE is for its 42 entries.", paper=P))
def analytic_kernel(size="fast", corrupt=None):
    width = pick(size, 2 ** 15, 2 ** 18)
    meas, pred, se = [], [], []
    for act in ("relu", "erf"):
        K, s, X = _kernel_measure(width, act)
        theta = _theta(X, act, corrupt)
        iu = np.triu_indices(6)
        meas.append(K[iu]), pred.append(apply(corrupt, "prediction", theta)[iu]), se.append(s[iu])
    res = mc_equal(np.concatenate(meas), np.concatenate(pred), np.concatenate(se), n_se=4.0,
                   params={"width": width, "n": 6, "d": 7, "activations": ["relu", "erf"]})
    res.note = f"upper-triangle entries, ReLU then erf; max relative SE {float(np.max(np.concatenate(se) / np.abs(np.concatenate(pred)))):.2g}"
    return res


# ------------------------------------------------------------------------------ trajectories


def _point_dev(p, width: int) -> np.ndarray:
    """(train, test) deviation of one network (init seed, data seed, activation, step) at a domain point."""
    r = _point_run(width, p["seed"], p["activation"], "ntk", p["fraction"], STEPS, EVERY, p["data_seed"])
    return np.asarray(_deviation(r, active_corrupt()))


#: The bound of the point form (one network per point, any draw): ~5.8 m^-1/2 at m = 2^12. The fixed run's 0.03 holds
#: for its draws; the screens (256 points) measured up to 0.068 (ReLU, eta lambda_max = 1.39, test deviation).
POINT_DEV_BOUND = 0.09


def _linearized_at(p):
    return Outcome(measured=_point_dev(p, widths("fast")[-1]), predicted=POINT_DEV_BOUND)


#: Hypotheses of the lazy regime (Lee et al. 2019): NTK scaling, a wide network (m = 2^12, the fixed run's
#: largest fast width), a step below the GD limit of the kernel, eta lambda_max(K/n) = fraction in [0.1, 1.5]
#: (< 2; the fixed run has 0.9), any init and data draw (seed, data_seed), ReLU or erf, 300 GD steps. One network
#: per point (the fixed run averages 2 seeds). One training of width 2^12 (300 steps) is ~0.5-1 s a point: the
#: cost of an honest point, over the 0.5 s budget. Bound: POINT_DEV_BOUND (the deviation is O(m^-1/2) with a
#: draw-dependent constant; 0.03 at width 2^12 is the fixed draws' level, not the domain's).
LINEARIZED_DOMAIN = Domain(seed=Int(0, 999, default=0), data_seed=Int(0, 999, default=0),
                           activation=Choice(("relu", "erf")), fraction=Real(0.1, 1.5, default=FRACTION))


@register(id="nn.linearized_wide", paper=P, kind="bound", tolerance=0.0,
          statement=f"A wide network follows its linearisation: at the largest width (2^12 fast, 2^13 full) the "
                    f"deviation max_t rms(f_t - f_t^lin)/rms(y) of the GD-trained network from f_t = y + (I - eta K/n)^t "
                    f"(f_0 - y) (train) and f_t(x) = f_0(x) + K(x,X) U diag((1-(1-eta lambda_k)^t)/kappa_k) U^T (y - f_0) "
                    f"(test) is <= {DEV_BOUND} for ReLU and erf (eta = 0.9/lambda_max(K/n), 300 steps) at the fixed "
                    f"draws; over other draws and steps the bound is {POINT_DEV_BOUND} (the domain form).",
          tolerance_reason="a bound on a measured deviation (ReLU ~0.009/0.013 train/test at 2^12, erf ~0.001/0.003); "
                           f"{DEV_BOUND} leaves a factor 2 for other seeds. Lee et al. 2019 bound it by O(m^-1/2).",
          breakers=(GF_DECAY, ZERO_INIT, EIGVALS_UP, HALF_STEP),
          point=PointClaim("nn.linearized_wide", f"(train, test) deviation max_t rms(f_t - f_t^lin)/rms(y) of one GD-"
                           f"trained network of width 2^12 from its linearisation <= {POINT_DEV_BOUND} (~5.8 m^-1/2)",
                           "bound", _linearized_at, LINEARIZED_DOMAIN, tolerance=0.0,
                           tolerance_reason="Lee et al. bound the deviation by C m^-1/2 with a constant that depends on "
                                            "the draw and the step: measured up to 0.068 over 256 domain points (ReLU, "
                                            "eta lambda_max = 1.39; 0.060 at 0.92), against 0.009-0.016 at the fixed draws; "
                                            f"{POINT_DEV_BOUND} leaves a factor 1.3; the breakers give >= 0.10 at the "
                                            "default point.", paper=P))
def linearized_wide(size="fast", corrupt=None):
    m = widths(size)[-1]
    devs = {act: np.mean([_deviation(_run(m, s, act), corrupt) for s in range(seeds(size))], axis=0)
            for act in ("relu", "erf")}
    meas = np.concatenate([devs["relu"], devs["erf"]])
    return upper_bound(meas, DEV_BOUND, params={"width": m, "seeds": seeds(size), "n": N, "d": D, "steps": STEPS},
                       note="measured: (train, test) deviation for ReLU, then erf")


def _slopes(size: str, corrupt) -> tuple[np.ndarray, dict]:
    """Log-log slopes (ReLU train, ReLU test, erf train, erf test) of the deviation against the width."""
    ws = widths(size)
    slopes, devs = [], {}
    for act in ("relu", "erf"):
        dv = _deviations(size, act, "ntk", corrupt)
        devs[act] = dv.round(6).tolist()
        slopes += [_slope(ws, dv[:, 0]), _slope(ws, dv[:, 1])]
    return np.array(slopes), {"widths": list(ws), "seeds": seeds(size), **devs}


SLOPE_WIDTHS = widths("fast")


def _slope_at(p):
    dv = np.array([_point_dev(p, m) for m in SLOPE_WIDTHS])
    return Outcome(measured=np.array([_slope(SLOPE_WIDTHS, dv[:, 0]), _slope(SLOPE_WIDTHS, dv[:, 1])]),
                   predicted=SLOPE_BOUND)


#: Hypotheses as LINEARIZED_DOMAIN (the same domain: a screen of both claims shares the width-2^12 runs) over the
#: fast widths 2^6..2^12, one network per width and point (the fixed run averages 2 seeds); 4 trainings a point:
#: the most expensive point form here (~1-2 s a point). The statement does NOT hold over this domain (a finding,
#: docs/theory.md §11.3): single ReLU inits give train slopes as flat as -0.08 at eta lambda_max ~ 1.1 and -0.09 at
#: 0.77 (seed 509, data_seed 299; 3-4 of 129 points per screen), so the fast-width rate is not uniform over draws;
#: the domain is kept at the hypotheses rather than narrowed around the failures.
SLOPE_DOMAIN = LINEARIZED_DOMAIN


@register(id="nn.deviation_slope", paper=P, kind="bound", tolerance=0.0,
          statement=f"The deviation of the network from its linearisation vanishes with the width m as a power law: "
                    f"its log-log slope over the widths (2^6..2^12 fast, 2^6..2^13 full) is <= {SLOPE_BOUND} for the "
                    f"train and test deviations of ReLU and erf networks (nn.deviation_rate_lee compares it with the "
                    f"-0.5 of Lee et al. 2019).",
          tolerance_reason="measured slopes (fast): ReLU -0.33 (train) and -0.55 (test), erf -0.95 and -0.88; "
                           f"{SLOPE_BOUND} is the bound with room for seed noise (slope SE ~0.05 at 2 seeds); a "
                           "prediction off by a constant makes the deviation level off (slope > -0.25).",
          breakers=(EIGVALS_UP, ZERO_INIT),
          point=PointClaim("nn.deviation_slope", f"log-log slopes (train, test) of one network's deviation from its "
                           f"linearisation over widths 2^6..2^12 <= {SLOPE_BOUND}", "bound", _slope_at, SLOPE_DOMAIN,
                           tolerance=0.0, paper=P))
def deviation_slope(size="fast", corrupt=None):
    slopes, params = _slopes(size, corrupt)
    return upper_bound(slopes, SLOPE_BOUND, params=params,
                       note="measured: slopes (ReLU train, ReLU test, erf train, erf test)")


@register(id="nn.deviation_rate_lee", paper=P, kind="qualitative", tolerance=None,
          statement=f"Lee et al. (2019): the deviation of a wide network from its linearisation is O(m^-1/2); "
                    f"reproduced when every fitted slope (ReLU and erf, train and test) is <= {LEE_SLOPE} + {LEE_SLACK} "
                    f"over the widths 2^6..2^12 (fast) or 2^6..2^13 (full).",
          tolerance_reason=f"a measured finding reported either way; {LEE_SLACK} allows the seed noise of a fit over "
                           f"4-8 widths.")
def deviation_rate_lee(size="fast", corrupt=None):
    slopes, params = _slopes(size, None)
    worst = float(np.max(slopes))
    return qualitative(worst <= LEE_SLOPE + LEE_SLACK, slopes, f"<= {LEE_SLOPE + LEE_SLACK}", error=worst, params=params,
                       note="slopes (ReLU train, ReLU test, erf train, erf test); O(m^-1/2) is slope -0.5")


# ------------------------------------------------------------------------------ distillation


def _distill_uncached(width: int, seed: int = 0, T: int = T_TEACHER, fraction: float = FRACTION, data_seed: int = 0,
                      activation: str = "relu"):
    """Teacher network T steps on y, then a student from the same init distilled on its train outputs."""
    X, _, y = _data(data_seed)
    p = networks.init_two_layer(key(300 + seed), D, width, activation=activation)
    sp = ntk.kernel_spectrum(ntk.gram_two_layer(p, X))
    lr = fraction / float(sp.eigvals[0])
    teacher = engine.simulate(p, engine.Data(X, y), engine.Hyper(lr=lr), engine.EngineSpec(steps=T), check=False)
    zT = teacher.metrics["outputs"][-1]
    student = engine.simulate(p, engine.Data(X, zT), engine.Hyper(lr=lr), engine.EngineSpec(steps=T_STUDENT),
                              check=False)
    f0 = networks.apply(p, X)
    q = np64(ntk.eigen_progress(sp, student.metrics["outputs"], f0, y))
    den = np.abs(np64(sp.basis.T @ (y - f0)))
    sel = np.flatnonzero(den > 0.1 * np.linalg.norm(np64(y - f0)))  # directions the target excites
    return q, sel, Spectrum(sp.eigvals, sp.basis), lr


_distill = cached(_distill_uncached)
_point_distill = functools.lru_cache(maxsize=300)(_distill_uncached)  # shared by nn.distill_filters and nn.distill_gap


def _distill_point(p):
    return _point_distill(DISTILL_WIDTH, p["seed"], p["T"], p["fraction"], p["data_seed"], p["activation"])


def _filters_at(p):
    """Progress q_k(t), t = 0..20, of the distilled student network against the §2.2 filters, selected directions."""
    q, sel, sp, lr = _distill_point(p)
    T = apply(active_corrupt(), "T_teacher", p["T"])
    F = np64(ntk.distillation_progress(sp, lr, T, np.arange(T_STUDENT + 1)))
    return Outcome(measured=q[:, sel], predicted=F[:, sel])


def _gap_at(p):
    """Matched-progress gap read off the student network against closed_form.exaggeration_gap."""
    q, sel, sp, lr = _distill_point(p)
    lam = np64(sp.eigvals)
    meas = np64(closed_form.exaggeration_gap_from_progress(lam[sel], lr, q[-1, sel], min_residual=GAP_MIN_RESIDUAL).gap)
    T = apply(active_corrupt(), "T_teacher", p["T"])
    pred = np64(closed_form.exaggeration_gap(lam[sel], lr, T, T_STUDENT).gap)
    ok = np.isfinite(meas)
    return Outcome(measured=meas[ok], predicted=pred[ok])


#: Hypotheses of lazy-regime distillation: a wide network (m = 2^12, NTK scaling), teacher and student from the
#: same init, monotone GD filters on K (eta lambda_max(K/n) = fraction in [0.1, 1]), teacher time T in {2, 5, 10}
#: (fixed 5), student time t = 0..20, any init and data draw, ReLU or erf. The gap's tolerance is scaled for the
#: amplification its reason names (GAP_POINT_TOL): at T = 10 more rows end near the 1 - q = 0.05 cut-off.
GAP_POINT_TOL = 0.025
DISTILL_DOMAIN = Domain(seed=Int(0, 999, default=0), data_seed=Int(0, 999, default=0), T=Choice((5, 2, 10)),
                        fraction=Real(0.1, 1.0, default=FRACTION), activation=Choice(("relu", "erf")))


@register(id="nn.distill_filters", paper=P, kind="exact", tolerance=0.01,
          statement="Distillation in the lazy regime is linear distillation on K: a ReLU student network (width 2^12) "
                    "started from the teacher network's init and trained t steps on the teacher's train outputs "
                    "(teacher: T = 5 GD steps on y) has progress q_k(t) = u_k^T(f_t - f_0)/u_k^T(y - f_0) = "
                    "(1-(1-eta lambda_k)^t)(1-(1-eta lambda_k)^T) along K's eigenvectors (the §2.2 filters with "
                    "lambda_k = kappa_k/n), t = 0..20, directions with |u_k^T(y - f_0)| > 0.1 ||y - f_0||.",
          tolerance_reason="the lazy-regime deviation at width 2^12 (measured max error ~0.0025); 0.01 leaves a factor 4.",
          breakers=(scale(1.1), Breaker("teacher filter dropped (student filter only)", lambda T: 10 ** 6,
                                        part="T_teacher")),
          point=PointClaim("nn.distill_filters", "distilled student network progress q_k(t) = (1-(1-eta lambda_k)^t)"
                           "(1-(1-eta lambda_k)^T) along K's eigenvectors, t = 0..20, within 0.01", "exact", _filters_at,
                           DISTILL_DOMAIN, tolerance=0.01, paper=P))
def distill_filters(size="fast", corrupt=None):
    q, sel, sp, lr = _distill(DISTILL_WIDTH)
    lam = np64(sp.eigvals)
    T = apply(corrupt, "T_teacher", T_TEACHER)
    F = np64(ntk.distillation_progress(sp, lr, T, np.arange(T_STUDENT + 1)))
    return exact(q[:, sel], apply(corrupt, "prediction", F[:, sel]), 0.01,
                 params={"width": DISTILL_WIDTH, "T_teacher": T_TEACHER, "t_student": T_STUDENT, "directions": sel,
                         "eta_lambda": (lr * lam[sel]).round(4)},
                 shown=(q[-1, sel], F[-1, sel]), note="shown: final progress per selected direction")


@register(id="nn.distill_gap", paper=P, kind="exact", tolerance=0.01,
          statement="The exaggeration gap of §2.2 holds for a real network in K's eigenbasis: the matched-progress gap "
                    "measured from the distilled student network (width 2^12, T = 5, t = 20; rows with residual "
                    "1 - q_i >= 0.05) equals closed_form.exaggeration_gap(kappa/n, eta, T, t) within 0.01 at the "
                    "fixed draw (0.025 over other draws and T in {2, 5, 10}: the domain form).",
          tolerance_reason="the gap is read off measured progress through tau* = ln(1-q_i)/ln(1-eta lambda_i): the "
                           "lazy-regime deviation (~0.003 in q) is amplified by 1/(1-q_i) <= 20; measured error ~5e-4.",
          breakers=(Breaker("gap at teacher time 2T", lambda T: 2 * T, part="T_teacher"), scale(1.5)),
          point=PointClaim("nn.distill_gap", "matched-progress gap of the distilled student network = "
                           f"closed_form.exaggeration_gap(kappa/n, eta, T, 20) within {GAP_POINT_TOL}", "exact", _gap_at,
                           DISTILL_DOMAIN, tolerance=GAP_POINT_TOL,
                           tolerance_reason="the lazy-regime deviation in q (<= 0.003) amplified by 1/(1 - q_i) <= 20 "
                                            "through tau*: measured up to 0.0163 over 256 domain points (T = 10, where rows "
                                            "reach 1 - q ~ 0.05), 0.005 at the fixed draw; 0.025 leaves a factor 1.5 (the "
                                            "full 20 x 0.003 = 0.06 would pass the breakers, which give >= 0.043 at the "
                                            "default point).", paper=P))
def distill_gap(size="fast", corrupt=None):
    q, sel, sp, lr = _distill(DISTILL_WIDTH)
    lam = np64(sp.eigvals)
    meas = np64(closed_form.exaggeration_gap_from_progress(lam[sel], lr, q[-1, sel], min_residual=GAP_MIN_RESIDUAL).gap)
    T = apply(corrupt, "T_teacher", T_TEACHER)
    pred = apply(corrupt, "prediction", np64(closed_form.exaggeration_gap(lam[sel], lr, T, T_STUDENT).gap))
    ok = np.isfinite(meas)
    return exact(meas[ok], pred[ok], 0.01, params={"width": DISTILL_WIDTH, "pairs": int(ok.sum())},
                 shown=(meas[ok], pred[ok]), note="entries: the defined (row, column) pairs")


# ------------------------------------------------------------------------------ negative controls


@register(id="nn.small_width_breaks", paper=P, kind="qualitative", tolerance=None,
          statement="Negative control: at width 16 the linear prediction fails; the ReLU network's train deviation is "
                    ">= 5x the deviation at the largest width (measured, not assumed).",
          tolerance_reason="a measured finding reported either way (factor 5: the width-16 deviation of a lazy network "
                           "would be ~sqrt(4096/16) = 16x the width-4096 one at slope -1/2).")
def small_width_breaks(size="fast", corrupt=None):
    small = np.mean([_deviation(_run(16, s), None) for s in range(seeds(size))], axis=0)
    large = np.mean([_deviation(_run(widths(size)[-1], s), None) for s in range(seeds(size))], axis=0)
    ratio = float(small[0] / large[0])
    return qualitative(ratio >= 5.0, {"width16": small, "largest": large}, "ratio >= 5", error=ratio,
                       params={"largest_width": widths(size)[-1]}, note=f"train-deviation ratio {ratio:.3g}")


@register(id="nn.catapult_breaks", paper=P, kind="qualitative", tolerance=None,
          statement="Negative control: a step past 2/lambda_max(K/n) (eta = 2.6/lambda_max, ReLU, width 2^11): the "
                    "linear prediction diverges like |1 - eta lambda_1|^t while the network catapults (Lewkowycz et "
                    "al. 2020): its loss spikes, lambda_max of its NTK falls below 2/eta, and it converges.",
          tolerance_reason="a measured finding reported either way: reproduced when the final network loss is below "
                           "its initial loss, the final lambda_max(K/n) < 2/eta, and the linear loss exceeds 1e6 x initial.")
def catapult_breaks(size="fast", corrupt=None):
    r = _run(2048, 0, "relu", "ntk", 2.6, STEPS, 1)
    X, _, y = _data()
    lin_train, _ = _predict(r, None)
    lin_loss = 0.5 * np.mean((lin_train - np64(y)) ** 2, axis=-1)
    lam_T = float(ntk.kernel_spectrum(ntk.gram_two_layer(r["final_params"], X)).eigvals[0])
    L = r["loss"]
    ok = bool(np.isfinite(L[-1]) and L[-1] < L[0] and lam_T < 2.0 / r["lr"] and lin_loss[-1] > 1e6 * L[0])
    meas = {"net_loss_0": L[0], "net_loss_peak": float(np.max(L)), "peak_step": int(np.argmax(L)),
            "net_loss_final": L[-1], "lambda_max_init": float(r["lam"][0]), "lambda_max_final": lam_T,
            "two_over_eta": 2.0 / r["lr"]}
    return qualitative(ok, meas, {"linear_loss_final": float(lin_loss[-1])}, error=float(L[-1]),
                       params={"width": 2048, "eta_lambda_max": 2.6, "steps": STEPS})


@register(id="nn.mean_field_breaks", paper=P, kind="qualitative", tolerance=None,
          statement="Negative control: with the mean-field scaling m^-1 (eta = 0.9/lambda_max(K/n), K ~ Theta/m, so "
                    "eta ~ m) the features move and the deviation from the linear prediction does not shrink: its "
                    "log-log slope over the widths is > -0.15 and it stays >= 0.05 at the largest width.",
          tolerance_reason="a measured finding reported either way (the NTK-scaled slope is <= -0.35).")
def mean_field_breaks(size="fast", corrupt=None):
    ws = widths(size)
    dv = _deviations(size, "relu", "mean_field", None)
    slope = _slope(ws, dv[:, 0])
    ok = bool(slope > -0.15 and dv[-1, 0] >= 0.05)
    return qualitative(ok, {"slope": slope, "deviation": dv[:, 0]}, "slope > -0.15, deviation >= 0.05", error=slope,
                       params={"widths": list(ws), "seeds": seeds(size)})
