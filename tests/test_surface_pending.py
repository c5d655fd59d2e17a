"""Tests of public callables that had no test of their own (the PENDING list of
tests/test_public_surface.py): atomic writes, the claim API plumbing, engine internals and the CLI
table. Each test checks the output against an independent route (a hand computation, a numpy
re-derivation, the file system) and each group has a negative control: the same check applied to a
planted bug (a perturbed output or a broken variant) must fail, so the check is not vacuous.

Sizes are tiny; the only compilations are a few small scans (fast on a busy 2-core machine).
"""
from __future__ import annotations

import io
import json
import math
import os
import shlex
import stat
import textwrap
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import atomic, engine
from linkd.claims import (
    Claim,
    ClaimFileError,
    Domain,
    Evaluator,
    Int,
    Outcome,
    Param,
    Real,
    Screen,
    command,
    falsify,
    ingredients,
)
from linkd.claims.claim import collecting
from linkd.claims.domain import Batch, constraint_label, format_value
from linkd.claims.loader import Loaded, load_claims
from linkd.claims.params import complexity, round_candidates
from linkd.engine import SeedMoments, checks, divergence, eigen, limits, memory, objective, optimizers, recording, sharding, types
from linkd.errors import ConfigError, InputError

RNG = np.random.default_rng(20261203)


def _close(a, b, tol=1e-12) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=tol, atol=tol))


# ==================================================================================== linkd.atomic


def _umask_by_set_and_restore() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_current_umask_matches_os_umask_under_two_masks():
    old = os.umask(0o027)
    try:
        assert atomic.current_umask() == 0o027 == _umask_by_set_and_restore()
        os.umask(0o002)
        assert atomic.current_umask() == 0o002
    finally:
        os.umask(old)
    assert atomic.current_umask() == old


def test_atomic_write_bytes_content_mode_and_no_temporaries(tmp_path):
    old = os.umask(0o027)
    try:
        p = atomic.atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01linkd\xff")
    finally:
        os.umask(old)
    assert p == tmp_path / "a.bin" and p.read_bytes() == b"\x00\x01linkd\xff"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~0o027 == 0o640  # not mkstemp's 0600
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.bin"]
    atomic.atomic_write_bytes(p, b"new")  # replaces in place
    assert p.read_bytes() == b"new" and sorted(x.name for x in tmp_path.iterdir()) == ["a.bin"]


def test_atomic_write_bytes_leaves_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    p = tmp_path / "keep.txt"
    p.write_bytes(b"old contents")

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        atomic.atomic_write_bytes(p, b"half")
    assert p.read_bytes() == b"old contents"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["keep.txt"]  # the temporary is gone too


def test_fsync_dir_syncs_that_directory_and_tolerates_a_missing_one(tmp_path, monkeypatch):
    seen = []
    real_fsync = os.fsync

    def spy(fd):
        seen.append(os.fstat(fd).st_ino)
        return real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    assert atomic.fsync_dir(tmp_path) is None
    assert seen == [os.stat(tmp_path).st_ino]
    atomic.fsync_dir(tmp_path / "does-not-exist")  # a no-op, no exception
    assert len(seen) == 1
    # negative control: a spy on another directory would have told them apart
    assert os.stat(tmp_path).st_ino != os.stat(tmp_path.parent).st_ino


def test_atomic_savefig_writes_what_savefig_writes(tmp_path):
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    fig = Figure(figsize=(1.0, 0.8), dpi=40)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 0], color="red")
    p = atomic.atomic_savefig(fig, tmp_path / "f.png", format="png")
    ref = io.BytesIO()
    fig.savefig(ref, format="png")
    assert p == tmp_path / "f.png" and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    got, want = imread(p), imread(io.BytesIO(ref.getvalue()))
    assert got.shape == want.shape == (32, 40, 4) and np.array_equal(got, want)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.png"]


def test_atomic_negative_controls(tmp_path):
    """The checks above notice a wrong mode, a wrong umask and a different picture."""
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    q = tmp_path / "private"
    q.write_bytes(b"x")
    os.chmod(q, 0o600)  # what a bare mkstemp would leave
    assert stat.S_IMODE(os.stat(q).st_mode) != 0o666 & ~0o027
    assert atomic.current_umask() != (atomic.current_umask() ^ 0o002)
    fig = Figure(figsize=(1.0, 0.8), dpi=40)
    fig.add_subplot().plot([0, 1, 2], [0, 1, 0], color="red")
    atomic.atomic_savefig(fig, tmp_path / "a.png", format="png")
    fig.axes[0].lines[0].set_color("blue")
    other = io.BytesIO()
    fig.savefig(other, format="png")
    assert not np.array_equal(imread(tmp_path / "a.png"), imread(io.BytesIO(other.getvalue())))


# ==================================================================================== linkd.claims


def _bound_claim(cid="t.n_le_5", limit=5, hi=10):
    return Claim(id=cid, statement=f"n <= {limit}", kind="bound", fn=lambda p: Outcome(float(p["n"]), float(limit)),
                 domain=Domain(n=Int(1, hi)))


def test_param_is_the_base_of_every_parameter_and_start_is_default_or_centre():
    assert all(isinstance(p, Param) for p in (Int(0, 4), Real(0.0, 1.0)))
    assert Int(2, 9).start() == (2 + 9) // 2 == 5 and Int(2, 9, default=7).start() == 7
    assert Real(1.0, 3.0).start() == 2.0

    class Half(Param):  # a minimal subclass: the base's simpler() offers nothing, start() is the centre
        def center(self):
            return 0.5

    assert Half().simpler(0.3) == [] and Half().start() == 0.5
    with pytest.raises(InputError, match="must be Int, Real, LogReal or Choice"):
        Domain(n=(1, 4))  # not a Param: refused


def test_complexity_counts_significant_digits_by_hand():
    assert complexity(0.0) == (0, 0.0, 0.0)
    assert complexity(1.5) == (2, math.log10(1.5), 1.5)
    assert complexity(-250.0) == (2, math.log10(250.0), 250.0)
    assert complexity(0.125)[0] == 3 and complexity(3.14159)[0] == 6
    assert complexity(math.inf) == (99, math.inf, math.inf)
    assert sorted([1.5, 10.0, 1.0, 0.0, 123.0], key=complexity) == [0.0, 1.0, 10.0, 1.5, 123.0]


def test_round_candidates_are_simpler_inside_the_range_and_ordered():
    x = 3.14159
    got = round_candidates(x, 0.0, 10.0)
    # by hand: 0, ±1 (−1 outside), the bounds 0 and 10, x at 1/2/3 significant digits (rounded, floored, ceiled)
    assert set(got) == {0.0, 1.0, 10.0, 3.0, 4.0, 3.1, 3.2, 3.14, 3.15}
    assert got == sorted(got, key=complexity) and got[0] == 0.0
    assert all(complexity(v) < complexity(x) for v in got)
    assert round_candidates(2.5, 1.5, 3.0) == [2.0, 3.0, 1.5]  # 0 and 1 lie outside; one digit first, then |log10|
    assert round_candidates(2.0, 1.5, 3.0) == []  # 3 and 1.5 are not simpler than 2
    assert round_candidates(0.0, -1.0, 1.0) == []  # nothing is simpler than 0


def test_constraint_label_reads_the_lambda_source_or_the_name():
    assert constraint_label(lambda p: p["n"] < p["d"]) == 'p["n"] < p["d"]'

    def n_even(p):
        return p["n"] % 2 == 0

    assert constraint_label(n_even) == "n_even"
    pair = (lambda p: p["a"] > 0, lambda p: p["b"] <= 2 * p["a"])  # two lambdas on one line
    assert [constraint_label(f, i) for i, f in enumerate(pair)] == ['p["a"] > 0', 'p["b"] <= 2 * p["a"]']
    assert constraint_label(eval("lambda p: True"), 2) == "constraint 3"  # no source file: numbered
    dom = Domain(n=Int(1, 9), d=Int(1, 9), where=lambda p: p["n"] < p["d"])
    assert dom.describe()["where"] == ['p["n"] < p["d"]']


def test_format_value_reads_back_exactly():
    assert [format_value(v) for v in (3, 2.0, 0.1, -7.0, "relu")] == ["3", "2.0", "0.1", "-7.0", "relu"]
    assert format_value(1e17) == "1e+17"
    for v in (1 / 3, 2.0 ** -40, 123456.789, -0.0, 1e16):
        assert float(format_value(v)) == v  # full precision: --at parses it back to the same float


def test_batch_is_a_dict_of_columns_that_satisfy_the_constraints():
    dom = Domain(n=Int(1, 40), d=Int(2, 60), where=lambda p: p["n"] < p["d"])
    b = dom.sample(50, seed=3)
    assert Batch is dict and isinstance(b, Batch) and list(b) == ["n", "d"]
    n, d = b["n"], b["d"]
    assert n.shape == d.shape == (50,) and n.dtype == np.int64
    assert np.all(n < d) and n.min() >= 1 and n.max() <= 40 and d.min() >= 2 and d.max() <= 60
    assert dom.satisfied(b).all()
    planted = dict(b, n=b["d"].copy())  # negative control: a column that breaks n < d is caught
    assert not dom.satisfied(planted).any()


def test_collecting_keeps_problem_claims_instead_of_raising():
    with collecting() as got:
        ok = _bound_claim()
        bad = Claim(id="t.bad", statement="s", kind="guess", fn=lambda p: 0, domain=Domain(n=Int(1, 2)))
        nodom = Claim(id="t.nodom", statement="s", kind="exact", fn=lambda p: 0, domain=None)
    assert got == [ok, bad, nodom]
    assert ok.problem == "" and "kind = 'guess'" in bad.problem and "missing domain" in nodom.problem
    with pytest.raises(InputError, match="kind = 'guess'"):  # outside the block the same claim raises
        Claim(id="t.bad", statement="s", kind="guess", fn=lambda p: 0, domain=Domain(n=Int(1, 2)))
    with collecting() as again:
        pass
    assert again == []  # nothing leaks from the earlier block


def test_screen_errors_match_the_bound_formula_by_hand():
    def fn(p):
        if p["n"] == 7:
            raise RuntimeError("boom at seven")
        return Outcome(p["n"] * p["x"], 3.0)

    c = Claim(id="t.screen", statement="n x <= 3", kind="bound", fn=fn, domain=Domain(n=Int(1, 9), x=Real(0.0, 1.0)))
    n = np.array([1, 2, 7, 5], dtype=np.int64)
    x = np.array([0.5, 0.25, 0.5, 1.0])
    s = Evaluator(c, vmap=False).errors({"n": n, "x": x})
    assert isinstance(s, Screen) and s.mode == "loop"
    want = n * x - 3.0
    want[2] = np.inf  # the claim raised there
    assert np.array_equal(s.errors, want)
    assert list(s.failures) == [2] and s.failures[2] == "RuntimeError: boom at seven"
    assert not np.array_equal(s.errors, np.where(np.isinf(want), want, 3.0 - n * x))  # lower-sense errors differ


def _write_claims(tmp_path, body: str):
    f = tmp_path / "my_claims.py"
    f.write_text("from linkd.claims import Domain, Int, Outcome, claim\n\n" + textwrap.dedent(body))
    return str(f)


def test_loaded_and_claim_file_error_from_a_file(tmp_path):
    spec = _write_claims(tmp_path, """
        @claim(id="f.true", statement="n >= 1", kind="bound", sense="lower", domain=Domain(n=Int(1, 5)))
        def f_true(p):
            return Outcome(p["n"], 1)

        @claim(id="f.nodomain", statement="x", kind="exact")
        def f_nodomain(p):
            return Outcome(0, 0)
    """)
    got = load_claims(spec)
    assert isinstance(got, Loaded) and got._fields == ("claims", "problems")
    assert [c.id for c in got.claims] == ["f.true"] and got.claims[0].source == spec
    assert len(got.problems) == 1 and "f.nodomain" in got.problems[0] and "missing domain" in got.problems[0]
    with pytest.raises(ClaimFileError, match="f.nodomain"):
        load_claims(spec, strict=True)
    missing = str(tmp_path / "nope.py")
    with pytest.raises(ClaimFileError, match="no such claims file"):
        load_claims(missing, strict=True)
    assert issubclass(ClaimFileError, Exception) and load_claims(missing).claims == []


def test_list_rows_and_find_claim(tmp_path, monkeypatch):
    spec = _write_claims(tmp_path, """
        @claim(id="g.small", statement="n  is\\n small", kind="bound", domain=Domain(n=Int(1, 10)))
        def g_small(p):
            return Outcome(p["n"], 5)

        @claim(id="g.broken", statement="x", kind="nonsense", domain=Domain(n=Int(1, 2)))
        def g_broken(p):
            return 0
    """)
    rows, problems = command.list_rows([spec])
    assert rows == [("claim", "g.small", "n is small")]  # the statement with its whitespace collapsed
    assert len(problems) == 1 and "g.broken" in problems[0]
    c, src, probs = command.find_claim("g.small", [spec])
    assert c.id == "g.small" and src == spec and probs == problems
    monkeypatch.setattr(command, "_builtin_point_claims", lambda: [])  # no built-in registry import
    with pytest.raises(ClaimFileError, match="close: g.small"):
        command.find_claim("g.smal", [spec])
    with pytest.raises(ClaimFileError, match="kind = 'nonsense'"):  # its own problem, not "not found"
        command.find_claim("g.broken", [spec])


def test_falsify_command_finds_the_simplest_counterexample(tmp_path, capsys):
    spec = _write_claims(tmp_path, """
        @claim(id="h.n_le_5", statement="n <= 5", kind="bound", domain=Domain(n=Int(1, 40)))
        def h(p):
            return Outcome(float(p["n"]), 5.0)

        @claim(id="h.n_le_40", statement="n <= 40", kind="bound", domain=Domain(n=Int(1, 40)))
        def h40(p):
            return Outcome(float(p["n"]), 40.0)
    """)
    out = tmp_path / "out"
    rc = command.falsify_command("h.n_le_5", [spec], budget=16, seed=0, time_limit=None, out=out, plot=False)
    assert rc == 1
    point = tomllib.loads((out / "counterexample.toml").read_text())
    assert point == {"n": 6}  # by hand: the smallest n with n > 5
    summary = json.loads((out / "falsify.json").read_text())
    assert summary["found"] is True and summary["error"] == 1.0 and summary["point"] == {"n": 6}
    assert summary["worst_error"] == summary["worst_point"]["n"] - 5.0 >= 1.0  # the error formula at the worst point
    assert "COUNTEREXAMPLE" in capsys.readouterr().out
    rc = command.falsify_command("h.n_le_40", [spec], budget=16, seed=0, time_limit=None, out=tmp_path / "ok", plot=False)
    assert rc == 0 and (tmp_path / "ok" / "closest.toml").exists()
    closest = json.loads((tmp_path / "ok" / "falsify.json").read_text())
    assert closest["found"] is False and closest["error"] == closest["point"]["n"] - 40.0 <= 0.0
    assert tomllib.loads((tmp_path / "ok" / "closest.toml").read_text()) == closest["point"]


def test_reproduce_command_round_trips_through_the_shell():
    c = _bound_claim()
    cmd = falsify.reproduce_command(c, {"n": 6, "x": 0.1}, "my dir/claims.py")
    assert shlex.split(cmd) == ["linkd", "check", "--claims", "my dir/claims.py", "--only", "t.n_le_5",
                                "--at", "n=6,x=0.1"]
    assert falsify.reproduce_command(c, {"n": 2.0}) == "linkd check --only t.n_le_5 --at n=2.0"


def _result(**kw):
    base = dict(claim_id="t.n_le_5", found=True, point={"n": 6}, error=1.0, violation=0.75, tolerance=0.25,
                worst_point={"n": 10}, worst_error=5.0, evaluations=12, budget=16, seconds=0.1, mode="loop",
                phases={}, failures=[])
    base.update(kw)
    return falsify.Result(**base)


def test_summary_dict_holds_the_result_and_the_claim():
    c = Claim(id="t.n_le_5", statement="n <= 5", kind="bound", fn=lambda p: 0, domain=Domain(n=Int(1, 10)),
              tolerance=0.25)
    d = falsify.summary_dict(c, _result(), "linkd check --only t.n_le_5 --at n=6")
    assert d["violation_in_tolerance_units"] == 0.75 / 0.25 == 3.0
    assert d["statement"] == "n <= 5" and d["kind"] == "bound" and d["command"].endswith("--at n=6")
    assert d["point"] == {"n": 6} and d["worst_error"] == 5.0 and d["evaluations"] == 12
    assert d["domain"] == {"params": {"n": {"type": "int", "lo": 1, "hi": 10}}, "where": []}
    assert json.loads(json.dumps(d)) == d
    assert falsify.summary_dict(c, _result(tolerance=0.0), "x")["violation_in_tolerance_units"] is None


def test_sweep_parameter_errors_by_hand_with_nan_outside_the_constraint():
    c = Claim(id="t.sweep", statement="n x <= 3", kind="bound", fn=lambda p: Outcome(p["n"] * p["x"], 3.0),
              domain=Domain(n=Int(1, 6), x=Real(0.0, 2.0), where=lambda p: p["n"] <= 4))
    vals, errs = falsify.sweep_parameter(c, {"n": 2, "x": 1.5}, "n", evaluator=Evaluator(c, vmap=False))
    assert list(vals) == [1, 2, 3, 4, 5, 6]
    want = np.array([1.5 - 3, 3.0 - 3, 4.5 - 3, 6.0 - 3, np.nan, np.nan])
    np.testing.assert_array_equal(errs, want)
    vals, errs = falsify.sweep_parameter(c, {"n": 2, "x": 1.5}, "x", k=5, evaluator=Evaluator(c, vmap=False))
    assert np.allclose(vals.astype(float), [0.0, 0.5, 1.0, 1.5, 2.0]) and np.allclose(errs, 2 * vals.astype(float) - 3)


def test_claim_plumbing_negative_controls(tmp_path, monkeypatch, capsys):
    """Planted bugs the checks above would catch: a sweep ignoring the constraint, a summary with the
    violation not divided by the tolerance, a shrink that does not shrink, an unquoted command."""
    c = Claim(id="t.sweep", statement="s", kind="bound", fn=lambda p: Outcome(p["n"] * p["x"], 3.0),
              domain=Domain(n=Int(1, 6), x=Real(0.0, 2.0), where=lambda p: p["n"] <= 4))
    _, errs = falsify.sweep_parameter(c, {"n": 2, "x": 1.5}, "n", evaluator=Evaluator(c, vmap=False))
    unconstrained = 1.5 * np.arange(1, 7) - 3.0
    assert not np.array_equal(errs, unconstrained, equal_nan=True)
    d = falsify.summary_dict(c, _result(), "x")
    assert d["violation_in_tolerance_units"] != 0.75
    assert shlex.split(f"linkd check --claims {'my dir/claims.py'}") != shlex.split(
        falsify.reproduce_command(c, {}, "my dir/claims.py"))[:4]
    spec = _write_claims(tmp_path, """
        @claim(id="h.n_le_5", statement="n <= 5", kind="bound", domain=Domain(n=Int(1, 40)))
        def h(p):
            return Outcome(float(p["n"]), 5.0)
    """)
    monkeypatch.setattr(Int, "simpler", lambda self, x: [])  # planted: the shrink finds nothing simpler
    assert command.falsify_command("h.n_le_5", [spec], budget=16, seed=0, time_limit=None, out=tmp_path / "o",
                                   plot=False) == 1
    assert tomllib.loads((tmp_path / "o" / "counterexample.toml").read_text()) != {"n": 6}  # the n = 6 check fails
    capsys.readouterr()
    assert round_candidates(3.14159, 0.0, 10.0) != sorted(round_candidates(3.14159, 0.0, 10.0))  # order is by complexity


def test_ingredients_coords_are_the_min_norm_least_squares_solution():
    n, d = 5, 8  # underdetermined: a null space of dimension 3
    X = RNG.standard_normal((n, d))
    y = RNG.standard_normal(n)
    lam, V, cstar = (np.asarray(a) for a in jax.jit(ingredients.coords)(jnp.asarray(X), jnp.asarray(y)))
    ref_lam = np.sort(np.linalg.eigvalsh(X.T @ X / n))[::-1]
    assert np.allclose(lam[:n], ref_lam[:n], atol=1e-12) and np.all(lam[n:] == 0.0)
    assert np.allclose(V @ cstar, np.linalg.pinv(X) @ y, atol=1e-10)  # w* = X^+ y
    assert np.all(cstar[n:] == 0.0)
    assert not np.allclose(V @ (cstar * 1.01), np.linalg.pinv(X) @ y, atol=1e-10)  # a 1 % error is seen


def test_ingredients_closed_form_and_gd_trajectories_by_hand():
    n, d, steps = 6, 3, 5
    X = RNG.standard_normal((n, d))
    y = RNG.standard_normal(n)
    lam = np.array([2.0, 1.0, 0.25])
    cstar, c0 = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.0, -1.0])
    eta = 0.4
    cf = np.asarray(jax.jit(ingredients.closed_form_trajectory, static_argnums=(3, 4))(lam, cstar, c0, eta, steps))
    t = np.arange(steps + 1)[:, None]
    want_cf = cstar + (1 - eta * lam) ** t * (c0 - cstar)
    assert cf.shape == (steps + 1, d) and _close(cf, want_cf)
    w0 = np.array([0.1, -0.2, 0.3])
    lr = 0.9 / np.max(np.linalg.eigvalsh(X.T @ X / n))
    gd = np.asarray(ingredients.gd_trajectory(jnp.asarray(X), jnp.asarray(y), lr, steps, w0=jnp.asarray(w0)))
    w, want = w0.copy(), [w0.copy()]
    for _ in range(steps):
        w = w - lr * X.T @ (X @ w - y) / n
        want.append(w.copy())
    assert gd.shape == (steps + 1, d) and _close(gd, np.array(want), 1e-10)
    assert not _close(gd[1:], np.array(want)[:-1], 1e-10)  # negative control: an off-by-one-step record is seen
    assert not _close(cf, cstar + (1 - eta * lam) ** (t + 1) * (c0 - cstar))


# ==================================================================================== linkd.engine


def test_seed_moments_type_and_values_against_numpy():
    c = RNG.standard_normal((7, 3, 2))
    m = engine.seed_moments(c)
    assert isinstance(m, SeedMoments) and m.seeds == 7
    for r in range(3):
        assert _close(m.cov[r], np.cov(c[:, r, :].T, ddof=1))
    assert _close(m.var, c.var(axis=0, ddof=1)) and _close(m.se_mean, c.std(axis=0, ddof=1) / np.sqrt(7))
    mc = engine.seed_moments(c, centre=np.zeros((3, 2)))
    assert _close(mc.var, (c ** 2).mean(axis=0))  # about a given centre: divisor S
    assert not _close(m.var, c.var(axis=0))  # negative control: divisor S instead of S - 1 is seen


def test_check_shapes_and_targets_alpha():
    X = RNG.standard_normal((4, 3))
    w = np.zeros(3)
    checks.check_shapes(w, engine.Data(X, targets=np.zeros(4)))  # consistent: passes
    checks.check_shapes(np.zeros((3, 2)), engine.Data(X, targets=np.zeros((4, 2))), "multiclass")
    with pytest.raises(ConfigError) as e:
        checks.check_shapes(w, engine.Data(X, targets=np.zeros(5)))
    assert e.value.key == "targets" and "(4,)" in e.value.allowed
    with pytest.raises(ConfigError) as e:
        checks.check_shapes(w, engine.Data(X, targets=np.zeros(4), basis=np.eye(2)))
    assert e.value.key == "basis"
    with pytest.raises(ConfigError) as e:
        checks.check_shapes(np.zeros(5), engine.Data(X, targets=np.zeros(4)))
    assert e.value.key == "params"
    spec = engine.EngineSpec(steps=2)
    checks.check_targets_alpha(engine.Data(X, labels=np.zeros(4)), engine.Hyper(lr=0.1, alpha=1.0), spec)
    with pytest.raises(ConfigError, match="alpha = 0.5"):
        checks.check_targets_alpha(engine.Data(X, labels=np.zeros(4)), engine.Hyper(lr=0.1, alpha=0.5), spec)
    with pytest.raises(ConfigError, match=r"alpha = \[1.0, 0.0\]"):  # a sweep with one member below 1
        checks.check_targets_alpha(engine.Data(X, labels=np.zeros(4)), engine.Hyper(lr=0.1, alpha=np.array([1.0, 0.0])), spec)


def test_linear_params_hyper_scalar_and_path_checks():
    from linkd.models import DeepLinear

    w = checks.linear_params(np.array([1.0, 2.0]))
    assert isinstance(w, jax.Array) and np.array_equal(np.asarray(w), [1.0, 2.0])
    with pytest.raises(ConfigError) as e:
        checks.linear_params(DeepLinear((np.eye(2), np.ones((1, 2)))), name="w0")
    assert e.value.key == "w0" and e.value.value == "DeepLinear"
    checks.hyper_scalar(engine.Hyper(lr=0.1, tau=2.0))
    with pytest.raises(ConfigError) as e:
        checks.hyper_scalar(engine.Hyper(lr=0.1, tau=np.array([1.0, 2.0])))
    assert e.value.key == "hyper.tau" and e.value.value == "shape (2,)"
    X = RNG.standard_normal((4, 3))
    data, hy = engine.Data(X, targets=np.zeros(4)), engine.Hyper(lr=0.1)
    checks.path_checks(np.zeros(3), data, hy, engine.EngineSpec(), 3, "eigen")
    for spec, top, key in ((engine.EngineSpec(batch_size=2), None, "batch_size"),
                           (engine.EngineSpec(), 4, "record_top"), (engine.EngineSpec(), 0, "record_top")):
        with pytest.raises(ConfigError) as e:
            checks.path_checks(np.zeros(3), data, hy, spec, top, "eigen")
        assert e.value.key == key
    with pytest.raises(ConfigError) as e:
        checks.path_checks(np.zeros(3), data._replace(basis=np.eye(3)), hy, engine.EngineSpec(), 2, "eigen")
    assert e.value.key == "record_top"


def test_divergence_helpers_by_hand():
    spec = engine.EngineSpec(steps=9, blowup=10.0)
    assert float(divergence.divergence_limit(jnp.asarray(-2.0), spec)) == 10.0 * (1 + 2.0)
    lim = jnp.asarray(30.0)
    up = jax.jit(divergence.update_bad_step)  # one compilation for the five cases
    ok = jnp.asarray(True)
    assert int(up(jnp.asarray(-1), jnp.asarray(3), jnp.asarray(1.0), ok, lim)) == -1  # fine step
    assert int(up(jnp.asarray(-1), jnp.asarray(3), jnp.asarray(31.0), ok, lim)) == 3  # loss of step 3 too big
    assert int(up(jnp.asarray(-1), jnp.asarray(3), jnp.asarray(jnp.nan), ok, lim)) == 3
    assert int(up(jnp.asarray(-1), jnp.asarray(3), jnp.asarray(1.0), jnp.asarray(False), lim)) == 4  # updated state
    assert int(up(jnp.asarray(2), jnp.asarray(3), jnp.asarray(jnp.inf), ok, lim)) == 2  # first bad step sticks
    fin = jax.jit(divergence.all_finite)
    assert bool(fin({"a": np.ones(3), "b": (np.zeros(2), np.float64(1.0))}))
    assert not bool(fin({"a": np.ones(3), "b": (np.array([0.0, np.inf]), np.float64(1.0))}))
    assert not bool(fin({"a": np.ones(3), "b": (np.zeros(2), np.float64(np.nan))}))
    mets = {"train_loss": jnp.zeros(10)}
    tr = divergence.finish(jnp.ones((10, 2)), mets, jnp.ones(2), jnp.asarray(-1), engine.Hyper(lr=0.1), spec, True, "eigen")
    assert isinstance(tr, engine.Trajectory) and tr.path == "eigen" and np.array_equal(tr.steps, np.arange(10))
    from linkd.errors import DivergenceError

    with pytest.raises(DivergenceError, match="step 4 of 9"):
        divergence.finish(None, mets, None, jnp.asarray(4), engine.Hyper(lr=0.1), spec, True, "plain")
    assert int(divergence.finish(None, mets, None, jnp.asarray(4), engine.Hyper(lr=0.1), spec, False, "plain").bad_step) == 4


def test_eigen_design_is_x_times_the_positive_eigendirections():
    from linkd.spectral import Spectrum

    X = RNG.standard_normal((3, 5))  # rank 3 < d = 5
    lam, V = np.linalg.eigh(X.T @ X / 3)
    lam, V = lam[::-1].copy(), V[:, ::-1].copy()
    lam[3:] = 0.0  # the null space of X, as spectral.eigh_desc sets it
    Z = np.asarray(eigen.eigen_design(jnp.asarray(X), Spectrum(lam, V)))
    assert Z.shape == (3, 3) and _close(Z, X @ V[:, :3])
    assert _close(Z.T @ Z / 3, np.diag(lam[:3]), 1e-10)  # Σ̂ diagonal in these coordinates
    assert not _close(Z, X @ V[:, 1:4])  # negative control: the wrong columns are seen


def test_jacobian_top_eig_and_refuse_unstable_against_eigvalsh():
    from linkd.models import DeepLinear

    X = RNG.standard_normal((6, 3)) * np.array([2.0, 1.0, 0.5])
    lam = float(np.linalg.eigvalsh(X.T @ X / 6)[-1])
    got = limits.jacobian_top_eig(jnp.asarray(np.array([0.3, -0.1, 0.2])), jnp.asarray(X))  # linear: J = X
    assert abs(got - lam) <= 1e-8 * lam
    # a depth-2 student W2 W1 with W1 = I, W2 = a (1 x 3): J^T J/n = blockdiag-free form, λ_max by numpy
    a = np.array([[1.0, 0.5, -0.5]])
    params = DeepLinear((jnp.eye(3), jnp.asarray(a)))
    J = np.concatenate([np.kron(X, a), X], axis=1)  # d z / d(vec W1 row-major), d z / d W2
    ref = float(np.linalg.eigvalsh(J.T @ J / 6)[-1])
    assert abs(limits.jacobian_top_eig(params, jnp.asarray(X)) - ref) <= 1e-6 * ref
    data, spec = engine.Data(jnp.asarray(X), targets=jnp.zeros(6)), engine.EngineSpec(steps=3)
    limits.refuse_unstable(jnp.zeros(3), data, engine.Hyper(lr=0.99 * 2 / lam), spec)
    with pytest.raises(ConfigError, match="past the stability limit"):
        limits.refuse_unstable(jnp.zeros(3), data, engine.Hyper(lr=1.01 * 2 / lam), spec)
    with pytest.raises(ConfigError, match="> 0"):
        limits.refuse_unstable(jnp.zeros(3), data, engine.Hyper(lr=0.0), spec)
    limits.refuse_unstable(jnp.zeros(3), data, engine.Hyper(lr=10.0), engine.EngineSpec(optimizer="adam"))  # no bound
    assert abs(got - float(np.linalg.eigvalsh(X.T @ X / 6)[-2])) > 1e-3  # negative control: the 2nd eigenvalue differs


def test_memory_available_bytes_and_eigen_uses_design(monkeypatch):
    monkeypatch.setenv("LINKD_MEMORY_LIMIT", "1.5e9")
    assert memory.available_bytes() == 1_500_000_000
    monkeypatch.delenv("LINKD_MEMORY_LIMIT")
    with open("/proc/meminfo") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    assert abs(memory.available_bytes() - kb * 1024) < 2**30  # MemAvailable moves a little between reads
    assert [memory.eigen_uses_design(n=10, d=8, r=r, design_given=False) for r in (3, 4, 5, 8)] == [True, True, False, False]
    assert memory.eigen_uses_design(n=10, d=8, r=8, design_given=True)


def test_objective_losses_and_errors_by_hand():
    z = np.array([0.5, -1.0, 2.0])
    y = np.array([1.0, 0.0, 1.0])
    zt = np.array([0.2, 0.3, -0.4])
    tau = 2.0
    sp = lambda u: np.log1p(np.exp(u))  # noqa: E731
    sig = lambda u: 1 / (1 + np.exp(-u))  # noqa: E731
    Z, Zt = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    lab = np.array([0, 3, 1])

    @jax.jit  # one compilation for every loss (eager calls would compile each op on its own)
    def run(z, y, zt, Z, lab, Zt):
        h, k, r = objective.hard_loss, objective.kd_loss, objective.residual_errors
        return dict(hm=h("mse", z, y), hb=h("binary", z, y), hc=h("multiclass", Z, lab), km=k("mse", z, zt, tau, True),
                    kb=k("binary", z, zt, tau, True), kb1=k("binary", z, zt, tau, False), kc=k("multiclass", Z, Zt, tau, True),
                    rm=r("mse", z, y, False), rb=r("binary", z, y, False), rbl=r("binary", z, zt, True),
                    rc=r("multiclass", Z, lab, False), rcl=r("multiclass", Z, Zt, True))

    o = run(z, y, zt, Z, lab, Zt)
    assert _close(o["hm"], 0.5 * (z - y) ** 2)
    assert _close(o["hb"], sp(z) - y * z)
    lse = np.log(np.exp(Z).sum(axis=1))
    assert _close(o["hc"], lse - Z[np.arange(3), lab])
    assert _close(o["km"], 0.5 * (z - zt) ** 2)
    q = sig(zt / tau)
    assert _close(o["kb"], tau**2 * (sp(z / tau) - q * z / tau))
    assert _close(o["kb1"], sp(z / tau) - q * z / tau)
    P = np.exp(Zt / tau) / np.exp(Zt / tau).sum(axis=1, keepdims=True)
    logp = Z / tau - np.log(np.exp(Z / tau).sum(axis=1, keepdims=True))
    assert _close(o["kc"], -tau**2 * (P * logp).sum(axis=1))
    assert _close(o["rm"], (z - y) ** 2)
    assert _close(o["rb"], [0.0, 0.0, 0.0])
    assert _close(o["rbl"], [0.0, 1.0, 1.0])
    assert _close(o["rc"], Z.argmax(1) != lab)
    assert _close(o["rcl"], Z.argmax(1) != Zt.argmax(1))
    assert not _close(o["hm"], (z - y) ** 2)  # negative control: a missing ½ is seen


def test_xt_dot_and_step_metrics_by_hand():
    X = RNG.standard_normal((5, 3))
    g = RNG.standard_normal((5, 2))
    xg, xg1 = jax.jit(lambda X, g: (objective.xt_dot(X, g), objective.xt_dot(X, g[:, 0])))(X, g)
    assert _close(xg, X.T @ g) and _close(xg1, X.T @ g[:, 0])
    z, zt, y = RNG.standard_normal(5), RNG.standard_normal(5), RNG.standard_normal(5)
    z_te, zt_te, y_te = RNG.standard_normal(2), RNG.standard_normal(2), RNG.standard_normal(2)
    tg = types.Targets(jnp.asarray(zt), jnp.asarray(y), jnp.asarray(zt_te), jnp.asarray(y_te))
    spec = engine.EngineSpec(switch_step=3)
    hy = engine.Hyper(lr=0.1, alpha=0.25)
    order = []  # the key order as built (a jitted function returns its dict with sorted keys)

    def traced(*args, spec):
        out = objective.step_metrics(*args, spec)
        order.append(list(out))
        return out

    metrics = jax.jit(traced, static_argnames="spec")
    rec = metrics(z, z_te, tg, hy, jnp.asarray(5), spec=spec)
    assert order[0] == ["train_loss", "train_fidelity_error", "train_error", "test_loss", "test_error", "test_kd_loss",
                         "test_fidelity_error"]
    hard, kd = 0.5 * (z - y) ** 2, 0.5 * (z - zt) ** 2
    assert _close(rec["train_loss"], np.mean(0.25 * hard + 0.75 * kd))
    assert _close(rec["train_fidelity_error"], np.mean((z - zt) ** 2)) and _close(rec["train_error"], np.mean((z - y) ** 2))
    assert _close(rec["test_loss"], np.mean(0.5 * (z_te - y_te) ** 2))
    assert _close(rec["test_kd_loss"], np.mean(0.5 * (z_te - zt_te) ** 2))
    early = metrics(z, None, tg, hy, jnp.asarray(2), spec=spec)  # before the switch: hard only
    assert order[1] == ["train_loss", "train_fidelity_error", "train_error"] and _close(early["train_loss"], np.mean(hard))
    assert not _close(rec["train_loss"], np.mean(0.75 * hard + 0.25 * kd))  # negative control: α swapped is seen
    assert not _close(xg, (X.T @ g)[::-1])


def test_make_optimizer_steps_by_hand():
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    w = jnp.zeros(2)

    def two_steps(name, **kw):
        opt = optimizers.make_optimizer(engine.EngineSpec(optimizer=name), engine.Hyper(lr=0.1, momentum=0.5, **kw))

        @jax.jit  # one compilation per optimizer
        def run(g1, g2):
            s = opt.init(w)
            u1, s = opt.update(g1, s, w)
            u2, _ = opt.update(g2, s, w)
            return u1, u2

        return tuple(np.asarray(u) for u in run(g1, g2))

    u1, u2 = two_steps("gd")
    assert _close(u1, -0.1 * g1) and _close(u2, -0.1 * g2)
    u1, u2 = two_steps("momentum")  # m_{t+1} = μ m_t + g, update -η m_{t+1}
    assert _close(u1, -0.1 * g1) and _close(u2, -0.1 * (0.5 * g1 + g2))
    assert not _close(u2, -0.1 * g2)  # negative control: momentum is not plain GD
    u1, u2 = two_steps("nesterov")  # update -η (g + μ m_{t+1})
    assert _close(u1, -0.1 * (g1 + 0.5 * g1)) and _close(u2, -0.1 * (g2 + 0.5 * (0.5 * g1 + g2)))
    u1, _ = two_steps("adam")  # first bias-corrected step: -η g/(|g| + ε)
    assert _close(u1, -0.1 * g1 / (np.abs(g1) + 1e-8), 1e-9)


def test_scan_recorded_and_count_trace_by_hand():
    spec = engine.EngineSpec(steps=7, record_every=3)

    def step(carry, t):
        return carry + t, None  # after steps 0..s-1: s(s-1)/2

    def record(carry, t):
        return jnp.stack([carry, 2 * carry]), {"t": t, "c": carry}

    before = recording.trace_count()
    recording.count_trace()
    assert recording.trace_count() == before + 1
    carry, coeffs, mets = jax.jit(lambda c: recording.scan_recorded(c, step, record, spec))(jnp.asarray(0))
    s = np.array([0, 3, 6, 7])
    assert int(carry) == 21 and np.array_equal(np.asarray(mets["t"]), s)
    assert np.array_equal(np.asarray(mets["c"]), s * (s - 1) // 2)
    assert np.array_equal(np.asarray(coeffs), np.stack([s * (s - 1) // 2, s * (s - 1)], axis=1))
    _, none, _ = jax.jit(lambda c: recording.scan_recorded(c, step, lambda c, t: (None, {"c": c}), spec))(jnp.asarray(0))
    assert none is None
    assert not np.array_equal(np.asarray(mets["c"]), s * (s + 1) // 2)  # negative control: recording after the step


def test_coeff_record_read_coeffs_and_coeff_map_by_hand():
    c = jnp.array([1.0, 2.0, 3.0])
    off = jnp.array([9.0, 8.0])
    assert recording.read_coeffs(c, recording.CoeffRecord(), None, None) is None
    assert np.array_equal(recording.read_coeffs(c, recording.CoeffRecord("slice", 2), None, None), [1.0, 2.0])
    assert np.array_equal(recording.read_coeffs(c, recording.CoeffRecord("slice", 5), None, off), [1, 2, 3, 9, 8])
    M = RNG.standard_normal((2, 3))
    got = recording.read_coeffs(c, recording.CoeffRecord("linear", 2), jnp.asarray(M), off)
    assert _close(got, M @ np.array([1.0, 2.0, 3.0]) + np.array([9.0, 8.0]))
    d, r = 4, 3
    Vfull = np.linalg.qr(RNG.standard_normal((d, d)))[0]
    V = jnp.asarray(Vfull[:, :r])
    w_perp = jnp.asarray(RNG.standard_normal(d))
    X = jnp.zeros((2, d))
    rec, M0, o0 = recording.coeff_map(V, w_perp, None, engine.Data(X), None, None)
    assert rec == recording.CoeffRecord("none") and M0 is None and o0 is None
    rec, M1, o1 = recording.coeff_map(V, w_perp, None, engine.Data(X), 2, None)  # record_top: axis basis e_1, e_2
    assert rec == recording.CoeffRecord("linear", 2) and _close(M1, Vfull[:2, :r]) and _close(o1, np.asarray(w_perp)[:2])
    B = jnp.asarray(Vfull[:, :2])
    rec, M2, _ = recording.coeff_map(V, w_perp, None, engine.Data(X, basis=B), None, jnp.asarray(Vfull))
    assert rec == recording.CoeffRecord("slice", 2) and M2 is None  # the top eigen-directions: a slice of the state
    Bo = RNG.standard_normal((d, 2))
    rec, M3, o3 = recording.coeff_map(V, w_perp, None, engine.Data(X, basis=jnp.asarray(Bo)), None, jnp.asarray(Vfull))
    assert rec.mode == "linear" and _close(M3, Bo.T @ Vfull[:, :r]) and _close(o3, Bo.T @ np.asarray(w_perp))
    # the map reproduces B^T w for w = w_perp + V c
    cc = RNG.standard_normal(r)
    w = np.asarray(w_perp) + Vfull[:, :r] @ cc
    assert _close(recording.read_coeffs(jnp.asarray(cc), rec, M3, o3), Bo.T @ w)
    assert not _close(recording.read_coeffs(jnp.asarray(cc), rec, M3, o3), Bo.T @ (Vfull[:, :r] @ cc))  # offset matters


def test_padded_size_and_is_linear():
    sh = engine.sweep_sharding()
    k = len(jax.devices())  # 4 CPU devices under tests/conftest.py
    sizes = (1, 4, 5, 8, 9)
    got = [sharding.padded_size(S, sh) for S in sizes]
    assert got == [next(m for m in range(S, S + k) if m % k == 0) for S in sizes]  # the first multiple of k >= S
    if k == 4:
        assert got == [4, 4, 8, 8, 12]
    one = engine.sweep_sharding(jax.devices()[:1])
    assert [sharding.padded_size(S, one) for S in (1, 5)] == [1, 5]
    from linkd.models import DeepLinear
    from linkd.networks import TwoLayer

    assert types.is_linear(jnp.zeros(3)) and types.is_linear(np.zeros((3, 2)))
    assert not types.is_linear(DeepLinear((jnp.eye(2),)))
    assert not types.is_linear(TwoLayer(np.zeros((3, 2)), np.zeros(3)))
    assert not types.is_linear([0.0, 1.0])


def test_engine_check_negative_controls(monkeypatch):
    """A broken check variant lets bad input through where the real one refuses it."""
    X = RNG.standard_normal((4, 3))
    bad = engine.Data(X, targets=np.zeros(5))
    monkeypatch.setattr(checks, "_check_outputs", lambda *a, **k: None)  # planted: no output-shape check
    checks.check_shapes(np.zeros(3), bad)  # passes silently: the test above would have failed
    monkeypatch.undo()
    with pytest.raises(ConfigError):
        checks.check_shapes(np.zeros(3), bad)
    lam = float(np.linalg.eigvalsh(np.asarray(X).T @ np.asarray(X) / 4)[-1])
    monkeypatch.setattr(limits, "lr_limit", lambda *a, **k: (10 * 2 / lam, "planted"))
    limits.refuse_unstable(np.zeros(3), engine.Data(X, targets=np.zeros(4)), engine.Hyper(lr=1.5 * 2 / lam),
                           engine.EngineSpec())  # the broken limit lets an unstable step through


# ==================================================================================== linkd.cli


def test_wrapped_table_prints_every_word_within_the_width():
    from linkd.cli import wrapped_table

    rows = [("id", "kind", "statement"),
            ("gd.filter_below_one", "bound", "every GD filter stays below one when eta lambda_max <= 2 " * 2),
            ("x", "exact", "short")]
    lines = wrapped_table(rows, 60)
    assert all(len(line) <= 60 for line in lines)
    words = lambda text: text.split()  # noqa: E731
    assert sorted(words(" ".join(lines))) == sorted(w for r in rows for c in r for w in words(c))  # nothing cut
    assert lines[0].startswith("id") and lines[0].split()[:2] == ["id", "kind"]
    col = lines[0].index("statement")  # the third column starts at one offset on every line of it
    assert lines[1][col:].startswith("every") and lines[2][:col].strip() == ""
    assert sum(1 for line in lines if line.startswith("gd.filter_below_one")) == 1
    # narrow: the last column moves under its row, indented by 4
    long_rows = [("a", "b" * 20, "c" * 20, "w " * 30)]
    narrow = wrapped_table(long_rows, 40)
    body = [line for line in narrow if "w" not in line]
    under = narrow[len(body):]
    assert body[0].startswith("a  b") and all(len(line) <= 40 for line in narrow)
    assert under and all(line.startswith("    w") for line in under)  # the last column, under its row
    text = "".join(narrow)
    assert text.count("b") == 20 and text.count("c") == 20 and text.split().count("w") == 30  # long cells wrap, not cut
    # negative control: a truncating table (cells cut at the column width) loses words
    cut = [line[:30] for line in lines]
    assert sorted(words(" ".join(cut))) != sorted(w for r in rows for c in r for w in words(c))


# ==================================================================================== networks, NTK, stability, labels


def test_two_layer_helpers_by_hand():
    from scipy.special import erf

    from linkd.models import DeepLinear
    from linkd.networks import TwoLayer, activation_derivative, is_network, num_params, preactivations

    W, a = RNG.standard_normal((5, 4)), RNG.standard_normal(5)
    X = RNG.standard_normal((3, 4))
    net = TwoLayer(W, a, "erf")
    U = np.asarray(jax.jit(preactivations)(net, X))
    assert U.shape == (3, 5) and _close(U, X @ W.T / 2.0)  # 1/sqrt(d), d = 4
    assert num_params(net) == W.size + a.size == 25
    assert is_network(net) and not is_network(W) and not is_network(DeepLinear((W,)))
    u = np.array([-1.5, -0.2, 0.0, 0.3, 2.0])
    d_erf, d_relu = jax.jit(lambda u: (activation_derivative("erf", u), activation_derivative("relu", u)))(u)
    h = 1e-6
    assert _close(d_erf, (erf(u + h) - erf(u - h)) / (2 * h), 1e-8)  # central difference of scipy's erf
    assert np.array_equal(np.asarray(d_relu), [0.0, 0.0, 0.0, 1.0, 1.0])  # 0 at u = 0, as jax's gradient
    assert not _close(d_erf, (erf(u + h) - erf(u - h)) / h, 1e-3)  # negative control: a doubled slope is seen
    assert num_params(TwoLayer(np.zeros((5, 3)), np.zeros(5))) != 25


def test_init_jacobian_limit_is_two_over_the_smoothness():
    from linkd.stability import init_jacobian_limit

    assert init_jacobian_limit("mse", 4.0) == 0.5  # 2/λ
    assert init_jacobian_limit("binary", 4.0) == 2.0  # L = λ/4
    assert init_jacobian_limit("multiclass", 4.0) == 1.0  # L = λ/2
    assert init_jacobian_limit("binary", 4.0, tau=0.5, tau2_scale=False) == 0.5  # soft part λ/(4τ²) = 4 dominates
    # GD on the quadratic ½λx² converges iff η < 2/λ: one step below / above the limit
    lam, eta = 4.0, init_jacobian_limit("mse", 4.0)
    assert abs(1 - 0.99 * eta * lam) < 1 < abs(1 - 1.01 * eta * lam)
    assert init_jacobian_limit("mse", 4.0) != 1 / 4.0  # negative control: 1/λ (the monotone limit) differs


def test_linearized_matches_gd_on_a_linear_model_and_distillation_gap_by_hand():
    from linkd import ntk
    from linkd.spectral import Spectrum

    n, d, steps, lr = 4, 6, 5, 0.3
    X, y, th0 = RNG.standard_normal((n, d)), RNG.standard_normal(n), RNG.standard_normal(d)
    f0 = X @ th0  # a linear "network": J = X, K = X X^T
    kap, U = np.linalg.eigh(X @ X.T / n)  # the eigenpairs of K/n, descending (ntk.kernel_spectrum's convention)
    spec = Spectrum(kap[::-1].copy(), U[:, ::-1].copy())
    lin = jax.jit(ntk.linearized, static_argnums=(3, 4))(spec, f0, y, lr, steps)  # one compilation
    assert isinstance(lin, ntk.Linearized) and lin.test is None and lin.coeffs.shape == (steps + 1, n)
    th, outs = th0.copy(), [f0]
    for _ in range(steps):
        th = th - lr * X.T @ (X @ th - y) / n
        outs.append(X @ th)
    assert _close(lin.train, np.array(outs), 1e-10)
    assert not _close(lin.train[1:], np.array(outs)[:-1], 1e-10)  # negative control: one step late is seen
    # the matched-progress gap, by hand: λ = (0.5, 0.2), η = 1, teacher T = 3, student t = 2
    lam, T, t = np.array([0.5, 0.2]), 3, 2
    a, b = (1 - lam) ** t, (1 - lam) ** T
    qS = (1 - a) * (1 - b)
    tau = np.log(1 - qS[0]) / np.log(1 - lam[0])
    want = (1 - (1 - lam[1]) ** tau) - qS[1]
    g = ntk.distillation_gap(Spectrum(lam, np.eye(2)), 1.0, T, t)
    gap = np.asarray(g.gap)
    assert _close(gap[0, 1], want) and want > 0 and np.isnan(gap[1, 0]) and _close(g.tau_star[0], tau)
    assert not _close(gap[0, 1], (1 - (1 - lam[1]) ** T) - qS[1])  # negative control: the teacher's own T is not τ*


def test_quantity_lookup_order_and_metric_tolerances():
    from linkd.plotting.labels import QUANTITIES, quantity
    from linkd.plotting.sweep import metric_tolerances

    assert quantity("train.lr_fraction", "eigen_convergence").symbol == r"\eta\lambda_{\max}"  # experiment row first
    assert quantity("train.lr_fraction").symbol == r"\eta L"  # then the last component
    assert quantity("data.n") is QUANTITIES["data.n"] and quantity("data.n").symbol == "n"
    assert quantity("no.such_key") is None
    tols = metric_tolerances("exaggeration", ["exaggeration_gap_min", "no_such_metric"])
    assert tols == {"exaggeration_gap_min": 1.0 * np.sqrt(np.finfo(np.float64).eps), "no_such_metric": 0.0}
    t32 = metric_tolerances("exaggeration", ["summary.exaggeration_gap_max"], np.float32)["summary.exaggeration_gap_max"]
    assert abs(t32 - 3.4527e-4) < 1e-7  # sqrt(2^-23)
    assert quantity("train.lr_fraction", "eigen_convergence") != quantity("train.lr_fraction")  # the rows differ


def test_figure_caption_lists_headline_parameters_and_provenance():
    from linkd.config import build_config
    from linkd.experiments import get
    from linkd.experiments.runner import Run, figure_caption

    exp = get("eigen_convergence")
    cfg = build_config(exp.name, exp.schema, {"data": {"n": 7}}, description="my run")
    summary = {"teacher_vs_closed_form": {"max_rel_error": 1.5e-9}, "max_rel_error": 2.0, "other": 1}
    meta = {"command": ["linkd", "run", "a.toml"], "linkd_version": "9.9", "versions": {"jax": "0.1"}, "backend": "cpu",
            "x64": True, "git": {"commit": "abc", "dirty": True}, "start_time": "T0", "config_sha256": "sha256:ff",
            "source": "a.toml"}
    caption, keywords = figure_caption(Run(cfg, {}, summary, meta), "progress")
    lines = caption.splitlines()
    assert lines[0] == "progress: my run"
    # headline keys in the experiment's order, dotted keys looked up in nested dicts, missing ones left out
    assert lines[1] == "Results: teacher_vs_closed_form.max_rel_error = 1.500e-09; max_rel_error = 2.000e+00."
    want = [f"{sec}.{k}" for sec, vals in cfg.to_dict().items() for k in vals]
    assert [kv.split(" = ")[0] for kv in keywords.split("; ")] == want and "data.n = 7" in keywords.split("; ")
    assert lines[2] == f"Parameters (a.toml, experiment eigen_convergence): {keywords}."
    assert lines[3].startswith("Config sha256:ff; origin ") and lines[4].startswith("Command: linkd run a.toml;")
    assert lines[5] == "linkd 9.9, jax 0.1, backend cpu, x64 True, git abc (dirty), started T0."
    clean, _ = figure_caption(Run(cfg, {}, {}, dict(meta, git={"commit": "abc"})), "progress")
    assert "Results:" not in clean and "git abc, started" in clean  # negative control: no headline, not dirty
    assert clean != caption


def test_wide_network_and_temperature_figures_draw_the_recorded_arrays():
    import matplotlib.pyplot as plt

    from linkd.plotting.networks import wide_network_figure
    from linkd.plotting.temperature import temperature_figure

    ws = np.array([16.0, 64.0, 256.0])
    dev = np.stack([ws ** -0.5 * (1 + 0.1 * s) for s in range(2)], axis=1)[:, :, None] * np.array([1.0, 2.0])  # (3, 2, 2)
    steps = np.arange(6)
    el = np.array([[0.5, 0.1], [0.4, 0.2]])
    F = 1 - (1 - el[:, None, :]) ** steps[None, :, None]  # (2, 6, 2): the filters
    q = F + np.array([0.01, -0.03])[:, None, None]  # the network's progress, off by 0.01 and 0.03
    m = {"widths": ws, "deviation_ntk": dev, "distill_widths": np.array([16, 256]), "progress": q, "filter": F,
         "eta_lambda": el, "steps": steps}
    fig = wide_network_figure(m, {"slope_train_ntk": -0.5, "slope_test_ntk": -0.49})
    try:
        ax0, ax1, ax2 = fig.axes[:3]
        assert np.allclose(ax0.lines[0].get_ydata(), dev[:, :, 0].mean(axis=1))  # train deviation, mean over seeds
        assert np.allclose(ax0.lines[2].get_ydata(), dev[:, :, 1].mean(axis=1))  # test deviation
        assert np.allclose(ax0.lines[-1].get_ydata(), dev[0, :, 0].mean() * (ws / 16.0) ** -0.5)  # m^(-1/2) reference
        assert [t.get_text() for t in ax0.get_legend().get_texts()][:2] == ["NTK, train: slope -0.50", "NTK, test: slope -0.49"]
        assert ax1.get_title() == "(b) width 16: max error 1.0e-02" and ax2.get_title() == "(c) width 256: max error 3.0e-02"
        assert np.allclose(ax1.lines[0].get_ydata(), F[0, :, 0]) and np.allclose(ax1.lines[1].get_ydata(), q[0, :, 0])
        assert ax1.get_title() != "(b) width 16: max error 3.0e-02"  # negative control: the panels are not swapped
    finally:
        plt.close(fig)

    s = np.array([0, 1, 2, 4, 8, 16, 32])
    lam = np.array([0.3, 0.05])
    Ft = 1 - (1 - lam) ** s[:, None]  # (7, 2)
    taus = np.array([1.0, 2.0, 4.0])
    dev_t = np.zeros((7, 2))
    dev_t[3] = [0.02, 0.01]  # the largest deviation at s = 4
    p = Ft[None] + dev_t[None] / taus[:, None, None]
    mt = {"steps": s, "filter": Ft, "progress": p, "correction": dev_t, "taus": taus, "e0": 0.02 / taus,
          "e1": 0.001 / taus**2}
    fig = temperature_figure(mt, {"e0_slope": -1.0, "e1_slope": -2.0, "fit_taus": [2.0, 4.0], "Lambda": 1.5})
    try:
        a, b, c = fig.axes[:3]
        assert np.allclose(a.lines[0].get_xdata(), s[1:]) and np.allclose(a.lines[0].get_ydata(), Ft[1:, 0])
        assert b.get_ylabel() == r"progress $p_k(s^*)$, $s^*=4$"  # the step of the largest |p − F| at the largest τ
        assert np.allclose(b.lines[2].get_ydata(), p[:, 3, 0])  # markers: p_1(s*) against τ
        labels = [t.get_text() for t in c.get_legend().get_texts()]
        assert labels[:2] == [r"$e_0$ (leading), slope -1.00", r"$e_1$ (+$1/\tau$ corr.), slope -2.00"]
        assert np.allclose(c.lines[0].get_ydata(), 0.02 / taus)
        assert b.get_ylabel() != r"progress $p_k(s^*)$, $s^*=8$"  # negative control
    finally:
        plt.close(fig)
