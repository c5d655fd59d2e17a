"""The ``linkd`` command (also ``python -m linkd``): thin; parses, calls the library, prints.

    linkd run EXPERIMENT [--set key=value ...] [--out DIR] [--seed N] [--x64] [--overwrite] [--quiet]
    linkd sweep EXPERIMENT --grid key=v1,v2,... [--grid ...] [--out DIR] [--shard I/N] [--distributed] [...]
    linkd sweep --merge DIR [DIR ...] --out DIR
    linkd plot RUN_DIR|SWEEP_DIR [--format pdf,png] [--out DIR] [--metric KEY ...]
    linkd show EXPERIMENT [--set key=value ...] [--toml]
    linkd list [--claims FILE.py|MODULE ...]
    linkd check [--fast | --full] [--only ID ...] [--json FILE] [--report FILE.md] [--claims FILE.py ...]
    linkd falsify CLAIM [--claims FILE.py|MODULE ...] [--budget N] [--seed S] [--time-limit SEC] [--out DIR]
    linkd figures [--out DIR] [--only PRESET ...]

EXPERIMENT is a preset name (``linkd list``), ``kind:NAME`` for an experiment kind's built-in
defaults, or a path to a TOML file; ``--set`` may come before it. User errors (bad config,
existing run directory, divergence, memory budget: any ``LinkdError``) print one line
``linkd: error: ...`` on stderr and exit 2, without a traceback, and write nothing. An unusable
``--out`` is refused before any work starts. SIGTERM (schedulers, ``timeout``) is handled like
Ctrl-C: the run stops, its staging directory is removed, exit 143 (130 for Ctrl-C). Several
processes (``--distributed``, ``--shard``/``--merge``): :mod:`linkd.distributed`, docs/distributed.md.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Sequence

from linkd.errors import ConfigError, LinkdError, one_line

__all__ = ["wrapped_table", "main", "build_parser"]

PROG = "linkd"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + message)
        self.exit(2, f"{PROG}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def _version() -> str:
    try:
        import linkd

        return linkd.__version__
    except Exception:  # pragma: no cover
        return "unknown"


EXAMPLES = {
    "run": """examples:
  linkd run eigen_convergence
  linkd run eigen_convergence --set teacher.steps=200 student.steps=500 --out runs/x
  linkd run --set data.noise=0.2 exaggeration --seed 3 --out runs/y
  linkd run late_distillation --set student.switch_step=100 --no-figures
  linkd run kind:eigen_convergence --x64        (the experiment kind's built-in defaults)
  linkd run runs/x/config.toml --out runs/x2    (re-run a written config)""",
    "sweep": """examples:
  linkd sweep exaggeration --grid train.lr_fraction=0.3,0.6,0.9 --grid run.seed=0,1,2 --out runs/sw
  linkd sweep eigen_convergence --grid data.noise=0.1,0.5 --grid run.seed=0,1 --set student.steps=300
  linkd plot runs/sw                            (mean +- SE over seeds, sweep_summary.csv)
  linkd sweep exaggeration --grid run.seed=0,1,2,3 --shard 0/2 --out runs/s0   (one slice; then 1/2, --merge)
  linkd sweep exaggeration --grid run.seed=0,1,2,3 --distributed --out runs/sw   (under srun; docs/distributed.md)""",
    "plot": """examples:
  linkd plot runs/x --format pdf,png
  linkd plot runs/sw --metric max_rel_error     (a sweep directory: aggregate over seeds)""",
    "show": """examples:
  linkd show eigen_convergence
  linkd show ensemble_attention --set data.seeds=8
  linkd show exaggeration --toml > my.toml      (then: linkd run my.toml)""",
}
_SET_HELP = "override config values, e.g. --set data.n=50 (see `linkd show PRESET` for the keys)"


def _parser(sub, name: str, help: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help, epilog=EXAMPLES.get(name),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _experiment_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("experiment", metavar="EXPERIMENT", nargs="?",
                   help="preset name (see `linkd list`), kind:NAME for a kind's defaults, or a .toml path")
    q.add_argument("--set", dest="set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help=_SET_HELP)
    q.add_argument("--seed", type=int, help="root seed (same as --set run.seed=N)")
    q.add_argument("--x64", action="store_true", help="float64 (same as --set run.x64=true)")


def _sweep_args(q: argparse.ArgumentParser) -> None:
    from linkd.distributed import add_arguments

    q.add_argument("--out", help="sweep directory (default runs/<preset>-sweep-<timestamp>)")
    q.add_argument("--shard", metavar="I/N", help="run only slice I of N of the grid (contiguous blocks) into "
                                                  "--out; combine the N slices with --merge")
    q.add_argument("--merge", nargs="+", metavar="DIR", help="combine the slices written by --shard I/N into "
                                                             "--out, e.g. linkd sweep --merge runs/s0 runs/s1 "
                                                             "--out runs/sw (no EXPERIMENT, no --grid)")
    add_arguments(q)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Exact-simulation checks of knowledge-distillation theory.",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="examples:\n  linkd list\n  linkd show eigen_convergence\n"
                       + "\n".join(line for k in ("run", "sweep") for line in EXAMPLES[k].splitlines()[1:3])
                       + "\n  linkd check --fast --json claims.json --report claims.md")
    p.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common_run(q: argparse.ArgumentParser) -> None:
        _experiment_args(q)
        q.add_argument("--overwrite", action="store_true",
                       help="replace an existing non-empty output directory (only once the new run succeeded)")
        q.add_argument("--quiet", "-q", action="store_true", help="no progress output")
        q.add_argument("--no-figures", dest="figures", action="store_false", help="skip drawing figures")
        q.add_argument("--format", default="pdf,png", help="figure formats (default pdf,png)")

    q = _parser(sub, "run", "run one experiment into a run directory")
    common_run(q)
    q.add_argument("--out", help="run directory (default runs/<preset>-<timestamp>)")
    q.set_defaults(func=_cmd_run)

    q = _parser(sub, "sweep", "run a grid of configs (vectorized axes under one vmap)")
    common_run(q)
    q.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a grid axis (repeatable; cartesian product); list-valued keys separate values with ;")
    _sweep_args(q)
    q.set_defaults(func=_cmd_sweep)

    q = _parser(sub, "plot", "redraw a run's figures, or aggregate a sweep, from recorded data (never re-runs)")
    q.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, or a sweep directory (has sweep.json)")
    q.add_argument("--format", default="pdf,png", help="figure formats (default pdf,png)")
    q.add_argument("--out", help="output directory (default RUN_DIR/figures)")
    q.add_argument("--metric", action="extend", nargs="+", default=[], metavar="KEY",
                   help="sweeps: summary keys to draw (default: the experiment's headline numbers)")
    q.set_defaults(func=_cmd_plot)

    q = _parser(sub, "show", "a preset's keys: value, default, allowed range and meaning")
    _experiment_args(q)
    q.add_argument("--toml", action="store_true", help="print the resolved config as TOML instead")
    q.set_defaults(func=_cmd_show)

    q = sub.add_parser("list", help="presets, experiment kinds and claims, one line each")
    _claims_arg(q, "list the claims of these files or modules (linkd.claims) instead")
    q.set_defaults(func=_cmd_list)

    q = sub.add_parser("check", add_help=False, help="run the claim registry (proofs_check)",
                       usage=f"{PROG} check [--fast | --full] [--only ID ...] [--json FILE] [--report FILE.md]",
                       description="Options are those of proofs_check.runner (forwarded unchanged).")
    q.set_defaults(func=_cmd_check)

    _falsify_parser(sub)

    q = sub.add_parser("figures", help="run every figure preset and collect its figures")
    q.add_argument("--out", default="figures", help="where to put the figures (default figures/)")
    q.add_argument("--only", nargs="+", default=[], metavar="PRESET", help="only these presets")
    q.add_argument("--format", default="pdf,png", help="figure formats (default pdf,png)")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    q.set_defaults(func=_cmd_figures)
    return p


# ---------------------------------------------------------------------------------- helpers


def _formats(text: str) -> tuple[str, ...]:
    from linkd.plotting.style import FORMATS

    fmts = tuple(f.strip().lower().lstrip(".") for f in text.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise ConfigError("--format", text, "comma-separated from " + ", ".join(FORMATS), "unknown figure format")
    return fmts


def _default_out(source: str, kind: str = "") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = re.sub(r"[^A-Za-z0-9._-]", "_", source) + (f"-{kind}" if kind else "")
    out = Path("runs") / f"{base}-{stamp}"
    i = 2
    while out.exists():
        out, i = Path("runs") / f"{base}-{stamp}-{i}", i + 1
    return out


def _take_experiment(args: argparse.Namespace) -> str:
    """EXPERIMENT, also when given after ``--set`` (which then swallowed it: the one item without
    ``=``)."""
    if args.experiment is None:
        names = [s for s in args.set if "=" not in s]
        if len(names) != 1:
            raise ConfigError("EXPERIMENT", " ".join(names) or "(none)",
                              "one preset name, kind:NAME or .toml path, e.g. `linkd run eigen_convergence`",
                              "missing" if not names else "more than one given")
        args.set.remove(names[0])
        args.experiment = names[0]
    return args.experiment


def _load(args: argparse.Namespace):
    """Config from EXPERIMENT + --set/--seed/--x64, validated (the experiment's cross-field checks,
    memory budget included) with jax x64 as the config asks, before anything is written."""
    from linkd.experiments.runner import x64_mode
    from linkd.registry import load_config

    experiment = _take_experiment(args)
    overrides = list(args.set)
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    if args.x64:
        overrides.append("run.x64=true")
    config = load_config(experiment, overrides, check=False)
    with x64_mode(config.get("run.x64")):
        config.validate()
    return config


def _command(argv: Sequence[str] | None) -> list[str]:
    return [PROG, *(sys.argv[1:] if argv is None else argv)]


# --------------------------------------------------------------------------------- commands


def _cmd_run(args: argparse.Namespace) -> int:
    from linkd.experiments import execute

    if args.out:
        _check_out(args.out, args.overwrite)
    config = _load(args)
    formats = _formats(args.format)
    out = Path(args.out) if args.out else _default_out(config.source)
    path = execute(config, out, overwrite=args.overwrite, quiet=args.quiet, figures=args.figures,
                   formats=formats, command=args.command_line)
    print(path)
    if not args.quiet:
        _print_headline(config.experiment, path)
    return 0


def _print_headline(experiment: str, path: Path) -> None:
    """Print the experiment's headline summary values (``key: value``), one per line."""
    import json

    from linkd.experiments import get

    keys = get(experiment).headline
    if not keys:
        return
    summary = json.loads((Path(path) / "summary.json").read_text())
    for key in keys:
        value = summary
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        shown = f"{value:.3e}" if isinstance(value, float) else value
        print(f"  {key}: {shown}")


def _prepare_sweep(args: argparse.Namespace):
    from linkd.experiments import parse_grid

    config = _load(args)
    return config, parse_grid(config, args.grid)


def _check_out(out: str | os.PathLike, overwrite: bool) -> None:
    """Refuse an unusable ``--out`` in one line before any work starts (no jax, no compile)."""
    from linkd.rundir import check_output_dir

    check_output_dir(out, overwrite)


def _start_distributed(args: argparse.Namespace):
    """The process context of ``--distributed`` (initialised before any array), and every process
    agrees on process 0's refusal of ``--out``."""
    global _CTX
    from linkd import distributed

    _CTX = distributed.from_args(args)
    if _CTX.active:
        problem = None
        if _CTX.is_main and getattr(args, "out", None):
            try:
                _check_out(args.out, getattr(args, "overwrite", False))
            except LinkdError as e:
                problem = str(e)
        _CTX.agree(problem, "the --out check")
    elif getattr(args, "out", None):
        _check_out(args.out, getattr(args, "overwrite", False))
    return _CTX


def _cmd_sweep(args: argparse.Namespace) -> int:
    from linkd.experiments import execute_sweep

    if args.merge:
        return _cmd_merge(args)
    if args.shard and args.distributed:
        raise ConfigError("--shard", args.shard, "either --shard (array jobs, no coordinator) or --distributed",
                          "both given")
    if args.shard and not args.out:
        raise ConfigError("--shard", args.shard, "with --out DIR (each slice its own directory)", "no --out")
    ctx = _start_distributed(args)
    config, grid = _prepare_sweep(args)
    formats = _formats(args.format)
    out = Path(args.out) if args.out else _default_out(config.source, "sweep")
    kw: dict = {}
    if args.shard:
        from linkd.distributed import Split, parse_shard
        from linkd.experiments import grid_points

        i, n = parse_shard(args.shard)
        select = list(Split(len(grid_points(grid)), n).part(i))
        kw = dict(select=select, index_extra={"shard": {"index": i, "count": n, "points": select}})
    elif ctx.active:
        from linkd.experiments import grid_points

        def gather(local):
            return [t for part in ctx.gather(local, "sweep points") for t in part]

        kw = dict(select=ctx.mine(len(grid_points(grid))), gather=gather, write=ctx.is_main)
    path = execute_sweep(config, grid, out, overwrite=args.overwrite, quiet=args.quiet, figures=args.figures,
                         formats=formats, command=args.command_line, **kw)
    if path is not None:
        print(path)
    if ctx.active:
        ctx.barrier("the end")  # the others wait until process 0 has written
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from linkd.sweeps import merge

    if args.experiment or args.grid or args.shard or args.distributed:
        raise ConfigError("--merge", " ".join(args.merge), "--merge DIR... --out DIR alone (the slices hold the "
                          "experiment and grid)", "EXPERIMENT/--grid/--shard/--distributed given too")
    if not args.out:
        raise ConfigError("--merge", " ".join(args.merge), "with --out DIR", "no --out")
    _check_out(args.out, args.overwrite)
    print(merge(args.merge, args.out, overwrite=args.overwrite, command=args.command_line))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from linkd import sweeps
    from linkd.experiments import draw_figures, get
    from linkd.experiments.runner import load_run

    formats = _formats(args.format)
    if sweeps.is_sweep_dir(args.run_dir):
        for path in sweeps.write_summary(args.run_dir, formats, args.metric, out=args.out):
            print(path)
        return 0
    if args.metric:
        raise ConfigError("--metric", " ".join(args.metric), "only with a sweep directory (one holding sweep.json)",
                          "not a sweep")
    run = load_run(args.run_dir)
    if get(run.config.experiment).figures is None:
        raise LinkdError(f"experiment {run.config.experiment!r} draws no figures")
    out = Path(args.out) if args.out else Path(args.run_dir) / "figures"
    for path in draw_figures(run, out, formats):
        print(path)
    return 0


def _show_rows(config) -> list[tuple[str, str, str, str, str]]:
    from linkd.config import _toml_value, describe

    rows = []
    for sec, fields in config.schema.items():
        for k, f in fields.items():
            v = config.get(f"{sec}.{k}")
            default = f.default if not isinstance(f.default, list) else tuple(f.default)
            mark = "" if v == default else " *"
            rows.append((f"{sec}.{k}", _toml_value(v) + mark, _toml_value(f.default), describe(f),
                         " ".join(f.doc.split())))
    return rows


def _cmd_show(args: argparse.Namespace) -> int:
    from linkd.config import dump_toml

    config = _load(args)
    if args.toml:
        print(dump_toml(config), end="")
        return 0
    o = config.origin
    where = f"{o.get('path')} ({o.get('location') or o.get('type')})" if o.get("path") else o.get("type")
    width = _terminal_width()
    for text in (f"{config.source}: {config.description or config.experiment}",
                 f"experiment kind {config.experiment}; from {where}; resolved config {config.digest()}",
                 "value: this preset with your overrides (* = differs from the kind's default); "
                 "`linkd run` takes any key as --set KEY=VALUE"):
        print(textwrap.fill(text, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False))
    rows = [("key", "value", "default", "allowed", "meaning"), *_show_rows(config)]
    for line in wrapped_table(rows, width):
        print(line)
    return 0


def _terminal_width() -> int:
    """Columns of the terminal (``$COLUMNS`` first; 100 when not a terminal), at least 60."""
    return max(shutil.get_terminal_size((100, 24)).columns, 60)


def _column_widths(rows: Sequence[Sequence[str]], width: int, weights: Sequence[float]) -> list[int]:
    """Widths of a table's columns: the first (the key) always at its natural width; the others at
    theirs if the table fits in ``width``, else the room left is shared in proportion to ``weights``
    (water-filling: a column narrower than its share keeps its width and frees the rest), never
    below ``_MIN_COLUMN`` (the table may then be wider than ``width``)."""
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    room = width - w[0] - 2 * (len(w) - 1)
    free = list(range(1, len(w)))
    while free and sum(w[j] for j in free) > room:
        share = {j: room * weights[j] / sum(weights[k] for k in free) for j in free}
        fits = [j for j in free if w[j] <= share[j]]
        if not fits:
            for j in free:
                w[j] = max(int(share[j]), _MIN_COLUMN)
            break
        room -= sum(w[j] for j in fits)
        free = [j for j in free if j not in fits]
    return w


_MIN_COLUMN = 12


def wrapped_table(rows: Sequence[Sequence[str]], width: int,
                  weights: Sequence[float] = (0.0, 0.9, 0.9, 1.4, 2.5)) -> list[str]:
    """Lines of a left-aligned table whose cells wrap (:mod:`textwrap`) inside their column: every
    character of every cell is printed, none is cut. A row's first line starts with its first cell
    at column 0; its continuation lines start with blanks. When the columns do not fit in ``width``
    (none narrower than ``_MIN_COLUMN``), the last column is printed under its row, indented by 4."""
    w = _column_widths(rows, width, weights)
    narrow = len(w) > 2 and sum(w) + 2 * (len(w) - 1) > width
    body = [r[:-1] for r in rows] if narrow else rows
    if narrow:
        w = _column_widths(body, width, weights)
    lines = []
    for r, full in zip(body, rows):
        cells = [textwrap.wrap(c, w[i], break_on_hyphens=False) or [""] for i, c in enumerate(r)]
        for k in range(max(len(c) for c in cells)):
            lines.append("  ".join((c[k] if k < len(c) else "").ljust(w[i]) for i, c in enumerate(cells)).rstrip())
        if narrow:
            lines += textwrap.wrap(full[-1], width, initial_indent="    ", subsequent_indent="    ",
                                   break_on_hyphens=False)
    return lines


def _clip(text: str, n: int = 100) -> str:
    text = one_line(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _claims_arg(q: argparse.ArgumentParser, help: str) -> None:
    q.add_argument("--claims", action="extend", nargs="+", default=[], metavar="FILE.py|MODULE", help=help)


def _falsify_parser(sub) -> None:
    q = sub.add_parser("falsify", help="search a claim's domain for a counterexample (linkd.claims)",
                       description="Screen the claim's domain (quasi-random), refine the worst points (gradient "
                                   "ascent on reals, pattern search on integers), shrink the counterexample to "
                                   "the simplest point that still violates. Exit 1 if one is found, 0 if not.",
                       epilog="examples:\n  linkd falsify collapse.minus_one --claims examples/collapse_bound_minus_one.py"
                              "\n  linkd falsify pl.bound --claims examples/pl_bound.py --budget 256 --out runs/pl",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("claim", metavar="CLAIM", help="the claim id")
    _claims_arg(q, "files or modules defining the claim (default: built-in claims with a domain)")
    q.add_argument("--budget", type=int, default=512, help="claim evaluations to spend (default 512)")
    q.add_argument("--seed", type=int, default=0, help="seed of the quasi-random screen (default 0)")
    q.add_argument("--time-limit", type=float, default=None, metavar="SEC", help="stop searching after SEC seconds")
    q.add_argument("--out", help="output directory (default runs/falsify-<claim>-<timestamp>)")
    q.add_argument("--no-plot", dest="plot", action="store_false", help="skip the violation plot")
    q.add_argument("--format", default="png,pdf", help="plot formats (default png,pdf)")
    from linkd.distributed import add_arguments

    add_arguments(q)
    q.set_defaults(func=_cmd_falsify)


def _cmd_falsify(args: argparse.Namespace) -> int:
    import jax

    from linkd.claims.command import falsify_command

    args.overwrite = True  # falsify rewrites its own files in --out; only an unusable --out is refused
    ctx = _start_distributed(args)
    jax.config.update("jax_enable_x64", True)  # claims are checked in float64, as by `linkd check`
    out = Path(args.out) if args.out else _default_out(f"falsify-{args.claim}")
    rc = falsify_command(args.claim, list(args.claims), budget=args.budget, seed=args.seed,
                         time_limit=args.time_limit, out=out, plot=args.plot, formats=_formats(args.format), ctx=ctx)
    if ctx.active:
        ctx.barrier("the end")
    return rc


def _cmd_list_claims(specs: list[str]) -> int:
    import jax

    from linkd.claims.command import list_rows

    jax.config.update("jax_enable_x64", True)
    rows, problems = list_rows(specs)
    w = max((len(r[1]) for r in rows), default=0)
    for kind, name, desc in rows:
        print(f"{kind:<10}  {name:<{w}}  {_clip(desc)}".rstrip())
    for line in problems:
        print(f"{PROG}: error: {one_line(line)}", file=sys.stderr)
    return 2 if problems else 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.claims:
        return _cmd_list_claims(list(args.claims))
    from linkd.experiments import all_experiments, list_presets

    rows = [("preset", p.name, f"{_clip(p.description)} [{p.experiment}]") for p in list_presets()]
    rows += [("experiment", e.name, _clip(e.description)) for e in all_experiments()]
    try:
        from proofs_check import registry

        rows += [("claim", str(c.id), _clip(str(c.statement))) for c in registry.all_claims()]
    except ImportError as e:
        if not (e.name or "").startswith("proofs_check"):
            raise
        print(f"{PROG}: note: no claims listed (proofs_check not importable: {one_line(str(e))})", file=sys.stderr)
    w = max((len(r[1]) for r in rows), default=0)
    for kind, name, desc in rows:
        print(f"{kind:<10}  {name:<{w}}  {desc}".rstrip())
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        from proofs_check import runner
    except ImportError as e:
        if not (e.name or "").startswith("proofs_check"):
            raise
        raise LinkdError("the claim registry (proofs_check) is not importable; run `linkd check` from a "
                         "source checkout installed with `pip install -e .`") from None
    try:
        rc: int | str | None = runner.main(list(args.extra))
    except SystemExit as e:
        rc = e.code
    return rc if isinstance(rc, int) else (0 if rc is None else 1)


def _cmd_figures(args: argparse.Namespace) -> int:
    from linkd.atomic import atomic_write_bytes
    from linkd.experiments import execute, list_presets
    from linkd.plotting.style import FORMATS
    from linkd.progress_report import Progress
    from linkd.registry import load_config

    formats = _formats(args.format)
    presets = [p for p in list_presets() if p.figure]
    unknown = sorted(set(args.only) - {p.name for p in presets})
    if unknown:
        raise ConfigError("--only", ",".join(unknown), ", ".join(p.name for p in presets) or "no figure presets",
                          "unknown figure preset")
    if args.only:
        presets = [p for p in presets if p.name in args.only]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="linkd-figures-") as tmp, \
            Progress("figures", total=len(presets), unit="presets", quiet=args.quiet) as prog:
        for i, p in enumerate(presets):
            run_dir = execute(load_config(p.name, check=False), Path(tmp) / p.name, quiet=True,
                              formats=formats, command=args.command_line)
            for f in sorted((run_dir / "figures").glob("*")):
                if f.name in made and made[f.name] != p.name:
                    raise LinkdError(f"presets {made[f.name]} and {p.name} both draw {f.name}; "
                                     "rename one figure stem")
                made[f.name] = p.name
                atomic_write_bytes(out / f.name, f.read_bytes())
                print(out / f.name)
                for fmt in set(FORMATS) - set(formats):  # no stale rendering of this figure
                    (out / f"{f.name.split('.')[0]}.{fmt}").unlink(missing_ok=True)
            prog(i + 1)
    return 0


# ------------------------------------------------------------------------------------- main


def _fail(message: str) -> int:
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    return 2


_CTX = None  # the linkd.distributed.Context of a --distributed command


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the signal lands: the Ctrl-C path (staging directories removed)."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except LinkdError as e:
        return _fail(str(e))
    except FileExistsError as e:
        return _fail(f"{e.filename or e}: exists; pass --overwrite or choose another --out")
    except _Terminated:  # the staging directory is gone (staged_directory's cleanup ran on the way up)
        print(f"{PROG}: terminated (SIGTERM); nothing written", file=sys.stderr)
        from linkd.distributed import exit_now

        exit_now(143)  # no interpreter teardown: XLA's threads may be mid-call when the signal lands
        return 143  # pragma: no cover
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `linkd list | head`
        sys.stderr.close()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, else the claim runner's code)."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # never shows a window
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "check":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if args.command is None:
        return _fail("no command given; use one of run, sweep, plot, show, list, check, falsify, figures "
                     "(see `linkd --help`)")
    args.extra, args.command_line = extra, _command(argv)
    if getattr(args, "x64", False):  # before any array is made (experiment modules, validation)
        import jax

        jax.config.update("jax_enable_x64", True)
    global _CTX
    _CTX = None
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        rc = _run(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if rc != 0 and _distributed_running():  # a peer may be gone: jax.distributed's shutdown barrier would abort
        from linkd.distributed import exit_now

        exit_now(rc)
    return rc


def _distributed_running() -> bool:
    jax = sys.modules.get("jax")
    return jax is not None and jax.distributed.is_initialized()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
