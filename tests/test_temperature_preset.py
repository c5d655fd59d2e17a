"""F11 temperature preset: the facts its figure shows, read from the run directory at the reduced size
(tests/presets_reduced.py; the run-directory contract itself is in test_presets.py)."""
import json

import numpy as np
import pytest

from linkd import cli
from presets_reduced import overrides


@pytest.fixture(scope="module")
def run(preset_run):
    out = preset_run("temperature")
    return json.loads((out / "summary.json").read_text()), np.load(out / "metrics.npz")


def test_errors_fall_with_slopes_minus_one_and_minus_two(run):
    s, m = run
    assert m["taus"].tolist() == [2.0, 32.0, 64.0, 128.0]
    assert s["fit_taus"] == [32.0, 64.0, 128.0]
    assert abs(s["e0_slope"] + 1.0) < 0.15 and abs(s["e1_slope"] + 2.0) < 0.15
    e0, e1 = m["e0"], m["e1"]
    assert np.all(np.diff(e0) < 0) and np.all(np.diff(e1) < 0)
    assert np.all(e1[1:] < 0.5 * e0[1:])  # the correction helps once tau >> Lambda
    assert s["closed_form_vs_simulation"]["max_abs_error"] == pytest.approx(e1[-1])


def test_recorded_arrays_are_consistent(run):
    s, m = run
    R = m["steps"].shape[0]
    d = m["eigvals"].shape[0]
    assert m["progress"].shape == (4, R, d) and m["filter"].shape == (R, d)
    np.testing.assert_allclose(m["progress_predicted"], m["filter"][None] + m["correction"][None] / m["taus"][:, None, None],
                               atol=1e-15)
    assert np.all(m["filter"][0] == 0) and np.all(m["progress"][:, 0] == 0)  # W_0 = 0
    lam, lr, C = m["eigvals"], s["lr"], s["classes"]
    np.testing.assert_allclose(m["filter"][-1], 1 - (1 - lr * lam / C) ** m["steps"][-1], atol=1e-12)
    assert s["class_sum_drift"] < 1e-12  # exact invariant W_s 1_C = W_0 1_C
    gmax = np.maximum(np.abs(m["gap_min"]), np.abs(m["gap_max"]))
    assert gmax[-1] < gmax[1]  # the matched-progress gap against the leading path shrinks with tau


def test_symmetric_data_removes_the_first_order_term(tmp_path):
    out = tmp_path / "sym"
    assert cli.main(["run", "temperature", *overrides("temperature"), "--set", "data.symmetric=true",
                     "--out", str(out), "--quiet", "--no-figures"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["max_abs_correction"] < 1e-13
    assert abs(s["e0_slope"] + 2.0) < 0.15


@pytest.mark.parametrize("override,needle", [
    ("train.lr_fraction=1.2", "train.lr_fraction"),  # C = 4: eta = 1.2 C/lambda_max > 4/lambda_max
    ("train.taus=0,4", "train.taus"),
    ("data.classes=1", "data.classes"),
])
def test_bad_input_exits_2_with_one_line_naming_the_key(override, needle, tmp_path, capsys):
    code = cli.main(["run", "temperature", *overrides("temperature"), "--set", override, "--out",
                     str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1
