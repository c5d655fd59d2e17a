"""Closed forms of theory.md §6 (public contract: names and argument orders are fixed).

* :mod:`linkd.closed_form.gd` — gradient descent / gradient flow on the squared loss in the
  eigenbasis, teacher→student filters, exaggeration gap, switch schedule, GD self-distillation.
* :mod:`linkd.closed_form.phuong_lampert` — limits of soft-CE students (linear, deep linear).
* :mod:`linkd.closed_form.self_distill` — Mobahi et al. self-distillation rounds.
"""
from linkd.closed_form.gd import *  # noqa: F401,F403
from linkd.closed_form.gd import __all__ as _gd_all

__all__ = list(_gd_all)

try:  # filled in by the theory-library work; kept importable while it lands
    from linkd.closed_form.phuong_lampert import *  # noqa: F401,F403
    from linkd.closed_form.phuong_lampert import __all__ as _pl_all

    __all__ += list(_pl_all)
except (ImportError, AttributeError):  # pragma: no cover
    pass
try:
    from linkd.closed_form.self_distill import *  # noqa: F401,F403
    from linkd.closed_form.self_distill import __all__ as _sd_all

    __all__ += list(_sd_all)
except (ImportError, AttributeError):  # pragma: no cover
    pass
