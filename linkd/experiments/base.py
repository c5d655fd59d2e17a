"""Temporary alias of :mod:`linkd.registry`, where the experiment interface now lives.

Kept only because tests/test_deep_modes.py and tests/test_experiments_fidelity.py still import it
(``base.get(...)``); library code imports :mod:`linkd.registry`. Remove once those two import
``linkd.registry`` instead.
"""
from linkd.registry import (  # noqa: F401
    RUN_SECTION,
    Experiment,
    Preset,
    Result,
    RunContext,
    all_experiments,
    find_preset,
    get,
    list_presets,
    names,
    null_progress,
    preset_dirs,
    register,
    unregister,
)
