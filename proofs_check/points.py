"""Claims stated over a domain (docs/theory.md §6.9): user claims from ``linkd check --claims FILE``
and registry claims that carry a ``point`` form, evaluated at one point or screened over many.

A :class:`linkd.claims.Claim` becomes a registry :class:`~proofs_check.registry.Claim` through
:func:`from_user` and then runs through the same runner, records, report, breakers and exit codes
as the built-in claims. :func:`evaluate` runs such a claim

* at its domain's default point (``linkd check --claims FILE``),
* at a given point (``--at n=3,d=5``), or
* over ``points`` quasi-random domain points (``--domain K``, batched under ``jax.vmap`` where the
  claim is traceable), reporting the worst point: the record then shows that point's measured and
  predicted values, its parameters in ``params`` and the screen in ``domain``.

Breakers act on the prediction (a plain callable or a :class:`~proofs_check.registry.Breaker` of
part ``"prediction"``) or, for monotone claims, on the claimed order (part ``"order"``).
"""
from __future__ import annotations

import dataclasses
import math
import shlex
from typing import NamedTuple

import numpy as np

from proofs_check.registry import REVERSE_ORDER, Claim, ClaimResult, apply, jsonable, scale

__all__ = ["PointRun", "from_user", "load_user", "evaluate", "parse_at"]


class PointRun(NamedTuple):
    """What :func:`evaluate` returns to :meth:`Claim.run`: the result, the record's ``domain`` and ``command``."""

    result: ClaimResult
    domain: dict
    command: str


def from_user(c, spec: str) -> Claim:
    """The registry form of a :class:`linkd.claims.Claim` loaded from ``spec``."""
    breakers = (REVERSE_ORDER,) if c.kind == "monotone" else (() if c.kind == "qualitative" else (scale(),))
    return Claim(c.id, c.paper, c.statement, c.kind, None if c.kind == "qualitative" else float(c.tolerance),
                 c.tolerance_reason, _point_only, breakers, c.domain, c, spec)


def _point_only(size="fast", corrupt=None):  # pragma: no cover - Claim.run routes point claims to evaluate()
    raise RuntimeError("a claim with a point form runs through proofs_check.points.evaluate")


def load_user(specs, taken=()) -> tuple[list[Claim], list[str]]:
    """Registry claims from ``--claims`` files/modules, and one line per problem found."""
    from linkd.claims.loader import load_many

    loaded = load_many(specs, taken)
    return [from_user(c, c.source) for c in loaded.claims], list(loaded.problems)


def parse_at(claim: Claim, text: str) -> dict:
    """``--at`` text as a point of ``claim``'s domain (InputError naming the problem if it is not one)."""
    from linkd.errors import InputError

    if claim.point is None or claim.domain is None:
        raise InputError(f"--at: claim {claim.id!r} has no domain (only claims stated over a domain take --at)")
    return claim.domain.parse(text, where=f"--at for {claim.id}")


def _result(c, point: dict, corrupt) -> ClaimResult:
    """The claim at one point, compared as its kind says (breakers applied to the prediction or order)."""
    from linkd.claims.claim import error_of

    out = c.outcome(point)
    if c.kind == "qualitative":
        ok = bool(np.all(np.asarray(out.measured)))
        return ClaimResult(jsonable(out.measured), jsonable(out.predicted), math.nan, ok, dict(point), "",
                           "reproduced" if ok else "not reproduced")
    if c.kind == "monotone":
        increasing = apply(corrupt, "order", c.direction == "increasing")
        c = dataclasses.replace(c, direction="increasing" if increasing else "decreasing")
        pred = c.expectation
        err = error_of(c, out)
    else:
        pred = apply(corrupt, "prediction", out.predicted)
        err = error_of(c, out._replace(predicted=pred))
    passed = math.isfinite(err) and err <= float(c.tolerance)
    return ClaimResult(jsonable(out.measured), jsonable(pred), err, bool(passed), dict(point))


def _errors(c, pts: list[dict], ctx) -> tuple[np.ndarray, str, dict, str]:
    """(errors, mode, failures, loop reason) of ``c`` at ``pts``, block by block; with an active
    ``ctx`` the blocks are split over the processes and gathered (same result everywhere)."""
    from linkd.claims.batch import Evaluator, split_errors

    ev = Evaluator(c)
    screen = split_errors(ev, pts, ctx)
    return screen.errors, screen.mode, screen.failures, ev.loop_reason


def _screen(c, points: int, seed: int, ctx=None) -> tuple[dict, dict]:
    """Worst of ``points`` quasi-random domain points (and the default point): (point, screen summary)."""
    from linkd.claims.domain import point_at

    batch = c.domain.sample(int(points), seed=int(seed))
    pts = [c.domain.default()] + [point_at(batch, i) for i in range(len(next(iter(batch.values()))))]
    raw, mode, failures, loop_reason = _errors(c, pts, ctx)
    errs = np.where(np.isnan(raw), np.inf, raw)
    worst = int(np.argmax(errs)) if c.kind != "qualitative" else 0
    failing = int(np.sum(errs > float(c.tolerance or 0.0))) if c.kind != "qualitative" else 0
    info = {"points": len(pts), "seed": int(seed), "mode": mode, "failing_points": failing,
            "worst": jsonable(pts[worst]), "worst_error": jsonable(float(errs[worst]))}
    if failures:
        info["raised_at"] = len(failures)
    if loop_reason and mode != "vmap":
        info["loop_reason"] = loop_reason
    return pts[worst], info


def evaluate(claim: Claim, size: str, corrupt, *, at: dict | None = None, points: int = 0, seed: int = 0,
             ctx=None) -> PointRun:
    """Run a claim with a point form: at ``at``, at the worst of ``points`` domain points (split over the
    processes of an active :class:`linkd.distributed.Context` ``ctx``), or at the default point."""
    from linkd.claims.domain import format_point

    c = claim.point
    domain = c.domain.describe()
    if points:
        point, info = _screen(c, points, seed, ctx)
        domain["screen"] = info
    else:
        point = dict(at) if at is not None else c.domain.default()
    domain["point"] = jsonable(point)
    try:
        res = _result(c, point, corrupt)
    except Exception as e:  # noqa: BLE001 - a point where the statement raises fails there; the others were screened
        res = ClaimResult(None, None, math.inf, False, dict(point),
                          f"raised at this point: {type(e).__name__}: {' '.join(str(e).split())[:300]}",
                          "not reproduced" if c.kind == "qualitative" else None)
    src = f" --claims {shlex.quote(claim.source)}" if claim.source else ""
    at_text = f" --at {shlex.quote(format_point(point))}" if (at is not None or points) else ""
    if points:
        n_bad = domain["screen"]["failing_points"]
        res.note = (res.note + "; " if res.note else "") + (
            f"worst of {domain['screen']['points']} domain points ({domain['screen']['mode']}); {n_bad} fail")
    return PointRun(res, domain, f"linkd check --{size}{src} --only {claim.id}{at_text}")
