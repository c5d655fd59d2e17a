"""F3 confidence, F8 fidelity, F9 ensemble_attention: facts about the outputs (the run-directory
contract is in test_presets.py)."""
import json

import numpy as np
import pytest

from linkd import cli


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_confidence_protocol_and_closed_form(preset_run):
    out = preset_run("confidence")
    s, m = _summary(out), np.load(out / "metrics.npz")
    assert s["students"] == ["mse", "tau1", "tau4"]
    for name in s["students"]:
        for split in ("train", "test"):
            pre = f"{name}_{split}"
            x, y = m[f"{pre}_x"], m[f"{pre}_y"]
            assert np.all(x >= 0)  # X = φ(p_T(ŷ_T|x)) = |z_T| >= 0 in the binary case
            assert np.isclose(np.polyfit(x, y, 1)[0], s[f"{pre}_slope"], rtol=1e-8)  # student on teacher
            assert len(m[f"{pre}_bin_x"]) == 8 and np.all(np.diff(m[f"{pre}_bin_x"]) >= 0)
            assert m[f"{pre}_bin_dev"].shape == (2, 8)
            np.testing.assert_allclose(m[f"{pre}_bin_dev"][0], m[f"{pre}_bin_y"] - m[f"{pre}_bin_x"], atol=1e-12)
        # test points: the OLS slope is the Gaussian limit beta within a few standard errors (every seed)
        z = (m[f"{name}_test_slopes"] - m[f"{name}_test_beta"]) / m[f"{name}_test_beta_se"]
        assert np.all(np.abs(z) < 5.0), (name, z)
    # train, MSE student: the closed-form per-point logits reproduce the GD student exactly
    assert s["mse_train_closed_form"]["max_rel_error"] < 1e-10
    np.testing.assert_allclose(m["mse_train_pred_slopes"], m["mse_train_slopes"], rtol=1e-9)
    np.testing.assert_allclose(m["mse_train_pred_y"], m["mse_train_y"], atol=1e-9)


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
    for nc in m["n_curves"][m["n_curves"] >= d]:
        kl, agr = m[f"n{nc}_kl"].mean(axis=0), m[f"n{nc}_agreement"].mean(axis=0)
        assert kl[-1] < kl[1] and kl[-1] > 0 and agr[-1] >= agr[1]


def test_fidelity_closed_form_curves_match_monte_carlo(preset_run):
    out = preset_run("fidelity")
    m, s = np.load(out / "metrics.npz"), _summary(out)
    assert s["loss"] == "mse"
    for nc in m["n_curves"]:
        A, D = m[f"n{nc}_pred_agreement"], m[f"n{nc}_pred_disagreement"]
        assert A.shape == D.shape == (s["seeds"], m["curve_steps"].size)
        assert np.all(D[:, -1] < D[:, 0])  # the student approaches the teacher (D need not fall at every step: M != Λ)
        assert np.all((A > 0.5) & (A <= 1.0 + 1e-12))
        info = s[f"n{nc}"]
        assert info["closed_form_agreement"]["max_error_in_se"] < 4.5  # MC markers within the binomial noise
        assert info["closed_form_disagreement"]["max_rel_error"] < 0.5
    assert s["closed_form_agreement_max_error_in_se"] < 4.5


def test_fidelity_predicted_curves_match_direct_gd():
    """experiments.fidelity.predicted_curves (closed form) = the exact Sheppard agreement and D_test of
    plain numpy GD weights, n < d and n > d."""
    from linkd import closed_form
    from linkd.experiments import fidelity as fidelity_exp

    rng = np.random.default_rng(2)
    d = 6
    G = rng.standard_normal((d, d))
    cov = G @ G.T / d + 0.1 * np.eye(d)
    w = rng.standard_normal(d)
    for n in (4, 15):
        X = rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T
        lr = 0.9 / np.linalg.eigvalsh(X.T @ X / n)[-1]
        t = np.array([1.0, 7.0, 40.0])
        A, D = fidelity_exp.predicted_curves(X, w, cov, lr, t)
        ws, out_a, out_d = np.zeros(d), [], []
        for k in range(1, 41):
            ws = ws - lr * X.T @ (X @ ws - X @ w) / n
            if k in (1, 7, 40):
                out_a.append(1.0 - np.arccos(ws @ cov @ w / np.sqrt(ws @ cov @ ws * (w @ cov @ w))) / np.pi)
                out_d.append((ws - w) @ cov @ (ws - w))
        np.testing.assert_allclose(A, out_a, atol=1e-10)
        np.testing.assert_allclose(D, out_d, rtol=1e-10)
    assert closed_form.sign_agreement(w, w, cov) == 1.0


def test_fidelity_padding_matches_unpadded_gd():
    """The padded, vmapped n-sweep equals plain GD on the first n rows (same steps, same lr)."""
    import jax.numpy as jnp

    from linkd import engine
    from linkd.experiments import fidelity as fidelity_exp

    rng = np.random.default_rng(0)
    pool = jnp.asarray(rng.standard_normal((1, 12, 5)))
    w = jnp.asarray(rng.standard_normal((1, 5)))
    traj, lrs = fidelity_exp._train(pool, w, [4], 50, 50, 0.9, record=False)
    X = pool[0, :4]
    ref = engine.simulate(jnp.zeros(5), engine.Data(X=X, targets=X @ w[0]), engine.Hyper(lr=lrs[0]),
                            engine.EngineSpec(family="binary", steps=50, record_every=50))
    np.testing.assert_allclose(np.asarray(traj.params[0]), np.asarray(ref.params), rtol=1e-10, atol=1e-12)


def test_fidelity_binary_kl_matches_metrics():
    import jax

    from linkd import metrics
    from linkd.experiments.fidelity import binary_kl_from_logits

    rng = np.random.default_rng(1)
    zT, zS = rng.normal(0, 3, 100), rng.normal(0, 3, 100)
    ref = float(metrics.predictive_kl_teacher_student(jax.nn.sigmoid(zT), jax.nn.sigmoid(zS)))
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


@pytest.mark.parametrize("name", ["confidence", "fidelity"])
def test_f3_f8_legends_cover_no_data(name, preset_run):
    from linkd import registry
    from linkd.experiments import load_run
    from linkd.plotting import legend_overlaps

    run = load_run(preset_run(name))
    for stem, fig in registry.get(run.config.experiment).figures(run.metrics, run.summary, run.config).items():
        assert legend_overlaps(fig) == [], stem
