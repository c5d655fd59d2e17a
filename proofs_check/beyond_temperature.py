"""Claims beyond the five papers: see :mod:`proofs_check.beyond`."""
from __future__ import annotations
