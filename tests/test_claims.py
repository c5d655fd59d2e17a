"""linkd.claims: domains, the error by kind, batched evaluation, user claim files through `linkd check`,
and the falsifier, which must find what is false and spare what is true (issue 16).

Facts are checked against independent routes: scipy's Sobol sequence for the sampler, hand-derived
formulas (the K = 1 collapse round ⌈√ratio⌉ − 1), numpy re-computations, the scalar-ODE route of
proofs_check.beyond_deep, and exact Beta-quadrature risks.
"""
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from linkd import bounds, cli
from linkd.claims import Choice, Claim, Domain, Evaluator, Int, LogReal, Outcome, Real, load_claims
from linkd.claims.claim import error_of, jax_error_of
from linkd.claims.domain import format_point, toml_point
from linkd.claims.falsify import falsify
from linkd.errors import InputError
from proofs_check import registry, runner

EX = Path(__file__).resolve().parents[1] / "examples"


def _claim(path: str, cid: str):
    got = load_claims(str(EX / path))
    assert not got.problems, got.problems
    return next(c for c in got.claims if c.id == cid)


# ------------------------------------------------------------------------------------ domains


def test_log_real_screen_is_scipy_sobol_in_log_space():
    from scipy.stats import qmc

    dom = Domain(x=LogReal(1e-3, 10.0), n=Int(2, 9))
    got = dom.sample(256, seed=7)
    u = qmc.Sobol(2, scramble=True, seed=7).random(256)  # the same sequence, mapped by hand
    assert np.allclose(got["x"], 10 ** (-3 + 4 * u[:, 0]), rtol=1e-12)
    assert np.array_equal(got["n"], 2 + np.floor(u[:, 1] * 8).astype(int))
    assert np.allclose(np.sort(np.log10(got["x"])), np.linspace(-3, 1, 256, endpoint=False) + 2 / 256, atol=0.05)


def test_constraints_by_rejection_vectorised_or_per_point():
    vec = Domain(n=Int(1, 20), d=Int(1, 20), where=lambda p: p["n"] < p["d"])
    scalar = Domain(n=Int(1, 20), d=Int(1, 20), where=lambda p: p["n"] < p["d"] and p["d"] > 0)  # `and`: per point
    a, b = vec.sample(300, seed=1), scalar.sample(300, seed=1)
    assert np.all(a["n"] < a["d"]) and np.array_equal(a["n"], b["n"]) and np.array_equal(a["d"], b["d"])
    assert vec.describe()["where"] == ['p["n"] < p["d"]']
    c = Domain(k=Choice(("a", "b", "c")), x=Real(0.0, 1.0)).sample(300, seed=0)
    assert {v: int(np.sum(c["k"] == v)) for v in "abc"} == pytest.approx({"a": 100, "b": 100, "c": 100}, abs=3)


def test_empty_region_is_one_clear_error():
    dom = Domain(n=Int(1, 5), d=Int(1, 5), where={"n > d + 10": lambda p: p["n"] > p["d"] + 10})
    with pytest.raises(InputError, match="region is empty.*n > d \\+ 10") as e:
        dom.sample(4)
    assert "\n" not in str(e.value)


def test_point_text_and_toml_round_trip():
    dom = Domain(n=Int(1, 50), lr=LogReal(1e-4, 1.0), kind=Choice(("iso", "cone")))
    p = {"n": 7, "lr": 0.0123456789012345, "kind": "cone"}
    assert dom.parse(format_point(p)) == p
    assert tomllib.loads(toml_point(p, "header\nline")) == p
    with pytest.raises(InputError, match=r"n = 99 outside \[1, 50\]"):
        dom.parse("n=99")
    with pytest.raises(InputError, match="unknown parameter 'm'"):
        dom.parse("m=3")


# ------------------------------------------------------------------------------------ errors by kind


@pytest.mark.parametrize("kind,extra", [("bound", {}), ("bound", {"sense": "lower"}), ("exact", {}),
                                        ("exact", {"relative": True}), ("monotone", {}),
                                        ("monotone", {"direction": "increasing"})])
def test_numpy_and_jax_errors_match_their_definitions(kind, extra):
    rng = np.random.default_rng(3)
    m, p = rng.normal(size=6), rng.normal(size=6)
    c = Claim("t.e", "s", kind, lambda q: None, Domain(x=Real(0, 1)), 0.1, **extra)
    want = {"bound": np.max(m - p) if extra.get("sense", "upper") == "upper" else np.max(p - m),
            "exact": np.max(np.abs(m - p)) / (np.max(np.abs(p)) if extra.get("relative") else 1.0),
            "monotone": np.max(np.diff(m)) if extra.get("direction", "decreasing") == "decreasing" else np.max(-np.diff(m))}
    out = Outcome(m, None if kind == "monotone" else p)
    assert error_of(c, out) == pytest.approx(want[kind], rel=1e-14)
    assert float(jax_error_of(c, out)) == pytest.approx(want[kind], rel=1e-14)
    bad = Outcome(np.append(m, np.nan), None if kind == "monotone" else np.append(p, 0.0))
    assert error_of(c, bad) == math.inf and float(jax_error_of(c, bad)) == math.inf  # a NaN fails, never passes


def test_vmap_and_loop_agree_and_untraceable_claims_loop():
    c = _claim("exaggeration_gap.py", "ng.gap_nonnegative")
    batch = Domain(**{k: v for k, v in c.domain.params.items() if k != "d"}, d=Int(5, 5)).sample(24, seed=2)
    fast, slow = Evaluator(c), Evaluator(c, vmap=False)
    a, b = fast.errors(batch), slow.errors(batch)
    assert a.mode == "vmap" and b.mode == "loop"
    assert np.allclose(a.errors, b.errors, rtol=1e-9, atol=1e-15)
    hosty = Claim("t.host", "s", "bound", lambda p: Outcome(float(p["x"]) ** 2, 1.0), Domain(x=Real(0, 2)))
    ev = Evaluator(hosty)
    s = ev.errors(Domain(x=Real(0, 2)).sample(8))
    assert s.mode == "loop" and "Concretization" in ev.loop_reason
    assert np.allclose(s.errors, Domain(x=Real(0, 2)).sample(8)["x"] ** 2 - 1.0)


# ------------------------------------------------------------------------------------ linkd check --claims


def test_user_claims_give_the_registry_record(tmp_path, capsys):
    out = tmp_path / "r.json"
    spec = str(EX / "collapse_bound_minus_one.py")
    rc = runner.main(["--claims", spec, "--only", "collapse.minus_one", "--at", "K=1,ratio=1.5,seed=3",
                      "--json", str(out), "-q"])
    rec = json.loads(out.read_text())[0]
    assert rc == 1 and set(registry.RECORD_KEYS) <= set(rec) and rec["domain"]["point"]["ratio"] == 1.5
    assert rec["measured"] == 1 and rec["error"] == pytest.approx(1 - 0.5) and not rec["passed"]
    assert "--at" in rec["command"] and f"--claims {spec}" in rec["command"]
    for r in (1.5, 4.0, 9.5, 30.0):  # K = 1: T_c = ceil(sqrt(ratio)) - 1 (by hand), through --at
        runner.main(["--claims", spec, "--only", "collapse.upper", "--at", f"K=1,ratio={r}", "--json", str(out), "-q"])
        assert json.loads(out.read_text())[0]["measured"] == math.ceil(math.sqrt(r)) - 1


def test_domain_screen_records_the_worst_point(tmp_path):
    out = tmp_path / "r.json"
    rc = runner.main(["--claims", str(EX / "collapse_bound_minus_one.py"), "--domain", "48", "--json", str(out), "-q"])
    recs = {r["id"]: r for r in json.loads(out.read_text())}
    scr = recs["collapse.minus_one"]["domain"]["screen"]
    assert rc == 1 and scr["points"] == 49 and scr["failing_points"] > 0 and not recs["collapse.minus_one"]["passed"]
    worst = recs["collapse.minus_one"]["params"]
    assert recs["collapse.minus_one"]["measured"] > worst["ratio"] - 1  # the recorded point does violate
    assert recs["collapse.upper"]["passed"] and recs["collapse.upper"]["domain"]["screen"]["failing_points"] == 0


def test_breakers_reach_user_claims():
    from proofs_check.points import from_user, load_user

    (exact,), problems = load_user([str(EX / "self_distill_rounds.py")])
    assert not problems
    assert exact.run()["passed"] and not exact.run(corrupt=registry.scale(1 + 1e-6))["passed"]
    mono = from_user(Claim("t.mono", "1/n falls", "monotone", lambda p: Outcome(1.0 / np.arange(1.0, p["n"] + 1)),
                           Domain(n=Int(2, 9))), "inline")
    assert mono.run()["passed"] and not mono.run(corrupt=registry.REVERSE_ORDER)["passed"]


BAD_FILES = {
    "syntax.py": "def f(:\n",
    "nodomain.py": "from linkd.claims import claim\n@claim(id='x.nodomain', kind='bound', statement='s')\n"
                   "def f(p):\n    return 0, 1\n",
    "empty.py": "from linkd.claims import Domain, Int, claim\n"
                "@claim(id='x.empty', kind='bound', statement='s', domain=Domain(n=Int(1, 3), where=lambda p: p['n'] > 5))\n"
                "def f(p):\n    return 0, 1\n",
    "raises.py": "from linkd.claims import Domain, Int, claim\n"
                 "@claim(id='x.raises', kind='bound', statement='s', domain=Domain(n=Int(1, 3)))\n"
                 "def f(p):\n    raise ZeroDivisionError('planted')\n"
                 "@claim(id='x.fine', kind='bound', statement='s', domain=Domain(n=Int(1, 3)))\n"
                 "def g(p):\n    return p['n'], 3\n",
}


def test_bad_claim_files_one_line_each_exit_2_and_the_rest_runs(tmp_path, capsys):
    for name, text in BAD_FILES.items():
        (tmp_path / name).write_text(text)
    out = tmp_path / "r.json"
    rc = runner.main(["--claims", *[str(tmp_path / n) for n in BAD_FILES], "--json", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("linkd check: error:")]
    assert len(lines) == 3
    assert "syntax.py:1: syntax error" in lines[0] and "missing domain" in lines[1] and "region is empty" in lines[2]
    recs = {r["id"]: r for r in json.loads(out.read_text())}
    assert recs["x.fine"]["passed"] and not recs["x.raises"]["passed"]
    assert "ZeroDivisionError: planted" in recs["x.raises"]["note"]
    assert cli.main(["list", "--claims", str(tmp_path / "raises.py")]) == 0
    assert cli.main(["list", "--claims", str(tmp_path / "syntax.py")]) == 2


# ------------------------------------------------------------------------------------ the falsifier


def test_shrinking_reaches_the_simplest_violating_point():
    c = Claim("t.shrink", "n x <= 2", "bound", lambda p: Outcome(float(p["n"] * p["x"]), 2.0),
              Domain(n=Int(1, 100), x=Real(0.0, 1.0)))
    res = falsify(c, budget=64, seed=0)
    assert res.found and res.point == {"n": 3, "x": 1.0}  # by hand: n = 2 gives 2 <= 2; x < 1 needs more digits
    assert res.worst_error >= res.error > 0


def test_falsify_collapse_minus_one(tmp_path, capsys):
    spec = str(EX / "collapse_bound_minus_one.py")
    out = tmp_path / "f"
    rc = cli.main(["falsify", "collapse.minus_one", "--claims", spec, "--budget", "96", "--out", str(out), "--format", "png"])
    text = capsys.readouterr().out
    summary = json.loads((out / "falsify.json").read_text())
    point = tomllib.loads((out / "counterexample.toml").read_text())
    assert rc == 1 and "COUNTEREXAMPLE" in text and summary["found"] and point == summary["point"]
    assert point["K"] == 1 and math.ceil(math.sqrt(point["ratio"])) - 1 > point["ratio"] - 1  # hand formula, K = 1
    assert (out / f"violation_{summary['most_sensitive']}.png").exists()
    command = summary["command"].split()
    assert command[:2] == ["linkd", "check"] and cli.main(command[1:] + ["-q"]) == 1  # reproduces the failure
    assert cli.main(["falsify", "collapse.upper", "--claims", spec, "--budget", "64", "--out", str(out / "u"),
                     "--no-plot"]) == 0
    assert "no violation found" in capsys.readouterr().out


def test_falsify_per_draw_monotonicity_of_the_pl_risk():
    res = falsify(_claim("pl_risk_monotone_per_draw.py", "pl.monotone_per_draw"), budget=48, seed=0)
    assert res.found
    import jax

    from linkd.claims import ingredients  # the same draw, then numpy: pinv projections and the Sigma angle
    p = res.point
    lam = np.arange(1, p["d"] + 1.0) ** -p["anisotropy"]
    X = np.asarray(ingredients.design(p["seed"], p["d"], lam))
    w = np.asarray(ingredients.teacher(p["seed"], p["d"]))
    risks = []
    for n in range(1, p["d"] + 1):
        v = np.linalg.pinv(X[:n]) @ (X[:n] @ w)
        cos = (v * lam) @ w / np.sqrt((v * lam) @ v * ((w * lam) @ w))
        risks.append(np.arccos(np.clip(cos, -1, 1)) / np.pi)
    assert np.max(np.diff(risks)) > 1e-6 and jax is not None


def test_falsify_deep_gap_product_order():
    from proofs_check.beyond_deep import _ode_gap

    res = falsify(_claim("deep_gap_product_order.py", "deep.gap_product_order"), budget=512, seed=0)
    p = res.point
    gap = _ode_gap((1.0, p["speed2"] / p["c2"]), (1.0, p["c2"]), p["sigma0"], p["depth"], p["teacher_q1"], p["fraction"])[1]
    assert res.found and gap < -1e-6  # scalar ODEs and root finding, no closed form shared


def test_falsify_modified_equation_constant():
    import scipy.integrate

    res = falsify(_claim("modified_equation_constant.py", "deep.gf_error_constant"), budget=64, seed=0)
    N, y0, eps = res.point["depth"], res.point["y0"], res.point["eps"]
    w, gd = y0 ** (1 / N), [y0]  # GD on the layer weight (numpy), against GF by solve_ivp
    while gd[-1] < 0.9999:
        w = w + eps * w ** (N - 1) * (1 - w ** N)
        gd.append(w ** N)
    f = lambda t, s: N * eps * np.abs(s) ** (2 - 2 / N) * (1 - s)  # noqa: E731
    sol = scipy.integrate.solve_ivp(f, (0, len(gd) - 1), [y0], method="DOP853", rtol=1e-11, atol=1e-14,
                                    t_eval=np.arange(len(gd)))
    assert res.found and np.max(np.abs(np.array(gd) - sol.y[0])) > 2.4 * eps


def test_pl_bound_over_n_is_violated_where_the_exact_risk_says():
    import jax

    c = _claim("pl_bound.py", "pl.bound_over_n")
    exact = bounds.iso_gaussian_expected_risk(6, 10)  # Beta quadrature: 0.2297 > 1/6
    out = jax.jit(lambda s: c.outcome({"geometry": "isotropic", "n": 6, "psi_max": 1.0, "seed": s}))(0)
    low = float(out.measured)  # the MC mean minus 3 SE: below the exact mean, above the tightened bound
    assert 1 / 6 < low < exact and float(out.predicted) == pytest.approx(1 / 6)


@pytest.mark.slow
def test_falsify_pl_bound_too_tight_and_true_bound():
    assert falsify(_claim("pl_bound.py", "pl.bound_over_n"), budget=64, seed=0).found
    assert not falsify(_claim("pl_bound.py", "pl.bound"), budget=64, seed=0).found


@pytest.mark.parametrize("path,cid,budget", [("collapse_bound_minus_one.py", "collapse.upper", 128),
                                             ("exaggeration_gap.py", "ng.gap_nonnegative", 64),
                                             ("self_distill_rounds.py", "mb.rounds_closed_form", 128)])
def test_true_statements_survive(path, cid, budget):
    res = falsify(_claim(path, cid), budget=budget, seed=0)
    assert not res.found and res.violation < 0 and res.evaluations <= budget


@pytest.mark.slow
def test_filter_composition_survives_the_falsifier():
    assert not falsify(_claim("filter_composition.py", "ng.filters_compose"), budget=64, seed=0).found


def test_filter_composition_at_a_point_and_broken():
    c = _claim("filter_composition.py", "ng.filters_compose")
    out = c.outcome({"n": 4, "d": 8, "exponent": 1.0, "fraction": 1.5, "noise": 0.3, "T": 7, "t": 9, "seed": 4})
    assert error_of(c, out) < 1e-12  # engine GD against F(t)F(T)c*, oscillating step (eta lambda_max = 1.5)
    assert error_of(c, out._replace(predicted=np.asarray(out.predicted) * (1 + 1e-6))) > c.tolerance


def test_builtin_claims_declare_a_domain(tmp_path):
    out = tmp_path / "r.json"
    assert runner.main(["--only", "mb.collapse_bounds", "--json", str(out), "-q"]) == 0
    rec = json.loads(out.read_text())[0]  # the fixed run is unchanged; its record describes the domain
    assert rec["command"] == "linkd check --fast --only mb.collapse_bounds" and "K" in rec["domain"]["params"]
    assert runner.main(["--only", "mb.collapse_bounds", "--domain", "16", "--json", str(out), "-q"]) == 0
    rec = json.loads(out.read_text())[0]
    assert rec["domain"]["screen"]["points"] == 17 and "--at" in rec["command"]
    assert runner.main(["--only", "mb.collapse_bounds", "--at", "K=1,ratio=30", "--json", str(out), "-q"]) == 0
    rec = json.loads(out.read_text())[0]
    assert rec["measured"][0] == math.ceil(math.sqrt(30)) - 1 == 5  # K = 1, by hand
    assert rec["measured"][1] == pytest.approx(math.sqrt(30) - 1) and rec["predicted"][0] == pytest.approx(30)
