r"""A claim about one parameter point, and how far a point is from violating it (docs/theory.md §6.9).

A claim function takes a point ``p`` (a mapping name → value of its :class:`~linkd.claims.Domain`)
and returns :class:`Outcome` ``(measured, predicted)`` (or that pair as a tuple). The error of
the comparison, by kind:

* ``bound`` (``sense="upper"``: measured ≤ predicted): error = max(measured − predicted), the
  signed violation; ``sense="lower"`` (measured ≥ predicted): max(predicted − measured);
* ``exact``: error = max|measured − predicted| (divided by max|predicted| when ``relative``);
* ``monotone``: ``measured`` is a sequence claimed non-increasing (``direction="decreasing"``) or
  non-decreasing; error = the worst step against that order;
* ``qualitative``: ``measured`` is truthy when the finding is reproduced (never gates).

The claim passes where error ≤ tolerance; its **violation** is error − tolerance (> 0 is a
counterexample). A non-finite measured or predicted value is a failure (error = +∞).
The same formulas exist in numpy (:func:`error_of`) and in jax.numpy (:func:`jax_error_of`),
the second for batched screens under ``jax.vmap`` and for gradients through the claim.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from linkd.claims.domain import Domain
from linkd.errors import InputError

__all__ = ["Outcome", "Claim", "claim", "KINDS", "error_of", "jax_error_of", "collecting"]

KINDS = ("exact", "bound", "monotone", "qualitative")
SENSES = ("upper", "lower")
DIRECTIONS = ("decreasing", "increasing")


class Outcome(NamedTuple):
    """What a claim function returns: the ``measured`` value(s) and the ``predicted`` value(s)
    (the bound, the closed form; ``None`` for a monotone or qualitative claim)."""

    measured: Any
    predicted: Any = None


@dataclasses.dataclass(eq=False)
class Claim:
    """A user's claim: ``fn(point) -> Outcome`` over ``domain``.

    Attributes:
      id: unique name (``"collapse.minus_one"``); statement: what is claimed, with the formula;
      kind: ``exact`` | ``bound`` | ``monotone`` | ``qualitative``; tolerance: pass threshold on the
      error (default 0; None only for qualitative); tolerance_reason: why the tolerance is that;
      sense: ``"upper"``/``"lower"`` (bounds); direction: ``"decreasing"``/``"increasing"``
      (monotone); relative: exact claims compare |m − p|/max|p|; paper: a label for the record;
      problem: set instead of raising while a claim file is being loaded (reported, not run).
    """

    id: str
    statement: str
    kind: str
    fn: Callable[[dict], Any]
    domain: Domain | None
    tolerance: float | None = 0.0
    tolerance_reason: str = ""
    sense: str = "upper"
    direction: str = "decreasing"
    relative: bool = False
    paper: str = "user"
    source: str = ""
    problem: str = ""

    def __post_init__(self):
        self.statement = " ".join(str(self.statement).split())
        if not self.tolerance_reason:
            self.tolerance_reason = "stated with the claim"
        if not self.problem:
            self.problem = self._check()
        if self.problem and not _COLLECTORS:
            raise InputError(self.problem)
        if _COLLECTORS:
            _COLLECTORS[-1].append(self)

    def _check(self) -> str:
        where = f"claim {self.id!r}"
        if not isinstance(self.id, str) or not self.id.strip() or any(c.isspace() for c in self.id):
            return f"claim id = {self.id!r}: an id needs non-empty text without spaces"
        if self.kind not in KINDS:
            return f"{where}: kind = {self.kind!r}; allowed: {', '.join(KINDS)}"
        if not isinstance(self.domain, Domain):
            return f"{where}: missing domain (domain = {self.domain!r}); give domain=Domain(name=Int(..)|Real(..)|...)"
        if self.kind != "qualitative" and not _is_number(self.tolerance):
            return f"{where}: tolerance = {self.tolerance!r}; a {self.kind} claim needs a finite number >= 0"
        if self.sense not in SENSES:
            return f"{where}: sense = {self.sense!r}; allowed: {', '.join(SENSES)}"
        if self.direction not in DIRECTIONS:
            return f"{where}: direction = {self.direction!r}; allowed: {', '.join(DIRECTIONS)}"
        if not callable(self.fn):
            return f"{where}: fn = {self.fn!r} is not callable"
        return ""

    @property
    def gating(self) -> bool:
        return self.kind != "qualitative"

    @property
    def expectation(self) -> str:
        """What the record shows as ``predicted`` for a monotone claim."""
        return "non-increasing" if self.direction == "decreasing" else "non-decreasing"

    def __call__(self, point: dict):
        return self.fn(point)

    def outcome(self, point: dict) -> Outcome:
        """``fn(point)`` as an :class:`Outcome` (a bare tuple or value is accepted)."""
        out = self.fn(point)
        if isinstance(out, Outcome):
            return out
        if isinstance(out, tuple) and len(out) == 2:
            return Outcome(*out)
        if self.kind in ("monotone", "qualitative"):
            return Outcome(out, None)
        raise InputError(f"claim {self.id!r}: the function returned {type(out).__name__}; return Outcome(measured, "
                         "predicted) or a (measured, predicted) tuple")

    def error(self, outcome: Outcome) -> float:
        return error_of(self, outcome)

    def violation(self, error: float) -> float:
        """error − tolerance (> 0: the point is a counterexample); +∞ for a non-finite error."""
        if not math.isfinite(error):
            return math.inf
        return error - float(self.tolerance or 0.0)


def _is_number(x) -> bool:
    return bool(isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0)


def claim(*, id: str, statement: str, kind: str, domain: Domain | None = None, tolerance: float | None = 0.0,
          tolerance_reason: str = "", sense: str = "upper", direction: str = "decreasing", relative: bool = False,
          paper: str = "user") -> Callable[[Callable], Claim]:
    """Decorator: turn ``fn(point) -> Outcome`` into a :class:`Claim` (see the module docstring)."""

    def deco(fn: Callable) -> Claim:
        return Claim(id=id, statement=statement, kind=kind, fn=fn, domain=domain, tolerance=tolerance,
                     tolerance_reason=tolerance_reason, sense=sense, direction=direction, relative=relative,
                     paper=paper)

    return deco


# ------------------------------------------------------------------------------------ collecting

_COLLECTORS: list[list[Claim]] = []


@contextlib.contextmanager
def collecting() -> Iterator[list[Claim]]:
    """Claims created inside the block are appended to the yielded list; a claim with a problem
    (missing domain, unknown kind) is kept with ``problem`` set instead of raising."""
    got: list[Claim] = []
    _COLLECTORS.append(got)
    try:
        yield got
    finally:
        _COLLECTORS.remove(got)


# ------------------------------------------------------------------------------------ errors


def error_of(c: Claim, out: Outcome) -> float:
    """The record's error of ``out`` for claim ``c`` (numpy, float64); +∞ if anything is non-finite."""
    if c.kind == "qualitative":
        return math.nan
    m = np.asarray(out.measured, dtype=np.float64)
    if c.kind == "monotone":
        if not np.all(np.isfinite(m)):
            return math.inf
        step = np.diff(m.ravel()) if c.direction == "decreasing" else -np.diff(m.ravel())
        return float(np.max(step)) if step.size else -math.inf
    p = np.asarray(out.predicted, dtype=np.float64)
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(p))):
        return math.inf
    if m.shape != p.shape and c.kind == "exact":
        raise InputError(f"claim {c.id!r}: measured shape {m.shape} differs from predicted shape {p.shape}")
    if c.kind == "bound":
        diff = m - p if c.sense == "upper" else p - m
        return float(np.max(diff)) if diff.size else -math.inf
    err = float(np.max(np.abs(m - p))) if m.size else 0.0
    if c.relative:
        err /= max(float(np.max(np.abs(p))), 1e-300)
    return err


def jax_error_of(c: Claim, out: Outcome):
    """:func:`error_of` in jax.numpy (traceable: for ``jax.vmap`` screens and ``jax.grad``)."""
    import jax.numpy as jnp

    m = jnp.asarray(out.measured)
    m = m.astype(jnp.result_type(float)) if not jnp.issubdtype(m.dtype, jnp.floating) else m
    if c.kind == "monotone":
        v = m.ravel()
        step = (v[1:] - v[:-1]) if c.direction == "decreasing" else (v[:-1] - v[1:])
        err = jnp.max(step) if step.size else jnp.asarray(-jnp.inf, m.dtype)
        return jnp.where(jnp.all(jnp.isfinite(v)), err, jnp.inf)
    p = jnp.asarray(out.predicted).astype(m.dtype)
    shape = jnp.broadcast_shapes(m.shape, p.shape)
    m, p = jnp.broadcast_to(m, shape), jnp.broadcast_to(p, shape)
    if c.kind == "bound":
        diff = (m - p) if c.sense == "upper" else (p - m)
        err = jnp.max(diff)
    else:
        err = jnp.max(jnp.abs(m - p))
        if c.relative:
            err = err / jnp.maximum(jnp.max(jnp.abs(p)), 1e-300)
    ok = jnp.all(jnp.isfinite(m)) & jnp.all(jnp.isfinite(p))
    return jnp.where(ok, err, jnp.inf)
