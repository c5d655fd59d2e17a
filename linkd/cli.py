"""The ``linkd`` command (also ``python -m linkd``): thin; parses, calls the library, prints.

    linkd run EXPERIMENT [--set key=value ...] [--out DIR] [--seed N] [--x64] [--overwrite] [--quiet]
    linkd sweep EXPERIMENT --grid key=v1,v2,... [--grid ...] [--out DIR] [...]
    linkd plot RUN_DIR [--format pdf,png] [--out DIR]
    linkd list
    linkd check [--fast | --full] [--only ID ...] [--json FILE] [--report FILE.md]
    linkd figures [--out DIR] [--only PRESET ...]

User errors (bad config, existing run directory, divergence: any ``LinkdError``) print one line
``linkd: error: ...`` on stderr and exit 2, without a traceback.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from linkd.errors import ConfigError, LinkdError, one_line

__all__ = ["main", "build_parser"]

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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Exact-simulation checks of knowledge-distillation theory.")
    p.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common_run(q: argparse.ArgumentParser) -> None:
        q.add_argument("experiment", metavar="EXPERIMENT", help="preset name, experiment kind, or path to a TOML file")
        q.add_argument("--set", dest="set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.steps=5000 (repeatable)")
        q.add_argument("--seed", type=int, help="root seed (same as --set run.seed=N)")
        q.add_argument("--x64", action="store_true", help="float64 (same as --set run.x64=true)")
        q.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output directory")
        q.add_argument("--quiet", "-q", action="store_true", help="no progress output")
        q.add_argument("--no-figures", dest="figures", action="store_false", help="skip drawing figures")
        q.add_argument("--format", default="pdf,png", help="figure formats (default pdf,png)")

    q = sub.add_parser("run", help="run one experiment into a run directory")
    common_run(q)
    q.add_argument("--out", help="run directory (default runs/<preset>-<timestamp>)")
    q.set_defaults(func=cmd_run)

    q = sub.add_parser("sweep", help="run a grid of configs (vectorized axes under one vmap)")
    common_run(q)
    q.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a grid axis (repeatable; cartesian product); list-valued keys separate values with ;")
    q.add_argument("--out", help="sweep directory (default runs/<preset>-sweep-<timestamp>)")
    q.set_defaults(func=cmd_sweep)

    q = sub.add_parser("plot", help="redraw a run's figures from its metrics (never re-runs)")
    q.add_argument("run_dir", metavar="RUN_DIR")
    q.add_argument("--format", default="pdf,png", help="figure formats (default pdf,png)")
    q.add_argument("--out", help="output directory (default RUN_DIR/figures)")
    q.set_defaults(func=cmd_plot)

    q = sub.add_parser("list", help="presets, experiment kinds and claims, one line each")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("check", add_help=False, help="run the claim registry (proofs_check)",
                       usage=f"{PROG} check [--fast | --full] [--only ID ...] [--json FILE] [--report FILE.md]",
                       description="Options are those of proofs_check.runner (forwarded unchanged).")
    q.set_defaults(func=cmd_check)

    q = sub.add_parser("figures", help="run every figure preset and collect its figures")
    q.add_argument("--out", default="figures", help="where to put the figures (default figures/)")
    q.add_argument("--only", nargs="+", default=[], metavar="PRESET", help="only these presets")
    q.add_argument("--format", default="pdf,png", help="figure formats (default pdf,png)")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    q.set_defaults(func=cmd_figures)
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


def _load(args: argparse.Namespace):
    """Config from EXPERIMENT + --set/--seed/--x64; jax x64 is switched on before validation."""
    from linkd.config import load_config

    overrides = list(args.set)
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    if args.x64:
        overrides.append("run.x64=true")
    return load_config(args.experiment, overrides, check=False)  # validated inside x64_mode


def _command(argv: Sequence[str] | None) -> list[str]:
    return [PROG, *(sys.argv[1:] if argv is None else argv)]


# --------------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    from linkd.experiments import execute

    config = _load(args)
    out = Path(args.out) if args.out else _default_out(config.source)
    path = execute(config, out, overwrite=args.overwrite, quiet=args.quiet, figures=args.figures,
                   formats=_formats(args.format), command=args.command_line)
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from linkd.experiments import parse_grid, sweep
    from linkd.experiments.runner import x64_mode

    config = _load(args)
    with x64_mode(config.get("run.x64")):
        config.validate()
    grid = parse_grid(config, args.grid)
    out = Path(args.out) if args.out else _default_out(config.source, "sweep")
    path = sweep(config, grid, out, overwrite=args.overwrite, quiet=args.quiet, figures=args.figures,
                 formats=_formats(args.format), command=args.command_line)
    print(path)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from linkd.experiments import draw_figures, get
    from linkd.rundir import load_run

    formats = _formats(args.format)
    run = load_run(args.run_dir)
    if get(run.config.experiment).figures is None:
        raise LinkdError(f"experiment {run.config.experiment!r} draws no figures")
    out = Path(args.out) if args.out else Path(args.run_dir) / "figures"
    for path in draw_figures(run, out, formats):
        print(path)
    return 0


def _clip(text: str, n: int = 100) -> str:
    text = one_line(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
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


def cmd_check(args: argparse.Namespace) -> int:
    try:
        from proofs_check import runner
    except ImportError as e:
        if not (e.name or "").startswith("proofs_check"):
            raise
        raise LinkdError("the claim registry (proofs_check) is not importable; run `linkd check` from a "
                         "source checkout installed with `pip install -e .`") from None
    try:
        rc = runner.main(list(args.extra))
    except SystemExit as e:
        rc = e.code
    return rc if isinstance(rc, int) else (0 if rc is None else 1)


def cmd_figures(args: argparse.Namespace) -> int:
    from linkd.config import load_config
    from linkd.experiments import execute, list_presets
    from linkd.progress import Progress
    from linkd.rundir import atomic_write_bytes

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
            run_dir = execute(load_config(p.path, check=False), Path(tmp) / p.name, quiet=True,
                              formats=formats, command=args.command_line)
            for f in sorted((run_dir / "figures").glob("*")):
                if f.name in made and made[f.name] != p.name:
                    raise LinkdError(f"presets {made[f.name]} and {p.name} both draw {f.name}; "
                                     "rename one figure stem")
                made[f.name] = p.name
                atomic_write_bytes(out / f.name, f.read_bytes())
                print(out / f.name)
            prog(i + 1)
    return 0


# ------------------------------------------------------------------------------------- main


def _fail(message: str) -> int:
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    return 2


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
        return _fail("no command given; use one of run, sweep, plot, list, check, figures (see `linkd --help`)")
    args.extra, args.command_line = extra, _command(argv)
    if getattr(args, "x64", False):  # before any array is made (experiment modules, validation)
        import jax

        jax.config.update("jax_enable_x64", True)
    try:
        return int(args.func(args) or 0)
    except LinkdError as e:
        return _fail(str(e))
    except FileExistsError as e:
        return _fail(f"{e.filename or e}: exists; pass --overwrite or choose another --out")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `linkd list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
