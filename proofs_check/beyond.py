"""Results beyond the five papers (docs/theory.md §7–§8), paper id ``beyond``.

* :mod:`proofs_check.beyond_deep` — deep-linear students, mode by mode (claim ids ``dl.*``;
  Saxe et al. 2014, Arora et al. 2018/2019).
* :mod:`proofs_check.beyond_temperature` — multiclass students at temperature τ (claim ids
  ``tau.*``; Hinton et al. 2015 eq. 4 is the leading term).
* :mod:`proofs_check.beyond_sgd` — minibatch SGD students, exact moments and denoising (claim ids
  ``sgd.*``; docs/theory.md §10).
* :mod:`proofs_check.beyond_networks` — wide two-layer networks against their linearisation (claim ids
  ``nn.*``; docs/theory.md §11; Lee et al. 2019).
"""
from proofs_check import beyond_deep, beyond_networks, beyond_sgd, beyond_temperature  # noqa: F401  (registers the claims)

__all__: list[str] = []  # claims register themselves (proofs_check.registry); nothing to import
