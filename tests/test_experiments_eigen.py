"""F1 eigen_convergence, F2 exaggeration, F4 late_distillation presets: complete run directories,
exact re-runs from config.toml, closed-form agreement, honest figures, refused bad input."""
import json

import numpy as np
import pytest

from linkd import cli
from linkd.plotting import check_figure

SMALL = ["--set", "data.n=20", "--set", "data.d=40", "--set", "data.n_test=50"]
CASES = {
    "eigen_convergence": SMALL + ["--set", "teacher.steps=15", "--set", "student.steps=30",
                                  "--set", "record.directions=1,5,15"],
    "exaggeration": SMALL + ["--set", "teacher.steps=10", "--set", "student.steps=20",
                             "--set", "record.directions=2,8,15"],
    "late_distillation": SMALL + ["--set", "teacher.steps=10", "--set", "student.steps=60",
                                  "--set", "student.switch_step=20", "--set", "record.every=5"],
}
FILES = ["config.toml", "meta.json", "metrics.npz", "summary.json"]


def _run(preset, out, extra=()):
    assert cli.main(["run", preset, *CASES[preset], *extra, "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module", params=sorted(CASES))
def run_dir(request, tmp_path_factory):
    return request.param, _run(request.param, tmp_path_factory.mktemp(request.param) / "run")


def test_run_directory_is_complete(run_dir):
    name, out = run_dir
    for f in FILES:
        assert (out / f).is_file(), f
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert {p.rsplit(".", 1)[1] for p in figs} == {"pdf", "png"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["x64"] is True
    npz = np.load(out / "metrics.npz")
    assert "steps" in npz and "eigvals" in npz


def test_simulation_matches_closed_form_to_1e10(run_dir):
    _, out = run_dir
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_rel_error"] <= 1e-10


def test_rerun_from_written_config_reproduces_metrics_exactly(run_dir, tmp_path):
    _, out = run_dir
    again = tmp_path / "again"
    assert cli.main(["run", str(out / "config.toml"), "--out", str(again), "--quiet"]) == 0
    a, b = np.load(out / "metrics.npz"), np.load(again / "metrics.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_figures_are_labelled_and_sized(run_dir):
    from linkd.experiments import base
    from linkd.rundir import load_run

    name, out = run_dir
    loaded = load_run(out)
    exp = base.get(name)
    figs = exp.figures(loaded[1], loaded[2], loaded[0])
    assert figs
    for stem, fig in figs.items():
        assert check_figure(fig) == [], stem


def test_exaggeration_gap_nonnegative_and_late_switch_recovers_gain(tmp_path):
    out = _run("exaggeration", tmp_path / "ex")
    s = json.loads((out / "summary.json").read_text())
    assert s["exaggeration_gap_min"] >= -1e-9 and s["exaggeration_gap_max"] > 0
    out = _run("late_distillation", tmp_path / "ld")
    s = json.loads((out / "summary.json").read_text())
    assert s["switch_vs_closed_form"]["max_rel_error"] <= 1e-10
    m = np.load(out / "metrics.npz")
    t0 = s["switch_step"]
    before = m["steps"] <= t0
    np.testing.assert_array_equal(m["switch_coeffs"][before], m["hard_coeffs"][before])  # identical until t0


@pytest.mark.parametrize("override,needle", [
    ("train.lr_fraction=2.5", "train.lr_fraction"),
    ("data.n=0", "data.n"),
    ("record.directions=500", "record.directions"),
    ("data.spectrum=cauchy", "data.spectrum"),
    ("train.learning_rate=0.1", "train.learning_rate"),
])
def test_bad_input_exits_2_with_one_line_naming_the_key(override, needle, tmp_path, capsys):
    code = cli.main(["run", "eigen_convergence", *CASES["eigen_convergence"], "--set", override,
                     "--out", str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "bad" / "metrics.npz").exists()


def test_sweep_over_seed_and_lr_runs_in_one_vmap_and_equals_single_runs(tmp_path):
    grid = ["--grid", "run.seed=0,1", "--grid", "train.lr_fraction=0.5,0.9"]
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "eigen_convergence", *CASES["eigen_convergence"], *grid, "--out", str(out), "--quiet"]) == 0
    index = json.loads((out / "sweep.json").read_text())
    assert index["vectorized"] is True
    points = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(points) == 4
    single = tmp_path / "single"
    assert cli.main(["run", "eigen_convergence", *CASES["eigen_convergence"], "--seed", "1",
                     "--set", "train.lr_fraction=0.5", "--out", str(single), "--quiet"]) == 0
    a = np.load(single / "metrics.npz")
    b = np.load(out / "run.seed=1,train.lr_fraction=0.5" / "metrics.npz")
    for k in a.files:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-14, err_msg=k)
