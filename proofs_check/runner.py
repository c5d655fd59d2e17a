"""``linkd check``: run the claim registry, print a table, write JSON records and a Markdown report.

    linkd check [--fast | --full] [--only ID ...] [--json FILE] [--report FILE.md] [--quiet] [-x]
    linkd check --claims FILE.py|MODULE [...] [--with-builtin] [--at NAME=V,...] [--domain K [--seed S]]
    linkd check ... --distributed [--coordinator HOST:PORT --num-processes N --process-id I]

``--claims`` runs a user's claims (:mod:`linkd.claims`; docs/own-claims.md) instead of the built-in
registry, or with it (``--with-builtin``); ``--at`` evaluates claims stated over a domain at one
point of it, ``--domain K`` at the worst of K quasi-random points of it (each record's ``domain``
field describes the domain, and the screen). A claims file that cannot be loaded, a claim without
a domain or with an empty one, and an ``--at`` point outside the domain print one line each and
make the exit code 2; the other claims still run.

``--distributed`` (:mod:`linkd.distributed`, docs/distributed.md) splits the selected claims over the
processes in contiguous blocks; each runs its claims exactly as one process would, and process 0
gathers the records (in the order of one run), prints and writes. With ``--domain K`` the points are
split instead: every process takes each claim and a contiguous block of its K + 1 points, and the
screen gathers the errors (claims without a domain run on process 0). ``--fail-fast`` is one process's.

Every record carries ``params`` (the sizes the claim actually used, plus ``size``) and ``command``
(the command that reruns just that claim); the report's header shows the command actually run.
``-x``/``--fail-fast`` stops at the first failed exact/bound/monotone claim (the mutation harness
benchmarks/mutation.py uses it).

Exit codes: 0 all exact/bound/monotone claims passed (qualitative claims report a status and never
gate), 1 at least one of them failed, 2 bad input (unknown ``--only`` id, unwritable file, a claims
file or claim that cannot run, a bad ``--at`` point).
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import shlex
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Sequence

__all__ = ["terminal_width", "PROG", "build_parser", "outcome", "table", "markdown", "main"]

PROG = "linkd check"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {' '.join(message.split())} (see `{PROG} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Run the claim registry (proofs_check): every claim of docs/theory.md, "
                                       "measured against its closed form, bound or limit.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fast", dest="size", action="store_const", const="fast", help="CI sizes (default)")
    g.add_argument("--full", dest="size", action="store_const", const="full", help="paper-scale sizes and MC counts")
    p.set_defaults(size="fast")
    p.add_argument("--only", nargs="+", default=[], metavar="ID", help="run only these claim ids")
    p.add_argument("--json", metavar="FILE", help="write the list of claim records (JSON)")
    p.add_argument("--report", metavar="FILE.md", help="write a Markdown report")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the summary line")
    p.add_argument("--fail-fast", "-x", action="store_true",
                   help="stop at the first failed exact/bound/monotone claim (exit 1)")
    p.add_argument("--claims", action="extend", nargs="+", default=[], metavar="FILE.py|MODULE",
                   help="run the claims of these files or modules (linkd.claims) instead of the built-in registry")
    p.add_argument("--with-builtin", action="store_true", help="with --claims: run the built-in registry too")
    p.add_argument("--at", metavar="NAME=V,...", help="evaluate claims stated over a domain at this point of it")
    p.add_argument("--domain", type=int, default=0, metavar="K",
                   help="evaluate claims stated over a domain at K quasi-random points of it; record the worst")
    p.add_argument("--seed", type=int, default=0, help="seed of the --domain points (default 0)")
    from linkd.distributed import add_arguments

    add_arguments(p)
    return p


def _claims(args) -> tuple[list, list[str]]:
    """The claims to consider (built-in and/or from --claims) and one line per loading problem."""
    from proofs_check import registry

    builtin = registry.all_claims() if (not args.claims or args.with_builtin) else []
    if not args.claims:
        return builtin, []
    from proofs_check.points import load_user

    user, problems = load_user(args.claims, taken=[c.id for c in builtin])
    return builtin + user, problems


def _points(selected: list, args) -> tuple[dict, list[str]]:
    """--at parsed for each selected claim stated over a domain; one line per refused point."""
    from linkd.errors import LinkdError
    from proofs_check.points import parse_at

    ats: dict = {}
    problems: list[str] = []
    if args.at is None:
        return ats, problems
    with_domain = [c for c in selected if c.point is not None]
    if not with_domain:
        return ats, ["--at: none of the selected claims is stated over a domain"]
    for c in with_domain:
        try:
            ats[c.id] = parse_at(c, args.at)
        except LinkdError as e:
            problems.append(str(e))
    return ats, problems


def _fmt(v) -> str:
    """A record value in full: floats to 4 significant digits, every list entry and dict item."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def outcome(rec: dict) -> str:
    if rec["kind"] == "qualitative":
        return rec.get("status", "reproduced" if rec["passed"] else "not reproduced")
    return "PASS" if rec["passed"] else "FAIL"


COLUMNS = ("id", "kind", "measured", "predicted", "error", "tolerance", "result", "seconds")
#: The one-line columns of the terminal table; statement, measured and predicted follow each row.
SHORT_COLUMNS = ("id", "kind", "result", "error", "tolerance", "seconds")


def _row(rec: dict) -> list[str]:
    return [rec["id"], rec["kind"], _fmt(rec["measured"]), _fmt(rec["predicted"]), _fmt(rec["error"]),
            _fmt(rec["tolerance"]), outcome(rec), f"{rec['seconds']:.2f}"]


def terminal_width() -> int:
    """Columns of the terminal (``$COLUMNS`` first; 100 when not a terminal), at least 60."""
    return max(shutil.get_terminal_size((100, 24)).columns, 60)


def _wrapped(name: str, text: str, width: int, indent: str = "    ") -> list[str]:
    """``name: text`` wrapped to ``width`` (continuation lines indented further); every character kept."""
    return textwrap.wrap(f"{name}: {text}", width=width, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False) or [indent + name + ":"]


def table(records: list[dict], width: int | None = None) -> str:
    """The terminal table: one line per claim (id, kind, result, error, tolerance, seconds), then its
    statement, measured and predicted values in full, wrapped to ``width`` (default: the terminal's)."""
    width = terminal_width() if width is None else width
    rows = [list(SHORT_COLUMNS)] + [[r["id"], r["kind"], outcome(r), _fmt(r["error"]), _fmt(r["tolerance"]),
                                     f"{r['seconds']:.2f}"] for r in records]
    w = [max(len(r[i]) for r in rows) for i in range(len(SHORT_COLUMNS))]
    line = lambda r: "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip()  # noqa: E731
    lines = [line(rows[0]), "  ".join("-" * x for x in w)]
    for rec, row in zip(records, rows[1:]):
        lines.append(line(row))
        for name in ("statement", "measured", "predicted"):
            lines += _wrapped(name, rec[name] if name == "statement" else _fmt(rec[name]), width)
        lines += _where(rec, width)
    return "\n".join(lines)


def _where(rec: dict, width: int) -> list[str]:
    """The domain point a record was evaluated at (``--at`` or the worst of a ``--domain`` screen), and
    the screen in one line; nothing for a claim's fixed run."""
    dom = rec.get("domain") or {}
    if "point" not in dom:
        return []
    from linkd.claims.domain import format_point

    screen = dom.get("screen")
    name = "worst point" if screen else "at"
    lines = _wrapped(name, format_point(dom["point"]), width)
    if screen:
        lines += _wrapped("screen", f"{screen['points']} points (seed {screen['seed']}, {screen['mode']}), "
                                    f"{screen['failing_points']} failing", width)
    return lines


def _md(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def markdown(records: list[dict], size: str, seconds: float, claims: dict, command: str | None = None) -> str:
    n_fail = sum(1 for r in records if r["kind"] != "qualitative" and not r["passed"])
    n_q = [r for r in records if r["kind"] == "qualitative"]
    out = [f"# linkd claim report ({size})", "",
           f"{len(records)} claims, {n_fail} failed exact/bound/monotone, "
           f"{sum(1 for r in n_q if r['passed'])}/{len(n_q)} qualitative reproduced; {seconds:.1f} s. "
           f"Generated by `{command or 'linkd check --' + size}` (proofs_check); theory in `docs/theory.md`. "
           "Each claim's `params` are the sizes it actually used; its `command` reruns it alone.", "",
           "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in records:
        out.append("| " + " | ".join(_md(c) for c in _row(r)) + " |")
    out += ["", "## Claims", ""]
    for r in records:
        c = claims.get(r["id"])
        out.append(f"### `{r['id']}` ({r['kind']}, {r['paper']}) — {outcome(r)}")
        out.append("")
        out.append(f"- **Statement:** {_md(r['statement'])}")
        out.append(f"- **Tolerance:** {_fmt(r['tolerance'])} — {_md(c.tolerance_reason if c else '')}")
        out.append(f"- **Measured:** `{json.dumps(r['measured'])}`")
        out.append(f"- **Predicted:** `{json.dumps(r['predicted'])}`")
        out.append(f"- **Error:** {_fmt(r['error'])}; **seconds:** {r['seconds']:.2f}")
        if r.get("note"):
            out.append(f"- **Note:** {_md(r['note'])}")
        out.append(f"- **Params:** `{json.dumps(r['params'])}`")
        if r.get("domain") and "point" in r["domain"]:
            scr = r["domain"].get("screen")
            out.append(f"- **{'Worst domain point' if scr else 'Domain point'}:** `{json.dumps(r['domain']['point'])}`"
                       + (f" ({scr['points']} points screened, seed {scr['seed']}, {scr['failing_points']} failing)"
                          if scr else ""))
        if r.get("command"):
            out.append(f"- **Command:** `{r['command']}`")
        out.append("")
    return "\n".join(out)


def _write(path: str, text: str) -> None:
    from linkd.atomic import atomic_write_text

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, text)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import jax

    jax.config.update("jax_enable_x64", True)  # verification runs in float64
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if args.domain < 0:
        print(f"{PROG}: error: --domain {args.domain}: K must be >= 0", file=sys.stderr)
        return 2
    if args.distributed and args.fail_fast:
        print(f"{PROG}: error: --fail-fast runs on one process; drop --distributed or --fail-fast", file=sys.stderr)
        return 2
    from linkd import distributed
    from linkd.errors import LinkdError

    try:
        ctx = distributed.from_args(args)
    except LinkdError as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    rc = _main(args, argv, ctx)
    if ctx.active:
        ctx.barrier("the end")
    return rc


def _main(args, argv: list[str], ctx) -> int:
    claims, problems = _claims(args)
    by_id = {c.id: c for c in claims}
    unknown = [i for i in args.only if i not in by_id]
    if unknown:
        hints = []
        for i in unknown:
            close = difflib.get_close_matches(i, list(by_id), n=3, cutoff=0.5)
            close += [c for c in by_id if i and c.startswith(i) and c not in close][:3]
            hints.append(f"{i!r}" + (f" (close: {', '.join(close)})" if close else ""))
        if ctx.is_main:
            print(f"{PROG}: error: unknown claim id {'; '.join(hints)}; see `linkd list` for all ids", file=sys.stderr)
        return 2
    selected = [c for c in claims if not args.only or c.id in args.only]
    ats, bad_at = _points(selected, args)
    problems += bad_at
    selected = [c for c in selected if args.at is None or c.id in ats or c.point is None]
    for line in problems if ctx.is_main else ():  # one line each; the other claims still run, and the exit code is 2
        print(f"{PROG}: error: {' '.join(str(line).split())}", file=sys.stderr)
    t0 = time.perf_counter()
    records = []
    # --domain K: every process takes each claim and a block of its K points (the screen gathers them);
    # otherwise the claims themselves are split. Either way each record is computed as on one process.
    by_points = bool(args.domain) and ctx.active
    mine = range(len(selected)) if by_points else ctx.mine(len(selected))
    for i, c in ((i, selected[i]) for i in mine):
        if c.point is not None:
            rec = c.run(args.size, at=ats.get(c.id), points=args.domain, seed=args.seed, ctx=ctx if by_points else None)
        else:
            rec = c.run(args.size) if ctx.is_main or not by_points else {"id": c.id, "passed": True, "kind": c.kind}
        records.append(rec)
        if not args.quiet and (ctx.is_main or not by_points):
            where = f"process {ctx.process_id}: " if ctx.active else ""
            print(f"{where}[{i + 1}/{len(selected)}] {c.id}: {outcome(rec)} ({rec['seconds']:.1f} s)", file=sys.stderr,
                  flush=True)
        if args.fail_fast and c.gating and not rec["passed"]:
            if len(records) < len(selected):
                print(f"{PROG}: --fail-fast: stopped after {c.id} failed ({len(selected) - len(records)} claims not run)",
                      file=sys.stderr)
            break
    if by_points:  # a claim without a point form ran on process 0 only: its record comes from there
        records = ctx.gather(records, "claim records")[0]
    elif ctx.active:
        records = [r for part in ctx.gather(records, "claim records") for r in part]
    seconds = time.perf_counter() - t0
    failed = [r["id"] for r in records if by_id[r["id"]].gating and not r["passed"]]
    if not ctx.is_main:
        return 2 if problems else (1 if failed else 0)
    if not args.quiet:
        print(table(records))
    q = [r for r in records if r["kind"] == "qualitative"]
    print(f"{len(records)} claims ({args.size}) in {seconds:.1f} s: {len(records) - len(q) - len(failed)} passed, "
          f"{len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "")
          + f"; qualitative {sum(1 for r in q if r['passed'])}/{len(q)} reproduced")
    try:
        if args.json:
            _write(args.json, json.dumps(records, indent=1, allow_nan=False) + "\n")
        if args.report:
            command = " ".join(["linkd check"] + [shlex.quote(a) for a in argv])
            _write(args.report, markdown(records, args.size, seconds, by_id, command) + "\n")
    except (OSError, ValueError) as e:
        print(f"{PROG}: error: cannot write output: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if problems:
        print(f"{PROG}: {len(problems)} claim file or point problem(s) above: exit 2", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
