r"""Parameter types of a claim's domain: integer, real, log-real and choice (docs/theory.md §6.9).

A parameter maps the unit interval onto its range, u ∈ [0, 1) → x (space-filling screens draw u
from a scrambled Sobol sequence), and a real parameter maps an unconstrained coordinate z ∈ ℝ onto
the open box, x = lo + (hi − lo)·σ(z) (:class:`Real`) or x = exp(ln lo + (ln hi − ln lo)·σ(z))
(:class:`LogReal`), σ the logistic function, so gradient ascent on z never leaves the box.

``traced`` parameters reach the claim function as JAX scalars under ``jax.vmap`` (reals always;
integers when declared ``traced=True``, e.g. a seed or a step count used as an index); the others
are plain Python values that may set array shapes (n, d, depth) or pick a branch (choices).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from linkd.errors import InputError

__all__ = ["Param", "Int", "Real", "LogReal", "Choice", "round_candidates", "complexity"]


def _num(fn: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{fn}: {name} must be a real number; got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"{fn}: {name} must be finite; got {value!r}")
    return v


class Param:
    """Base class: ``kind`` names the type; subclasses map u ∈ [0, 1) to values."""

    kind = "param"
    traced = False
    default: Any = None

    def from_unit(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def contains(self, x) -> bool:  # pragma: no cover
        raise NotImplementedError

    def parse(self, text: str):  # pragma: no cover
        raise NotImplementedError

    def center(self):  # pragma: no cover
        raise NotImplementedError

    def simpler(self, x) -> list:
        """Candidate values simpler than ``x`` (smaller integers, rounder numbers), simplest first."""
        return []

    def start(self):
        """The value used when a point names no value for this parameter: ``default`` or the centre."""
        return self.center() if self.default is None else self.default

    def describe(self) -> dict:  # pragma: no cover
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Int(Param):
    """An integer in [lo, hi] (both included); ``log=True`` spreads screen points evenly in ln x
    (lo ≥ 1); ``traced=True`` passes it to the claim as a JAX integer under vmap."""

    lo: int
    hi: int
    default: int | None = None
    traced: bool = False
    log: bool = False
    kind = "int"

    def __post_init__(self):
        for name in ("lo", "hi"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InputError(f"Int: {name} must be an integer; got {v!r}")
        if self.hi < self.lo:
            raise InputError(f"Int: hi must be >= lo; got lo={self.lo}, hi={self.hi}")
        if self.log and self.lo < 1:
            raise InputError(f"Int: log=True needs lo >= 1; got lo={self.lo}")
        if self.default is not None and not self.contains(self.default):
            raise InputError(f"Int: default must lie in [{self.lo}, {self.hi}]; got {self.default!r}")

    def from_unit(self, u):
        u = np.asarray(u, dtype=np.float64)
        if self.log:
            x = np.floor(np.exp(math.log(self.lo) + u * (math.log(self.hi + 1) - math.log(self.lo))))
        else:
            x = np.floor(self.lo + u * (self.hi - self.lo + 1))
        return np.clip(x, self.lo, self.hi).astype(np.int64)

    def contains(self, x) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and self.lo <= int(x) <= self.hi

    def parse(self, text: str) -> int:
        try:
            f = float(text)
        except ValueError:
            raise InputError(f"Int.parse: {text!r} is not an integer") from None
        if not f.is_integer():
            raise InputError(f"Int.parse: {text!r} is not an integer")
        return int(f)

    def center(self) -> int:
        if self.log:
            return int(round(math.sqrt(self.lo * self.hi)))
        return (self.lo + self.hi) // 2

    def simpler(self, x) -> list:
        x = int(x)
        out = [self.lo] + [x - (x - self.lo) // k for k in (8, 4, 2)] + [x - 1]
        if self.lo <= 0 <= self.hi:
            out.insert(0, 0)
        return sorted({v for v in out if self.lo <= v < x})

    def describe(self) -> dict:
        d = {"type": "int", "lo": int(self.lo), "hi": int(self.hi)}
        if self.log:
            d["log"] = True
        if self.traced:
            d["traced"] = True
        return d


@dataclasses.dataclass(frozen=True)
class Real(Param):
    """A real number in [lo, hi], screened uniformly; passed to the claim as a JAX scalar under vmap."""

    lo: float
    hi: float
    default: float | None = None
    kind = "real"
    traced = True

    def __post_init__(self):
        lo, hi = _num(type(self).__name__, "lo", self.lo), _num(type(self).__name__, "hi", self.hi)
        if not hi > lo:
            raise InputError(f"{type(self).__name__}: hi must be > lo; got lo={lo:g}, hi={hi:g}")
        if self.default is not None and not self.contains(self.default):
            raise InputError(f"{type(self).__name__}: default must lie in [{lo:g}, {hi:g}]; got {self.default!r}")

    # unit interval <-> value (log-reals override the two maps)
    def _to01(self, x):
        return (np.asarray(x, dtype=np.float64) - self.lo) / (self.hi - self.lo)

    def _from01(self, u):
        return self.lo + np.asarray(u, dtype=np.float64) * (self.hi - self.lo)

    def from_unit(self, u):
        return np.clip(self._from01(u), self.lo, self.hi)

    def to_unit(self, x):
        return np.clip(self._to01(x), 0.0, 1.0)

    def contains(self, x) -> bool:
        try:
            v = float(x)
        except (TypeError, ValueError):
            return False
        return not isinstance(x, bool) and math.isfinite(v) and self.lo <= v <= self.hi

    def parse(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise InputError(f"{type(self).__name__}.parse: {text!r} is not a number") from None

    def center(self) -> float:
        return float(self._from01(0.5))

    def simpler(self, x) -> list:
        return [v for v in round_candidates(float(x), self.lo, self.hi) if self.contains(v)]

    def describe(self) -> dict:
        return {"type": self.kind, "lo": float(self.lo), "hi": float(self.hi)}


@dataclasses.dataclass(frozen=True)
class LogReal(Real):
    """A positive real in [lo, hi], screened uniformly in ln x (scales, step sizes, tolerances)."""

    kind = "log-real"

    def __post_init__(self):
        super().__post_init__()
        if not self.lo > 0:
            raise InputError(f"LogReal: lo must be > 0; got {self.lo!r}")

    def _to01(self, x):
        x = np.maximum(np.asarray(x, dtype=np.float64), 1e-300)
        return (np.log(x) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))

    def _from01(self, u):
        return np.exp(math.log(self.lo) + np.asarray(u, dtype=np.float64) * (math.log(self.hi) - math.log(self.lo)))


@dataclasses.dataclass(frozen=True)
class Choice(Param):
    """One of a few values (numbers or strings), passed as the plain Python value."""

    options: tuple
    default: Any = None
    kind = "choice"

    def __post_init__(self):
        opts = tuple(self.options)
        if not opts:
            raise InputError("Choice: options must be a non-empty sequence; got ()")
        if len(set(map(repr, opts))) != len(opts):
            raise InputError(f"Choice: options must be distinct; got {opts!r}")
        object.__setattr__(self, "options", opts)
        if self.default is not None and self.default not in opts:
            raise InputError(f"Choice: default must be one of {opts!r}; got {self.default!r}")

    def from_unit(self, u):
        i = np.clip(np.floor(np.asarray(u, dtype=np.float64) * len(self.options)), 0, len(self.options) - 1)
        return i.astype(np.int64)  # indices; Domain turns them into the options

    def contains(self, x) -> bool:
        return any(x == o for o in self.options)

    def parse(self, text: str):
        for o in self.options:
            if str(o) == text:
                return o
            if not isinstance(o, str):
                try:
                    if float(text) == float(o):
                        return o
                except ValueError:
                    pass
        raise InputError(f"Choice.parse: {text!r} is not one of {list(self.options)!r}")

    def center(self):
        return self.options[0]

    def simpler(self, x) -> list:
        i = self.options.index(x) if x in self.options else 0
        return list(self.options[:i])

    def describe(self) -> dict:
        return {"type": "choice", "options": [o if isinstance(o, (int, float, str)) else repr(o) for o in self.options]}


def complexity(x: float) -> tuple[int, float, float]:
    """(significant digits, |log10 |x||, |x|): what a shrinker lowers (0, then 1, 2, 0.5, 10, 1.5, ...)."""
    if x == 0 or not math.isfinite(x):
        return (0, 0.0, 0.0) if x == 0 else (99, math.inf, math.inf)
    mant = f"{abs(x):.15e}".split("e")[0].replace(".", "").rstrip("0")
    return len(mant), abs(math.log10(abs(x))), abs(x)


def round_candidates(x: float, lo: float, hi: float) -> list[float]:
    """Values in [lo, hi] simpler than x (:func:`complexity`), simplest first: 0 and ±1, the bounds
    and x rounded to 1, 2 and 3 significant digits (a shrinker keeps the first that still violates)."""
    cands = {0.0, 1.0, -1.0, float(lo), float(hi)}
    if x != 0 and math.isfinite(x):
        for digits in (1, 2, 3):
            q = 10.0 ** (math.floor(math.log10(abs(x))) - digits + 1)
            cands |= {float(f"{r:.{digits + 2}g}") for r in (round(x / q) * q, math.floor(x / q) * q, math.ceil(x / q) * q)}
    cx = complexity(x)
    return sorted((v for v in cands if lo <= v <= hi and complexity(v) < cx), key=complexity)
