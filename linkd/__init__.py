"""linkd: exact-simulation checks of knowledge-distillation theory in linear and deep-linear models.

Thin public surface (optax style): the well-named modules are the API, and ``import linkd``
loads the library layer, so ``linkd.closed_form.gd_trajectory`` and friends work after it:

>>> from linkd import bounds, closed_form, data, engine, losses, metrics, models, spectral

The application layer (:mod:`linkd.config`, :mod:`linkd.registry`, :mod:`linkd.rundir`,
:mod:`linkd.experiments`, :mod:`linkd.plotting`, :mod:`linkd.cli`) is imported explicitly,
e.g. ``from linkd import plotting``, so that the library does not pay for matplotlib. The math
is in docs/theory.md §6.
"""
__version__ = "0.1.0"

from linkd import (  # noqa: E402
    bounds,
    closed_form,
    data,
    dtypes,
    engine,
    errors,
    losses,
    metrics,
    models,
    spectral,
    stability,
)

__all__ = [
    "bounds", "closed_form", "data", "dtypes", "engine", "errors", "losses", "metrics", "models", "spectral",
    "stability", "__version__",
]
