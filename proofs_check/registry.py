"""The claim registry: every checked statement of the five papers is a :class:`Claim`.

A claim function has the signature ``fn(size: str = "fast", corrupt=None) -> ClaimResult``:

* ``size`` — ``"fast"`` (CI sizes, seconds) or ``"full"`` (paper-scale sizes and Monte Carlo counts);
* ``corrupt`` — ``None``, or a callable that transforms the *prediction* (closed form, bound or
  limit) before it is compared with the measurement. A plain callable acts on the final
  prediction; a :class:`Breaker` names the ingredient it acts on (``part``: ``"prediction"``,
  ``"eigvals"``, ``"X"`` for the projection, ``"T_teacher"``, ``"p_fn"``, ...). Tests use this hook
  to show that every exact and bound claim *fails* on a broken prediction: a check that cannot
  fail is a defect.

:meth:`Claim.run` times the function and returns the claim record of design.md
(``{"id", "paper", "statement", "kind", "measured", "predicted", "error", "tolerance", "passed",
"seconds", "params", "command"}`` plus ``"note"`` and, for qualitative claims, ``"status"``).

Kinds: ``exact`` (closed form vs simulation, |error| ≤ tolerance), ``bound`` (an inequality; the
error is the signed violation), ``monotone`` (an ordering, Monte Carlo or deterministic) and
``qualitative`` (a paper's empirical finding in a linear analogue: ``status`` is ``"reproduced"``
or ``"not reproduced"``; ``passed`` mirrors it but does not gate the exit code).
"""
from __future__ import annotations

import contextvars
import dataclasses
import importlib
import math
import shlex
import time
from typing import Any, Callable

import numpy as np

from linkd.dtypes import x64_enabled
from linkd.errors import InputError

__all__ = [
    "KINDS",
    "GATING_KINDS",
    "SIZES",
    "PAPERS",
    "RECORD_KEYS",
    "MAX_LIST",
    "_LOADED",
    "REVERSE_ORDER",
    "Breaker",
    "apply",
    "active_corrupt",
    "scale",
    "ClaimResult",
    "jsonable",
    "exact",
    "upper_bound",
    "qualitative",
    "Claim",
    "register",
    "unregister",
    "all_claims",
    "get",
]

KINDS = ("exact", "bound", "monotone", "qualitative")
GATING_KINDS = ("exact", "bound", "monotone")  # a failure of these makes `linkd check` exit 1
SIZES = ("fast", "full")
PAPERS = ("phuong_lampert", "nagarajan", "mobahi", "stanton", "guo", "beyond")
#: ``beyond``: predictions past the five papers (deep-linear and temperature students, docs/theory.md §7–§8),
#: citing Saxe et al. 2014, Arora et al. 2018/2019 and Hinton et al. 2015.
RECORD_KEYS = ("id", "paper", "statement", "kind", "measured", "predicted", "error", "tolerance", "passed",
               "seconds", "params", "command", "domain")
MAX_LIST = 12  # longer arrays are summarised in the record (the comparison always uses all entries)

_REGISTRY: dict[str, "Claim"] = {}
_LOADED = {"done": False}


# ------------------------------------------------------------------------------------ corruption


@dataclasses.dataclass(frozen=True)
class Breaker:
    """A deliberate error in one ingredient of a claim's prediction (used by the tests).

    ``part`` names the ingredient (``"prediction"`` = the final predicted value), ``fn`` maps
    the correct ingredient to the broken one, ``name`` says what goes wrong."""

    name: str
    fn: Callable[[Any], Any]
    part: str = "prediction"

    def __call__(self, value):
        return self.fn(value)


def apply(corrupt: Callable | None, part: str, value):
    """``value`` passed through ``corrupt`` if ``corrupt`` targets ``part`` (plain callables
    target ``"prediction"``); unchanged otherwise."""
    if corrupt is None:
        return value
    if getattr(corrupt, "part", "prediction") != part:
        return value
    return corrupt(value)


#: The corruption in effect while :meth:`Claim.run` runs a claim (``None`` normally). Shared helpers
#: (``proofs_check._common.monotone``) read it, so an ordering breaker reaches every monotone claim.
_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("linkd_claim_corrupt", default=None)


def active_corrupt() -> Callable | None:
    """The breaker applied to the claim now running (None outside a corrupted run)."""
    return _ACTIVE.get()


#: The generic breaker of a monotone claim: the opposite ordering is claimed. A monotone check that
#: still passes is vacuous (the values are flat within the tolerance, so the ordering is not resolved).
REVERSE_ORDER = Breaker("ordering reversed (the opposite direction is claimed)", lambda increasing: not increasing,
                        part="order")


def scale(factor: float = 1.0 + 1e-3) -> Breaker:
    """The generic breaker: the prediction multiplied by ``factor``."""
    return Breaker(f"prediction x {factor:g}", lambda p: _map(p, lambda a: a * factor))


def _map(p, f):
    if isinstance(p, (tuple, list)):
        return type(p)(_map(q, f) for q in p)
    return f(np.asarray(p, dtype=np.float64))


# ------------------------------------------------------------------------------------ results


@dataclasses.dataclass
class ClaimResult:
    """What a claim function returns; :meth:`Claim.run` turns it into the record."""

    measured: Any
    predicted: Any
    error: float
    passed: bool
    params: dict = dataclasses.field(default_factory=dict)
    note: str = ""
    status: str | None = None  # qualitative: "reproduced" / "not reproduced"


def jsonable(x, max_list: int = MAX_LIST):
    """JSON-safe scalar or short list (long arrays summarised as {"shape", "max_abs", "first"})."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, dict):
        return {str(k): jsonable(v, max_list) for k, v in x.items()}
    if isinstance(x, (tuple, list)) and any(isinstance(v, (dict, str, tuple, list)) for v in x):
        return [jsonable(v, max_list) for v in x]
    a = np.asarray(x)
    if a.dtype == bool:
        return bool(a) if a.ndim == 0 else [bool(v) for v in a.ravel()[:max_list]]
    if a.dtype.kind in "iu":
        return int(a) if a.ndim == 0 else [int(v) for v in a.ravel()][:max_list] if a.size <= max_list else \
            {"shape": list(a.shape), "max_abs": int(np.max(np.abs(a))), "first": [int(v) for v in a.ravel()[:4]]}
    a = a.astype(np.float64)
    f = lambda v: None if not math.isfinite(v) else float(f"{v:.10g}")  # noqa: E731
    if a.ndim == 0:
        v = float(a)
        return f(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    if a.size <= max_list:
        return [f(float(v)) for v in a.ravel()]
    return {"shape": list(a.shape), "max_abs": f(float(np.max(np.abs(a)))), "first": [f(float(v)) for v in a.ravel()[:4]]}


def _finite(x) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))


def exact(measured, predicted, tol: float, *, relative: bool = False, params=None, note: str = "",
          shown=None) -> ClaimResult:
    """|measured − predicted| (max over entries; divided by max|predicted| if ``relative``) ≤ tol.

    ``shown``: optional (measured, predicted) to put in the record instead of the full arrays."""
    m = np.asarray(measured, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if m.shape != p.shape:
        return ClaimResult(jsonable(m), jsonable(p), float("inf"), False, params or {},
                           (note + f" shape mismatch {m.shape} vs {p.shape}").strip())
    err = float(np.max(np.abs(m - p))) if m.size else 0.0
    if relative:
        err /= max(float(np.max(np.abs(p))), 1e-300)
    passed = _finite(m) and _finite(p) and err <= tol
    sm, sp = shown if shown is not None else (m, p)
    return ClaimResult(jsonable(sm), jsonable(sp), err, bool(passed), params or {}, note)


def upper_bound(measured, bound, se=None, *, n_se: float = 3.0, params=None, note: str = "") -> ClaimResult:
    """measured ≤ bound (+ n_se·se).

    Without ``se``: the error is the plain violation max(measured − bound), tolerance 0. With ``se``:
    the error is max (measured − bound)/se in standard errors, tolerance n_se. Entries whose SE is 0
    (e.g. a Monte Carlo mean that is exactly 0) have no SE units: they must satisfy measured ≤ bound
    exactly, and when one of them is violated the reported error is that plain violation (the note
    says so) -- never an "infinite number of standard errors"."""
    m = np.asarray(measured, dtype=np.float64)
    b = np.asarray(bound, dtype=np.float64)
    ok_finite = _finite(m) and _finite(b)
    if se is None:
        err = float(np.max(m - b))
        return ClaimResult(jsonable(m), jsonable(b), err, bool(ok_finite and err <= 0.0), params or {}, note)
    s = np.broadcast_to(np.asarray(se, dtype=np.float64), np.broadcast_shapes(m.shape, b.shape))
    excess = np.broadcast_to(m - b, s.shape)
    pos = s > 0
    z = excess[pos] / s[pos]
    err_z = float(np.max(z)) if z.size else -np.inf
    zero = ~pos
    plain = float(np.max(excess[zero])) if zero.any() else -np.inf
    passed = ok_finite and err_z <= n_se and plain <= 0.0
    notes = [note] if note else []
    if zero.any():
        notes.append(f"SE = 0 at {int(zero.sum())} of {s.size} entries (index {np.flatnonzero(zero).tolist()}): compared "
                     f"without SE units (measured <= bound exactly); plain violation there {plain:.3g}")
    if plain > 0.0:
        err = plain
        notes.append("error = that plain violation (not in SE units)")
    else:
        err = err_z if z.size else plain
        if zero.any():
            notes.append("error = worst excess in SE units over the entries with SE > 0" if z.size
                         else "error = plain violation (every SE is 0)")
    return ClaimResult(jsonable(m), jsonable(b), err, bool(passed), params or {}, "; ".join(notes))


def qualitative(reproduced: bool, measured, predicted, *, error=float("nan"), params=None, note: str = "") -> ClaimResult:
    return ClaimResult(jsonable(measured), jsonable(predicted), error, bool(reproduced), params or {}, note,
                       "reproduced" if reproduced else "not reproduced")


# ------------------------------------------------------------------------------------ claims


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checked statement.

    Attributes:
      id: ``paper_prefix.short_name`` (e.g. ``pl.limit_underdetermined``).
      paper: one of :data:`PAPERS`.
      statement: what is claimed, with the formula, in one or two sentences.
      kind: one of :data:`KINDS`.
      tolerance: the pass threshold on ``error`` (None for qualitative claims).
      tolerance_reason: why the tolerance is that (round-off, stopping tolerance, MC error).
      function: ``fn(size="fast", corrupt=None) -> ClaimResult``.
      breakers: deliberate errors that must make the claim fail (exact, bound and monotone claims;
        a monotone claim always gets :data:`REVERSE_ORDER` as well).
      domain: the hypotheses of the statement (a :class:`linkd.claims.Domain`) or None.
      point: the statement as a function of one domain point (a :class:`linkd.claims.Claim`): a
        user claim (``source`` set) always runs through it, at its domain's default point or at
        ``at``; a built-in claim runs its fixed ``function`` unless ``at`` or ``points`` (screen that
        many domain points) is given (:mod:`proofs_check.points`).
      source: the ``--claims`` file or module a user claim came from ("" for the built-in registry).
    """

    id: str
    paper: str
    statement: str
    kind: str
    tolerance: float | None
    tolerance_reason: str
    function: Callable[..., ClaimResult]
    breakers: tuple = ()
    domain: Any = None
    point: Any = None
    source: str = ""

    def __post_init__(self):
        # A claim author's mistake in register(...): refused at import time, naming the claim and field.
        if self.kind not in KINDS:
            raise InputError(f"register: claim {self.id}: kind = {self.kind!r}; allowed: {KINDS}")
        if self.kind != "qualitative" and self.tolerance is None:
            raise InputError(f"register: claim {self.id}: tolerance = None; a claim of kind {self.kind!r} needs a number")
        if not self.tolerance_reason:
            raise InputError(f"register: claim {self.id}: tolerance_reason = {self.tolerance_reason!r}; "
                             "state why the tolerance is what it is (a non-empty string)")

    def _failed(self, note: str) -> ClaimResult:
        return ClaimResult(None, None, float("nan"), False, {}, note,
                           "not reproduced" if self.kind == "qualitative" else None)

    @property
    def gating(self) -> bool:
        return self.kind in GATING_KINDS

    def run(self, size: str = "fast", corrupt: Callable | None = None, *, at: dict | None = None, points: int = 0,
            seed: int = 0, ctx: Any = None) -> dict:
        """Run the claim and return its record (exceptions become a failed record with a note).

        ``at`` (a point of the claim's domain) and ``points`` (screen that many quasi-random domain
        points, seeded by ``seed``, and report the worst) apply to claims with a ``point`` form; with
        ``ctx`` (an active :class:`linkd.distributed.Context`) the screen's points are split over the
        processes and every process gets the same record."""
        if size not in SIZES:
            raise InputError(f"Claim.run: size = {size!r}; allowed: {SIZES}")
        t0 = time.perf_counter()
        token = _ACTIVE.set(corrupt)
        run = None
        try:
            _require_x64()
            if self.point is not None and (self.source or at is not None or points):  # built-ins: fixed run by default
                from proofs_check.points import evaluate

                run = evaluate(self, size, corrupt, at=at, points=points, seed=seed, ctx=ctx)
                res = run.result
            else:
                res = self.function(size=size, corrupt=corrupt)
            if not isinstance(res, ClaimResult):  # a bug in the claim function: a failed record
                res = self._failed(f"error: claim function returned {type(res).__name__}, not ClaimResult")
        except Exception as e:  # a crash is a failure of the claim, reported, not a crash of the runner
            res = self._failed(f"error: {type(e).__name__}: {' '.join(str(e).split())[:400]}")
        finally:
            _ACTIVE.reset(token)
        seconds = time.perf_counter() - t0
        rec = {
            "id": self.id,
            "paper": self.paper,
            "statement": self.statement,
            "kind": self.kind,
            "measured": res.measured,
            "predicted": res.predicted,
            "error": jsonable(res.error),
            "tolerance": self.point.tolerance if run is not None else self.tolerance,  # the form that was judged
            "passed": bool(res.passed),
            "seconds": round(seconds, 3),
            "params": jsonable(dict(res.params, size=size)),
            "command": run.command if run is not None else self._command(size),  # reruns exactly this record
            "domain": run.domain if run is not None else (self.domain.describe() if self.domain is not None else None),
        }
        if res.note:
            rec["note"] = res.note
        if self.kind == "qualitative":
            rec["status"] = res.status or ("reproduced" if res.passed else "not reproduced")
        return rec

    def _command(self, size: str) -> str:
        src = f" --claims {shlex.quote(self.source)}" if self.source else ""
        return f"linkd check --{size}{src} --only {self.id}"


def _require_x64():
    if not x64_enabled():
        raise RuntimeError("float64 is off: call jax.config.update('jax_enable_x64', True) first "
                           "(the runner does this)")


def register(*, id: str, paper: str, statement: str, kind: str, tolerance: float | None, tolerance_reason: str,
             breakers: tuple = (), domain=None, point=None):
    """Decorator: register ``fn(size, corrupt) -> ClaimResult`` as a claim (ids are unique).

    ``domain`` (a :class:`linkd.claims.Domain`) states the hypotheses; with ``point`` (a
    :class:`linkd.claims.Claim` over that domain) ``linkd check --domain K`` and ``--at`` evaluate
    the statement at other points of it."""

    def deco(fn):
        if id in _REGISTRY:
            raise InputError(f"register: id = {id!r} is registered twice; allowed: an id not yet registered")
        brk = tuple(breakers)
        if kind == "monotone" and REVERSE_ORDER not in brk:
            brk = brk + (REVERSE_ORDER,)
        _REGISTRY[id] = Claim(id, paper, " ".join(statement.split()), kind, tolerance,
                              " ".join(tolerance_reason.split()), fn, brk, domain if point is None else point.domain, point)
        return fn

    return deco


def unregister(id: str) -> None:
    """Remove a claim (tests register throwaway claims)."""
    _REGISTRY.pop(id, None)


def _load() -> None:
    if not _LOADED["done"]:
        for paper in PAPERS:
            importlib.import_module(f"proofs_check.{paper}")
        _LOADED["done"] = True


def all_claims() -> list[Claim]:
    """Every registered claim, in registration order (papers in :data:`PAPERS` order)."""
    _load()
    return list(_REGISTRY.values())


def get(id: str) -> Claim:
    _load()
    return _REGISTRY[id]
