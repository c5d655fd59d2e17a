r"""A claim's domain: named parameters with ranges and types, and constraints between them
(docs/theory.md §6.9: the hypotheses under which a statement is claimed to hold).

>>> dom = Domain(n=Int(1, 40), d=Int(2, 60), lr_fraction=Real(0.05, 1.0),
...              where=lambda p: p["n"] < p["d"])          # n < d: the student underdetermined
>>> dom.sample(256, seed=0)                               # a Batch: name -> array of 256 values

Sampling draws u from a scrambled Sobol (or Halton) sequence of ``scipy.stats.qmc`` in the unit
cube of dimension = number of parameters, maps each coordinate through its parameter (uniform,
log-uniform, floor to integers, index into choices) and keeps the points that satisfy every
constraint (rejection). A constraint receives the point as a mapping name → value; it is first
called once on whole columns (numpy arrays, so ``p["lr"] * p["lam"] < 2`` is vectorised) and,
if that fails, point by point with plain Python values.
"""
from __future__ import annotations

import ast
import inspect
import linecache
import math
import textwrap
import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from linkd.claims.params import Choice, Int, Param, Real
from linkd.errors import InputError

__all__ = ["Domain", "Batch", "constraint_label"]

#: A batch of points: parameter name -> 1-D array (choices as object arrays of the option values).
Batch = dict

MAX_DRAWS = 1 << 20  # rejection gives up (empty region) after this many quasi-random draws


def constraint_label(fn: Callable, index: int = 0) -> str:
    """The source text of a lambda constraint (``p["n"] < p["d"]``), else the function's name."""
    name = getattr(fn, "__name__", "")
    if name and name != "<lambda>":
        return name
    try:
        code = fn.__code__
        lines = linecache.getlines(inspect.getsourcefile(fn) or "")
        tree = ast.parse("".join(lines))
    except (AttributeError, TypeError, OSError, SyntaxError, ValueError):
        return f"constraint {index + 1}"
    src = "".join(lines)
    cands = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno]
    if len(cands) > 1:
        cols = {c for (ln, _, c, _) in code.co_positions() if ln == code.co_firstlineno and c is not None}
        cands = [n for n in cands if any(n.body.col_offset <= c <= (n.body.end_col_offset or 0) for c in cols)] or cands
    if not cands:
        return f"constraint {index + 1}"
    seg = ast.get_source_segment(src, cands[0].body) or f"constraint {index + 1}"
    return " ".join(textwrap.dedent(seg).split())


def _constraints(where) -> tuple[tuple[str, Callable], ...]:
    if where is None:
        return ()
    if callable(where):
        where = [where]
    if isinstance(where, Mapping):
        items = [(str(k), v) for k, v in where.items()]
    else:
        items = [(constraint_label(f, i), f) for i, f in enumerate(where)]
    for label, f in items:
        if not callable(f):
            raise InputError(f"Domain: where must hold callables p -> bool; got {f!r} for {label!r}")
    return tuple(items)


class Domain:
    """Named parameters (:class:`~linkd.claims.Int`, :class:`~linkd.claims.Real`,
    :class:`~linkd.claims.LogReal`, :class:`~linkd.claims.Choice`) and constraints ``where``
    (a callable ``p -> bool``, a list of them, or a dict label -> callable)."""

    def __init__(self, params: Mapping[str, Param] | None = None, *, where=None, **kw: Param):
        merged = dict(params or {})
        merged.update(kw)
        if not merged:
            raise InputError("Domain: needs at least one parameter, e.g. Domain(n=Int(1, 20))")
        for name, p in merged.items():
            if not isinstance(p, Param):
                raise InputError(f"Domain: parameter {name!r} must be Int, Real, LogReal or Choice; got {p!r}")
            if not name.isidentifier():
                raise InputError(f"Domain: parameter name {name!r} must be an identifier")
        self.params: dict[str, Param] = merged
        self.constraints = _constraints(where)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Domain({inner}{', where=' + repr([c for c, _ in self.constraints]) if self.constraints else ''})"

    # ------------------------------------------------------------------ points and batches

    def columns(self, u: np.ndarray) -> Batch:
        """Map unit-cube rows u (k, P) to a batch (choices become their option values)."""
        out: Batch = {}
        for j, (name, p) in enumerate(self.params.items()):
            v = p.from_unit(u[:, j])
            if isinstance(p, Choice):
                col = np.empty(v.shape[0], dtype=object)
                col[:] = [p.options[i] for i in v]
                v = col
            out[name] = v
        return out

    def satisfied(self, batch: Batch) -> np.ndarray:
        """Boolean mask of the batch points that meet every constraint."""
        k = len(next(iter(batch.values())))
        ok = np.ones(k, dtype=bool)
        for label, f in self.constraints:
            ok &= self._apply(label, f, batch, k)
        return ok

    def _apply(self, label: str, f: Callable, batch: Batch, k: int) -> np.ndarray:
        try:
            with np.errstate(all="ignore"):
                r = np.asarray(f(batch))
            if r.shape == (k,) and r.dtype == bool:
                return r
        except Exception:  # noqa: BLE001 - a scalar-only constraint: evaluated point by point below
            pass
        out = np.empty(k, dtype=bool)
        for i in range(k):
            try:
                out[i] = bool(f(point_at(batch, i)))
            except Exception as e:  # noqa: BLE001 - the user's constraint raised: one line naming it
                raise InputError(f"Domain: constraint {label!r} raised {type(e).__name__}: {' '.join(str(e).split())[:200]} "
                                 f"at {format_point(point_at(batch, i))}") from None
        return out

    def sample(self, k: int, seed: int = 0, method: str = "sobol") -> Batch:
        """k points of the domain, quasi-random (``"sobol"`` scrambled, or ``"halton"``), seeded,
        constraints applied by rejection. Raises InputError if no draw meets the constraints."""
        from scipy.stats import qmc

        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"Domain.sample: k must be an integer >= 1; got {k!r}")
        if method not in ("sobol", "halton"):
            raise InputError(f"Domain.sample: method must be 'sobol' or 'halton'; got {method!r}")
        P = len(self.params)
        eng = qmc.Sobol(P, scramble=True, seed=seed) if method == "sobol" else qmc.Halton(P, scramble=True, seed=seed)
        parts, have, drawn = [], 0, 0
        while have < k and drawn < MAX_DRAWS:
            m = 1 << max(6, math.ceil(math.log2(max(k - have, 1) * (2 if drawn else 1))))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Sobol balance warnings for sizes that are not powers of 2
                u = eng.random(m)
            drawn += m
            batch = self.columns(u)
            mask = self.satisfied(batch)
            if mask.any():
                parts.append({n: v[mask] for n, v in batch.items()})
                have += int(mask.sum())
        if not have:
            raise InputError(f"Domain: the region is empty: none of {drawn} quasi-random points satisfies "
                             f"{' and '.join(label for label, _ in self.constraints) or 'the ranges'}; widen the ranges "
                             "or relax the constraints")
        return {n: np.concatenate([p[n] for p in parts])[:k] for n in self.params}

    def default(self) -> dict:
        """Each parameter's ``default`` (or the centre of its range); if that point breaks a
        constraint, the first quasi-random point that meets them (seed 0)."""
        point = {n: p.start() for n, p in self.params.items()}
        if not self.violated(point):
            return point
        return point_at(self.sample(1, seed=0), 0)

    def violated(self, point: Mapping[str, Any]) -> list[str]:
        """Names of the range checks and constraints that ``point`` fails (empty: inside the domain)."""
        bad = [f"{n} = {point.get(n)!r} outside {_range(p)}" for n, p in self.params.items() if not p.contains(point.get(n))]
        if bad:
            return bad
        out = []
        for label, f in self.constraints:
            try:
                ok = bool(f(dict(point)))
            except Exception as e:  # noqa: BLE001
                ok, label = False, f"{label} (raised {type(e).__name__})"
            if not ok:
                out.append(label)
        return out

    def check(self, point: Mapping[str, Any], where: str = "point") -> dict:
        """``point`` completed with defaults for missing names; InputError if it leaves the domain."""
        unknown = sorted(set(point) - set(self.params))
        if unknown:
            raise InputError(f"{where}: unknown parameter {', '.join(unknown)}; the domain has {', '.join(self.params)}")
        full = dict(self.default())
        full.update(point)
        full = {n: _native(self.params[n], full[n]) for n in self.params}
        bad = self.violated(full)
        if bad:
            raise InputError(f"{where}: {format_point(full)} is outside the domain: {'; '.join(bad)}")
        return full

    def parse(self, text: str, where: str = "--at") -> dict:
        """``"n=3,d=5,lr=0.5"`` -> a point (missing names take their defaults), checked against the domain."""
        point: dict[str, Any] = {}
        for item in [s for s in text.replace(";", ",").split(",") if s.strip()]:
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise InputError(f"{where}: {item!r} is not NAME=VALUE (e.g. --at n=3,d=5)")
            if name not in self.params:
                raise InputError(f"{where}: unknown parameter {name!r}; the domain has {', '.join(self.params)}")
            point[name] = self.params[name].parse(value.strip())
        return self.check(point, where)

    def describe(self) -> dict:
        """JSON-ready description: each parameter's type and range, and the constraint labels."""
        return {"params": {n: p.describe() for n, p in self.params.items()},
                "where": [label for label, _ in self.constraints]}


def _range(p: Param) -> str:
    if isinstance(p, Choice):
        return "{" + ", ".join(map(repr, p.options)) + "}"
    if isinstance(p, (Int, Real)):
        return f"[{p.lo:g}, {p.hi:g}]"
    return repr(p)  # pragma: no cover


def _native(p: Param, v):
    if isinstance(p, Int) and isinstance(v, (np.integer, float)) and float(v).is_integer():
        return int(v)
    if isinstance(p, Real) and isinstance(v, (int, np.integer, np.floating)) and not isinstance(v, bool):
        return float(v)
    return v


def point_at(batch: Batch, i: int) -> dict:
    """Point i of a batch as a dict of plain Python values."""
    out = {}
    for n, col in batch.items():
        v = col[i]
        out[n] = v.item() if isinstance(v, np.generic) else v
    return out


def points(batch: Batch) -> list[dict]:
    k = len(next(iter(batch.values())))
    return [point_at(batch, i) for i in range(k)]


def stack(pts: Iterable[Mapping[str, Any]], names: Iterable[str]) -> Batch:
    """A batch from a list of points (inverse of :func:`points`)."""
    pts = list(pts)
    out: Batch = {}
    for n in names:
        vals = [p[n] for p in pts]
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
            out[n] = np.asarray(vals, dtype=np.int64)
        elif all(isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool) for v in vals):
            out[n] = np.asarray(vals, dtype=np.float64)
        else:
            col = np.empty(len(vals), dtype=object)
            col[:] = vals
            out[n] = col
    return out


def format_value(v) -> str:
    if isinstance(v, float):
        return repr(v) if not v.is_integer() or abs(v) >= 1e16 else f"{v:.1f}"
    return str(v)


def format_point(point: Mapping[str, Any]) -> str:
    """``n=3,d=5,lr=0.25``: the form ``--at`` reads back (floats at full precision)."""
    return ",".join(f"{k}={format_value(v)}" for k, v in point.items())


def toml_point(point: Mapping[str, Any], header: str = "") -> str:
    """The point as TOML ``name = value`` lines (strings quoted), preceded by ``header`` comments."""
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    for k, v in point.items():
        if isinstance(v, str):
            lines.append(f'{k} = "{v}"')
        elif isinstance(v, bool):
            lines.append(f"{k} = {'true' if v else 'false'}")
        else:
            lines.append(f"{k} = {format_value(v)}")
    return "\n".join(lines) + "\n"


__all__ += ["point_at", "points", "stack", "format_point", "format_value", "toml_point"]
