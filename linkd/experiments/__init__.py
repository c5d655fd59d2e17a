"""Experiment kinds and presets (the registry the CLI runs).

To add a kind, create ``linkd/experiments/<kind>.py`` that builds an :class:`Experiment` and calls
:func:`register`; it is imported automatically. Presets are TOML files in the repo's top-level
``experiments/`` directory (``experiment = "<kind>"``, ``description = "..."``, sections).
"""
from linkd.experiments.runner import (  # noqa: F401
    Run,
    draw_figures,
    execute,
    execute_sweep,
    grid_points,
    load_run,
    parse_grid,
)
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

__all__ = [
    "Experiment", "Result", "RunContext", "RUN_SECTION", "Preset", "register", "unregister", "get",
    "names", "all_experiments", "list_presets", "find_preset", "preset_dirs", "null_progress",
    "execute", "execute_sweep", "draw_figures", "parse_grid", "grid_points", "Run", "load_run",
]
