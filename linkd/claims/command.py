"""``linkd falsify`` and ``linkd list --claims`` (docs/theory.md §6.9): thin wrappers that load claims,
call :func:`linkd.claims.falsify.falsify` and print.

Exit codes of ``linkd falsify``: 1 a counterexample was found (violation > 0), 0 none within the
budget, 2 bad input (the claim cannot be found or loaded, a bad budget).
"""
from __future__ import annotations

import sys
from pathlib import Path

from linkd.claims.claim import Claim
from linkd.claims.loader import ClaimFileError, load_many
from linkd.errors import one_line

__all__ = ["find_claim", "falsify_command", "list_rows"]


def _builtin_point_claims() -> list[Claim]:
    """The built-in registry claims that carry a point form (a domain); [] without proofs_check."""
    try:
        from proofs_check import registry
    except ImportError:
        return []
    return [c.point for c in registry.all_claims() if getattr(c, "point", None) is not None]


def find_claim(claim_id: str, specs: list[str]) -> tuple[Claim, str | None, list[str]]:
    """(claim, the spec it came from or None for the built-in registry, problems of the other claims)."""
    loaded = load_many(specs) if specs else None
    pool = list(loaded.claims) if loaded else []
    problems = list(loaded.problems) if loaded else []
    for c in pool:
        if c.id == claim_id:
            return c, c.source, problems
    for c in _builtin_point_claims():
        if c.id == claim_id:
            return c, None, problems
    mine = [p for p in problems if repr(claim_id) in p]
    if mine:
        raise ClaimFileError(mine[0])
    if problems and not pool:
        raise ClaimFileError(problems[0])
    known = [c.id for c in pool] + [c.id for c in _builtin_point_claims()]
    import difflib

    close = difflib.get_close_matches(claim_id, known, n=3, cutoff=0.5)
    where = f"in {', '.join(specs)}" if specs else "among the built-in claims with a domain (pass --claims FILE.py)"
    raise ClaimFileError(f"falsify: no claim {claim_id!r} {where}" + (f"; close: {', '.join(close)}" if close else "")
                         + (f"; known: {', '.join(known[:8])}" if known and not close else ""))


def _fmt(x: float) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def _report(claim: Claim, res, summary: dict, out: Path) -> None:
    from linkd.claims.domain import format_point

    head = ("COUNTEREXAMPLE" if not res.raised else "the claim RAISES") if res.found else "no violation found"
    units = res.in_tolerance_units
    unit_text = f" = {units:.3g} x the tolerance" if units is not None else " (tolerance 0)"
    print(f"linkd falsify: {claim.id}: {head} after {res.evaluations} evaluations ({res.mode}) in {res.seconds:.1f} s")
    print(f"  statement: {claim.statement}")
    if res.raised:
        print(f"  the claim function raised at the point below (a failure of the claim code, not a measured "
              f"violation): {res.raised}")
    elif res.found:
        print(f"  violation {_fmt(res.violation)}{unit_text}: error {_fmt(res.error)}, tolerance {_fmt(res.tolerance)}")
        print(f"  simplest violating point: {format_point(res.point)}")
        if res.worst_point != res.point:
            print(f"  largest violation seen: error {_fmt(res.worst_error)} at {format_point(res.worst_point)}")
    else:
        print(f"  budget spent: {res.evaluations} of {res.budget} evaluations; best margin reached: error "
              f"{_fmt(res.error)} against tolerance {_fmt(res.tolerance)} (violation {_fmt(res.violation)}) at "
              f"{format_point(res.point)}")
    if res.failures and not res.raised:
        print(f"  the claim raised at some points, e.g. {res.failures[0]}")
    print(f"  reproduce: {summary['command']}")
    if summary.get("most_sensitive"):
        print(f"  most sensitive parameter: {summary['most_sensitive']}")
    print(f"  wrote {out}/: " + ", ".join(Path(f).name for f in summary["files"]))


def falsify_command(claim_id: str, specs: list[str], *, budget: int, seed: int, time_limit: float | None, out: Path,
                    plot: bool = True, formats=("png", "pdf"), ctx=None) -> int:
    """Run ``linkd falsify``; returns the exit code (1 found, 0 none). ``ctx`` (a
    :class:`linkd.distributed.Context`): its processes share the screen; process 0 writes and prints."""
    from linkd.claims.falsify import falsify, write

    claim, spec, problems = find_claim(claim_id, specs)
    main = ctx is None or ctx.is_main
    for p in problems if main else ():
        print(f"linkd falsify: note: {one_line(p)}", file=sys.stderr)
    res = falsify(claim, budget=budget, seed=seed, time_limit=time_limit, ctx=ctx)
    if main:
        summary = write(claim, res, out, claims_spec=spec, formats=formats, plot=plot)
        _report(claim, res, summary, out)
    return 1 if res.found else 0


def list_rows(specs: list[str]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """``("claim", id, statement)`` rows of the claims in ``specs``, and one line per problem."""
    loaded = load_many(specs)
    return [("claim", c.id, c.statement) for c in loaded.claims], list(loaded.problems)
