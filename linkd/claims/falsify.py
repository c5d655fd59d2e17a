r"""Search a claim's domain for its largest violation (docs/theory.md §6.9).

The violation of a point is error − tolerance (:mod:`linkd.claims.claim`); a point with a positive
violation is a counterexample. Three phases share one budget of claim evaluations:

1. **Screen** — half of the budget on a scrambled Sobol sample of the domain (constraints by
   rejection), a quarter of it with coordinates moved onto the bounds of their ranges (where a
   hypothesis is tight), evaluated under ``jax.vmap`` where the claim is traceable
   (:mod:`~linkd.claims.batch`), in blocks of ``batch.SCREEN_BLOCK`` points (of ``CHUNK`` for screens of
   ``BIG`` points or more). With several processes (``linkd falsify --distributed``,
   :mod:`linkd.distributed`) the blocks are split over the processes and the errors gathered: each
   block is evaluated exactly as by one process, so the search that follows is the same.
2. **Refine** — from the best few screen points: gradient ascent on the error in the real
   parameters through the claim (``jax.value_and_grad`` of the whole computation — closed forms,
   ``lax.scan`` simulations), with Adam (optax) on the unconstrained coordinates
   z = logit((x − lo)/(hi − lo)) (log-reals: in ln x), so every iterate stays inside the box; and a
   pattern search over the integers and choices (and over the reals when the claim has no
   gradient): the best of ±1, ±⅛ range, ×2, ÷2 moves, until none improves.
3. **Shrink** — like hypothesis, from the worst point towards the simplest point that still
   violates: each parameter in turn takes the first of its simpler values (smaller integers,
   earlier choices, 0/±1/the bounds/fewer significant digits) that keeps a violation.

:func:`falsify` returns a :class:`Result`; :func:`write` puts it into a directory (JSON summary,
TOML of the point, a plot of the violation along the most sensitive parameter), atomically.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from linkd.claims.batch import Evaluator
from linkd.claims.claim import Claim
from linkd.claims.domain import format_point, point_at, stack, toml_point
from linkd.claims.params import Choice, Int, LogReal, Real
from linkd.errors import InputError

__all__ = ["summary_dict", "Result", "falsify", "write", "sweep_parameter", "reproduce_command"]

SCREEN_SHARE, SHRINK_SHARE = 0.5, 0.15
STARTS = 3  # refinement starts (best distinct screen points)
SWEEP_POINTS = 25
EDGE_P = 0.3  # edge points of the screen: chance that a coordinate sits on a bound


@dataclasses.dataclass
class Result:
    """Outcome of :func:`falsify`.

    ``found``: a counterexample (violation > 0) was found. ``point``: the shrunk counterexample
    (or, if none, the point closest to violating); ``error``/``violation`` there. ``worst_point``,
    ``worst_error``: the largest error seen before shrinking. ``evaluations``: claim evaluations
    spent (``budget`` asked); ``mode``: ``vmap``/``loop``/``mixed``; ``phases``: evaluations and
    best error per phase; ``failures``: a few messages of points where the claim raised."""

    claim_id: str
    found: bool
    point: dict
    error: float
    violation: float
    tolerance: float
    worst_point: dict
    worst_error: float
    evaluations: int
    budget: int
    seconds: float
    mode: str
    phases: dict
    failures: list
    gradient: str = ""
    loop_reason: str = ""
    raised: str = ""  # the claim function raised at ``point`` (its error is then +inf): the message

    @property
    def in_tolerance_units(self) -> float | None:
        """violation / tolerance (None when the tolerance is 0)."""
        return self.violation / self.tolerance if self.tolerance > 0 else None


class _Search:
    """State shared by the phases: the evaluator, the best point and the remaining budget."""

    def __init__(self, claim: Claim, budget: int, seed: int, time_limit: float | None, ctx: Any = None):
        assert claim.domain is not None
        self.ctx = ctx
        self.claim, self.domain = claim, claim.domain
        self.ev = Evaluator(claim)
        self.budget, self.seed = budget, seed
        self.deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
        self.best: tuple[float, dict] = (-math.inf, {})
        self.failures: list[str] = []
        self.phases: dict[str, dict] = {}
        self.grads: dict = {}

    def left(self) -> int:
        return self.budget - self.ev.evaluations

    def timed_out(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def evaluate(self, pts: list[dict]) -> np.ndarray:
        """Errors of a list of points (NaN → +∞); tracks the best and the failure messages."""
        if not pts:
            return np.zeros(0)
        return self._track(pts, self.ev.errors(stack(pts, self.domain.names)))

    def evaluate_blocks(self, pts: list[dict]) -> np.ndarray:
        """:meth:`evaluate` of a screen, block by block; the blocks split over the processes of
        ``ctx`` (:func:`linkd.claims.batch.split_errors`)."""
        from linkd.claims.batch import split_errors

        return self._track(pts, split_errors(self.ev, pts, self.ctx)) if pts else np.zeros(0)

    def _track(self, pts: list[dict], screen) -> np.ndarray:
        errs = np.where(np.isnan(screen.errors), np.inf, screen.errors)
        for i, msg in screen.failures.items():
            if len(self.failures) < 5 and msg not in self.failures:
                self.failures.append(f"{format_point(pts[i])}: {msg}")
        i = int(np.argmax(errs))
        if errs[i] > self.best[0]:
            self.best = (float(errs[i]), dict(pts[i]))
        return errs

    def note(self, phase: str, start: int) -> None:
        self.phases[phase] = {"evaluations": self.ev.evaluations - start, "best_error": _finite(self.best[0])}


def _finite(x: float):
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


# ------------------------------------------------------------------------------------ screen


def _edges(s: _Search, n: int) -> list[dict]:
    """n points with some coordinates moved to a bound of their range (each with probability
    EDGE_P, to lo or hi at random): hypotheses are often tight on the boundary of the domain."""
    if n <= 0:
        return []
    rng = np.random.default_rng(s.seed + 1)
    base = s.domain.sample(n, seed=s.seed + 1)
    out = []
    for i in range(len(next(iter(base.values())))):
        p = point_at(base, i)
        for name, par in s.domain.params.items():
            if rng.random() < EDGE_P:
                ends = (par.options[0], par.options[-1]) if isinstance(par, Choice) else (par.lo, par.hi)  # type: ignore[attr-defined]
                p[name] = ends[int(rng.integers(2))]
        if not s.domain.violated(p):
            out.append(p)
    return out


def _screen(s: _Search, n: int) -> list[tuple[float, dict]]:
    n_edge = n // 4
    batch = s.domain.sample(n - n_edge, seed=s.seed)
    pts = [point_at(batch, i) for i in range(len(next(iter(batch.values()))))]
    pts = [s.domain.default()] + pts + _edges(s, n_edge)
    errs = s.evaluate_blocks(pts)
    order = np.argsort(-errs, kind="stable")
    starts, seen = [], set()
    for i in order:
        key = format_point(pts[i])
        if key not in seen:
            seen.add(key)
            starts.append((float(errs[i]), pts[i]))
        if len(starts) == STARTS:
            break
    return starts


# ------------------------------------------------------------------------------------ refine: gradient


def _reals(s: _Search) -> list[str]:
    return [n for n, p in s.domain.params.items() if isinstance(p, Real)]


def _to_z(p: Real, x: float) -> float:
    u = min(max(float(p.to_unit(x)), 1e-9), 1 - 1e-9)
    return math.log(u / (1 - u))


def _from_z(p: Real, z):
    import jax

    u = jax.nn.sigmoid(z)
    if isinstance(p, LogReal):
        import jax.numpy as jnp

        return jnp.exp(math.log(p.lo) + u * (math.log(p.hi) - math.log(p.lo)))
    return p.lo + u * (p.hi - p.lo)


def _grad_fn(s: _Search, point: dict, reals: list[str]):
    """value_and_grad of the error in the reals' z coordinates at ``point``, compiled once per
    combination of the static parameters (cached on the search; fast-compile XLA options)."""
    import jax
    import jax.numpy as jnp

    from linkd.claims.batch import FAST_COMPILE
    from linkd.claims.claim import jax_error_of

    ints = [n for n, p in s.domain.params.items() if isinstance(p, Int) and p.traced]
    static = {n: v for n, v in point.items() if n not in reals and n not in ints}
    int_vals = {n: jnp.asarray(point[n]) for n in ints}
    key = tuple(static.items())
    if key not in s.grads:
        def score(z, iv):
            p = dict(static)
            p.update(iv)
            p.update({n: _from_z(s.domain.params[n], z[j]) for j, n in enumerate(reals)})  # type: ignore[arg-type]
            return jax_error_of(s.claim, s.claim.outcome(p))

        z0 = jnp.zeros(len(reals), dtype=jnp.result_type(float))
        s.grads[key] = jax.jit(jax.value_and_grad(score)).lower(z0, int_vals).compile(FAST_COMPILE)
    f = s.grads[key]
    return lambda z: f(z, int_vals)


def _ascend(s: _Search, point: dict, steps: int) -> tuple[float, dict, str]:
    """Adam ascent on the error in the reals; returns (best error, point, status)."""
    import jax
    import jax.numpy as jnp
    import optax

    reals = _reals(s)
    params: dict[str, Real] = {n: s.domain.params[n] for n in reals}  # type: ignore[misc]
    try:
        vg = _grad_fn(s, point, reals)
        z = jnp.asarray([_to_z(params[n], point[n]) for n in reals])  # type: ignore[arg-type]
        val, g = vg(z)
        s.ev.evaluations += 1
    except Exception as e:  # noqa: BLE001 - not differentiable / not traceable: pattern search instead
        return -math.inf, point, f"no gradient ({type(e).__name__})"
    g = jnp.where(jnp.isfinite(g), g, 0.0)  # a kink (arccos at 1, a max) gives inf: step along the rest
    if not bool(jnp.any(g != 0)):
        return -math.inf, point, "zero gradient"
    opt = optax.adam(0.3)
    state = opt.init(z)
    best, best_pt = -math.inf, point
    for _ in range(steps):
        if s.left() <= 0 or s.timed_out():
            break
        with jax.numpy_dtype_promotion("standard"):  # optax mixes its int32 step count with Python floats
            upd, state = opt.update(-g, state, z)
            z = optax.apply_updates(z, upd)
        cand = dict(point)
        cand.update({n: float(_from_z(params[n], z[j])) for j, n in enumerate(reals)})
        if s.domain.violated(cand):
            break
        val, g = vg(z)
        s.ev.evaluations += 1
        v = float(val) if math.isfinite(float(val)) else math.inf
        if v > best:
            best, best_pt = v, cand
        if v > s.best[0]:
            s.best = (v, dict(cand))
        g = jnp.where(jnp.isfinite(g), g, 0.0)
    return best, best_pt, "gradient"


# ------------------------------------------------------------------------------------ refine: pattern


def _moves(s: _Search, point: dict, h: float, reals: bool) -> list[dict]:
    out = []
    for n, p in s.domain.params.items():
        x = point[n]
        if isinstance(p, Int):
            span = max(1, (p.hi - p.lo) // 8)
            vals = {x - 1, x + 1, x - span, x + span, x * 2, x // 2}
        elif isinstance(p, Choice):
            vals = set(range(len(p.options))) - {p.options.index(x)}
            vals = {p.options[i] for i in vals}  # type: ignore[misc]
        elif isinstance(p, Real) and reals:
            z = _to_z(p, x)
            vals = {float(np.clip(p._from01(1 / (1 + math.exp(-(z + dz)))), p.lo, p.hi)) for dz in (-h, h)}
        else:
            continue
        for v in vals:
            if v != x and p.contains(v):
                cand = dict(point)
                cand[n] = v
                if not s.domain.violated(cand):
                    out.append(cand)
    return out


def _pattern(s: _Search, err: float, point: dict, reals: bool, budget: int) -> tuple[float, dict]:
    """Best-improvement moves until none improves (reals: step h in z halves down to 1/32)."""
    h, spent = 1.0, 0
    while spent < budget and s.left() > 0 and not s.timed_out():
        cands = _moves(s, point, h, reals)[: max(1, min(s.left(), budget - spent))]
        if not cands:
            break
        errs = s.evaluate(cands)
        spent += len(cands)
        i = int(np.argmax(errs))
        if errs[i] > err:
            err, point = float(errs[i]), cands[i]
        elif reals and h > 1 / 32:
            h /= 2
        else:
            break
    return err, point


def _refine(s: _Search, starts: list[tuple[float, dict]], budget: int) -> str:
    status = set()
    per = max(4, budget // max(1, len(starts)))
    for err, point in starts:
        if s.left() <= 0 or s.timed_out():
            break
        for _ in range(2):
            stop = s.ev.evaluations + per // 2
            if _reals(s):
                g_err, g_pt, st = _ascend(s, point, max(2, per // 4))
                status.add(st)
                if g_err > err:
                    err, point = g_err, g_pt
            no_grad = not _reals(s) or "gradient" not in status
            err, point = _pattern(s, err, point, reals=no_grad, budget=max(2, stop - s.ev.evaluations))
    return ", ".join(sorted(status))


# ------------------------------------------------------------------------------------ shrink


def _first_violating(s: _Search, cands: list[dict]) -> tuple[float, dict] | None:
    """The first candidate (simplest first) that still violates: one batch under vmap, else one by one."""
    step = len(cands) if s.ev.vmap else 1
    for i in range(0, len(cands), step):
        part = cands[i:i + step]
        errs = s.evaluate(part)
        for e, c in zip(errs, part):
            if s.claim.violation(float(e)) > 0:
                return float(e), c
    return None


def _shrink(s: _Search, point: dict, budget: int) -> tuple[float, dict]:
    """Simplest point that still violates: first simpler value per parameter, repeated to a fixed point."""
    err = float(s.evaluate([point])[0])
    stop = s.ev.evaluations + budget
    changed = True
    while changed and s.ev.evaluations < stop and not s.timed_out():
        changed = False
        for n, p in s.domain.params.items():
            cands = []
            for v in p.simpler(point[n]):
                c = dict(point)
                c[n] = v
                if not s.domain.violated(c):
                    cands.append(c)
            cands = cands[: max(0, stop - s.ev.evaluations)]
            hit = _first_violating(s, cands) if cands else None
            if hit is not None:
                (err, point), changed = hit, True
    return err, point


# ------------------------------------------------------------------------------------ driver


def falsify(claim: Claim, *, budget: int = 512, seed: int = 0, time_limit: float | None = None,
            ctx: Any = None) -> Result:
    """Search ``claim``'s domain for its largest violation within ``budget`` evaluations.

    ``ctx`` (a :class:`linkd.distributed.Context`): the screen's blocks are split over its
    processes; the refinement and the shrink then run on every process alike (they are sequential),
    so every process returns the result one process would."""
    if claim.domain is None or claim.kind == "qualitative":
        raise InputError(f"falsify: claim {claim.id!r} has {'no domain' if claim.domain is None else 'kind qualitative'}; "
                         "allowed: an exact, bound or monotone claim with a domain")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 8:
        raise InputError(f"falsify: budget must be an integer >= 8 (claim evaluations); got {budget!r}")
    t0 = time.perf_counter()
    s = _Search(claim, int(budget), int(seed), time_limit, ctx)
    starts = _screen(s, max(4, int(budget * SCREEN_SHARE)))
    s.note("screen", 0)
    n0 = s.ev.evaluations
    grad = _refine(s, starts, max(0, int(budget * (1 - SHRINK_SHARE)) - s.ev.evaluations))
    s.budget = max(s.budget, s.ev.evaluations)  # the shrink has its own allowance (below)
    s.note("refine", n0)
    worst_err, worst = s.best
    err, point = worst_err, worst
    if claim.violation(worst_err) > 0:
        n0 = s.ev.evaluations
        err, point = _shrink(s, worst, max(32, s.left()))
        s.note("shrink", n0)
    tol = float(claim.tolerance or 0.0)
    raised = s.ev.point(point)[2] if not math.isfinite(err) else ""
    if s.best[0] > worst_err:  # the shrink met a larger violation
        worst_err, worst = s.best
    return Result(claim.id, claim.violation(err) > 0, point, err, claim.violation(err), tol, worst, worst_err,
                  s.ev.evaluations, int(budget), time.perf_counter() - t0, s.ev.mode, s.phases, s.failures, grad,
                  s.ev.loop_reason, raised)


# ------------------------------------------------------------------------------------ outputs


def sweep_parameter(claim: Claim, point: dict, name: str, k: int = SWEEP_POINTS,
                    evaluator: Evaluator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values, errors) of the claim along parameter ``name`` through ``point`` (NaN outside the constraints)."""
    assert claim.domain is not None
    p = claim.domain.params[name]
    if isinstance(p, Int):
        vals: list[Any] = sorted({int(v) for v in p.from_unit(np.linspace(0, 1 - 1e-12, k))})
    elif isinstance(p, Real):
        vals = [float(v) for v in p.from_unit(np.linspace(0, 1, k))]
    else:
        vals = list(p.options)  # type: ignore[attr-defined]
    pts, keep = [], []
    for v in vals:
        c = dict(point)
        c[name] = v
        if not claim.domain.violated(c):
            pts.append(c)
            keep.append(True)
        else:
            keep.append(False)
    ev = evaluator or Evaluator(claim)
    errs = ev.errors(stack(pts, claim.domain.names)).errors if pts else np.zeros(0)
    out = np.full(len(vals), np.nan)
    out[np.asarray(keep, dtype=bool)] = errs
    return np.asarray(vals, dtype=object), out


def reproduce_command(claim: Claim, point: dict, claims_spec: str | None = None) -> str:
    """The one-line command that re-checks ``claim`` at ``point``."""
    import shlex

    src = f" --claims {shlex.quote(claims_spec)}" if claims_spec else ""
    return f"linkd check{src} --only {claim.id} --at {shlex.quote(format_point(point))}"


def _most_sensitive(claim: Claim, point: dict, ev: Evaluator) -> tuple[str, np.ndarray, np.ndarray] | None:
    assert claim.domain is not None
    best = None
    for name in claim.domain.names:
        vals, errs = sweep_parameter(claim, point, name, evaluator=ev)
        fin = errs[np.isfinite(errs)]
        spread = float(fin.max() - fin.min()) if fin.size > 1 else -1.0
        if best is None or spread > best[0]:
            best = (spread, name, vals, errs)
    return None if best is None else best[1:]


def _plot(claim: Claim, res: Result, name: str, vals, errs, out_dir, formats) -> list:
    from linkd.plotting.style import PALETTE, new_figure, save_figure

    assert claim.domain is not None
    p = claim.domain.params[name]
    numeric = not isinstance(p, Choice)
    x = np.asarray(vals, dtype=np.float64) if numeric else np.arange(len(vals))
    v = np.asarray(errs, dtype=np.float64) - res.tolerance
    fig, ax = new_figure("single")
    ax.plot(x, np.where(np.isfinite(v), v, np.nan), marker="o", ms=3, color=PALETTE[0], label="violation")
    ax.axhline(0.0, color="0.5", lw=0.8, ls="--", label="tolerance")
    xc = float(res.point[name]) if numeric else list(vals).index(res.point[name])
    ax.plot([xc], [res.violation if math.isfinite(res.violation) else np.nan], marker="*", ms=9, ls="none",
            color=PALETTE[1], label="counterexample" if res.found else "closest point")
    if isinstance(p, LogReal) or (isinstance(p, Int) and p.log):
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(x, [str(o) for o in vals])
    ax.set_xlabel(name)
    ax.set_ylabel("error − tolerance")
    ax.set_title(claim.id, fontsize=8)
    ax.legend(fontsize=7)
    others = {k: v for k, v in res.point.items() if k != name}
    caption = f"{claim.id}: violation along {name}, others at {format_point(others)}"
    paths = save_figure(fig, out_dir, f"violation_{name}", formats, caption=caption, title=claim.statement[:200])
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def write(claim: Claim, res: Result, out_dir, *, claims_spec: str | None = None, formats=("png", "pdf"),
          plot: bool = True) -> dict:
    """Write ``falsify.json``, ``counterexample.toml`` (or ``closest.toml``) and the violation plot
    into ``out_dir`` (atomically); returns the summary dict written to the JSON."""
    from pathlib import Path

    from linkd.atomic import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    command = reproduce_command(claim, res.point, claims_spec)
    stem = "counterexample" if res.found else "closest"
    head = (f"{claim.id}: {'counterexample' if res.found else 'no violation found; the point closest to one'}\n"
            f"error {res.error:.6g}, tolerance {res.tolerance:g}, violation {res.violation:.6g}\nreproduce: {command}")
    files = [str(atomic_write_text(out / f"{stem}.toml", toml_point(res.point, head)))]
    summary = summary_dict(claim, res, command)
    if plot:
        sens = _most_sensitive(claim, res.point, Evaluator(claim))
        if sens is not None:
            name, vals, errs = sens
            summary["most_sensitive"] = name
            files += [str(p) for p in _plot(claim, res, name, vals, errs, out, formats)]
    summary["files"] = files + [str(out / "falsify.json")]
    atomic_write_json(out / "falsify.json", summary)
    return summary


def summary_dict(claim: Claim, res: Result, command: str) -> dict:
    d = dataclasses.asdict(res)
    d.update(statement=claim.statement, kind=claim.kind, command=command,
             violation_in_tolerance_units=res.in_tolerance_units,
             domain=claim.domain.describe() if claim.domain else None)
    return d
