"""Timing of minibatch SGD (docs/theory.md §10): many trajectories in one compiled vmap, and the exact
moment recursion.

    python benchmarks/sgd_speed.py [--quick]

:func:`rows` returns rows in the format of ``benchmarks/run.py``'s table:

* 10⁴ SGD trajectories (n = 1000, d = 100, B = 32, with replacement, eigen-coefficients of 10
  directions recorded every 100 steps) in one compiled call of :func:`linkd.engine.simulate_seeds`,
  against numpy batched over the runs one step at a time (same gathers, same arithmetic). Both are
  timed on ``steps`` steps (default 200; the issue's 2000 steps take 10× as long on either side, the
  ratio is per step) and reported as seconds per step. The useful work is 4·S·B·d flops per step
  (two passes over the gathered rows); its rate is compared with this machine's f64 matmul ceiling.
  The step is memory-bound (each step reads S·B·d gathered floats twice, one flop per 8 bytes), so the
  matmul ceiling is not a reachable target on a CPU: the row says so.
* The exact moment recursion (:func:`linkd.closed_form.sgd_moments`, variances recorded every 100
  steps) at d = 300, 2000 steps, n = 1000 and n = 300; cost 4·n·d² flops per step.

Median of repeats after a warm-up call (compile reported separately), float64.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax

if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from benchmarks.timing import median_time
from linkd import engine
from linkd.closed_form import sgd


def _problem(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    return X, X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)


def numpy_step_seconds(X, y, lr: float, B: int, S: int, steps: int) -> float:
    """Seconds per step of numpy SGD batched over S runs (gather, residuals, gradient)."""
    n, d = X.shape
    W, g = np.zeros((S, d)), np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = g.integers(0, n, (S, B))
        Xb = X[idx]
        r = np.einsum("sbd,sd->sb", Xb, W) - y[idx]
        W -= lr / B * np.einsum("sbd,sb->sd", Xb, r)
    return (time.perf_counter() - t0) / steps


def matmul_ceiling(N: int = 1000, repeats: int = 3) -> float:
    A = jax.random.normal(jax.random.key(2), (N, N), jnp.float64)
    mm = jax.jit(lambda A: A @ A)
    sec, _ = median_time(lambda: mm(A), repeats)
    return 2 * N**3 / sec / 1e9


def trajectory_rows(S=10_000, n=1000, d=100, B=32, steps=200, np_steps=10, repeats=1) -> list[dict]:
    X, y = _problem(n, d)
    lr = 0.5 * sgd.sgd_lr_limit(X, batch_size=B)
    data = engine.Data(jnp.asarray(X), jnp.asarray(y), basis=jnp.eye(d)[:, :10])
    spec = engine.EngineSpec(steps=steps, record_every=100, batch_size=B)
    sec, comp = median_time(lambda: engine.simulate_seeds(jnp.zeros(d), data, engine.Hyper(lr=lr), spec,
                                                    jax.random.key(0), S, check=False).coeffs, repeats)
    per_step = sec / steps
    np_step = numpy_step_seconds(X, y, lr, B, S, np_steps)
    ceil = matmul_ceiling()
    gf = 4 * S * B * d / per_step / 1e9
    size = f"S={S}, n={n}, d={d}, B={B}"
    return [
        dict(group="sgd", name=f"engine.simulate_seeds {size}, {steps} steps", seconds=sec, compile_s=comp,
             gflops=gf, ratio=np_step / per_step, ratio_of="numpy batched over runs / engine, per step",
             target=">= 3x numpy", passed=np_step / per_step >= 3.0,
             note=f"{per_step * 1e3:.1f} ms/step engine, {np_step * 1e3:.1f} ms/step numpy; 2000 steps = "
                  f"{2000 * per_step:.0f} s engine, {2000 * np_step:.0f} s numpy"),
        dict(group="sgd", name=f"engine SGD rate / f64 matmul ceiling ({size})", gflops=gf, ratio=gf / ceil,
             ratio_of=f"{gf:.2f} GFLOP/s of useful flops / {ceil:.1f} GFLOP/s matmul", target=">= 0.5 of matmul",
             passed=gf / ceil >= 0.5,
             note="memory-bound: each step reads S*B*d gathered floats twice (1 flop per 8 bytes)"),
    ]


def moment_rows(d=300, steps=2000, ns=(1000, 300), repeats=1) -> list[dict]:
    out = []
    for n in ns:
        X, y = _problem(n, d)
        sec, comp = median_time(lambda: sgd.sgd_moments(X, y, None, 0.5, steps, batch_size=32, record_every=100,
                                                  keep_cov=False).var, repeats)
        gf = 4 * n * d * d * steps / sec / 1e9
        out.append(dict(group="sgd", name=f"sgd_moments n={n}, d={d}, {steps} steps", seconds=sec, compile_s=comp,
                        gflops=gf, target="< 10 s", passed=sec < 10.0,
                        note="exact (m, C) recursion, O(n d^2) per step, no d^2 x d^2 matrix"))
    return out


def rows(quick: bool = False) -> list[dict]:
    if quick:
        return trajectory_rows(S=2000, steps=50, np_steps=5) + moment_rows(d=100, steps=200, ns=(300,))
    return trajectory_rows() + moment_rows()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    for r in rows(args.quick):
        print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
