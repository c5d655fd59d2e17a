"""Closed forms of docs/theory.md §6–§9 (public contract: names and argument orders are fixed).

* :mod:`linkd.closed_form.decay` — the GD and GF decay kernel every closed form builds on.
* :mod:`linkd.closed_form.gd` — gradient descent / gradient flow on the squared loss in the
  eigenbasis, teacher→student filters, exaggeration gap, switch schedule, GD self-distillation.
* :mod:`linkd.closed_form.matched` — the matched-progress gap result type and the measured-path gap.
* :mod:`linkd.closed_form.phuong_lampert` — limits of soft-CE students (linear, deep linear).
* :mod:`linkd.closed_form.self_distill` — Mobahi et al. self-distillation rounds.
* :mod:`linkd.closed_form.deep_linear` — deep-linear mode dynamics and distillation (§7).
* :mod:`linkd.closed_form.temperature` — multiclass distillation at temperature τ (§8).
* :mod:`linkd.closed_form.fidelity` — finite-time disagreement and sign agreement (§9.1–9.2).
* :mod:`linkd.closed_form.confidence` — per-point confidence and OLS slopes (§9.3).
* :mod:`linkd.closed_form.sgd` — minibatch SGD: exact moments, noise floor, stability limit (§10).

Conventions (docs/ARCHITECTURE.md, "Closed-form conventions"): spectrum first, then the target
coordinates ``coeffs_star``, the initial coordinates ``coeffs0``, the step ``lr``, the time(s), and
keyword-only model parameters and options; bad arguments raise :class:`linkd.errors.InputError`.
"""
from linkd.closed_form import (
    confidence,
    decay,
    deep_linear,
    fidelity,
    gd,
    matched,
    phuong_lampert,
    self_distill,
    sgd,
    temperature,
)
from linkd.closed_form.confidence import *  # noqa: F401,F403
from linkd.closed_form.decay import *  # noqa: F401,F403
from linkd.closed_form.deep_linear import *  # noqa: F401,F403
from linkd.closed_form.fidelity import *  # noqa: F401,F403
from linkd.closed_form.gd import *  # noqa: F401,F403
from linkd.closed_form.matched import *  # noqa: F401,F403
from linkd.closed_form.phuong_lampert import *  # noqa: F401,F403
from linkd.closed_form.self_distill import *  # noqa: F401,F403
from linkd.closed_form.sgd import *  # noqa: F401,F403
from linkd.closed_form.temperature import *  # noqa: F401,F403

__all__ = [*decay.__all__, *gd.__all__, *matched.__all__, *phuong_lampert.__all__, *self_distill.__all__,
           *deep_linear.__all__, *temperature.__all__, *fidelity.__all__, *confidence.__all__, *sgd.__all__]
