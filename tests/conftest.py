"""Test configuration: float64 on, 4 forced CPU devices, strict promotion (equinox habits).

Strict dtype promotion and rank-promotion="raise" make silent upcasts and broadcasting slips
fail here instead of in a user's run.
"""
import fcntl
import os
import shutil

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow, full-size tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def preset_run(tmp_path_factory):
    """``preset_run(name)`` → the run directory of preset ``name`` at its reduced test size
    (tests/presets_reduced.py), run once per session and shared by every test that reads it.

    Under pytest-xdist the runs live in the session's base directory, shared by the workers: the
    first worker that needs a preset runs it (holding a file lock) and the others wait for it and
    read the same directory, so no preset runs twice."""
    from presets_reduced import run_preset

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "preset_runs"
    shared.mkdir(exist_ok=True)

    def get(name: str):
        out, done = shared / name / "run", shared / name / "done"
        with open(shared / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not done.exists():
                    shutil.rmtree(out.parent, ignore_errors=True)  # a run that failed part-way
                    out.parent.mkdir()
                    run_preset(name, out)
                    done.touch()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return out

    return get
