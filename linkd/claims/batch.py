r"""Evaluate a claim at many points: under ``jax.vmap`` where the claim function is traceable, a
Python loop otherwise (docs/theory.md §6.9).

Points are grouped by their *static* parameters (integers not declared ``traced``, choices): each
group is one ``jax.jit(jax.vmap(...))`` over the traced parameters (reals, traced integers),
compiled once per group and padded to a power of two so that batches of similar size share the
compilation. If tracing fails (the claim converts a value to a Python float, calls numpy or
scipy on it, branches on it), the claim is evaluated point by point from then on and the reason
is kept (:attr:`Evaluator.loop_reason`). A point at which the claim function raises fails there
(error = +∞) and its message is kept.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from linkd.claims.claim import Claim, error_of, jax_error_of
from linkd.claims.domain import Batch, point_at
from linkd.errors import InputError

__all__ = ["Evaluator", "Screen", "CHUNK", "MIN_VMAP", "SCREEN_BLOCK", "split_errors"]

CHUNK = 2048  # points per vmapped call in large batches (bounds the memory of simulation claims)
SMALL = 16  # points per vmapped call in batches below BIG (so a group compiles once or twice)
BIG = 1024
SCREEN_BLOCK = 32  # points per evaluator call of a split screen (a multiple of SMALL: the same chunks as one call)
MIN_VMAP = 1  # a traced group is always compiled: eager calls on new shapes cost more than one compile
#: XLA options for small batches: compile time dominates there (a falsifier's refinement and shrink)
FAST_COMPILE: dict[str, str | bool] = {"xla_backend_optimization_level": "0", "xla_llvm_disable_expensive_passes": True}


class Screen(NamedTuple):
    """Errors of a batch (+∞ where non-finite or where the claim raised), how they were computed
    (``"vmap"``, ``"loop"`` or ``"mixed"``) and the messages of the points that raised."""

    errors: np.ndarray
    mode: str
    failures: dict


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"


class Evaluator:
    """Batched evaluation of one claim (keeps its compiled groups and its vmap/loop decision)."""

    def __init__(self, claim: Claim, *, vmap: bool = True, chunk: int = CHUNK, min_vmap: int = MIN_VMAP):
        if claim.domain is None:
            raise InputError(f"Evaluator: claim {claim.id!r} has no domain; give it domain=Domain(...)")
        self.claim = claim
        self.domain = claim.domain
        self.vmap = vmap and claim.kind != "qualitative"
        self.chunk, self.min_vmap = chunk, min_vmap
        self.static = [n for n, p in self.domain.params.items() if not p.traced]
        self.traced = [n for n, p in self.domain.params.items() if p.traced]
        if not self.traced:
            self.vmap = False
        self.loop_reason = "" if self.vmap else ("no traced parameter" if not self.traced else "vmap disabled")
        self._compiled: dict[Any, Any] = {}
        self.used: set[str] = set()
        self.evaluations = 0

    # -------------------------------------------------------------------- one point

    def point(self, point: dict) -> tuple[float, Any, str]:
        """(error, outcome, failure message) at one point, by a plain call of the claim function."""
        self.evaluations += 1
        try:
            out = self.claim.outcome(dict(point))
            return error_of(self.claim, out), out, ""
        except Exception as e:  # noqa: BLE001 - a raising claim fails at that point; reported, never fatal
            return math.inf, None, _one_line(e)

    # -------------------------------------------------------------------- batches

    def errors(self, batch: Batch) -> Screen:
        k = len(next(iter(batch.values())))
        errs = np.full(k, math.nan)
        failures: dict[int, str] = {}
        modes: set[str] = set()
        for key, idx in self._groups(batch, k).items():
            big = idx.size >= self.min_vmap or key in self._compiled
            if self.vmap and big and self._vmapped(key, batch, idx, errs):
                modes.add("vmap")
                continue
            modes.add("loop")
            for i in idx:
                e, _, msg = self.point(point_at(batch, int(i)))
                errs[i] = e
                if msg:
                    failures[int(i)] = msg
        self.used |= modes
        mode = modes.pop() if len(modes) == 1 else ("mixed" if modes else "none")
        return Screen(errs, mode, failures)

    @property
    def mode(self) -> str:
        """``"vmap"``, ``"loop"`` or ``"mixed"``: how the batches so far were evaluated."""
        if len(self.used) == 1:
            return next(iter(self.used))
        return "mixed" if self.used else "none"

    def _groups(self, batch: Batch, k: int) -> dict[tuple, np.ndarray]:
        if not self.static:
            return {(): np.arange(k)}
        keys = list(zip(*[batch[n].tolist() for n in self.static]))
        groups: dict[tuple, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        return {key: np.asarray(v) for key, v in groups.items()}

    def _vmapped(self, key: tuple, batch: Batch, idx: np.ndarray, errs: np.ndarray) -> bool:
        import jax.numpy as jnp

        from linkd.dtypes import default_float

        size = self.chunk if idx.size >= BIG else SMALL
        for s in range(0, idx.size, size):
            part = idx[s:s + size]
            pad = np.concatenate([part, np.full(size - part.size, part[0])])
            vals = {n: jnp.asarray(batch[n][pad], dtype=default_float() if self.domain.params[n].kind in ("real", "log-real")
                                   else jnp.asarray(0).dtype) for n in self.traced}
            try:
                fn = self._compiled.get((key, size)) or self._compile(dict(zip(self.static, key)), vals)
                out = np.asarray(fn(vals), dtype=np.float64)[: part.size]
            except Exception as e:  # noqa: BLE001 - not traceable: loop from now on
                self.vmap = False
                self.loop_reason = _one_line(e)
                return False
            self._compiled[(key, size)] = fn
            self._compiled[key] = True
            errs[part] = np.where(np.isnan(out), np.inf, out)
            self.evaluations += part.size
        return True

    def _compile(self, static: dict, vals: dict):
        """``jit(vmap(error))`` for one group, lowered and compiled for these shapes; small batches
        compile at XLA optimisation level 0 (several times faster to compile, ~2x slower to run)."""
        import jax

        claim = self.claim

        def one(v):
            p = dict(static)
            p.update(v)
            return jax_error_of(claim, claim.outcome(p))

        lowered = jax.jit(jax.vmap(one)).lower(vals)
        return lowered.compile(FAST_COMPILE if len(next(iter(vals.values()), ())) < BIG else None)



def split_errors(ev: Evaluator, pts: list[dict], ctx=None) -> Screen:
    """``ev``'s errors at ``pts``, block by block (``SCREEN_BLOCK`` points; ``CHUNK`` for ``BIG``
    screens), so that every block is evaluated in the same batch shape however the blocks are
    shared: with an active ``ctx`` (:class:`linkd.distributed.Context`) the blocks are split over
    the processes and gathered, and ``ev``'s counters and vmap state are merged (the same result
    on every process, and the same as one process)."""
    from linkd.claims.domain import stack

    if not pts:
        return Screen(np.zeros(0), ev.mode, {})
    size = CHUNK if len(pts) >= BIG else SCREEN_BLOCK
    blocks = [list(range(i, min(i + size, len(pts)))) for i in range(0, len(pts), size)]
    active = ctx is not None and ctx.active
    local = []
    for b in (ctx.mine(len(blocks)) if active else range(len(blocks))):
        n0 = ev.evaluations
        screen = ev.errors(stack([pts[i] for i in blocks[b]], ev.domain.names))
        local.append((b, screen.errors, {blocks[b][k]: m for k, m in screen.failures.items()}, ev.evaluations - n0))
    if active:
        parts = ctx.gather((local, (ev.vmap, set(ev.used), ev.loop_reason)), "screen errors")
        local = [t for part, _ in parts for t in part]
        ev.evaluations += sum(t[3] for i, (part, _) in enumerate(parts) if i != ctx.process_id for t in part)
        ev.vmap = all(st[0] for _, st in parts)
        for _, st in parts:
            ev.used |= st[1]
        ev.loop_reason = next((st[2] for _, st in parts if st[2]), "")
    errs = np.full(len(pts), np.nan)
    failures: dict[int, str] = {}
    for b, e, fails, _ in local:
        errs[blocks[b]] = e
        failures.update(fails)
    return Screen(errs, ev.mode, dict(sorted(failures.items())))
