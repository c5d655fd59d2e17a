"""Public names of data, spectral, models, losses, metrics, bounds and the run plumbing that no
other test exercised, each checked against an independent route (numpy / scipy re-derivation, the
csv and json modules, an explicit Cartesian product), and each check shown to fail on a planted
bug (a ``..._fails_on_a_planted_bug`` test per check).

The math: minimum-norm least squares and the rank threshold of Σ̂ (docs/theory.md §2.2), mode
strengths of aligned deep-linear designs (§7), the Phuong–Lampert exact risk and learning curve
(§1.4), the confidence-exaggeration OLS line (§2.1).
"""
import csv
import datetime
import io
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from linkd import bounds, config, data, errors, metrics, rundir, spectral, sweeps
from linkd.errors import ConfigError, RunDirError, RunDirExistsError


def key(i):
    return jax.random.key(i)


# ----------------------------------------------------------------- spectral: min-norm solution
def _assert_min_norm(w, X, y):
    """w = X⁺y, from numpy's SVD least squares (minimum norm among all minimisers)."""
    ref = np.linalg.lstsq(np.asarray(X), np.asarray(y), rcond=None)[0]
    np.testing.assert_allclose(np.asarray(w), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n,d,C", [(5, 9, None), (12, 4, None), (6, 10, 3)])
def test_min_norm_solution_is_the_minimum_norm_least_squares_solution(n, d, C):
    X = jax.random.normal(key(n), (n, d))
    y = jax.random.normal(key(d), (n,) if C is None else (n, C))
    _assert_min_norm(spectral.min_norm_solution(X, y), X, y)


def test_min_norm_check_fails_on_a_planted_bug():
    X, y = jax.random.normal(key(1), (5, 9)), jax.random.normal(key(2), (5,))
    w = np.asarray(spectral.min_norm_solution(X, y))
    null = np.linalg.svd(np.asarray(X))[2][-1]  # X @ null = 0: still interpolates, but longer
    np.testing.assert_allclose(np.asarray(X) @ (w + 0.1 * null), np.asarray(y), atol=1e-10)
    with pytest.raises(AssertionError):
        _assert_min_norm(w + 0.1 * null, X, y)


# ----------------------------------------------------------------- spectral: rank threshold
def _rank_deficient(dtype):
    A = np.asarray(jax.random.normal(key(3), (20, 4)), np.float64)
    X = np.concatenate([A, A @ np.asarray(jax.random.normal(key(4), (4, 3)))], axis=1)  # rank 4 of 7
    return jnp.asarray(X, dtype)


def _assert_rank_found(spec, X):
    """The nonzero eigenvalues of Σ̂ number rank X (numpy's SVD rank at X's precision), and the kept
    ones are Σ̂'s."""
    assert int(np.sum(np.asarray(spec.eigvals) > 0)) == np.linalg.matrix_rank(np.asarray(X))
    Xn = np.asarray(X, np.float64)
    lam_ref = np.linalg.eigvalsh(Xn.T @ Xn / Xn.shape[0])[::-1]
    kept = np.asarray(spec.eigvals) > 0
    np.testing.assert_allclose(np.asarray(spec.eigvals, np.float64)[kept], lam_ref[kept], rtol=1e-4)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_default_rank_tol_zeroes_exactly_the_null_space(dtype):
    X = _rank_deficient(dtype)
    n, d = X.shape
    assert spectral.default_rank_tol(X) == pytest.approx(10 * max(n, d) * np.finfo(np.dtype(dtype)).eps, rel=1e-12)
    spec = spectral.eigh_desc(X)
    assert isinstance(spec, spectral.Spectrum) and spec.eigvals.dtype == dtype
    _assert_rank_found(spec, X)


def test_rank_check_fails_on_a_planted_bug():
    X = _rank_deficient(jnp.float32)
    with pytest.raises(AssertionError):  # no threshold: float32 round-off counts as rank
        _assert_rank_found(spectral.eigh_desc(X, rank_tol=-1.0), X)


# ----------------------------------------------------------------- spectral: mode strengths
def _assert_mode_strengths(ms, coeffs, U):
    M = np.einsum("tim,mk->tik", np.asarray(coeffs), np.asarray(U))
    r = U.shape[1]
    diag = np.stack([np.diag(Mt[:r, :]) for Mt in M])
    off = np.array([np.max(np.abs(Mt - np.pad(np.diag(np.diag(Mt[:r, :])), ((0, Mt.shape[0] - r), (0, 0)))))
                    for Mt in M])
    np.testing.assert_allclose(np.asarray(ms.strengths), diag, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ms.off_mode), off, rtol=1e-12)


def test_mode_strengths_are_the_diagonal_of_v_t_we_u():
    coeffs = jax.random.normal(key(5), (3, 5, 4))  # (records, d, m)
    U = jnp.linalg.qr(jax.random.normal(key(6), (4, 2)))[0]
    ms = spectral.mode_strengths(coeffs, U)
    assert isinstance(ms, spectral.ModeStrengths)
    _assert_mode_strengths(ms, coeffs, U)


def test_mode_strengths_check_fails_on_a_planted_bug():
    coeffs = jax.random.normal(key(5), (3, 5, 4))
    U = jnp.linalg.qr(jax.random.normal(key(6), (4, 2)))[0]
    ms = spectral.mode_strengths(coeffs, U)
    with pytest.raises(AssertionError):  # strengths read off Vᵀ W_eᵀ without the output frame U
        _assert_mode_strengths(ms._replace(strengths=np.asarray(coeffs)[:, [0, 1], [0, 1]]), coeffs, U)


# ----------------------------------------------------------------- data: aligned design
def _assert_aligned(D, n):
    X, Y, V, U = (np.asarray(a) for a in (D.X, D.Y, D.V, D.U))
    lam, c = np.asarray(D.eigvals), np.asarray(D.strengths)
    r = c.size
    np.testing.assert_allclose(X.T @ X / n, (V * lam) @ V.T, atol=1e-10)
    np.testing.assert_allclose(Y.T @ X / n, (U * (lam[:r] * c)) @ V[:, :r].T, atol=1e-10)


def test_aligned_design_has_the_stated_covariances():
    D = data.aligned_design(key(7), 12, [3.0, 2.0, 1.0, 0.5], [1.5, 0.5], 3, noise=0.3)
    assert isinstance(D, data.AlignedDesign) and D.Y.shape == (12, 3) and D.U.shape == (3, 2)
    _assert_aligned(D, 12)


def test_aligned_check_fails_on_a_planted_bug():
    D = data.aligned_design(key(7), 12, [3.0, 2.0, 1.0, 0.5], [1.5, 0.5], 3, noise=0.3)
    G = np.asarray(jax.random.normal(key(8), D.Y.shape))
    with pytest.raises(AssertionError):  # noise not projected off the columns of X
        _assert_aligned(D._replace(Y=D.Y + 0.3 * G), 12)


# ----------------------------------------------------------------- bounds: exact risk table
def _risk_by_quadrature(kind, d, phi, psi_max=None, beta=None):
    r"""R(φ) = E_θ̄ P[t > tan θ̄ / tan φ], t = vᵀu for u uniform on the unit sphere of R^{d−1}:
    t has density ∝ (1 − t²)^{(d−4)/2} on [−1, 1] (a coordinate of a uniform sphere point)."""
    norm = special.beta(0.5, (d - 2) / 2)

    def tail(theta):
        c = math.tan(theta) / math.tan(phi)
        return 0.0 if c >= 1 else integrate.quad(lambda t: (1 - t * t) ** ((d - 4) / 2), c, 1)[0] / norm

    if kind == "margin_cone":  # θ̄ = π/2 − ψ, ψ ~ U[0, ψ_max]
        return integrate.quad(lambda s: tail(math.pi / 2 - s), 0, psi_max, limit=200)[0] / psi_max
    # power law: θ̄ = (π/2) u^{1/β}, u ~ U[0, 1]
    return integrate.quad(lambda u: tail(math.pi / 2 * u ** (1 / beta)), 0, 1, limit=200)[0]


PHIS = np.array([0.15, 0.61, 1.3])
GEOMS = [("margin_cone", {"psi_max": 5 * np.pi / 12}), ("power_law", {"beta": 2.0})]


def _assert_risk(pred, kind, d, params):
    ref = [_risk_by_quadrature(kind, d, p, **params) for p in PHIS]
    np.testing.assert_allclose(np.asarray(pred), ref, atol=2e-6)


@pytest.mark.parametrize("kind,params", GEOMS)
def test_apply_risk_table_interpolates_the_exact_risk(kind, params):
    d = 7
    tab = bounds.geometry_risk_table(kind, d, table=4097, **params)
    pred = jax.jit(lambda phi, t: bounds.apply_risk_table(kind, phi, t))(jnp.asarray(PHIS), tab)  # traced table
    _assert_risk(pred, kind, d, params)
    assert bounds.geometry_risk_table("isotropic", d) is None
    np.testing.assert_allclose(np.asarray(bounds.apply_risk_table("isotropic", jnp.asarray(PHIS), None)), PHIS / np.pi)


def test_risk_table_check_fails_on_a_planted_bug():
    kind, params = GEOMS[0]
    wrong = bounds.geometry_risk_table(kind, 8, table=4097, **params)  # the table of another dimension
    with pytest.raises(AssertionError):
        _assert_risk(bounds.apply_risk_table(kind, jnp.asarray(PHIS), wrong), kind, 7, params)


# ----------------------------------------------------------------- bounds: learning curve
def _iso_expected_risk(n, d, shift=0.0):
    """E[arccos √B]/π, B ~ Beta(n/2, (d−n)/2) (cos² of the angle of P_n w* to w*), by quadrature."""
    if n >= d:
        return 0.0
    return stats.beta(n / 2 + shift, (d - n) / 2).expect(lambda b: np.arccos(np.sqrt(b)) / np.pi)


def _assert_curve(curve, d, shift=0.0):
    exact = np.array([_iso_expected_risk(int(n), d, shift) for n in curve.ns])
    assert np.all(np.abs(np.asarray(curve.mean) - exact) <= 4 * np.asarray(curve.se) + 1e-12), (curve.mean, exact)


@pytest.fixture(scope="module")
def iso_curve():
    d = 6
    w_star = jnp.zeros(d).at[0].set(1.0)
    return bounds.mc_learning_curve(key(9), lambda k, m: jax.random.normal(k, (m, d)), w_star, [1, 2, 4, 6],
                                    n_sets=800, n_test=0, risk_fn=bounds.iso_gaussian_risk)


def test_learning_curve_matches_the_beta_law(iso_curve):
    curve = iso_curve
    assert isinstance(curve, bounds.LearningCurve) and list(curve.ns) == [1, 2, 4, 6]
    assert float(curve.mean[-1]) == pytest.approx(0.0, abs=1e-6) and np.all(np.asarray(curve.se[:-1]) > 0)
    _assert_curve(curve, 6)


def test_learning_curve_check_fails_on_a_planted_bug(iso_curve):
    with pytest.raises(AssertionError):  # Beta((n+1)/2, ·): the law of a projection on n+1 rows
        _assert_curve(iso_curve, 6, shift=0.5)


# ----------------------------------------------------------------- metrics: confidence scatter
def _assert_scatter(sc, pT, pS):
    yhat = np.argmax(pT, axis=1)
    x = special.logit(pT[np.arange(len(yhat)), yhat])
    y = special.logit(pS[np.arange(len(yhat)), yhat])
    fit = stats.linregress(x, y)
    np.testing.assert_allclose(np.asarray(sc.x), x, rtol=1e-10)
    np.testing.assert_allclose([float(sc.slope), float(sc.intercept)], [fit.slope, fit.intercept], rtol=1e-10)
    order = np.argsort(x, kind="stable")
    np.testing.assert_allclose(np.asarray(sc.bin_x), [x[b].mean() for b in np.array_split(order, len(sc.bin_x))],
                               rtol=1e-10)


def _probs():
    zT = jax.random.normal(key(10), (40, 3))
    zS = 1.7 * zT + 0.3 * jax.random.normal(key(11), (40, 3))
    return np.asarray(jax.nn.softmax(zT)), np.asarray(jax.nn.softmax(zS))


def test_confidence_scatter_is_the_ols_line_of_logit_confidences():
    pT, pS = _probs()
    sc = metrics.confidence_scatter(pT, pS, bins=5)
    assert isinstance(sc, metrics.ConfidenceScatter) and sc.bin_x.shape == (5,)
    _assert_scatter(sc, pT, pS)


def test_scatter_check_fails_on_a_planted_bug():
    pT, pS = _probs()
    sc = metrics.confidence_scatter(pT, pS, bins=5)
    x, y = np.asarray(sc.x), np.asarray(sc.y)
    wrong_way = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((y - y.mean()) ** 2)  # x regressed on y
    with pytest.raises(AssertionError):
        _assert_scatter(sc._replace(slope=wrong_way), pT, pS)


# ----------------------------------------------------------------- config
SCHEMA = {"train": {"lr": config.Field(float, 0.1, "step", low=0.0, low_open=True),
                    "steps": config.Field(int | None, None, "steps"),
                    "taus": config.Field(list[float], [1.0], "temperatures", low=0.0, low_open=True)}}


def test_parse_value_field_of_and_section():
    f = config.field_of(SCHEMA, "train.taus")
    assert f is SCHEMA["train"]["taus"]
    assert config.parse_value("train.taus", f, "0.5,2") == (0.5, 2.0)
    assert config.parse_value("train.taus", f, "[0.5, 2]") == (0.5, 2.0)
    assert config.parse_value("train.steps", config.field_of(SCHEMA, "train.steps"), "none") is None
    assert config.parse_value("train.steps", config.field_of(SCHEMA, "train.steps"), "7") == 7
    for bad, word in (("train.taus", "0.5,-1"), ("train.lr", "fast")):
        with pytest.raises(ConfigError, match=bad.replace(".", r"\.")):
            config.parse_value(bad, config.field_of(SCHEMA, bad), word)
    with pytest.raises(ConfigError, match="did you mean train.lr"):
        config.field_of(SCHEMA, "train.lrr")
    cfg = config.build_config("x", SCHEMA, {"experiment": "x", "train": {"taus": [3.0]}}, ["train.lr=0.25"])
    sec = cfg["train"]
    assert isinstance(sec, config.Section) and sec.lr == sec["lr"] == 0.25 and dict(sec) == {
        "lr": 0.25, "steps": None, "taus": (3.0,)}
    with pytest.raises(AttributeError, match="immutable"):
        sec.lr = 1.0


def test_one_line_collapses_whitespace():
    assert errors.one_line("  a\n\tb   c\n") == "a b c"
    assert "\n" not in str(ConfigError("k", "v\nw", "x\ny"))


# ----------------------------------------------------------------- run plumbing: sweeps, rundir
@pytest.fixture(scope="module")
def toy_sweep(tmp_path_factory):
    """A 2 x 2 sweep of the toy experiment (GD on a diagonal quadratic, c_k(t) = 1 − (1 − ηλ_k)^t)."""
    import toy_experiment  # noqa: F401  (registers "toy")
    from linkd import experiments, registry

    cfg = registry.load_config("kind:toy", ["train.steps=4"])
    grid = experiments.parse_grid(cfg, ["train.lr=0.25,0.5", "run.seed=0,1"])
    root = tmp_path_factory.mktemp("sweep") / "toy"
    experiments.execute_sweep(cfg, grid, root, quiet=True, figures=False)
    return cfg, grid, root


def test_grid_points_and_point_names_follow_the_product(toy_sweep):
    import itertools

    from linkd.experiments import grid_points, runner

    cfg, grid, root = toy_sweep
    assert grid == {"train.lr": [0.25, 0.5], "run.seed": [0, 1]}
    pts = grid_points(grid)
    assert pts == [dict(zip(grid, v)) for v in itertools.product(*grid.values())]
    names = [runner.point_name(p) for p in pts]
    assert names[1] == "train.lr=0.25,run.seed=1" and runner.point_name({"a.b": (1, 2), "c": "x y"}) == "a.b=1+2,c=x_y"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(names)


def test_execute_sweep_writes_each_points_exact_run(toy_sweep):
    from linkd.experiments import load_run

    cfg, grid, root = toy_sweep
    index = json.loads((root / "sweep.json").read_text())
    assert sweeps.is_sweep_dir(root) and not sweeps.is_sweep_dir(root / "train.lr=0.5,run.seed=0")
    assert sweeps.load_index(root) == index and len(index["points"]) == 4
    run = load_run(root / "train.lr=0.5,run.seed=1")
    lam, t = np.array([1.0, 0.5, 0.1]), np.arange(5)
    np.testing.assert_allclose(run.metrics["coeffs"], 1 - (1 - 0.5 * lam[None, :]) ** t[:, None], rtol=1e-6)


def _assert_csv(text, index):
    """Each (grid group, metric) row of the CSV, read back by the csv module, holds the mean over
    seeds and the seed count of that metric, recomputed from the index's per-point summaries."""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    for row in rows:
        vals = [sweeps.flatten_summary(p["summary"]).get(row["metric"], math.nan) for p in index["points"]
                if repr(float(p["params"]["train.lr"])) == row["train.lr"]]
        vals = np.asarray(vals, np.float64)[np.isfinite(vals)]
        assert int(row["n"]) == vals.size
        if vals.size:
            assert float(row["mean"]) == pytest.approx(vals.mean(), rel=1e-12, abs=1e-300)


def test_sweep_table_and_csv_hold_the_seed_means(toy_sweep):
    cfg, grid, root = toy_sweep
    index = sweeps.load_index(root)
    table = sweeps.aggregate(index)
    assert isinstance(table, sweeps.SweepTable) and table.axes == ("train.lr",)
    m = table.metrics.index("max_abs_error")
    errs = [sweeps.flatten_summary(p["summary"])["max_abs_error"] for p in index["points"] if p["params"]["train.lr"] == 0.5]
    assert table.mean[1, m] == pytest.approx(np.mean(errs), abs=1e-15) and table.n[1, m] == 2
    flat = sweeps.flatten_summary({"a": {"b": 1, "c": True, "d": [1.0]}, "e": None, "_f": None})
    assert set(flat) == {"a.b", "e"} and flat["a.b"] == 1.0 and math.isnan(flat["e"])
    _assert_csv(sweeps.to_csv(table), index)
    paths = sweeps.write_summary(root, formats=())
    assert [p.name for p in paths] == [sweeps.CSV_NAME] and paths[0].read_text() == sweeps.to_csv(table)
    assert sweeps.default_metrics(table)[0] in table.metrics
    cap = sweeps.sweep_caption(index, table, ["max_abs_error"])
    assert "train.lr = 0.25, 0.5" in cap and "2 seeds" in cap


def test_csv_check_fails_on_a_planted_bug(toy_sweep):
    index = sweeps.load_index(toy_sweep[2])
    table = sweeps.aggregate(index)
    with pytest.raises(AssertionError):  # each group's means written against the other group's values
        _assert_csv(sweeps.to_csv(table._replace(groups=table.groups[::-1])), index)


def test_draw_figures_writes_the_registered_figure(toy_sweep, tmp_path):
    from linkd.experiments import draw_figures, load_run

    run = load_run(toy_sweep[2] / "train.lr=0.25,run.seed=0")
    paths = draw_figures(run, tmp_path, formats=("png",))
    assert [p.name for p in paths if p.suffix == ".png"] == ["toy_coeffs.png"]
    import matplotlib.image

    img = matplotlib.image.imread(paths[0])
    assert img.std() > 0.01  # drawn, not blank


def test_registry_plugin_surface():
    from linkd import experiments, registry

    assert {e.name for e in experiments.all_experiments()} == set(registry.names())
    preset = experiments.find_preset("eigen_convergence")
    assert isinstance(preset, experiments.Preset) and preset.path.is_file()
    assert config.read_toml(preset.path)["experiment"] == "eigen_convergence"
    assert experiments.find_preset("no_such_preset") is None and experiments.find_preset("../x") is None
    ctx = experiments.RunContext()
    assert ctx.progress is experiments.null_progress and experiments.null_progress(3, 5, "steps") is None
    assert (ctx.seed, ctx.x64, ctx.quiet) == (0, False, True)


def test_x64_mode_sets_and_restores_the_flag():
    from linkd.experiments.runner import x64_mode

    before = jax.config.jax_enable_x64
    with x64_mode(not before):
        assert jnp.zeros(()).dtype == (jnp.float64 if not before else jnp.float32)
    assert jax.config.jax_enable_x64 == before


def test_rundir_provenance_and_output_checks(tmp_path):
    stamp = datetime.datetime.fromisoformat(rundir.utc_now().replace("Z", "+00:00"))
    assert abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) < 60
    meta = rundir.collect_meta(seeds={"run.seed": 3}, command=["linkd", "run", "x"], x64=True)
    assert meta["seeds"] == {"run.seed": 3} and meta["x64"] is True and meta["versions"]["numpy"] == np.__version__
    json.dumps(meta)  # JSON-able as written to meta.json
    rundir.check_output_dir(tmp_path / "new")  # missing: fine
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(RunDirExistsError):
        rundir.check_output_dir(tmp_path / "full")
    rundir.check_output_dir(tmp_path / "full", overwrite=True)
    with pytest.raises(RunDirError, match="not a directory"):
        rundir.check_output_dir(tmp_path / "full" / "f")


# ----------------------------------------------------------------- plotting: the eigen figures
def _eigen_metrics():
    """Recorded arrays of an eigen_convergence run, written from the GD filters with numpy."""
    lam, c_star, lr, T = np.array([2.0, 0.5, 0.1]), np.array([1.0, -0.5, 0.25]), 0.4, 40
    steps = np.arange(0, 61, 3)
    f = lambda t: 1 - (1 - lr * lam[None, :]) ** t[:, None]  # noqa: E731
    teacher, student = f(steps) * c_star, f(steps) * f(np.array([T])) * c_star
    m = {"directions": np.array([1, 3]), "eigvals": lam, "c_star": c_star, "teacher_steps": steps,
         "student_steps": steps, "teacher_coeffs_closed_form": teacher, "student_coeffs_closed_form": student,
         "teacher_q": teacher / c_star, "student_q": student / c_star}
    return m, {"max_rel_error": 1e-15, "lr": lr, "exaggeration_gap_min": 0.0, "dtype": "float64"}, f


def _assert_progress_lines(fig, m, f):
    """Each panel's line for direction k is q_k(t) = (1 − (1 − ηλ_k)^t)(· the teacher's factor)."""
    steps = m["teacher_steps"]
    teacher_ax, student_ax = fig.axes[:2]
    for ax, factor in ((teacher_ax, 1.0), (student_ax, f(np.array([40]))[0])):
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 1]
        for ln, k in zip(lines, m["directions"]):
            np.testing.assert_allclose(ln.get_xdata(), steps[1:])
            np.testing.assert_allclose(ln.get_ydata(), (f(steps) * factor)[1:, k - 1], rtol=1e-12)


def test_progress_curves_draw_the_closed_form_progress():
    import matplotlib.pyplot as plt

    from linkd.plotting.eigen import parametric_progress, progress_curves

    m, summary, f = _eigen_metrics()
    fig = progress_curves(m, summary)
    _assert_progress_lines(fig, m, f)
    par = parametric_progress(m, summary)
    teacher_path = next(ln for ln in par.axes[0].get_lines() if ln.get_linestyle() == "--" and len(ln.get_xdata()) > 1)
    x, y = np.asarray(teacher_path.get_xdata()), np.asarray(teacher_path.get_ydata())
    keep = x < 1 - 1e-9  # before q_1 saturates at 1 (where τ cannot be read back)
    assert keep.sum() > 100
    x, y = x[keep], y[keep]
    tau = np.log1p(-x) / np.log1p(-0.4 * 2.0)  # the time each x belongs to, q_1(τ) = 1 − (1 − ηλ_1)^τ
    np.testing.assert_allclose(y, 1 - (1 - 0.4 * 0.1) ** tau, rtol=1e-9, atol=1e-12)  # q_3 at the same τ
    plt.close("all")


def test_progress_lines_check_fails_on_a_planted_bug():
    import matplotlib.pyplot as plt

    from linkd.plotting.eigen import progress_curves

    m, summary, f = _eigen_metrics()
    m["teacher_coeffs_closed_form"] = m["teacher_coeffs_closed_form"] * (1 + 1e-6)  # a prediction off by 1e-6
    with pytest.raises(AssertionError):
        _assert_progress_lines(progress_curves(m, summary), m, f)
    plt.close("all")
