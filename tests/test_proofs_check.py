"""proofs_check: every gating claim passes at --fast, every exact/bound/monotone claim FAILS on a broken
prediction (a check that cannot fail is a defect), and the `linkd check` runner keeps its contract."""
import json
import math

import pytest

from proofs_check import registry, runner

CLAIMS = registry.all_claims()
BY_ID = {c.id: c for c in CLAIMS}
BREAKABLE = [c for c in CLAIMS if c.kind in ("exact", "bound", "monotone")]
BREAK_CASES = [(c.id, i) for c in BREAKABLE for i in range(len(c.breakers))]
SMALL = "pl.monotone_atoms_exact"  # a claim that runs in ~0.1 s


@pytest.fixture(scope="module")
def records():
    """Every claim once at the fast size (measurements are cached for the breaker tests)."""
    return {c.id: c.run("fast") for c in CLAIMS}


def test_registry_covers_every_paper():
    assert len(BY_ID) == len(CLAIMS)  # unique ids
    assert {c.paper for c in CLAIMS} == set(registry.PAPERS)
    for c in CLAIMS:
        assert c.kind in registry.KINDS and c.statement and c.tolerance_reason
        assert c.id.split(".")[0] in ("pl", "ng", "mb", "st", "guo", "dl", "tau", "nn", "sgd")


def test_record_contract(records):
    for rec in records.values():
        assert set(registry.RECORD_KEYS) <= set(rec)
        assert set(rec) <= set(registry.RECORD_KEYS) | {"note", "status"}
        json.dumps(rec, allow_nan=False)  # JSON-safe
        assert isinstance(rec["passed"], bool) and rec["seconds"] >= 0


@pytest.mark.parametrize("cid", [c.id for c in CLAIMS if c.gating])
def test_gating_claim_passes_at_fast_size(records, cid):
    rec = records[cid]
    assert rec["passed"], f"{cid} failed: error {rec['error']} > tolerance {rec['tolerance']}; {rec.get('note', '')}"


@pytest.mark.parametrize("cid", [c.id for c in CLAIMS if c.kind == "qualitative"])
def test_qualitative_claim_reports_a_status(records, cid):
    rec = records[cid]
    assert rec["status"] in ("reproduced", "not reproduced")
    assert "error:" not in rec.get("note", ""), rec.get("note")  # it ran; the status is a finding, not a crash
    assert rec["passed"] == (rec["status"] == "reproduced")


def test_every_exact_bound_and_monotone_claim_has_a_breaker():
    assert BREAKABLE and BREAK_CASES
    assert [c.id for c in BREAKABLE if not c.breakers] == []
    assert all(registry.REVERSE_ORDER in c.breakers for c in BREAKABLE if c.kind == "monotone")


@pytest.mark.parametrize("cid,i", BREAK_CASES, ids=[f"{c}-{i}" for c, i in BREAK_CASES])
def test_broken_prediction_fails(records, cid, i):
    claim = BY_ID[cid]
    breaker = claim.breakers[i]
    rec = claim.run("fast", corrupt=breaker)
    assert not rec["passed"], f"{cid} still passes with a broken prediction ({breaker.name}): error {rec['error']}"
    assert "error:" not in rec.get("note", ""), f"{cid} crashed instead of failing the comparison: {rec.get('note')}"


def test_plain_callable_corrupts_the_final_prediction():
    claim = BY_ID["pl.limit_underdetermined"]
    assert claim.run("fast", corrupt=lambda p: p * (1 + 1e-3))["passed"] is False


# ------------------------------------------------------------------------------------ runner


def test_runner_json_and_report(tmp_path, capsys):
    js, md = tmp_path / "c.json", tmp_path / "c.md"
    ids = [SMALL, "mb.collapse_bounds"]
    rc = runner.main(["--fast", "--only", *ids, "--json", str(js), "--report", str(md)])
    out = capsys.readouterr().out
    assert rc == 0
    recs = json.loads(js.read_text())
    assert [r["id"] for r in recs] == ids
    for r in recs:
        assert set(registry.RECORD_KEYS) <= set(r)
    text = md.read_text()
    assert f"linkd check --fast --only {' '.join(ids)} --json {js} --report {md}" in text  # the command actually run
    for r in recs:
        assert r["command"] == f"linkd check --fast --only {r['id']}" and f"`{r['command']}`" in text
        assert r["params"]["size"] == "fast" and len(r["params"]) > 1  # the sizes actually used
    table_rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| id")]
    assert len(table_rows) == len(ids)
    for cid in ids:
        assert cid in out and f"`{cid}`" in text
        assert BY_ID[cid].tolerance_reason.split()[0] in text  # tolerance reasons are in the report


def test_runner_exit_1_on_a_failing_claim(capsys):
    @registry.register(id="test.always_fails", paper="phuong_lampert", kind="exact", tolerance=1e-12,
                       statement="a deliberately wrong claim", tolerance_reason="test")
    def _fails(size="fast", corrupt=None):
        return registry.exact(1.0, 2.0, 1e-12)

    try:
        assert runner.main(["--only", "test.always_fails", "--quiet"]) == 1
        assert "test.always_fails" in capsys.readouterr().out
    finally:
        registry.unregister("test.always_fails")


def test_runner_qualitative_failure_does_not_gate(capsys):
    @registry.register(id="test.not_reproduced", paper="guo", kind="qualitative", tolerance=None,
                       statement="a finding that does not reproduce", tolerance_reason="test")
    def _q(size="fast", corrupt=None):
        return registry.qualitative(False, 0.0, 1.0)

    try:
        assert runner.main(["--only", "test.not_reproduced", "--quiet"]) == 0
    finally:
        registry.unregister("test.not_reproduced")


def test_runner_crash_is_a_failed_record():
    @registry.register(id="test.crashes", paper="guo", kind="bound", tolerance=0.0,
                       statement="raises", tolerance_reason="test")
    def _c(size="fast", corrupt=None):
        raise ValueError("boom")

    try:
        rec = registry.get("test.crashes").run()
        assert rec["passed"] is False and "boom" in rec["note"]
    finally:
        registry.unregister("test.crashes")


def test_runner_unknown_id_exit_2(capsys):
    rc = runner.main(["--only", "pl.limit_underdetermine"])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "pl.limit_underdetermine" in err and "pl.limit_underdetermined" in err


def test_runner_bad_flag_exit_2(capsys):
    assert runner.main(["--fast", "--full"]) == 2
    assert runner.main(["--bogus"]) == 2


def test_runner_fail_fast_stops_at_the_first_failure(capsys):
    @registry.register(id="test.fails_first", paper="phuong_lampert", kind="exact", tolerance=1e-12,
                       statement="a deliberately wrong claim", tolerance_reason="test")
    def _fails(size="fast", corrupt=None):
        return registry.exact(1.0, 2.0, 1e-12)

    @registry.register(id="test.passes_after", paper="phuong_lampert", kind="exact", tolerance=1e-12,
                       statement="a right claim", tolerance_reason="test")
    def _passes(size="fast", corrupt=None):
        return registry.exact(1.0, 1.0, 1e-12)

    ids = ["test.fails_first", "test.passes_after"]
    try:
        assert runner.main(["--only", *ids, "-x", "--quiet"]) == 1
        out = capsys.readouterr()
        assert "1 claims" in out.out and "1 claims not run" in out.err
        assert runner.main(["--only", *ids, "--quiet"]) == 1
        assert "2 claims" in capsys.readouterr().out
    finally:
        for i in ids:
            registry.unregister(i)


def test_upper_bound_with_zero_se_reports_a_plain_violation():
    ok = registry.upper_bound([0.0, 0.1], [0.5, 0.2], [0.0, 0.01])
    assert ok.passed and ok.error == pytest.approx(-10.0) and "SE = 0" in ok.note
    bad = registry.upper_bound([0.3, 0.1], [0.2, 0.2], [0.0, 0.01])  # violated where SE = 0
    assert not bad.passed and bad.error == pytest.approx(0.1) and "plain violation" in bad.note
    assert math.isfinite(bad.error)  # never "infinitely many standard errors"
    z = registry.upper_bound([0.25], [0.2], [0.01])
    assert not z.passed and z.error == pytest.approx(5.0) and z.note == ""


def test_monotone_helper_follows_the_reverse_order_breaker():
    from proofs_check import _common

    assert _common.monotone([3.0, 2.0, 1.0], increasing=False).passed
    token = registry._ACTIVE.set(registry.REVERSE_ORDER)
    try:
        assert not _common.monotone([3.0, 2.0, 1.0], increasing=False).passed
    finally:
        registry._ACTIVE.reset(token)
