"""The run-directory contract for every preset (issue 5): each runs at a reduced size, writes a
complete run directory, re-runs from its own config.toml to identical metrics, and draws figures
with labelled axes, legends and paper widths."""
import json

import numpy as np
import pytest
from presets_reduced import REDUCED

from linkd import cli
from linkd.experiments import base
from linkd.plotting import check_figure
from linkd.rundir import load_run

PRESETS = [p.name for p in base.list_presets()]
FILES = ["config.toml", "meta.json", "metrics.npz", "summary.json"]


def test_every_preset_has_a_reduced_test_size_and_nine_figures_exist():
    assert sorted(PRESETS) == sorted(REDUCED), "add the new preset to tests/presets_reduced.py"
    assert len(PRESETS) >= 9


@pytest.mark.parametrize("name", PRESETS)
def test_run_directory_is_complete(name, preset_run):
    out = preset_run(name)
    for f in FILES:
        assert (out / f).is_file(), f
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs and {p.rsplit(".", 1)[1] for p in figs} == {"pdf", "png"}
    meta = json.loads((out / "meta.json").read_text())
    for key in ("linkd_version", "x64", "backend", "seeds", "wall_seconds"):
        assert any(key in k for k in meta), key
    npz = np.load(out / "metrics.npz")
    assert "steps" in npz and "eigvals" in npz
    json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("name", PRESETS)
def test_rerun_from_written_config_reproduces_metrics_exactly(name, preset_run, tmp_path):
    out = preset_run(name)
    again = tmp_path / "again"
    assert cli.main(["run", str(out / "config.toml"), "--out", str(again), "--quiet", "--no-figures"]) == 0
    a, b = np.load(out / "metrics.npz"), np.load(again / "metrics.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("name", PRESETS)
def test_figures_are_labelled_and_sized(name, preset_run):
    run = load_run(preset_run(name))
    figs = base.get(run.config.experiment).figures(run.metrics, run.summary, run.config)
    assert figs
    for stem, fig in figs.items():
        assert check_figure(fig) == [], stem
