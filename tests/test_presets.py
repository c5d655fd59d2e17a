"""The run-directory contract for every preset (issue 5): each runs at a reduced size, writes a
complete run directory, re-runs from its own config.toml to identical metrics, and draws figures
with labelled axes, legends and paper widths."""
import json

import numpy as np
import pytest

from linkd import cli, registry
from linkd.experiments import load_run
from linkd.plotting import check_figure
from presets_reduced import REDUCED

PRESETS = [p.name for p in registry.list_presets()]
FILES = ["config.toml", "meta.json", "metrics.npz", "summary.json"]


def test_every_preset_has_a_reduced_test_size_and_nine_figures_exist():
    assert sorted(PRESETS) == sorted(REDUCED), "add the new preset to tests/presets_reduced.py"
    assert len(PRESETS) >= 9


@pytest.mark.parametrize("name", PRESETS)
def test_run_directory_is_complete(name, preset_run):
    out = preset_run(name)
    for f in FILES:
        assert (out / f).is_file(), f
    figs = sorted(p.name for p in (out / "figures").iterdir() if not p.name.endswith(".caption.txt"))
    assert figs and {p.rsplit(".", 1)[1] for p in figs} == {"pdf", "png"}
    for f in figs:  # each figure carries its parameters in a caption file beside it
        caption = (out / "figures" / (f.rsplit(".", 1)[0] + ".caption.txt")).read_text()
        assert "Parameters (" in caption and "run.seed = " in caption and "sha256:" in caption
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
    figs = registry.get(run.config.experiment).figures(run.metrics, run.summary, run.config)
    assert figs
    for stem, fig in figs.items():
        assert check_figure(fig) == [], stem


@pytest.mark.parametrize("name", ["eigen_convergence", "ensemble_attention"])
def test_legends_cover_no_data(name, preset_run):
    """F1 (left panel) and F9 had legends over curves (issue 11): now legends sit outside the data."""
    from linkd.plotting import legend_overlaps

    run = load_run(preset_run(name))
    for stem, fig in registry.get(run.config.experiment).figures(run.metrics, run.summary, run.config).items():
        assert legend_overlaps(fig) == [], stem


def test_lr_fraction_means_eta_times_L_as_in_default_lr():
    """`train.lr_fraction` of the squared-loss presets is η·λ_max(Σ̂) = η·L: the same step that
    `engine.default_lr(X, "mse", fraction)` gives (README: η = lr_fraction / L, stable below 2)."""
    from linkd import engine
    from linkd.experiments._mse_common import build_problem
    from linkd.registry import load_config

    cfg = load_config("eigen_convergence", ["data.n=20", "data.d=40", "data.n_test=10", "train.lr_fraction=1.3",
                                            "record.directions=1,5"])
    p = build_problem(cfg, 0)
    ref = engine.default_lr(p.X, "mse", 1.3)
    assert abs(p.lr - ref) <= 1e-12 * ref
    lam_max = float(np.linalg.eigvalsh(np.asarray(p.X).T @ np.asarray(p.X) / 20)[-1])  # independent route
    assert abs(p.lr * lam_max - 1.3) < 1e-10
