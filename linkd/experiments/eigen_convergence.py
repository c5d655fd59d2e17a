r"""F1 and F2: teacher→student eigen-convergence on the squared loss (Nagarajan et al., theory §2.2).

A teacher is trained T steps of GD from zero on noisy labels y; a student is trained t steps
from zero on the teacher's train predictions ŷ = Xw_T. Along each eigendirection v_k of Σ̂:

.. math:: q_k^T(\tau) = 1-(1-\eta\lambda_k)^\tau, \qquad q_k^S(t) = (1-(1-\eta\lambda_k)^t)(1-(1-\eta\lambda_k)^T).

Simulation (markers) is overlaid on the closed form (lines) and the max error is reported.
``exaggeration`` adds the parametric view q_j against q_i (teacher curve above the student's).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from linkd import closed_form as cf
from linkd import engine
from linkd.config import Field
from linkd.experiments._mse_common import (
    DATA_SECTION,
    TRAIN_SECTION,
    build_problem,
    closed_form_errors,
    directions,
    progress_trajectory,
    test_mse_from_coeffs,
    train_mse,
    validate,
)
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "validate", "run", "run_sweep"]

SCHEMA = {
    "data": DATA_SECTION,
    "teacher": {"steps": Field(int, 100, "teacher GD steps T (early stopping)", low=1)},
    "student": {"steps": Field(int, 300, "student GD steps t on the teacher's predictions", low=1)},
    "train": TRAIN_SECTION,
    "record": {
        "every": Field(int, 1, "record every k steps", low=1),
        "directions": Field(list[int], (1, 3, 10, 30, 90), "1-based eigendirections k to plot", low=1),
    },
}


def run(cfg, ctx) -> Result:
    p = build_problem(cfg, ctx.seed)
    T, t, k = cfg["teacher"]["steps"], cfg["student"]["steps"], cfg["record"]["every"]
    ctx.progress(0, T + t, "GD steps")
    teacher = train_mse(p, p.y, T, k)
    ctx.progress(T, T + t)
    student = train_mse(p, p.X @ teacher.params, t, k)
    ctx.progress(T + t, T + t)
    return _result(cfg, p, teacher, student)


def run_sweep(cfg, points, ctx) -> list[Result]:
    """Every grid point (seeds and/or learning rates) in one vmapped teacher sweep and one vmapped
    student sweep: the designs are stacked along a sweep axis, learning rates are per member."""
    cfgs = [cfg.with_overrides(pt) for pt in points]
    T, t, k = cfg["teacher"]["steps"], cfg["student"]["steps"], cfg["record"]["every"]
    probs = [build_problem(c, c.get("run.seed")) for c in cfgs]
    stack = lambda name: jnp.stack([getattr(q, name) for q in probs])  # noqa: E731
    X, basis, X_test, y_test = stack("X"), stack("basis"), stack("X_test"), stack("y_test")
    hyper = engine.Hyper(lr=jnp.asarray([q.lr for q in probs]))
    w0 = jnp.zeros(X.shape[-1], X.dtype)

    def train_batch(targets, steps):
        spec = engine.EngineSpec(family="mse", steps=steps, record_every=k)
        data = engine.Data(X=X, targets=targets, basis=basis, X_test=X_test, labels_test=y_test)
        return engine.sweep(w0, data, hyper, spec, batched=("data", "hyper"))

    ctx.progress(0, T + t, "GD steps")  # every point at once, under one vmap
    teacher = train_batch(stack("y"), T)
    ctx.progress(T, T + t)
    student = train_batch(jnp.einsum("snd,sd->sn", X, teacher.params), t)
    ctx.progress(T + t, T + t)
    member = lambda tr, i: engine.Trajectory(  # noqa: E731
        tr.steps, tr.coeffs[i], {m: v[i] for m, v in tr.metrics.items()}, tr.params[i], tr.bad_step[i])
    return [_result(c, q, member(teacher, i), member(student, i)) for i, (c, q) in enumerate(zip(cfgs, probs))]


def _result(cfg, p, teacher, student) -> Result:
    """Closed forms, errors and the recorded arrays of one teacher→student pair."""
    T = cfg["teacher"]["steps"]
    dirs = directions(cfg["record"]["directions"], p.eigvals)
    d = p.X.shape[1]
    pred_T = cf.gd_mse_trajectory(p.eigvals, p.c_star, np.zeros(d), p.lr, np.asarray(teacher.steps))
    pred_S = cf.teacher_student_filters(p.eigvals, p.lr, T, np.asarray(student.steps)) * np.asarray(p.c_star)[None, :]
    # exaggeration gap from the *measured* student progress at the end, over the positive spectrum
    qS_end = progress_trajectory(student.coeffs[-1:], p.c_star)[0]
    gap = np.asarray(cf.exaggeration_gap_from_progress(p.eigvals, p.lr, qS_end).gap) if cfg["train"]["lr_fraction"] < 1 else None
    gap = None if gap is None or not np.any(np.isfinite(gap)) else gap[np.isfinite(gap)]  # the defined pairs
    err_T, err_S = closed_form_errors(teacher.coeffs, pred_T), closed_form_errors(student.coeffs, pred_S)
    metrics = {
        "eigvals": np.asarray(p.eigvals),
        "c_star": np.asarray(p.c_star),
        "directions": np.asarray(dirs) + 1,
        "teacher_steps": np.asarray(teacher.steps),
        "student_steps": np.asarray(student.steps),
        "steps": np.asarray(student.steps),
        "teacher_coeffs": np.asarray(teacher.coeffs),
        "student_coeffs": np.asarray(student.coeffs),
        "teacher_coeffs_closed_form": np.asarray(pred_T),
        "student_coeffs_closed_form": np.asarray(pred_S),
        "teacher_q": progress_trajectory(teacher.coeffs, p.c_star),
        "student_q": progress_trajectory(student.coeffs, p.c_star),
        "teacher_test_mse": test_mse_from_coeffs(p, teacher.coeffs),
        "student_test_mse": test_mse_from_coeffs(p, student.coeffs),
    }
    summary = {
        "lr": p.lr,
        "lr_times_lambda_max": p.lr * float(p.eigvals[0]),
        "rank": int(np.sum(np.asarray(p.eigvals) > 0)),
        "teacher_vs_closed_form": err_T,
        "student_vs_closed_form": err_S,
        "max_rel_error": max(err_T["max_rel_error"], err_S["max_rel_error"]),
        "exaggeration_gap_min": None if gap is None else float(gap.min()),
        "exaggeration_gap_max": None if gap is None else float(gap.max()),
        "teacher_final_test_mse": float(metrics["teacher_test_mse"][-1]),
        "student_final_test_mse": float(metrics["student_test_mse"][-1]),
        "dtype": str(np.asarray(p.X).dtype),
    }
    return Result(metrics, summary)


def _figure_progress(metrics, summary, cfg) -> dict:
    """F1: q_k(t) of teacher and student, simulation markers over closed-form lines, log-step axis."""
    from linkd.plotting import eigen as figures

    return {"eigen_convergence": figures.progress_curves(metrics, summary)}


def _figure_exaggeration(metrics, summary, cfg) -> dict:
    """F2: parametric q_j against q_i for teacher and student."""
    from linkd.plotting import eigen as figures

    return {"exaggeration": figures.parametric_progress(metrics, summary)}


register(Experiment(
    name="eigen_convergence",
    description="F1: teacher and distilled student progress q_k(t) along eigendirections, simulation vs closed form",
    schema=SCHEMA, run=run, figures=_figure_progress, validate=validate,
    vectorized=("run.seed", "train.lr_fraction"), run_sweep=run_sweep,
    headline=("teacher_vs_closed_form.max_rel_error", "student_vs_closed_form.max_rel_error", "max_rel_error"),
))

register(Experiment(
    name="exaggeration",
    description="F2: KD exaggerates GD's implicit bias: q_j vs q_i, teacher curve above the student's",
    schema=SCHEMA, run=run, figures=_figure_exaggeration, validate=validate,
    vectorized=("run.seed", "train.lr_fraction"), run_sweep=run_sweep,
    headline=("max_rel_error", "exaggeration_gap_min", "exaggeration_gap_max"),
))
