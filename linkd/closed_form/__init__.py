"""Closed forms of theory.md §6 (public contract: names and argument orders are fixed).

* :mod:`linkd.closed_form.gd` — gradient descent / gradient flow on the squared loss in the
  eigenbasis, teacher→student filters, exaggeration gap, switch schedule, GD self-distillation.
* :mod:`linkd.closed_form.phuong_lampert` — limits of soft-CE students (linear, deep linear).
* :mod:`linkd.closed_form.self_distill` — Mobahi et al. self-distillation rounds.
"""
from linkd.closed_form import gd, phuong_lampert, self_distill
from linkd.closed_form.gd import *  # noqa: F401,F403
from linkd.closed_form.phuong_lampert import *  # noqa: F401,F403
from linkd.closed_form.self_distill import *  # noqa: F401,F403

__all__ = [*gd.__all__, *phuong_lampert.__all__, *self_distill.__all__]
