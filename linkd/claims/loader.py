"""Read a user's claims file (``path/to/claims.py``) or module (``package.module``) (docs/theory.md §6.9).

Every :class:`~linkd.claims.Claim` created while the file is imported is collected, in order. A
file that cannot be imported (missing, a syntax error, an exception at import) and each claim
that cannot run (no domain, unknown kind, a domain whose constraints leave no point, an id used
twice) give one line in :attr:`Loaded.problems`; the other claims load and run regardless.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import NamedTuple

from linkd.claims.claim import Claim, collecting
from linkd.errors import LinkdError, one_line

__all__ = ["Loaded", "ClaimFileError", "load_claims", "load_many"]


class ClaimFileError(LinkdError):
    """A claims file or one of its claims cannot be used (one line naming the file and the fix)."""


class Loaded(NamedTuple):
    """``claims`` that can run, ``problems`` (one line each) for what cannot, per ``spec``."""

    claims: list
    problems: list


def _import(spec: str):
    """Import a file path or dotted module name; returns (module, source label)."""
    p = Path(spec)
    if spec.endswith(".py") or p.exists() or "/" in spec or "\\" in spec:
        if not p.is_file():
            raise ClaimFileError(f"{spec}: no such claims file (give a .py file or a dotted module path)")
        path = p.resolve()
        name = f"linkd_claims_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        mspec = importlib.util.spec_from_file_location(name, path)
        if mspec is None or mspec.loader is None:  # pragma: no cover - a readable .py always has a loader
            raise ClaimFileError(f"{spec}: cannot be imported as a Python file")
        module = importlib.util.module_from_spec(mspec)
        sys.modules[name] = module
        added = str(path.parent) not in sys.path
        if added:
            sys.path.insert(0, str(path.parent))
        try:
            mspec.loader.exec_module(module)
        finally:
            if added:
                sys.path.remove(str(path.parent))
        return module, str(spec)
    return importlib.import_module(spec), spec


def _import_problem(spec: str, e: BaseException) -> str:
    if isinstance(e, SyntaxError):
        return f"{e.filename or spec}:{e.lineno}: syntax error: {one_line(e.msg)}"
    if isinstance(e, ModuleNotFoundError) and e.name and spec.startswith(e.name):
        return f"{spec}: no such claims file or module (give a .py path or an importable dotted module path)"
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(str(Path(__file__).parent))]
    where = f" (line {frames[-1].lineno} of {frames[-1].filename})" if frames else ""
    return f"{spec}: importing it raised {type(e).__name__}: {one_line(str(e))[:300]}{where}"


def load_claims(spec: str, *, strict: bool = False) -> Loaded:
    """The claims defined by ``spec`` (a .py path or a dotted module path).

    ``strict=True`` raises :class:`ClaimFileError` on the first problem instead of listing it."""
    problems: list[str] = []
    with collecting() as got:
        try:
            _import(spec)
        except ClaimFileError as e:
            problems.append(str(e))
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's file raised at import: one line
            problems.append(_import_problem(spec, e))
    claims: list[Claim] = []
    for c in got:
        c.source = spec
        msg = c.problem or _domain_problem(c)
        if msg:
            problems.append(f"{spec}: {msg}")
        else:
            claims.append(c)
    if not got and not problems:
        problems.append(f"{spec}: defines no claims (decorate functions with @claim(...) from linkd.claims)")
    if strict and problems:
        raise ClaimFileError(problems[0])
    return Loaded(claims, problems)


def _domain_problem(c: Claim) -> str:
    try:
        assert c.domain is not None  # checked when the claim was made
        c.domain.default()
    except LinkdError as e:
        return f"claim {c.id!r}: {e}"
    return ""


def load_many(specs, taken=()) -> Loaded:
    """Claims of several files/modules; an id defined twice (or clashing with ``taken``) is a problem."""
    claims: list[Claim] = []
    problems: list[str] = []
    seen = set(taken)
    for spec in specs:
        got = load_claims(spec)
        problems += got.problems
        for c in got.claims:
            if c.id in seen:
                problems.append(f"{spec}: claim id {c.id!r} is defined twice (ids must be unique across the claims run)")
                continue
            seen.add(c.id)
            claims.append(c)
    return Loaded(claims, problems)
