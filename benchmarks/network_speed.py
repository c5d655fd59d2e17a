"""Timing of two-layer network training and of the empirical NTK (docs/theory.md §11).

    python benchmarks/network_speed.py [--quick]

:func:`rows` returns rows in the format of ``benchmarks/run.py``'s table:

* GD on a ReLU network (width 8192, n = 512, d = 32, 1000 steps, float64): ``engine.simulate`` (one
  compiled ``lax.scan``, autodiff) against the same loop written step by step in numpy (forward,
  hand-written backward; target ≥ 2×) and as a fraction of the matmul ceiling (jitted square f64
  matmul; the step's flops are its two products X Wᵀ and gᵀX, 4·n·d·m; target ≥ 0.5);
* the empirical NTK Gram by autodiff (``ntk.gram``, n = 2048, width 4096, d = 32, a 1 GiB budget):
  time, block, the estimated peak and the measured peak resident memory of a fresh process
  (``/proc/self/clear_refs`` then ``VmHWM``, as ``benchmarks/memprobe.py``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import jax

if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from linkd import engine, networks, ntk  # noqa: E402

__all__ = ["rows", "numpy_gd", "gram_probe"]


def numpy_gd(W, a, X, y, lr, T):
    """The baseline: GD on a ReLU network in numpy, step by step (forward, backward, update)."""
    n, d = X.shape
    s = 1.0 / math.sqrt(W.shape[0])
    Xs = X / math.sqrt(d)
    for _ in range(T):
        U = Xs @ W.T
        H = np.maximum(U, 0.0)
        g = (s * (H @ a) - y) / n
        ga = s * (H.T @ g)
        G = (g[:, None] * (U > 0)) * (s * a)[None, :]
        W = W - lr * (G.T @ Xs)
        a = a - lr * ga
    return W, a


def _matmul_ceiling(N: int = 2048) -> float:
    A = jax.random.normal(jax.random.key(2), (N, N), jnp.float64)
    mm = jax.jit(lambda A: A @ A)
    mm(A).block_until_ready()
    t0 = time.perf_counter()
    mm(A).block_until_ready()
    return 2 * N ** 3 / (time.perf_counter() - t0) / 1e9


def _train_rows(n: int, d: int, m: int, T: int) -> list[dict]:
    kx, kp = jax.random.split(jax.random.key(0))
    X = jax.random.normal(kx, (n, d), jnp.float64)
    y = jnp.tanh(X[:, 0])
    p = networks.init_two_layer(kp, d, m)
    limit = engine.lr_limit(p, X, engine.EngineSpec())
    assert limit is not None  # plain GD always has a limit
    lr = 0.5 * limit[0]
    spec = engine.EngineSpec(steps=T, record_every=T)
    data = engine.Data(X, y)
    t0 = time.perf_counter()
    jax.block_until_ready(engine.simulate(p, data, engine.Hyper(lr=lr), spec).params)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr = engine.simulate(p, data, engine.Hyper(lr=lr), spec)
    jax.block_until_ready(tr.params)
    t_eng = time.perf_counter() - t0
    t0 = time.perf_counter()
    W, a = numpy_gd(np.asarray(p.W), np.asarray(p.a), np.asarray(X), np.asarray(y), lr, T)
    t_np = time.perf_counter() - t0
    err = float(max(np.max(np.abs(np.asarray(tr.params.W) - W)), np.max(np.abs(np.asarray(tr.params.a) - a))))
    ceil = _matmul_ceiling()
    gf = 4 * n * d * m * T / t_eng / 1e9
    case = f"ReLU net GD, width {m}, n={n}, d={d}, {T} steps"
    return [dict(group="networks", name=f"{case}: engine vs numpy loop", seconds=t_eng, compile_s=max(first - t_eng, 0.0),
                 ratio=t_np / t_eng, ratio_of="numpy time / engine time", target=">= 2x", passed=t_np / t_eng >= 2.0,
                 note=f"numpy {t_np:.2f} s; max |param difference| {err:.1e}"),
            dict(group="networks", name=f"{case}: fraction of matmul ceiling", seconds=t_eng, gflops=gf,
                 ratio=gf / ceil, ratio_of=f"GFLOP/s / ceiling {ceil:.1f} GFLOP/s (f64 2048^3)", target=">= 0.5",
                 passed=gf / ceil >= 0.5, note="flops counted: the two products X W^T and g^T X, 4 n d m per step")]


def gram_probe(n: int, d: int, m: int, budget: int) -> dict:
    """One blocked NTK Gram in this process: seconds, block, estimated and measured peak bytes."""
    kx, kp = jax.random.split(jax.random.key(1))
    X = jax.random.normal(kx, (n, d), jnp.float64)
    p = networks.init_two_layer(kp, d, m)
    ntk.gram(p, X[:8], max_bytes=budget).K.block_until_ready()  # compile small shapes, touch the runtime
    rss0 = _status("VmRSS")
    hwm_reset = _reset_hwm()
    t0 = time.perf_counter()
    g = ntk.gram(p, X, max_bytes=budget)
    g.K.block_until_ready()
    sec = time.perf_counter() - t0
    peak = _status("VmHWM") - rss0 if hwm_reset else -1
    ref = np.asarray(ntk.gram_two_layer(p, X))
    err = float(np.max(np.abs(np.asarray(g.K) - ref)) / np.max(np.abs(ref)))
    return dict(seconds=sec, block=g.block, estimate=g.peak_bytes, measured=peak, budget=budget, rel_err=err,
                note="seconds include the compile of the block shape")


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _gram_row(n: int, d: int, m: int, budget: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--gram-probe", json.dumps([n, d, m, budget])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ))
    r = json.loads(out.stdout.strip().splitlines()[-1])
    ok = 0 < r["measured"] <= budget
    return dict(group="networks", name=f"empirical NTK Gram (autodiff, blocked), n={n}, width {m}, d={d}",
                seconds=r["seconds"], ratio=r["measured"] / 2 ** 20, ratio_of="measured peak MiB", target=f"peak <= budget "
                f"{budget / 2**20:.0f} MiB", passed=ok,
                note=f"block {r['block']} rows; estimate {r['estimate'] / 2**20:.0f} MiB; rel. error vs the two-layer "
                     f"formula {r['rel_err']:.1e}; {r['note']}")


def rows(quick: bool = False) -> list[dict]:
    """Benchmark rows (``quick``: small sizes for a smoke run)."""
    if quick:
        return _train_rows(64, 8, 256, 50) + [_gram_row(128, 8, 256, 2 ** 24)]
    return _train_rows(512, 32, 8192, 1000) + [_gram_row(2048, 32, 4096, 2 ** 30)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gram-probe", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.gram_probe:
        print(json.dumps(gram_probe(*json.loads(args.gram_probe))))
        return 0
    for r in rows(args.quick):
        print(json.dumps(r, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
