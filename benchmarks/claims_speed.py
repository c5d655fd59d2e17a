"""Speed of a domain screen of user claims (linkd.claims, docs/theory.md §6.9; issue 16 targets).

    python benchmarks/claims_speed.py [--points 16384] [--sim-points 4096] [--repeats 3]

Two claims are screened over quasi-random points of their domains by
:class:`linkd.claims.Evaluator` (one ``jax.jit(jax.vmap(...))`` per group of static parameters)
and, for comparison, by a Python loop calling the claim function on the same points (a subset,
rate extrapolated):

* closed form only — the exaggeration gap of a linear student (docs/theory.md §2.2) from
  ``closed_form.gd_decay`` at d = 16 (η, exponent, T, t traced); target ≥ 10⁴ points/s;
* simulation — d = n = 50: design, teacher, labels drawn per point, 200 full-batch GD steps by
  the engine (``engine.simulate``) against the closed form
  :math:`w_T = \eta\sum_{s<T}(I-\eta\hat\Sigma)^s X^\top y/n` (docs/theory.md §6.1), summed by binary
  doubling (:func:`geometric_sum`: 8 matrix squarings for T = 200); target ≥ 10³ points/s. The
  eigenbasis route (a batched ``eigh`` per point) costs about as much as the 200 GD steps on the
  CPU and agrees only to ~1e-10 at n = d, where X̂ᵀX̂/n is ill-conditioned; the doubling sum agrees
  to ~1e-13.

Times are medians over ``repeats`` screens after a warm-up screen (its extra time is the compile
time, ``compile_s``). ``rows()`` gives the rows for ``benchmarks/run.py`` (``make bench``).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax.numpy as jnp

CLOSED_FORM_TARGET, SIMULATION_TARGET = 1e4, 1e3  # points per second
MISS_REASON = ("; below target: XLA on the CPU runs the vmapped GD (200 batched mat-vecs of 50x50) and the "
               "closed form (8 batched 50x50 squarings) on one core (process time = wall time)")


def closed_form_claim():
    from linkd import closed_form
    from linkd.claims import Claim, Domain, Int, Outcome, Real, ingredients

    def gap(p):
        lam = ingredients.spectrum(16, p["exponent"])
        eta = ingredients.lr(lam, p["fraction"])
        a, b = closed_form.gd_decay(lam, eta, p["t"]), closed_form.gd_decay(lam, eta, p["T"])
        r = a + b - a * b
        log_rho = jnp.log1p(-eta * lam)
        g = r[None, :] - jnp.exp((jnp.log(r) / log_rho)[:, None] * log_rho[None, :])
        return Outcome(jnp.min(jnp.where(lam[:, None] > lam[None, :], g, jnp.inf)), 0.0)

    dom = Domain(exponent=Real(0.1, 3.0), fraction=Real(0.01, 0.99), T=Int(1, 3000, traced=True),
                 t=Int(1, 3000, traced=True))
    return Claim("bench.gap", "gap >= 0", "bound", gap, dom, tolerance=1e-12, sense="lower")


def geometric_sum(A, t: int, b):
    r""":math:`\sum_{s<t} A^s b` by binary doubling: :math:`A^{2^k}` by squaring and
    :math:`G(2^k + m)b = G(2^k)b + A^{2^k} G(m)b` on vectors, about log₂ t matrix products."""
    g = jnp.zeros_like(b)  # sum_{s<m} A^s b over the low bits m of t read so far
    pk, gk = A, b  # A^(2^k), sum_{s<2^k} A^s b
    for bit in bin(int(t))[:1:-1]:
        if bit == "1":
            g = gk + pk @ g
        gk, pk = gk + pk @ gk, pk @ pk
    return g


def simulation_claim(n: int = 50, d: int = 50, steps: int = 200):
    from linkd.claims import Claim, Domain, Int, Outcome, Real, ingredients

    def gd_vs_closed_form(p):
        X = ingredients.design(p["seed"], n, ingredients.spectrum(d, p["exponent"]))
        y = ingredients.labels(p["seed"], X, ingredients.teacher(p["seed"], d), p["noise"])
        S, b = X.T @ X / n, X.T @ y / n
        eta = p["fraction"] / jnp.linalg.norm(S)  # eta lambda_max <= fraction: ||S||_F >= ||S||_2
        w = ingredients.gd_trajectory(X, y, eta, steps, every=steps)[-1]  # the engine, step by step
        return Outcome(w, eta * geometric_sum(jnp.eye(d, dtype=S.dtype) - eta * S, steps, b))

    dom = Domain(exponent=Real(0.0, 2.0), fraction=Real(0.1, 1.9), noise=Real(0.0, 1.0),
                 seed=Int(0, 10**6, traced=True))
    return Claim("bench.sim", "GD = closed form", "exact", gd_vs_closed_form, dom, tolerance=1e-10, relative=True)


def measure(name: str, claim, points: int, loop_points: int, target: float, repeats: int) -> dict:
    from linkd.claims import Evaluator
    from linkd.claims.domain import point_at

    batch = claim.domain.sample(points, seed=0)
    ev = Evaluator(claim)
    t0 = time.perf_counter()
    screen = ev.errors(batch)
    first = time.perf_counter() - t0
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ev.errors(batch)
        ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    claim.outcome(point_at(batch, 0))  # warm the eager path once
    t0 = time.perf_counter()
    for i in range(loop_points):
        claim.error(claim.outcome(point_at(batch, i)))
    loop_rate = loop_points / (time.perf_counter() - t0)
    rate = points / med
    return {"group": "claims", "name": f"{name}: {points} points ({screen.mode})", "seconds": med,
            "ratio": rate / target, "ratio_of": f"{rate:.3g} points/s / {target:g} target; python loop "
                                                 f"{loop_rate:.3g} points/s ({loop_points} points), vmap x{rate / loop_rate:.0f}",
            "target": f">= {target:g} points/s", "passed": bool(rate >= target), "compile_s": max(first - med, 0.0),
            "note": f"worst error over the screen {float(screen.errors.max()):.2e}" + ("" if rate >= target else MISS_REASON),
            "points_per_s": rate,
            "loop_points_per_s": loop_rate}


def rows(points: int = 16384, sim_points: int = 4096, repeats: int = 3) -> list[dict]:
    """Rows for benchmarks/run.py: the closed-form claim and the simulation claim."""
    return [measure("closed-form claim (exaggeration gap, d=16)", closed_form_claim(), points, 200,
                    CLOSED_FORM_TARGET, repeats),
            measure("simulation claim (GD d=n=50, 200 steps)", simulation_claim(), sim_points, 20,
                    SIMULATION_TARGET, repeats)]


def main(argv=None) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=16384)
    p.add_argument("--sim-points", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    for r in rows(a.points, a.sim_points, a.repeats):
        status = "PASS" if r["passed"] else "MISS"
        print(f"{r['name']:<60} {r['seconds']:8.3f} s  {r['ratio_of']}  {status}  (compile {r['compile_s']:.1f} s; "
              f"{r['note']})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__))))
    sys.exit(main())
