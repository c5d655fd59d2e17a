"""Nagarajan, Menon, Bhojanapalli, Mobahi, Kumar (NeurIPS 2023), theory.md §2: exaggerated implicit
bias of GD under distillation (linear regression), late distillation, confidence exaggeration,
gradient denoising."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form, data, losses, metrics
from proofs_check._common import ROUNDOFF, cached, eig, key, monotone, np64, pick, sim, until
from proofs_check.registry import Breaker, ClaimResult, apply, exact, qualitative, register, scale

P = "nagarajan"
N, D, T_TEACHER, T_STUDENT = 20, 50, 30, 45

SHIFT_EIGS = Breaker("eigenvalues shifted by +1e-3 * lambda_max (lambda > 0)",
                     lambda lam: np.where(lam > 0, lam + 1e-3 * lam.max(), 0.0), part="eigvals")
DROP_TEACHER = Breaker("teacher filter factor dropped (T -> infinity)", lambda T: 10**7, part="T_teacher")


@cached
def _setup(size):
    k1, k2, k3 = jax.random.split(key(31), 3)
    lam_pop = data.power_law_spectrum(D, 1.0)
    X = data.gaussian_design(k1, N, lam_pop)
    w_star = data.linear_teacher(k2, lam_pop)
    y = data.regression_labels(k3, X, w_star, noise=0.5)
    lam, V = eig(X)
    lr = 0.9 / lam[0]  # eta * lambda_max = 0.9 (monotone filters, theory.md §2.2)
    c_star = V.T @ np64(jnp.linalg.pinv(X) @ y)
    return X, y, lam, V, lr, c_star


@cached
def _teacher_student(size):
    X, y, lam, V, lr, c_star = _setup(size)
    tT = sim(jnp.zeros(D), X, y, lr, T_TEACHER, basis=V)
    w_T = tT.params
    yhat = X @ w_T
    tS = sim(jnp.zeros(D), X, yhat, lr, T_STUDENT, basis=V)
    return np64(tT.coeffs), np64(tS.coeffs), np64(w_T)


def _err_tol(c_star):
    return ROUNDOFF * max(1.0, float(np.max(np.abs(c_star))))


@register(id="ng.teacher_filter", paper=P, kind="exact", tolerance=ROUNDOFF,
          statement="Teacher trained T=30 GD steps from 0 on y (MSE, n=20, d=50, eta*lambda_max=0.9): "
                    "c_k(t) = (1-(1-eta lambda_k)^t) c_k* at every step t = 0..30 (lambda_k = 0 directions stay 0).",
          tolerance_reason="float64 round-off (theory.md reports 4e-16); error relative to max|c*|.",
          breakers=(scale(), SHIFT_EIGS))
def teacher_filter(size="fast", corrupt=None):
    X, y, lam, V, lr, c_star = _setup(size)
    cT, _, _ = _teacher_student(size)
    t = np.arange(T_TEACHER + 1)
    pred = np64(closed_form.gd_filter(apply(corrupt, "eigvals", lam), lr, t)) * c_star[None, :]
    pred = apply(corrupt, "prediction", pred)
    res = exact(cT / max(1.0, np.abs(c_star).max()), np64(pred) / max(1.0, np.abs(c_star).max()), ROUNDOFF,
                params={"n": N, "d": D, "T": T_TEACHER, "lr": lr, "rank": int((lam > 0).sum())},
                shown=(float(np.linalg.norm(cT[-1])), float(np.linalg.norm(np64(pred)[-1]))),
                note="shown: ||c(T)|| simulated vs closed form")
    return res


@register(id="ng.student_filter", paper=P, kind="exact", tolerance=ROUNDOFF,
          statement="Student trained t=45 steps from 0 on the teacher's train predictions (teacher T=30): "
                    "c_k(t) = (1-(1-eta lambda_k)^t)(1-(1-eta lambda_k)^T) c_k* for every t = 0..45.",
          tolerance_reason="float64 round-off; error relative to max|c*|.",
          breakers=(scale(), SHIFT_EIGS, DROP_TEACHER))
def student_filter(size="fast", corrupt=None):
    X, y, lam, V, lr, c_star = _setup(size)
    _, cS, _ = _teacher_student(size)
    t = np.arange(T_STUDENT + 1)
    lam_p = apply(corrupt, "eigvals", lam)
    pred = np64(closed_form.teacher_student_filters(lam_p, lr, apply(corrupt, "T_teacher", T_TEACHER), t)) * c_star[None, :]
    pred = apply(corrupt, "prediction", pred)
    s = max(1.0, np.abs(c_star).max())
    return exact(cS / s, np64(pred) / s, ROUNDOFF, params={"n": N, "d": D, "T": T_TEACHER, "t": T_STUDENT, "lr": lr},
                 shown=(float(np.linalg.norm(cS[-1])), float(np.linalg.norm(np64(pred)[-1]))),
                 note="shown: ||c_S(t)|| simulated vs closed form")


def _grid_gap(corrupt):
    """min over a (T, t) grid and two spectra of the closed-form pairwise gap; the student's
    progress is computed from teacher_student_filters (eigvals_student may be corrupted)."""
    worst = np.inf
    for lam in (np64(data.power_law_spectrum(12, 1.0)), np64(data.exponential_spectrum(12, 0.5))):
        lr = 0.9 / lam.max()
        for T in (1, 3, 10, 30, 100, 300):
            for t in (1, 2, 5, 20, 60, 200, 1000):
                g1 = np64(closed_form.exaggeration_gap(lam, lr, T, t))
                q = np64(closed_form.teacher_student_filters(apply(corrupt, "eigvals_student", lam), lr, T, t))
                g2 = np64(closed_form.exaggeration_gap_from_progress(lam, lr, q))
                worst = min(worst, float(g1.min()), float(g2.min()))
    return worst


def _fab_grid():
    """Direct check of f(ab) >= f(a) f(b), f(x) = 1-(1-x)^r, on a 400^2 grid for 6 r in (0,1] (theory §2.2)."""
    a = np.linspace(0.0, 1.0, 400)
    A, B = np.meshgrid(a, a)
    f = lambda x, r: 1.0 - (1.0 - x) ** r  # noqa: E731
    return min(float(np.min(f(A * B, r) - f(A, r) * f(B, r))) for r in (0.05, 0.1, 0.3, 0.5, 0.8, 1.0))


@register(id="ng.exaggeration_gap_closed_form", paper=P, kind="bound", tolerance=1e-12,
          statement="Exaggeration (derived, theory.md §2.2): for lambda_i > lambda_j > 0, at matched progress on i the "
                    "student has progressed less on j: q_j^T(tau*) - q_j^S(t;T) >= 0 on a grid of T in 1..300, t in 1..1000, "
                    "two spectra; and f(ab) >= f(a)f(b) on a 400^2 grid, 6 values of r.",
          tolerance_reason="a lower bound 0 checked in float64; -1e-12 allows round-off in exp/log of the residuals.",
          breakers=(Breaker("student filter built from a flattened spectrum sqrt(lambda*lambda_max)",
                            lambda lam: np.sqrt(lam * lam.max()), part="eigvals_student"),))
def exaggeration_gap_closed_form(size="fast", corrupt=None):
    g = _grid_gap(corrupt)
    fab = _fab_grid()
    worst = min(g, fab)
    return ClaimResult(worst, 0.0, -worst, bool(worst >= -1e-12),
                       {"min_gap": g, "min_f(ab)-f(a)f(b)": fab},
                       "measured: smallest gap over the grid (predicted lower bound 0); error = -min")


@cached
def _sim_gaps(size):
    X, y, lam, V, lr, c_star = _setup(size)
    out = []
    for T in pick(size, (5, 30), (2, 5, 30, 100)):
        w_T = sim(jnp.zeros(D), X, y, lr, T).params
        tS = sim(jnp.zeros(D), X, X @ w_T, lr, 200, basis=V)
        out.append((T, np64(tS.coeffs)))
    return out


@register(id="ng.exaggeration_gap_simulated", paper=P, kind="bound", tolerance=1e-9,
          statement="Exaggeration measured from simulation: the simulated student's progress q^S (teachers T = 5, 30; "
                    "student steps 0..200) satisfies q_j^T(tau*_i) - q_j^S >= 0 for all lambda_i > lambda_j > 0.",
          tolerance_reason="measured progress carries ~1e-15 round-off that tau* = ln(1-q)/ln(1-eta lambda) amplifies; "
                           "converged directions (1-q < 1e-8) are left out (exaggeration_gap_from_progress).",
          breakers=(Breaker("teacher path with eigenvalues lambda^2/lambda_max (wrong spectrum)",
                            lambda lam: lam ** 2 / lam.max(), part="eigvals"),))
def exaggeration_gap_simulated(size="fast", corrupt=None):
    X, y, lam, V, lr, c_star = _setup(size)
    keep = (lam > 0) & (np.abs(c_star) > 1e-8)
    worst = np.inf
    for T, c in _sim_gaps(size):
        q = c[1:, keep] / c_star[None, keep]
        lam_k = apply(corrupt, "eigvals", lam[keep])
        for qt in q:
            worst = min(worst, float(np64(closed_form.exaggeration_gap_from_progress(lam_k, lr, qt)).min()))
    return ClaimResult(worst, 0.0, -worst, bool(worst >= -1e-9), {"teachers_T": [T for T, _ in _sim_gaps(size)],
                                                                   "student_steps": 200, "lr": lr},
                       "measured: smallest gap over all pairs and steps (lower bound 0)")


@cached
def _interp(size):
    X, y, lam, V, lr, c_star = _setup(size)
    w_T = until(jnp.zeros(D), X, y, lr, family="mse", grad_tol=1e-13).params  # interpolating teacher (n < d)
    tS = sim(jnp.zeros(D), X, X @ w_T, lr, T_STUDENT, basis=V)
    return np64(tS.coeffs), np64(w_T)


@register(id="ng.no_exaggeration_interpolating_teacher", paper=P, kind="exact", tolerance=1e-8,
          statement="No exaggeration when the teacher interpolates (T -> inf, n < d): y_hat = y, so the student's path "
                    "equals the teacher's path: c_k^S(t) = (1-(1-eta lambda_k)^t) c_k* (no teacher factor).",
          tolerance_reason="the teacher is stopped at ||grad|| <= 1e-13, leaving |y_hat - y| ~ 1e-12..1e-10; 1e-8 relative "
                           "to max|c*| covers it.",
          breakers=(scale(), Breaker("a finite teacher factor T=30 kept", lambda T: T_TEACHER, part="T_teacher")))
def no_exaggeration_interpolating(size="fast", corrupt=None):
    X, y, lam, V, lr, c_star = _setup(size)
    cS, _ = _interp(size)
    t = np.arange(T_STUDENT + 1)
    T = apply(corrupt, "T_teacher", None)
    f = np64(closed_form.gd_filter(lam, lr, t)) if T is None else np64(closed_form.teacher_student_filters(lam, lr, T, t))
    pred = apply(corrupt, "prediction", f * c_star[None, :])
    s = max(1.0, np.abs(c_star).max())
    return exact(cS / s, np64(pred) / s, 1e-8, params={"t": T_STUDENT, "lr": lr},
                 shown=(float(np.linalg.norm(cS[-1])), float(np.linalg.norm(np64(pred)[-1]))),
                 note="shown: ||c_S(45)|| vs teacher-path closed form")


@cached
def _converged_student(size):
    X, y, lam, V, lr, c_star = _setup(size)
    _, _, w_T = _teacher_student(size)
    w_S = until(jnp.zeros(D), X, X @ jnp.asarray(w_T), lr, family="mse", grad_tol=1e-13).params
    return np64(w_S)


@register(id="ng.student_to_convergence", paper=P, kind="exact", tolerance=1e-8,
          statement="A student run to convergence on the teacher's predictions (teacher T=30) recovers the teacher "
                    "exactly, w_S(inf) = w_T = V diag(1-(1-eta lambda)^T) c* (both lie in the row space): no exaggeration.",
          tolerance_reason="student stopped at ||grad|| <= 1e-13; smallest nonzero lambda ~1e-2 -> |w_S - w_T| <~ 1e-11, "
                           "1e-8 relative leaves margin.",
          breakers=(scale(), Breaker("teacher one step longer (T=31)", lambda T: T + 1, part="T_teacher")))
def student_to_convergence(size="fast", corrupt=None):
    X, y, lam, V, lr, c_star = _setup(size)
    w_S = _converged_student(size)
    T = apply(corrupt, "T_teacher", T_TEACHER)
    pred = apply(corrupt, "prediction", V @ (np64(closed_form.gd_filter(lam, lr, T)) * c_star))
    return exact(w_S, pred, 1e-8, relative=True, params={"T": T_TEACHER, "lr": lr},
                 shown=(float(np.linalg.norm(w_S)), float(np.linalg.norm(np64(pred)))), note="shown: ||w_S|| vs ||w_T||")


T0, SW_STEPS = 15, 80


@cached
def _switch(size):
    X, y, lam, V, lr, c_star = _setup(size)
    _, _, w_T = _teacher_student(size)
    tr = sim(jnp.zeros(D), X, X @ jnp.asarray(w_T), lr, SW_STEPS, labels=y, alpha=0.0, switch_step=T0, basis=V)
    return np64(tr.coeffs)


@register(id="ng.switch_closed_form", paper=P, kind="exact", tolerance=ROUNDOFF,
          statement="Late distillation: hard labels for t_0=15 steps, then the teacher's (T=30) predictions: "
                    "c_k(t) = c_k^yhat + (1-eta lambda_k)^(t-t0) (c_k(t0) - c_k^yhat) for t > t0 (theory.md §2.3), t = 0..80.",
          tolerance_reason="float64 round-off; error relative to max|c*|.",
          breakers=(scale(), SHIFT_EIGS, Breaker("switch one step late (t0+1)", lambda t0: t0 + 1, part="t_switch")))
def switch_closed_form(size="fast", corrupt=None):
    X, y, lam, V, lr, c_star = _setup(size)
    c = _switch(size)
    pred = np64(closed_form.switch_trajectory(apply(corrupt, "eigvals", lam), c_star, lr, T_TEACHER,
                                              apply(corrupt, "t_switch", T0), SW_STEPS))
    pred = apply(corrupt, "prediction", pred)
    s = max(1.0, np.abs(c_star).max())
    return exact(c / s, np64(pred) / s, ROUNDOFF, params={"t0": T0, "T": T_TEACHER, "steps": SW_STEPS, "lr": lr},
                 shown=(float(np.linalg.norm(c[-1])), float(np.linalg.norm(np64(pred)[-1]))))


# ---------------------------------------------------------------------------------- confidence


@cached
def _confidence(size):
    n, d, n_test = pick(size, (200, 50, 2000), (1000, 100, 20000))
    k1, k2, k3, k4 = jax.random.split(key(32), 4)
    lam = data.power_law_spectrum(d, 1.0, scale=4.0)
    X = data.gaussian_design(k1, n, lam)
    Xt = data.gaussian_design(k4, n_test, lam)
    w_star = data.linear_teacher(k2, lam, norm=4.0)
    y = data.binary_hard_labels(k3, X, w_star, flip=0.2)
    lr = 0.9 * 4.0 / float(np64(eig(X)[0])[0])
    T = pick(size, 60, 200)  # early-stopped teacher on noisy hard labels
    w_T = sim(jnp.zeros(d), X, jnp.zeros(n), lr, T, family="binary", labels=y, alpha=1.0).params
    out = {}
    for t in pick(size, (30, 300), (30, 300, 3000)):
        w_S = sim(jnp.zeros(d), X, X @ w_T, lr, t, family="binary", alpha=0.0).params
        for split, Z in (("train", X), ("test", Xt)):
            cs = metrics.confidence_scatter(Z @ w_T, Z @ w_S, logits=True)
            out[f"{split}_t{t}"] = float(cs.slope)
    return out, {"n": n, "d": d, "flip": 0.2, "T_teacher": T, "lr": lr}


@register(id="ng.confidence_exaggeration", paper=P, kind="qualitative", tolerance=None,
          tolerance_reason="qualitative: reproduced iff the OLS slope of phi(p_S(y_T)) on phi(p_T(y_T)) exceeds 1 on the "
                           "test set at every student training length.",
          statement="Confidence exaggeration: a logistic student distilled (soft labels, tau=1) from an early-stopped "
                    "logistic teacher trained on 20%-flipped labels has logit-scale confidence slope > 1.")
def confidence_exaggeration(size="fast", corrupt=None):
    slopes, params = _confidence(size)
    test = [v for k, v in slopes.items() if k.startswith("test")]
    ok = min(test) > 1.0
    note = ("slope < 1: the student is uniformly under-confident relative to the teacher and approaches slope 1 as it "
            "trains longer (consistent with a zero-init GD student being a spectrally shrunk copy of the teacher); "
            "no exaggeration in this linear setting" if not ok else "slope > 1 on test at every student length")
    return qualitative(ok, slopes, "slope > 1", error=min(test) - 1.0, params=params, note=note)


# ---------------------------------------------------------------------------------- gradient denoiser


@register(id="ng.gradient_denoiser_identity", paper=P, kind="exact", tolerance=1e-13,
          statement="Softmax CE: grad_z CE(z, e_y) = grad_z KD(z, p_T) + (p_T - e_y) per example (jax.grad of "
                    "linkd.losses, tau=1), and the same identity for the weight gradient of a linear model.",
          tolerance_reason="an algebraic identity evaluated in float64 (entries O(1)): round-off ~1e-16.",
          breakers=(scale(), Breaker("temperature 2 in the KD term", lambda tau: 2.0, part="tau")))
def gradient_denoiser_identity(size="fast", corrupt=None):
    n, d, C = 64, 10, 5
    k1, k2, k3, k4 = jax.random.split(key(33), 4)
    X = jax.random.normal(k1, (n, d))
    W = 0.5 * jax.random.normal(k2, (d, C))
    zT = X @ (jax.random.normal(k3, (d, C)))
    pT = jax.nn.softmax(zT, axis=-1)
    y = jax.random.categorical(k4, zT, axis=-1)
    e = losses.one_hot(y, C)
    tau = apply(corrupt, "tau", 1.0)
    g_hard = jax.grad(lambda W: jnp.mean(losses.softmax_ce(X @ W, e)))(W)
    g_kd = jax.grad(lambda W: jnp.mean(losses.kd_softmax(X @ W, zT, tau, False)))(W)
    gz_hard = jax.grad(lambda z: jnp.sum(losses.softmax_ce(z, e)))(X @ W)
    gz_kd = jax.grad(lambda z: jnp.sum(losses.kd_softmax(z, zT, tau, False)))(X @ W)
    pred_w = apply(corrupt, "prediction", np64(g_kd) + np64(X.T @ (pT - e)) / n)
    pred_z = np64(gz_kd) + np64(pT - e)
    m = np.concatenate([np64(g_hard).ravel(), np64(gz_hard).ravel()])
    p = np.concatenate([np64(pred_w).ravel(), pred_z.ravel()])
    return exact(m, p, 1e-13, params={"n": n, "d": d, "C": C},
                 shown=(float(np.linalg.norm(np64(g_hard))), float(np.linalg.norm(np64(pred_w)))),
                 note="shown: ||grad_W CE(hard)|| vs ||grad_W KD + X^T(p_T - e_y)/n||")


@cached
def _grad_variance(size):
    n, d, C, B = 400, 10, 4, 16
    reps = pick(size, 2000, 20000)
    k1, k2, k3 = jax.random.split(key(34), 3)
    X = jax.random.normal(k1, (n, d))
    Ws = 1.5 * jax.random.normal(k2, (d, C))
    W = jnp.zeros((d, C))
    out = []
    for i, flip in enumerate((0.0, 0.1, 0.2, 0.4)):
        # Bayes teacher of the noisy labels: p = (1-rho) softmax(zW*) + rho (1 - softmax)/(C-1)
        p0 = jax.nn.softmax(X @ Ws, axis=-1)
        pT = (1.0 - flip) * p0 + flip * (1.0 - p0) / (C - 1)
        ky, kb = jax.random.split(jax.random.fold_in(k3, i))
        y = jax.random.categorical(ky, jnp.log(pT), axis=-1)
        e = losses.one_hot(y, C)

        def grads(idx):
            Xb, eb, pb = X[idx], e[idx], pT[idx]
            gh = jax.grad(lambda W: jnp.mean(losses.softmax_ce(Xb @ W, eb)))(W)
            gk = jax.grad(lambda W: jnp.mean(losses.softmax_ce(Xb @ W, pb)))(W)
            return gh.ravel(), gk.ravel()

        idx = jax.vmap(lambda k: jax.random.choice(k, n, (B,), replace=False))(jax.random.split(kb, reps))
        gh, gk = jax.vmap(grads)(idx)
        gh, gk = np64(gh), np64(gk)
        # total variance sum_j Var(g_j) in 10 independent groups -> mean and SE
        vh = np.array([g.var(axis=0, ddof=1).sum() for g in np.array_split(gh, 10)])
        vk = np.array([g.var(axis=0, ddof=1).sum() for g in np.array_split(gk, 10)])
        out.append((flip, vh.mean(), vk.mean(), (vh - vk).mean(), (vh - vk).std(ddof=1) / np.sqrt(10)))
    return out


@register(id="ng.kd_gradient_variance", paper=P, kind="monotone", tolerance=3.0,
          tolerance_reason="Monte Carlo over minibatches (10 groups): the excess variance hard - KD must be > 0 by 3 SE "
                           "for every noise > 0 and non-decreasing in the noise rate within 3 SE.",
          statement="Gradient denoising: with a Bayes teacher of the (noisy) labels, minibatch (B=16) gradients of the KD "
                    "loss have lower total variance than hard-label gradients, and the excess grows with the label-flip "
                    "rate (0, 0.1, 0.2, 0.4).")
def kd_gradient_variance(size="fast", corrupt=None):
    rows = _grad_variance(size)
    excess = np.array([r[3] for r in rows])
    se = np.array([r[4] for r in rows])
    res = monotone(excess, se, increasing=True, params={"flip": [r[0] for r in rows], "var_hard": [r[1] for r in rows],
                                                        "var_kd": [r[2] for r in rows], "se": se},
                   shown_pred="excess > 0, non-decreasing")
    positive_z = excess / np.maximum(se, 1e-300)
    res.passed = bool(res.passed and np.all(positive_z > 3.0))
    res.note = f"excess variance (hard - KD) in SE units: {np.round(positive_z, 1).tolist()}"
    return res
