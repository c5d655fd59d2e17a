"""proofs_check: every claim of the five papers (docs/theory.md) checked numerically.

One module per paper (:mod:`~proofs_check.phuong_lampert`, :mod:`~proofs_check.nagarajan`,
:mod:`~proofs_check.mobahi`, :mod:`~proofs_check.stanton`, :mod:`~proofs_check.guo`); the
registry is :mod:`proofs_check.registry`, the ``linkd check`` command :mod:`proofs_check.runner`.
Only the public linkd API is used (``from linkd import closed_form, bounds, metrics, data,
engine, spectral, models, losses``).
"""
from proofs_check.registry import Breaker, Claim, ClaimResult, all_claims  # noqa: F401

__all__ = ["Breaker", "Claim", "ClaimResult", "all_claims"]
