"""F3 confidence, F8 fidelity, F9 ensemble_attention: facts about the outputs (the run-directory
contract is in test_presets.py)."""
import json

import numpy as np
import pytest

from linkd import cli


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_confidence_slopes_finite_and_scatter_consistent(preset_run):
    out = preset_run("confidence")
    s, m = _summary(out), np.load(out / "metrics.npz")
    for split in ("train", "test"):
        assert np.isfinite(s[f"{split}_slope"]) and s[f"{split}_slope_gt_1"] == (s[f"{split}_slope"] > 1)
        x, y = m[f"{split}_x"], m[f"{split}_y"]
        assert np.all(x >= 0)  # X = φ(p_T(ŷ_T|x)) = |z_T| >= 0 in the binary case
        assert np.isclose(np.polyfit(x, y, 1)[0], s[f"{split}_slope"], rtol=1e-8)
        assert len(m[f"{split}_bin_x"]) == 8 and np.all(np.diff(m[f"{split}_bin_x"]) >= 0)


def test_fidelity_limits(preset_run):
    out = preset_run("fidelity")
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


def test_ensemble_attention_facts(preset_run):
    out = preset_run("ensemble_attention")
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
