"""Every gating claim of the registry is stated over a domain (docs/theory.md §6.9): the hypotheses
of its theorem, and the statement as a function of one point of it (``linkd check --domain K``).

For each exact, bound and monotone claim:

* its domain is declared, its default point satisfies the domain's constraints, and the record's
  ``domain`` field describes every parameter;
* the statement holds at the default point (``--at``), and every breaker of the claim makes it
  fail there: a point form that ignores the claim's deliberate errors cannot fail, so it would not
  count as a check;
* a small quasi-random screen (the default point and two more) passes, records its worst point,
  and re-running the record's command at that point (``--at``) gives the same error (one cheap
  claim per paper by default, every claim with ``--runslow``).

The full screens (``make check-domain``: 256 points per claim) run outside the default suite; the
marked-slow test runs 32 points per claim.
"""
from __future__ import annotations

import math
import shlex

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from proofs_check import registry  # noqa: E402
from proofs_check.points import parse_at  # noqa: E402

GATING = [c for c in registry.all_claims() if c.gating]
IDS = [c.id for c in GATING]


def test_every_gating_claim_declares_a_domain_and_a_point_form():
    missing = [c.id for c in GATING if c.point is None or c.domain is None]
    assert missing == [], f"gating claims without a domain: {missing}"
    for c in GATING:
        assert c.point.id == c.id and c.point.kind == c.kind, c.id
        assert c.point.domain is c.domain, c.id


@pytest.mark.parametrize("cid", IDS)
def test_default_point_is_in_the_domain_and_described(cid):
    c = registry.get(cid)
    if c.point is None:
        pytest.fail(f"{cid} has no point form")
    default = c.domain.default()
    assert c.domain.violated(default) == [], f"{cid}: default point breaks {c.domain.violated(default)}"
    desc = c.domain.describe()
    assert set(desc["params"]) == set(c.domain.names) and len(c.domain.names) >= 1


def _point_of(rec: dict, claim) -> dict:
    """The --at point in a record's command, parsed back by the domain (the user's route)."""
    argv = shlex.split(rec["command"])
    return parse_at(claim, argv[argv.index("--at") + 1])


@pytest.mark.parametrize("cid", IDS)
def test_statement_holds_at_the_default_point_and_every_breaker_breaks_it(cid):
    c = registry.get(cid)
    if c.point is None:
        pytest.fail(f"{cid} has no point form")
    at = c.domain.default()
    rec = c.run("fast", at=at)
    assert rec["passed"], f"{cid} fails at its default point: error {rec['error']} ({rec.get('note', '')})"
    assert math.isfinite(rec["error"]) and rec["error"] <= c.point.tolerance == rec["tolerance"]  # the domain form's
    assert rec["domain"]["point"] == registry.jsonable(at) and _point_of(rec, c) == at
    assert c.breakers, f"{cid}: a gating claim without a breaker"
    for b in c.breakers:
        broken = c.run("fast", corrupt=b, at=at)
        assert not broken["passed"], f"{cid}: breaker {getattr(b, 'name', b)!r} does not break the point form " \
                                     f"at the default point (error {broken['error']}, tolerance {c.tolerance})"


#: Claims whose screen runs in the default suite (cheap points, one per paper); `--runslow` screens them all.
SCREENED = ("mb.collapse_bounds", "ng.exaggeration_gap_closed_form", "pl.bound_closed_form", "st.agreement_monotone_diagonal",
            "dl.dilation_increases_with_depth", "tau.correction_slope", "mb.sparsification")


@pytest.mark.parametrize("cid", [i if i in SCREENED else pytest.param(i, marks=pytest.mark.slow) for i in IDS])
def test_screen_passes_and_its_command_reproduces_the_worst_point(cid):
    c = registry.get(cid)
    if c.point is None:
        pytest.fail(f"{cid} has no point form")
    rec = c.run("fast", points=2, seed=7)
    screen = rec["domain"]["screen"]
    assert screen["points"] == 3 and screen["seed"] == 7  # the default point and 2 quasi-random ones
    assert rec["passed"] and screen["failing_points"] == 0, f"{cid}: {screen} ({rec.get('note', '')})"
    worst = _point_of(rec, c)
    assert c.domain.violated(worst) == [] and registry.jsonable(worst) == rec["domain"]["point"]
    again = c.run("fast", at=worst)
    assert again["passed"] and np.isclose(again["error"], rec["error"], rtol=1e-9, atol=1e-15), \
        f"{cid}: the record's --at command gives error {again['error']}, the screen recorded {rec['error']}"


def test_the_recorded_worst_point_is_the_worst_of_the_screen():
    """Re-evaluating every screened point one by one (``--at``) finds no point worse than the one the
    screen recorded, and the recorded point is the argmax."""
    from linkd.claims.domain import point_at

    c = registry.get("mb.collapse_bounds")
    rec = c.run("fast", points=16, seed=0)
    batch = c.domain.sample(16, seed=0)
    pts = [c.domain.default()] + [point_at(batch, i) for i in range(len(batch["K"]))]
    errs = [c.run("fast", at=p)["error"] for p in pts]
    assert rec["passed"] and max(errs) == pytest.approx(rec["error"], rel=1e-12, abs=1e-300)
    assert _point_of(rec, c) == pts[int(np.argmax(errs))]


#: Statements that do not hold over their whole domain (findings, docs/claims.md "Claims over their domains"):
#: their screens are expected to find failing points.
FAILS_OVER_DOMAIN = {"nn.deviation_slope": "single ReLU inits give train slopes as flat as -0.09 (docs/theory.md §11.3)"}


@pytest.mark.slow
@pytest.mark.parametrize("cid", [pytest.param(i, marks=pytest.mark.xfail(reason=FAILS_OVER_DOMAIN[i], strict=False))
                                 if i in FAILS_OVER_DOMAIN else i for i in IDS])
def test_screen_of_32_points_passes(cid):
    rec = registry.get(cid).run("fast", points=32, seed=0)
    assert rec["passed"] and rec["domain"]["screen"]["failing_points"] == 0, rec["domain"]["screen"]


def test_domains_page_is_the_registry(monkeypatch):
    """docs/domains.md lists every claim stated over a domain, exactly as the registry declares it
    (regenerate with tests/domain_table.py); a changed range changes the page."""
    import domain_table
    from linkd.claims import Int

    text = domain_table.render()
    assert domain_table.DOMAINS_MD.read_text() == text, f"docs/domains.md is out of date: run {domain_table.REGENERATE}"
    rows = [line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")]
    assert rows == [c.id for c in registry.all_claims() if c.domain is not None]
    c = registry.get("mb.collapse_bounds")
    monkeypatch.setitem(c.domain.params, "K", Int(1, 41, default=30))
    assert "`K` int [1, 41]" in domain_table.render() and "`K` int [1, 41]" not in text


def test_a_point_that_raises_fails_the_screen_there_and_the_record_names_it():
    """A statement that raises on part of its domain: the screen's record is one failed record at a
    raising point (its --at command reproduces the failure), not a crashed claim; where nothing
    raises the same claim passes."""
    from linkd.claims import Claim as PointClaim
    from linkd.claims import Domain, Int, Outcome
    from proofs_check.points import from_user

    def fn(p):
        if p["n"] > 30:
            raise FloatingPointError(f"no convergence at n={p['n']}")
        return Outcome(float(p["n"]), 40.0)

    user = PointClaim("t.raises", "n <= 40", "bound", fn, Domain(n=Int(1, 40, default=3)), tolerance=0.0)
    c = from_user(user, "")
    rec = c.run("fast", points=32, seed=0)
    assert not rec["passed"] and rec["error"] == "inf"  # JSON has no infinity: the record writes "inf"
    assert rec["domain"]["point"]["n"] > 30 and rec["domain"]["screen"]["raised_at"] >= 1
    assert "raised at this point: FloatingPointError: no convergence" in rec["note"]
    again = c.run("fast", at=_point_of(rec, c))
    assert not again["passed"] and "raised at this point" in again["note"]
    assert c.run("fast", at={"n": 30})["passed"]


def test_table_and_report_show_the_worst_point(tmp_path, capsys):
    """`linkd check --domain K` prints the worst point and the screen under each claim, and the
    report names them; a fixed run shows neither."""
    from proofs_check import runner

    md = tmp_path / "r.md"
    assert runner.main(["--only", "mb.collapse_bounds", "--domain", "4", "--report", str(md)]) == 0
    out = capsys.readouterr().out
    rec = registry.get("mb.collapse_bounds").run("fast", points=4, seed=0)
    from linkd.claims.domain import format_point

    shown = format_point(rec["domain"]["point"])
    assert shown in out.replace("\n      ", "") and "screen: 5 points (seed 0, loop), 0 failing" in out
    assert "**Worst domain point:**" in md.read_text() and "(5 points screened, seed 0, 0 failing)" in md.read_text()
    assert runner.main(["--only", "mb.collapse_bounds", "--report", str(md)]) == 0
    out = capsys.readouterr().out
    assert "worst point" not in out and "screen:" not in out and "domain point" not in md.read_text()


def test_split_errors_block_by_block_equals_one_call():
    """batch.split_errors (the screen of `check --domain` and `falsify`, split over processes) gives
    one evaluator call's errors bit for bit, its failures at the right points, and the mode."""
    import jax.numpy as jnp

    from linkd.claims import Claim as PointClaim
    from linkd.claims import Domain, Evaluator, Int, Outcome, Real
    from linkd.claims.batch import SCREEN_BLOCK, split_errors
    from linkd.claims.domain import point_at

    def fn(p):
        return Outcome(jnp.sin(p["x"]) * p["x"], 0.0)

    c = PointClaim("t.split", "x sin x <= 0", "bound", fn, Domain(x=Real(0.0, 3.0), k=Int(1, 5, traced=True)))
    batch = c.domain.sample(2 * SCREEN_BLOCK + 7, seed=3)
    pts = [point_at(batch, i) for i in range(len(batch["x"]))]
    one = Evaluator(c).errors(batch)
    ev = Evaluator(c)
    split = split_errors(ev, pts)
    assert np.array_equal(split.errors, one.errors) and split.mode == one.mode == "vmap"
    assert ev.evaluations == len(pts)

    def raising(p):
        if p["k"] == 3:
            raise ArithmeticError("k = 3")
        return Outcome(float(p["k"]), 0.0)

    r = PointClaim("t.split_raise", "k <= 0", "bound", raising, Domain(x=Real(0.0, 3.0), k=Int(1, 5)))
    screen = split_errors(Evaluator(r), pts)
    assert sorted(screen.failures) == [i for i, p in enumerate(pts) if p["k"] == 3] != []
    assert all(np.isinf(screen.errors[i]) for i in screen.failures)
