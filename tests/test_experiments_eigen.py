"""F1 eigen_convergence, F2 exaggeration, F4 late_distillation: closed-form agreement, the facts each
figure shows, vmapped sweeps, refused bad input (the run-directory contract is in test_presets.py)."""
import json

import numpy as np
import pytest

from linkd import cli
from presets_reduced import overrides


@pytest.mark.parametrize("name", ["eigen_convergence", "exaggeration", "late_distillation"])
def test_simulation_matches_closed_form_to_1e10(name, preset_run):
    out = preset_run(name)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_rel_error"] <= 1e-10


def test_exaggeration_gap_nonnegative_and_late_switch_recovers_gain(preset_run):
    out = preset_run("exaggeration")
    s = json.loads((out / "summary.json").read_text())
    assert s["exaggeration_gap_min"] >= -1e-9 and s["exaggeration_gap_max"] > 0
    out = preset_run("late_distillation")
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
    code = cli.main(["run", "eigen_convergence", *overrides("eigen_convergence"), "--set", override,
                     "--out", str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "bad" / "metrics.npz").exists()


def test_sweep_over_seed_and_lr_runs_in_one_vmap_and_equals_single_runs(tmp_path, monkeypatch):
    from linkd.experiments import _mse_common

    draws = []
    draw = _mse_common._draw_problem
    monkeypatch.setattr(_mse_common, "_draw_problem", lambda cfg, seed: draws.append(seed) or draw(cfg, seed))
    _mse_common._PROBLEMS.clear()
    grid = ["--grid", "run.seed=0,1", "--grid", "train.lr_fraction=0.5,0.9"]
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "eigen_convergence", *overrides("eigen_convergence"), *grid, "--out", str(out), "--quiet"]) == 0
    assert sorted(draws) == [0, 0, 1, 1]  # each point's problem drawn once: validation and run share it
    _mse_common._PROBLEMS.clear()  # the single run below draws its problem afresh
    index = json.loads((out / "sweep.json").read_text())
    assert index["vectorized"] is True
    points = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(points) == 4
    single = tmp_path / "single"
    assert cli.main(["run", "eigen_convergence", *overrides("eigen_convergence"), "--seed", "1",
                     "--set", "train.lr_fraction=0.5", "--out", str(single), "--quiet"]) == 0
    a = np.load(single / "metrics.npz")
    b = np.load(out / "run.seed=1,train.lr_fraction=0.5" / "metrics.npz")
    for k in a.files:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-14, err_msg=k)
