"""Speed of the deep-linear gradient-flow closed form (docs/theory.md §7.1; issue 9 target).

    python benchmarks/closed_form_speed.py [--modes 10000] [--times 1000] [--repeats 5]

Evaluates ``linkd.closed_form.deep_gf_trajectory`` for N = 2, 3, 4 on 10⁴ modes × 10³ times
(σ₀ = 1e-3, spectrum λ_k spread over two decades, c_k over one) and reports the median wall time of
``repeats`` calls after a warm-up call (the warm-up builds the cached g_N table for N ≥ 3; its
extra time is reported as ``compile_s``), with the ratio to the 1 s target. The table route is also
checked against the bracketed-Newton inverse on a sample (``max_rel_error``).
``rows()`` gives the rows for ``benchmarks/run.py`` (``make bench``).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

TARGET_S = 1.0


def _problem(modes: int, times: int):
    rng = np.random.default_rng(0)
    lam = 10.0 ** rng.uniform(-2.0, 0.0, modes)
    c = 10.0 ** rng.uniform(-0.5, 0.5, modes)
    t = np.linspace(0.0, 200.0, times)
    return lam, c, t


def measure(depth: int, modes: int = 10_000, times: int = 1_000, repeats: int = 5) -> dict:
    """One row: median seconds of ``deep_gf_trajectory`` for ``modes`` × ``times`` at depth N."""
    from linkd import closed_form as cf
    from linkd.closed_form import deep_linear

    lam, c, t = _problem(modes, times)
    t0 = time.perf_counter()
    out = cf.deep_gf_trajectory(lam, c, 1e-3, t, depth=depth)
    first = time.perf_counter() - t0
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = cf.deep_gf_trajectory(lam, c, 1e-3, t, depth=depth)
        ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    # accuracy on a sample: the table route against the bracketed Newton inverse (N ≥ 3) / itself (N ≤ 2)
    rows = np.arange(0, times, max(1, times // 20))
    kappa = lam * c ** (2.0 - 2.0 / depth)
    G = deep_linear.deep_g(1e-3 / c, depth=depth)[None, :] + kappa[None, :] * t[rows, None]
    ref = c[None, :] * deep_linear.deep_g_inverse_newton(G, depth=depth)
    err = float(np.max(np.abs(out[rows] - ref) / ref))
    return {"group": "closed form", "name": f"deep GF sigma_k(t), N={depth}, {modes}x{times}", "seconds": med,
            "ratio": med / TARGET_S, "ratio_of": f"median of {repeats} / {TARGET_S:g} s target",
            "target": f"< {TARGET_S:g} s", "passed": bool(med < TARGET_S), "compile_s": max(first - med, 0.0),
            "note": f"max rel. error vs bracketed Newton {err:.1e} (sample)", "max_rel_error": err}


def rows(modes: int = 10_000, times: int = 1_000, repeats: int = 5) -> list[dict]:
    """Rows for benchmarks/run.py: N = 2, 3, 4."""
    return [measure(N, modes, times, repeats) for N in (2, 3, 4)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", type=int, default=10_000)
    p.add_argument("--times", type=int, default=1_000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    for r in rows(a.modes, a.times, a.repeats):
        status = "PASS" if r["passed"] else "MISS"
        print(f"{r['name']:<44} {r['seconds']:8.3f} s  ratio {r['ratio']:.3f} of {r['target']}  {status}  "
              f"(table build {r['compile_s']:.2f} s; {r['note']})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__))))
    sys.exit(main())
