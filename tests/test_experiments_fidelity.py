"""F3 confidence, F8 fidelity, F9 ensemble_attention presets at reduced size: complete run
directories, exact re-runs from config.toml, labelled figures, and facts about the outputs."""
import json

import numpy as np
import pytest

from linkd import cli
from linkd.plotting import check_figure

CASES = {
    "confidence": ["data.n=40", "data.d=20", "data.n_test=200", "data.seeds=2", "teacher.steps=10",
                   "student.steps=20", "record.every=5", "record.bins=8"],
    "fidelity": ["data.d=8", "data.n_values=2,4,8,16", "data.n_curves=4,16", "data.n_test=300", "data.seeds=2",
                 "data.exponent=1.0", "train.steps=1000", "record.every=20", "record.points=10"],
    "ensemble_attention": ["data.n=30", "data.d=10", "data.n_test=200", "data.seeds=2", "augment.strengths=0,0.3,0.8",
                           "teachers.steps=40", "student.steps=40", "record.top_k=3"],
}
FILES = ["config.toml", "meta.json", "metrics.npz", "summary.json"]


def _sets(preset):
    return [a for kv in CASES[preset] for a in ("--set", kv)]


def _run(preset, out):
    assert cli.main(["run", preset, *_sets(preset), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module", params=sorted(CASES))
def run_dir(request, tmp_path_factory):
    return request.param, _run(request.param, tmp_path_factory.mktemp(request.param) / "run")


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_run_directory_is_complete(run_dir):
    _, out = run_dir
    for f in FILES:
        assert (out / f).is_file(), f
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs and {p.rsplit(".", 1)[1] for p in figs} == {"pdf", "png"}
    assert json.loads((out / "meta.json").read_text())["x64"] is True
    npz = np.load(out / "metrics.npz")
    assert "steps" in npz and "eigvals" in npz


def test_rerun_from_written_config_reproduces_metrics_exactly(run_dir, tmp_path):
    _, out = run_dir
    again = tmp_path / "again"
    assert cli.main(["run", str(out / "config.toml"), "--out", str(again), "--quiet", "--no-figures"]) == 0
    a, b = np.load(out / "metrics.npz"), np.load(again / "metrics.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_figures_are_labelled_and_sized(run_dir):
    from linkd.experiments import base
    from linkd.rundir import load_run

    name, out = run_dir
    run = load_run(out)
    figs = base.get(name).figures(run.metrics, run.summary, run.config)
    assert figs
    for stem, fig in figs.items():
        assert check_figure(fig) == [], stem


def test_confidence_slopes_finite_and_scatter_consistent(run_dir):
    name, out = run_dir
    if name != "confidence":
        pytest.skip("confidence only")
    s, m = _summary(out), np.load(out / "metrics.npz")
    for split in ("train", "test"):
        assert np.isfinite(s[f"{split}_slope"]) and s[f"{split}_slope_gt_1"] == (s[f"{split}_slope"] > 1)
        x, y = m[f"{split}_x"], m[f"{split}_y"]
        assert np.all(x >= 0)  # X = φ(p_T(ŷ_T|x)) = |z_T| >= 0 in the binary case
        assert np.isclose(np.polyfit(x, y, 1)[0], s[f"{split}_slope"], rtol=1e-8)
        assert len(m[f"{split}_bin_x"]) == 8 and np.all(np.diff(m[f"{split}_bin_x"]) >= 0)


def test_fidelity_limits(run_dir):
    name, out = run_dir
    if name != "fidelity":
        pytest.skip("fidelity only")
    m, s = np.load(out / "metrics.npz"), _summary(out)
    n, d = m["n_values"], s["d"]
    # n >= d: the converged student equals the teacher — agreement 1, KL 0
    assert np.all(m["vs_n_limit_agreement"][:, n >= d] == 1.0)
    assert np.all(m["vs_n_limit_kl"][:, n >= d] < 1e-12)
    # n < d: a genuine gap set by span(X), and more data never hurts the limit
    assert np.all(m["vs_n_limit_kl"][:, n < d] > 1e-6)
    assert np.all(np.diff(m["vs_n_limit_kl"].mean(axis=0)) <= 1e-12)
    # n >= d: with more steps agreement rises and KL falls toward the limit (1, 0) without reaching it
    # (for n < d test KL need not be monotone in steps: the limit Pw* is not the KL minimiser on test)
    for nc in m["n_curves"][m["n_curves"] >= d]:
        kl, agr = m[f"n{nc}_kl"].mean(axis=0), m[f"n{nc}_agreement"].mean(axis=0)
        assert kl[-1] < kl[1] and kl[-1] > 0 and agr[-1] >= agr[1]


def test_fidelity_padding_matches_unpadded_gd():
    """The padded, vmapped n-sweep equals plain GD on the first n rows (same steps, same lr)."""
    import jax.numpy as jnp

    from linkd import dynamics
    from linkd.experiments import fidelity as F

    rng = np.random.default_rng(0)
    pool = jnp.asarray(rng.standard_normal((1, 12, 5)))
    w = jnp.asarray(rng.standard_normal((1, 5)))
    traj, lrs = F._train(pool, w, [4], 50, 50, 0.9, record=False)
    X = pool[0, :4]
    ref = dynamics.simulate(jnp.zeros(5), dynamics.Data(X=X, targets=X @ w[0]), dynamics.Hyper(lr=lrs[0]),
                            dynamics.EngineSpec(family="binary", steps=50, record_every=50))
    np.testing.assert_allclose(np.asarray(traj.params[0]), np.asarray(ref.params), rtol=1e-10, atol=1e-12)


def test_fidelity_binary_kl_matches_metrics():
    import jax

    from linkd import metrics
    from linkd.experiments.fidelity import binary_kl_from_logits

    rng = np.random.default_rng(1)
    zT, zS = rng.normal(0, 3, 100), rng.normal(0, 3, 100)
    ref = float(metrics.kl_teacher_student(jax.nn.sigmoid(zT), jax.nn.sigmoid(zS)))
    assert np.isclose(binary_kl_from_logits(zT, zS), ref, rtol=1e-10)


def test_ensemble_attention_facts(run_dir):
    name, out = run_dir
    if name != "ensemble_attention":
        pytest.skip("ensemble_attention only")
    m, s = np.load(out / "metrics.npz"), _summary(out)
    # no augmentation: teachers trained from zero on identical data are identical
    assert np.all(m["iou_topk"][0] == 1.0) and np.all(m["teacher_agreement"][0] == 1.0)
    for k in ("iou_topk", "iou_thr", "fidelity", "affinity"):
        assert np.all((m[k] >= 0) & (m[k] <= 1 + 1e-12)), k
    assert np.all(m["mi"] >= 0) and np.all(m["mi"] <= np.log(2) + 1e-12)
    assert set(s["directions"]) == {"iou_topk", "iou_thr", "fidelity", "mi", "gap"}
    assert all(isinstance(v["reproduced"], bool) for v in s["directions"].values())


def test_bad_input_is_refused(capsys, tmp_path):
    rc = cli.main(["run", "ensemble_attention", "--set", "record.top_k=99", "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "record.top_k" in err and "Traceback" not in err
    rc = cli.main(["run", "confidence", "--set", "data.flip=0.7", "--out", str(tmp_path / "y"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "data.flip" in err
