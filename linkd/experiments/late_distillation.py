r"""F4: late distillation (Nagarajan et al., theory §2.3): switch from hard labels to the teacher's
predictions at step t₀.

Three students trained from zero for the same number of steps: on the noisy labels y (hard),
on an early-stopped teacher's predictions ŷ = Xw_T (KD), and on y until t₀ then on ŷ (switch).
Closed forms: hard = :func:`~linkd.closed_form.gd_mse_trajectory`, KD =
:func:`~linkd.closed_form.teacher_student_filters`, switch = :func:`~linkd.closed_form.switch_trajectory`.
Reported: test MSE against steps, and the fraction of KD's gain over hard labels recovered by
switching, (err_hard − err_switch)/(err_hard − err_KD) at the end.
"""
from __future__ import annotations

import numpy as np

from linkd import closed_form as cf
from linkd.config import Field
from linkd.errors import ConfigError
from linkd.experiments._mse_common import (
    DATA_SECTION,
    TRAIN_SECTION,
    build_problem,
    closed_form_errors,
    test_mse_from_coeffs,
    train_mse,
    validate_lr_fraction,
)
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "validate", "run", "figure"]

SCHEMA = {
    "data": {**DATA_SECTION, "noise": Field(float, 1.0, "label noise std σ in y = Xw* + σε", low=0.0)},
    "teacher": {"steps": Field(int, 60, "teacher GD steps T (early stopping)", low=1)},
    "student": {
        "steps": Field(int, 3000, "student GD steps", low=1),
        "switch_step": Field(int, 300, "t₀: hard labels before, teacher predictions after", low=0),
    },
    "train": TRAIN_SECTION,
    "record": {"every": Field(int, 10, "record every k steps", low=1)},
}


def validate(cfg):
    validate_lr_fraction(cfg)
    if cfg.get("student.switch_step") > cfg.get("student.steps"):
        raise ConfigError("student.switch_step", cfg.get("student.switch_step"),
                          f"0 <= switch_step <= student.steps = {cfg.get('student.steps')}")


def run(cfg, ctx) -> Result:
    p = build_problem(cfg, ctx.seed)
    T, steps, t0, k = cfg["teacher"]["steps"], cfg["student"]["steps"], cfg["student"]["switch_step"], cfg["record"]["every"]
    d = p.X.shape[1]
    total = T + 3 * steps  # teacher, then the hard, distilled and switched students
    teacher = train_mse(p, p.y, T, T)
    y_hat = p.X @ teacher.params
    ctx.progress(T, total, "GD steps")
    hard = train_mse(p, p.y, steps, k)
    ctx.progress(T + steps, total)
    kd = train_mse(p, y_hat, steps, k)
    ctx.progress(T + 2 * steps, total)
    switch = train_mse(p, y_hat, steps, k, labels=p.y, switch_step=t0)
    ctx.progress(total, total)
    s = np.asarray(hard.steps)
    preds = {
        "hard": cf.gd_mse_trajectory(p.eigvals, p.c_star, np.zeros(d), p.lr, s),
        "kd": cf.teacher_student_filters(p.eigvals, p.lr, T, s) * np.asarray(p.c_star)[None, :],
        "switch": cf.switch_trajectory(p.eigvals, p.c_star, p.lr, T, t0, s),
    }
    metrics = {"steps": s, "eigvals": np.asarray(p.eigvals), "c_star": np.asarray(p.c_star)}
    summary = {"lr": p.lr, "switch_step": t0, "teacher_steps": T}
    for name, traj in (("hard", hard), ("kd", kd), ("switch", switch)):
        metrics[f"{name}_coeffs"] = np.asarray(traj.coeffs)
        metrics[f"{name}_test_mse"] = test_mse_from_coeffs(p, traj.coeffs)
        metrics[f"{name}_test_mse_closed_form"] = test_mse_from_coeffs(p, preds[name])
        summary[f"{name}_vs_closed_form"] = closed_form_errors(traj.coeffs, preds[name])
        summary[f"{name}_final_test_mse"] = float(metrics[f"{name}_test_mse"][-1])
        summary[f"{name}_best_test_mse"] = float(metrics[f"{name}_test_mse"].min())
    summary["max_rel_error"] = max(summary[f"{n}_vs_closed_form"]["max_rel_error"] for n in ("hard", "kd", "switch"))
    gain = summary["hard_final_test_mse"] - summary["kd_final_test_mse"]
    summary["switch_recovered_fraction"] = (
        (summary["hard_final_test_mse"] - summary["switch_final_test_mse"]) / gain if gain > 0 else None)
    return Result(metrics, summary)


def figure(metrics, summary, cfg) -> dict:
    from linkd.plotting import eigen as figures

    return {"late_distillation": figures.late_distillation(metrics, summary)}


register(Experiment(
    name="late_distillation",
    description="F4: test error vs steps for hard labels, distillation, and a switch to distillation at t0",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
    headline=("max_rel_error", "hard_final_test_mse", "kd_final_test_mse", "switch_final_test_mse",
              "switch_recovered_fraction"),
))
