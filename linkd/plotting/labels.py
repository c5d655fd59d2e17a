r"""Readable axis labels for config and summary keys, and round-off drawn as zero.

One table, :data:`QUANTITIES`, names every quantity a figure may put on an axis: a config key
(``train.lr_fraction`` is the step size :math:`\eta\lambda_{\max}` of docs/theory.md §2.2) or a
summary key (``exaggeration_gap_min`` is the smallest gap :math:`q_j^T(\tau^*_i) - q_j^S` of
docs/theory.md §6.3). :func:`label` looks a key up by experiment and full key, then full key, then
its last component (``teacher_vs_closed_form.max_rel_error`` is "max. relative error" with the
prefix "teacher vs closed form"); a key in no row is shown with underscores as spaces.

Round-off. A quantity with a natural scale :math:`s` (a progress or a gap is :math:`O(1)`) is
computed with absolute round-off of order :math:`s\sqrt{\varepsilon}` after many GD steps
(:math:`\varepsilon` the machine epsilon of the run's dtype): :func:`zero_tolerance` is that
bound, :math:`1.5\cdot10^{-8}\,s` in float64, and :func:`snap_zero` draws values within it as 0,
so a −3e-9 is not plotted as a trend. Errors (closed form against simulation) have no scale here:
their smallness is the result, so they are never snapped.
"""
from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Quantity", "QUANTITIES", "quantity", "label", "zero_tolerance", "snap_zero", "tolerance_note"]


class Quantity(NamedTuple):
    """``words`` (plain text), ``symbol`` (mathtext, without ``$``), ``unit`` ("" if none) and
    ``scale``: the natural size of the quantity for round-off snapping (None: never snapped)."""

    words: str
    symbol: str = ""
    unit: str = ""
    scale: float | None = None


_Q = Quantity
#: Keys are ``"experiment:section.key"``, ``"section.key"`` or a last component ``"key"``.
QUANTITIES: dict[str, Quantity] = {
    # ---- config keys (grid axes)
    "run.seed": _Q("seed"),
    "lr_fraction": _Q("step size", r"\eta L"),
    "eigen_convergence:train.lr_fraction": _Q("step size", r"\eta\lambda_{\max}"),
    "exaggeration:train.lr_fraction": _Q("step size", r"\eta\lambda_{\max}"),
    "late_distillation:train.lr_fraction": _Q("step size", r"\eta\lambda_{\max}"),
    "temperature:train.lr_fraction": _Q("step size", r"\eta\lambda_{\max}/C"),
    "teacher.steps": _Q("teacher GD steps", "T"),
    "student.steps": _Q("student GD steps", "t"),
    "steps": _Q("GD steps", "t"),
    "student.switch_step": _Q("switch step", "t_0"),
    "data.n": _Q("training points", "n"),
    "data.d": _Q("input dimension", "d"),
    "data.n_test": _Q("test points", r"n_{\mathrm{test}}"),
    "data.noise": _Q("label noise", r"\sigma"),
    "data.exponent": _Q("spectrum exponent", "a"),
    "data.teacher_profile": _Q("teacher profile exponent"),
    "data.flip": _Q("label-flip probability"),
    "data.classes": _Q("classes", "C"),
    "data.teacher_norm": _Q("teacher norm", r"\|w^*\|"),
    "data.lengthscale": _Q("RBF lengthscale", r"\ell"),
    "data.frequency": _Q("frequency", r"\omega"),
    "data.margin": _Q("teacher label margin"),
    "data.logit_scale": _Q("teacher logit scale"),
    "tau": _Q("temperature", r"\tau"),
    "taus": _Q("temperatures", r"\tau"),
    "alpha": _Q("hard-label weight", r"\alpha"),
    "teachers.m": _Q("teachers", "m"),
    "sigma0": _Q("initial mode strength", r"\sigma_0"),
    "train.eps": _Q("step per mode", r"\epsilon"),
    "depths": _Q("depths", "N"),
    # ---- summary keys (sweep metrics, headline numbers)
    "max_rel_error": _Q("max. relative error"),
    "max_abs_error": _Q("max. absolute error"),
    "exaggeration_gap_min": _Q("smallest gap", r"q_j^T(\tau^*) - q_j^S", scale=1.0),
    "exaggeration_gap_max": _Q("largest gap", r"q_j^T(\tau^*) - q_j^S", scale=1.0),
    "lr": _Q("step size", r"\eta"),
    "lr_times_lambda_max": _Q("step size", r"\eta\lambda_{\max}"),
    "rank": _Q("rank of the design"),
    "teacher_final_test_mse": _Q("teacher final test MSE"),
    "student_final_test_mse": _Q("student final test MSE"),
    "hard_final_test_mse": _Q("final test MSE, hard labels"),
    "kd_final_test_mse": _Q("final test MSE, distillation"),
    "switch_final_test_mse": _Q("final test MSE, switch"),
    "switch_recovered_fraction": _Q("recovered fraction, switch", scale=1.0),
    "mse_train_slope": _Q("confidence slope, train"),
    "mse_test_slope": _Q("confidence slope, test"),
    "mse_test_beta": _Q("test slope", r"\beta"),
    "max_off_mode": _Q("max. off-mode weight"),
    "halving_ratio_modified": _Q("error ratio per halving of", r"\epsilon"),
    "closed_form_agreement_max_error_in_se": _Q("closed form vs Monte Carlo", unit="SE"),
    "e0_slope": _Q("log-log slope of", "e_0"),
    "e1_slope": _Q("log-log slope of", "e_1"),
    "class_sum_drift": _Q("class-sum drift"),
}


def _humanize(text: str) -> str:
    return re.sub(r"_+", " ", text).strip()


def quantity(key: str, experiment: str = "") -> Quantity | None:
    """The row of :data:`QUANTITIES` for ``key`` (experiment-specific row first, then the full
    key, then its last component), or None."""
    for k in (f"{experiment}:{key}" if experiment else None, key, key.rpartition(".")[2]):
        if k is not None and k in QUANTITIES:
            return QUANTITIES[k]
    return None


#: Config sections too generic to prefix a label with (``train.steps`` is just "GD steps").
_GENERIC = ("run", "data", "train", "record", "model")


def label(key: str, experiment: str = "", wrap: int | None = None) -> str:
    """Axis label of ``key``: ``words $symbol$ [unit]``. A key found only by its last component
    gets its humanized prefix (``student_vs_closed_form.max_rel_error`` → ``student vs closed
    form: max. relative error``, ``teacher.lr_fraction`` → ``teacher: step size $\\eta L$``) unless
    the prefix is a generic config section (data, train, ...). A key in no row: underscores as
    spaces, dots as ": ". With ``wrap``, a label longer than ``wrap`` characters puts its symbol
    and unit on a second line."""
    q = quantity(key, experiment)
    if q is None:
        return ": ".join(_humanize(p) for p in key.split("."))
    prefix = key.rpartition(".")[0]
    if not (key in QUANTITIES or f"{experiment}:{key}" in QUANTITIES or not prefix or prefix in _GENERIC):
        q = q._replace(words=": ".join(_humanize(p) for p in prefix.split(".")) + ": " + q.words)
    tail = (f"${q.symbol}$" if q.symbol else "") + (f" [{q.unit}]" if q.unit else "")
    sep = "\n" if wrap is not None and len(q.words) + len(tail) + 1 > wrap else " "
    return q.words + (sep + tail.strip() if tail else "")


def zero_tolerance(scale: float | None, dtype: Any = np.float64) -> float:
    r"""Round-off bound :math:`s\sqrt{\varepsilon}` of a quantity of natural scale ``scale`` computed in
    ``dtype`` (1.49e-8·s in float64, 3.45e-4·s in float32); 0 when ``scale`` is None (never snap)."""
    if scale is None:
        return 0.0
    return float(scale) * math.sqrt(float(np.finfo(np.dtype(dtype)).eps))


def snap_zero(values: Any, tol: float) -> np.ndarray:
    """``values`` (float64 array) with every entry ``|v| <= tol`` set to exactly 0; NaN stays NaN."""
    v = np.array(values, dtype=np.float64)
    v[np.abs(v) <= tol] = 0.0
    return v


def tolerance_note(tol: float) -> str:
    """The sentence that states a snapping tolerance in a caption or legend."""
    return f"|value| ≤ {tol:.1e} (round-off) shown as 0"
