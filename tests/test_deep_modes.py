"""F10 `deep_modes` (docs/theory.md §7): facts about the preset's run directory at its reduced size."""
import json

import numpy as np

from linkd import registry
from linkd.experiments import load_run
from linkd.plotting import check_figure, legend_overlaps


def test_engine_matches_the_gd_recursion_and_modes_stay_decoupled(preset_run):
    summary = json.loads((preset_run("deep_modes") / "summary.json").read_text())
    assert sorted(summary["depth_runs"]) == ["N2", "N4"]  # the reduced size (tests/presets_reduced.py)
    for run in summary["depth_runs"].values():
        assert run["sim_vs_gd_recursion"] < 1e-12 and run["max_off_mode"] < 1e-12
        # GD at eps = 0.1 is a first-order approximation of the flow: visible, but small
        assert 1e-4 < run["sim_vs_gradient_flow"] < 0.1
    d = summary["distillation"]
    assert d["student_vs_gd_recursion"] < 1e-12 and d["teacher_vs_closed_form"] < 1e-12


def test_recorded_trajectories_rise_to_their_targets(preset_run):
    m = np.load(preset_run("deep_modes") / "metrics.npz")
    c = m["strengths"]
    for N in m["depths"]:
        q = m[f"N{N}_sim"] / c[None, :]
        assert np.allclose(q[0], 0.01 / c) and np.all(np.diff(q, axis=0) > -1e-12)  # monotone from the init
        assert np.allclose(m[f"N{N}_time"], m[f"N{N}_steps"] * json.loads(
            (preset_run("deep_modes") / "summary.json").read_text())["depth_runs"][f"N{N}"]["lr"])
    # the distilled student heads to the teacher's strengths a_k < c_k, not to c_k
    a = m["teacher_strengths"]
    assert np.all(a < c) and np.all(m["student_sim"][-1] <= a + 1e-12)


def test_modified_flow_is_second_order_and_dilation_grows_with_depth(preset_run):
    summary = json.loads((preset_run("deep_modes") / "summary.json").read_text())
    mo = summary["modified_equation"]
    assert 3.5 < mo["halving_ratio_modified"][0] < 4.5 and 1.8 < mo["halving_ratio_flow"][0] < 2.2
    R = summary["dilation"]["R"]["Q=0.2"]
    assert R[0] <= 1.0 < R[1] < R[2] and summary["dilation"]["R_closed_vs_ode_max_rel"] < 1e-8
    assert np.allclose(summary["gap_ordered"], [0.096, 0.060, 0.006, 0.003], atol=6e-4)
    assert np.allclose(summary["gap_whitened"], [0.0, 0.111, 0.012, 0.006], atol=6e-4)


def test_figure_is_labelled_and_legends_cover_no_data(preset_run):
    run = load_run(preset_run("deep_modes"))
    figs = registry.get("deep_modes").figures(run.metrics, run.summary, run.config)
    assert set(figs) == {"deep_modes"}
    assert check_figure(figs["deep_modes"]) == [] and legend_overlaps(figs["deep_modes"]) == []


def test_progress_total_is_every_gd_step_the_run_took(preset_run):
    """Progress is counted in GD steps: its total is the depth runs' steps (summary), the linear
    teacher's and the deep student's ⌈t_end/η⌉ (η from the summary); the stage count (depths + 2)
    it replaced would fail."""
    import math

    from linkd.experiments import deep_modes

    run = load_run(preset_run("deep_modes"))
    s, cfg = run.summary, run.config
    took = (sum(v["steps"] for v in s["depth_runs"].values()) + s["distillation"]["teacher_steps"]
            + math.ceil(cfg.get("distill.t_end") / s["distillation"]["student_lr"]))
    lam, c = run.metrics["eigvals"][: len(run.metrics["strengths"])], run.metrics["strengths"]
    assert deep_modes._total_steps(cfg, lam, c) == took
    assert len(cfg.get("model.depths")) + 2 != took
