"""Temporary alias of :mod:`linkd.registry`, where the experiment interface now lives.

Kept only so that modules still being edited (``linkd/experiments/pl_risk.py``) import unchanged;
new code imports :mod:`linkd.registry`. Remove once nothing imports ``linkd.experiments.base``.
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
