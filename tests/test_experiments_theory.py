"""F5 pl_risk, F6 pl_convergence, F7 self_distillation: the facts each figure is meant to show
(the run-directory contract is in test_presets.py)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import bounds, cli, data
from presets_reduced import overrides


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_pl_risk_bound_monotonicity_and_trained_students(preset_run):
    out = preset_run("pl_risk")
    s = _summary(out)
    for g in ("margin_cone", "power_law", "isotropic"):
        r = s[g]
        mean, se, bound = map(np.asarray, (r["mc_mean"], r["mc_se"], r["bound"]))
        assert np.all(mean <= bound + 3 * se), g  # Theorem C
        assert r["non_increasing_within_3se"], g  # strong monotonicity, in expectation
        assert r["test_point_check"]["agrees_within_4se"], g  # exact risk vs fresh test points
        assert r["trained_linear_max_rel_error"] < 1e-6, g  # trained soft-CE student reaches P_n w*
        assert r["deep"]["N=2"]["orth_rel_norm_mean"][0] < 0.2  # O(init) orthogonal part
    iso = s["isotropic"]
    assert iso["mc_vs_exact_max_abs_z"] < 4  # MC agrees with the exact isotropic E[R_n]
    assert np.allclose(s["isotropic"]["bound"], 1.0)  # vacuous: no class separation


def test_pl_convergence_invariant_and_limits(preset_run):
    out = preset_run("pl_convergence")
    s = _summary(out)
    m = np.load(out / "metrics.npz")
    assert s["W1_invariant_max_err"] < 1e-12  # W1(t)(I-P) frozen at round-off
    assert s["linear"]["orth_part_max_change"] < 1e-12
    assert m["linear_dist"][-1] < 1e-3 * m["linear_dist"][0]
    for N in (2, 3):
        assert s[f"deep{N}"]["orth_shrinks_with_init_scale"]


def test_self_distillation_collapse_and_u_shape(preset_run):
    out = preset_run("self_distillation")
    s = _summary(out)
    for which in ("noisy", "clean"):
        lo, hi = s[which]["collapse_bounds"]
        assert lo <= s[which]["collapse_round"] <= hi and s[which]["collapse_within_bounds"]
        assert s[which]["c_strictly_increasing"]
    assert s["noisy"]["best_distillation_round"] >= 1 and s["u_shape_noisy"]  # a few rounds help
    assert s["clean"]["monotone_increasing_until_collapse"]  # clean smooth labels: only underfit


@pytest.mark.parametrize("kind,params", [("margin_cone", {"psi_max": 5 * np.pi / 12}), ("power_law", {"beta": 1.0}),
                                         ("power_law", {"beta": 0.5})])
def test_exact_risk_matches_test_points(kind, params):
    d = 12
    w = jnp.zeros(d).at[0].set(1.0)
    Xt = data.geometry(kind, jax.random.key(3), 100_000, w, **params)
    phis = np.array([0.2, 0.7, 1.2])
    interp = np.asarray(bounds.geometry_risk_fn(kind, d, **params)(jnp.asarray(phis)))
    np.testing.assert_allclose(interp, bounds.geometry_risk(kind, d, phis, **params), atol=5e-5)
    for phi, r in zip(phis, interp):
        ww = jnp.zeros(d).at[0].set(np.cos(phi)).at[1].set(np.sin(phi))
        emp = float(jnp.mean((jnp.sign(Xt @ ww) != jnp.sign(Xt @ w)).astype(ww.dtype)))
        assert abs(emp - r) <= 4 * np.sqrt(max(r, 1e-5) / 100_000) + 1e-12, (phi, emp, r)


@pytest.mark.parametrize("preset,override,needle", [
    ("pl_risk", "data.ns=4,2", "data.ns"),
    ("pl_risk", "deep.ns=5", "deep.ns"),
    ("pl_convergence", "data.n=50", "data.n"),
    ("self_distillation", "rounds.eps_fraction=0", "rounds.eps_fraction"),
])
def test_bad_input_exits_2_naming_the_key(preset, override, needle, tmp_path, capsys):
    code = cli.main(["run", preset, *overrides(preset), "--set", override, "--out", str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0]


def test_pl_risk_zero_padding_with_rescaled_lr_is_unpadded_gd():
    """pl_risk trains students on zero-padded sets with step η·n_pad/n: the same iterates as GD with
    step η on the unpadded set (deep sweep), and ‖∇L_pad‖ = (n/n_pad)‖∇L‖ (linear stopping rule)."""
    from linkd import engine
    from linkd.experiments.pl_risk import pad_rows
    from linkd.models import end_to_end, init_deep_linear

    d, n_pad, lr, S = 6, 7, 0.3, 3
    w_star = jnp.arange(1.0, d + 1.0) / d
    X_all = jax.random.normal(jax.random.key(0), (S, n_pad, d))
    p0 = jax.vmap(lambda k: init_deep_linear(d, (5,), scale=0.3, key=k))(jax.random.split(jax.random.key(1), S))
    spec = engine.EngineSpec(family="binary", steps=200, record_every=200)
    for n in (3,):
        X, Xp = X_all[:, :n], pad_rows(X_all[:, :n], n_pad)
        ref = engine.sweep(p0, engine.Data(X=X, targets=X @ w_star), engine.Hyper(lr=lr), spec,
                             batched=("params", "data"))
        pad = engine.sweep(p0, engine.Data(X=Xp, targets=Xp @ w_star), engine.Hyper(lr=jnp.full(S, lr * n_pad / n)),
                             spec, batched=("params", "data", "hyper"))
        a, b = jax.vmap(end_to_end)(ref.params), jax.vmap(end_to_end)(pad.params)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(a))))
        w = jnp.ones(d) * 0.1
        g = jax.grad(engine.objective.objective)(w, X[0], X[0] @ w_star, None, engine.Hyper(lr=lr), 0, spec)
        gp = jax.grad(engine.objective.objective)(w, Xp[0], Xp[0] @ w_star, None, engine.Hyper(lr=lr), 0, spec)
        np.testing.assert_allclose(gp, g * n / n_pad, rtol=1e-13, atol=1e-16)
