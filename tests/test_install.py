"""A released linkd, as a new user gets it (issue 11): the wheel built from a copy of the source
tree, installed NON-editable into a fresh virtual environment, run from a directory that is not
the checkout. The presets must come from the installed package, and the headline run must give
the float64 numbers (closed-form error ~1e-14), not the kind's built-in float32 defaults.

Fast by construction: the venv is made without pip, its dependencies are the test environment's
site-packages (a ``.pth`` line, so nothing is downloaded), and the wheel is installed with
``pip --python VENV install --no-deps``.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "linkd", "proofs_check", "experiments")


def _sh(argv, **kw):
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, f"{argv}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel from a copy of the tree (setuptools leaves build/ in the tree it builds)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, src / name,
                                                                       **({"ignore": ignore} if (ROOT / name).is_dir() else {}))
    code = "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"
    built = _sh([sys.executable, "-W", "always", "-c", code, tmp / "dist"], cwd=src)
    return tmp / "dist" / built.stdout.strip().splitlines()[-1], built.stdout + built.stderr


def test_wheel_metadata_packages_and_presets(wheel):
    path, log = wheel
    assert "deprecat" not in log.lower(), log  # e.g. the license table / classifiers
    assert not (ROOT / "build").exists()  # nothing built in the source tree
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Python: >=3.11" in meta and "License-Expression: MIT" in meta
    assert "License :: " not in meta
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.11"  # tomllib is 3.11+
    packages = {str(p.parent.relative_to(ROOT)).replace(os.sep, "/") for top in ("linkd", "proofs_check")
                for p in (ROOT / top).rglob("__init__.py")}
    for pkg in packages:  # every package of the tree is shipped (the list in pyproject.toml is explicit)
        assert f"{pkg}/__init__.py" in names, f"add {pkg.replace('/', '.')} to [tool.setuptools] packages"
    presets = sorted(p.name for p in (ROOT / "experiments").glob("*.toml"))
    assert presets and {f"linkd/presets/{p}" for p in presets} <= names  # one source: experiments/
    assert "linkd/plotting/paper.mplstyle" in names


def _install(wheel, tmp_path):
    """The wheel installed into a fresh venv; returns (venv, a work directory outside the checkout, env)."""
    path, _ = wheel
    venv = tmp_path / "venv"
    _sh([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = Path(_sh([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "linkd_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # jax, numpy, ...
    _sh([sys.executable, "-m", "pip", "--python", py, "install", "--quiet", "--no-deps", "--no-index", path])
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LINKD_PRESETS", "LINKD_EXPERIMENT_MODULES")}
    env["JAX_PLATFORMS"] = "cpu"
    where = _sh([py, "-c", "import linkd; print(linkd.__file__)"], cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the installed copy, not the checkout
    return venv, work, env


def _run_headline(venv, work, env, sets=()) -> dict:
    """``linkd run eigen_convergence`` (plus ``--set`` pairs) from ``work``: the preset comes from the
    installed package and runs in float64 (its ``run.x64 = true``; the kind's default is float32)."""
    out = _sh([venv / "bin" / "linkd", "run", "eigen_convergence", "--out", "r", "--no-figures", *sets], cwd=work, env=env)
    run = work / "r"
    summary = json.loads((run / "summary.json").read_text())
    meta = json.loads((run / "meta.json").read_text())
    assert summary["dtype"] == "float64" and meta["x64"] is True
    assert summary["max_rel_error"] < 1e-12  # ~1e-14 in float64 (float32 defaults gave 1e-5)
    assert summary["exaggeration_gap_min"] > -1e-8  # round-off; the float32 defaults gave -0.79
    assert f"max_rel_error: {summary['max_rel_error']:.3e}" in out.stdout
    origin = meta["config_origin"]
    assert origin["type"] == "preset" and origin["location"] == "installed package"
    assert Path(origin["path"]).is_relative_to(venv) and origin["sha256"].startswith("sha256:")
    return tomllib.loads((run / "config.toml").read_text())


def test_installed_linkd_runs_the_headline_preset_from_anywhere(wheel, tmp_path):
    """At the reduced test size (tests/presets_reduced.py); the shipped size is the slow sibling."""
    from presets_reduced import overrides

    venv, work, env = _install(wheel, tmp_path)
    config = _run_headline(venv, work, env, overrides("eigen_convergence"))
    assert config["run"]["x64"] is True and config["student"]["steps"] == 30  # the preset plus the --set
    refused = subprocess.run([venv / "bin" / "linkd", "run", "no_such_preset"], capture_output=True, text=True,
                             cwd=work, env=env, timeout=120)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "EXPERIMENT = no_such_preset" in refused.stderr
    assert sorted(p.name for p in work.iterdir()) == ["r"]


@pytest.mark.slow
def test_installed_linkd_runs_the_headline_preset_at_full_size(wheel, tmp_path):
    venv, work, env = _install(wheel, tmp_path)
    config = _run_headline(venv, work, env)
    assert config["student"]["steps"] == 1000  # the preset, not the kind's default 300
