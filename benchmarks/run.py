"""linkd benchmarks: one entry point, one run, the same inputs for every contender (issue 6).

    python benchmarks/run.py [--quick] [--out benchmarks/results.json]    (make bench)

Measures, float64 unless a row says f32: the machine's ceilings (mat-vec and matmul GFLOP/s via
jitted jax, copy bandwidth); the engine (``engine.simulate``, record every 10) against a plain
numpy loop and a Python loop over a jitted step, for MSE and soft cross-entropy; a vmapped sweep
of 64 configurations against 64 sequential numpy runs; the fast exact paths (closed form, Gram,
eigen) against the simulation they replace; recording every step / every 10 / not at all, on the
plain and the eigen engine; peak memory of each engine against its own estimate (fresh
subprocess per case). Every time is the median of repeats after a warm-up call (compile time is
reported separately) with ``block_until_ready``. Targets print PASS/MISS with the measured ratio
and, for a miss, the reason. Runs unchanged on a GPU (``JAX_PLATFORMS=cuda``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import jax

if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from linkd import engine, spectral  # noqa: E402
from linkd.dtypes import x64_enabled  # noqa: E402

F64 = jnp.float64

# --------------------------------------------------------------------------------------------
# sizes

# GPU section (issue 12): single trajectories (n, d, dtype, T), sweeps (n, d, S, dtype, T), the
# read-bandwidth probe (GiB, a reduction), the matmul ceiling size, the f32-vs-f64 error case.
GPU_SIZES = dict(traj=[(32768, 4096, "f32", 200), (16384, 4096, "f64", 100)],
                 sweep=[(8192, 2048, 512, "f32", 20), (4096, 2048, 256, "f64", 20)],
                 bw_gib=2.0, mm=8192, err=(8192, 2048, 200))
GPU_TINY = dict(traj=[(64, 32, "f32", 10)], sweep=[(48, 32, 4, "f64", 5)],
                bw_gib=1 / 1024, mm=64, err=(40, 20, 20))


def sizes(mode: str) -> dict:
    """``full`` (make bench), ``quick`` (< 1 min), ``tiny`` (the smoke test)."""
    if mode == "full":
        return dict(
            traj=[(200, 100, 5000), (2000, 1000, 2000), (8000, 2000, 400)],
            sweep=(2000, 1000, 100, 64), rec=(2000, 1000, 2000), ceil_mv=(2000, 1000, 200),
            ceil_mm=2000, copy_mb=512, mem=(8000, 2000, 400), big_d=(50, 100_000, 200), repeats=3,
            mem_paths=("plain", "eigen", "gram", "closed_form"), gpu=GPU_SIZES, extra=True,
        )
    if mode == "quick":
        return dict(
            traj=[(200, 100, 1000), (1000, 500, 200), (2000, 1000, 40)],
            sweep=(1000, 500, 20, 64), rec=(1000, 500, 100), ceil_mv=(1000, 500, 50),
            ceil_mm=1000, copy_mb=128, mem=(2000, 1000, 40), big_d=None, repeats=2, mem_paths=("plain",),
            gpu=GPU_SIZES, extra=False,
        )
    return dict(
        traj=[(40, 20, 50), (60, 30, 20), (80, 40, 10)],
        sweep=(60, 30, 10, 8), rec=(60, 30, 20), ceil_mv=(60, 30, 5),
        ceil_mm=64, copy_mb=1, mem=None, big_d=None, repeats=1, gpu=GPU_TINY, extra=False,
    )


# --------------------------------------------------------------------------------------------
# timing


def _block(x):
    for leaf in jax.tree_util.tree_leaves(x):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return x


def timeit(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(median seconds over ``repeats`` calls after a warm-up, warm-up minus median ≈ compile)."""
    t0 = time.perf_counter()
    _block(fn())
    first = time.perf_counter() - t0
    ts = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        _block(fn())
        ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    return med, max(first - med, 0.0)


class Table:
    """Rows: name, seconds, GFLOP/s, ratio (what it measures in ``ratio_of``), target, status."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, group, name, seconds=None, gflops=None, ratio=None, ratio_of="", target=None, passed=None,
            note="", compile_s=None, **extra):
        row = dict(group=group, name=name, seconds=seconds, gflops=gflops, ratio=ratio, ratio_of=ratio_of,
                   target=target, passed=passed, note=note, compile_s=compile_s, **extra)
        self.rows.append(row)
        return row

    def render(self) -> str:
        head = f"{'group':<10} {'case':<46} {'time s':>9} {'compile':>8} {'GFLOP/s':>8} {'ratio':>9}  {'target':<26} status"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            f = lambda v, w, p: (" " * (w - 1) + "-" if not isinstance(v, (int, float)) else  # noqa: E731
                                 f"{v:{w}.2e}" if 0 < abs(v) < 1e-3 else f"{v:{w}.{p}f}")
            status = "" if r["passed"] is None else ("PASS" if r["passed"] else "MISS")
            tgt = r["target"] or ""
            lines.append(
                f"{r['group']:<10} {r['name'][:46]:<46} {f(r['seconds'], 9, 4)} {f(r['compile_s'], 8, 2)} "
                f"{f(r['gflops'], 8, 2)} {f(r['ratio'], 9, 3)}  {tgt[:26]:<26} {status}"
            )
            of, note = r["ratio_of"] or "", r["note"] or ""
            if of or note:
                lines.append(f"{'':<10}   {of}{'; ' if of and note else ''}{note}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# inputs (identical for every contender)


def make_problem(n, d, family, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    z = X @ rng.standard_normal(d)
    lam_max = float(np.linalg.eigvalsh(X.T @ X / n)[-1])
    lr = 0.9 / lam_max if family == "mse" else 0.9 / (lam_max / 4)
    return X, z, lr


def np_loop(X, z, lr, T, family):
    """The baseline: the same GD in plain numpy (no recording)."""
    n = X.shape[0]
    w = np.zeros(X.shape[1])
    if family == "mse":
        for _ in range(T):
            w -= (lr / n) * (X.T @ (X @ w - z))
    else:
        p = 1.0 / (1.0 + np.exp(-z))
        for _ in range(T):
            u = X @ w
            w -= (lr / n) * (X.T @ (1.0 / (1.0 + np.exp(-u)) - p))
    return w


def jit_step_loop(X, z, lr, T, family):
    """A Python loop over a jitted step (one dispatch per step)."""
    n = X.shape[0]
    if family == "mse":
        def grad(w):
            return X.T @ (X @ w - z) / n
    else:
        p = jax.nn.sigmoid(z)

        def grad(w):
            return X.T @ (jax.nn.sigmoid(X @ w) - p) / n
    step = _jit_cache.setdefault((id(X), family), jax.jit(lambda w: w - lr * grad(w)))

    def run():
        w = jnp.zeros(X.shape[1], X.dtype)
        for _ in range(T):
            w = step(w)
        return w

    return run


_jit_cache: dict = {}


# --------------------------------------------------------------------------------------------
# sections


def ceilings(tab: Table, S: dict) -> dict:
    n, d, K = S["ceil_mv"]
    out = {}
    for dt, name in ((jnp.float64, "f64"), (jnp.float32, "f32")):
        X = jax.random.normal(jax.random.key(1), (n, d), dt) / float(np.sqrt(d))
        v0 = jnp.ones(d, dt)

        @jax.jit
        def mv(X, v):
            return jax.lax.fori_loop(0, K, lambda i, v: v - 0.1 * jnp.tensordot(X, X @ v, axes=([0], [0])) / n, v)

        t, c = timeit(lambda: mv(X, v0), S["repeats"])
        gf = 4 * n * d * K / t / 1e9
        out[f"matvec_{name}"] = gf
        tab.add("ceiling", f"mat-vec pair X^T(Xv) {name} ({n}x{d}, x{K})", t, gf, compile_s=c,
                note=f"X = {X.nbytes / 2**20:.0f} MiB")
        N = S["ceil_mm"]
        A = jax.random.normal(jax.random.key(2), (N, N), dt)
        mm = jax.jit(lambda A: A @ A)
        t, c = timeit(lambda: mm(A), S["repeats"])
        gf = 2 * N**3 / t / 1e9
        out[f"matmul_{name}"] = gf
        tab.add("ceiling", f"matmul {name} ({N}^3)", t, gf, compile_s=c)
    out.update(bandwidth(tab, S["copy_mb"], S["repeats"]))
    return out


def bandwidth(tab: Table, mb: int, repeats: int) -> dict:
    """Memory bandwidth with numpy on a buffer far larger than any cache: read (a sum) and copy
    (read + write into a preallocated buffer), the best of ``2 + repeats`` passes each (the first
    touches the pages). The old probe timed a jitted elementwise op that allocated and first-touched
    a fresh output every call (1.2 GB/s: page faults, not bandwidth)."""
    x = np.ones(mb * 2**20 // 8)
    y = np.empty_like(x)
    def best(fn):
        ts = []
        for _ in range(2 + max(repeats, 1)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts)
    t_read = best(lambda: float(x.sum()))
    t_copy = best(lambda: np.copyto(y, x))
    read, copy = x.nbytes / t_read / 1e9, 2 * x.nbytes / t_copy / 1e9
    tab.add("ceiling", f"read bandwidth (numpy sum over {mb} MiB f64)", t_read, None, ratio=read, ratio_of="GB/s, best pass")
    tab.add("ceiling", f"copy bandwidth (numpy copyto, read+write {mb} MiB f64)", t_copy, None, ratio=copy, ratio_of="GB/s, best pass")
    return {"read_GBps": read, "copy_GBps": copy}


def trajectories(tab: Table, S: dict, ceil: dict) -> dict:
    res = {}
    for (n, d, T) in S["traj"]:
        for family in ("mse", "binary"):
            X, z, lr = make_problem(n, d, family)
            Xj, zj = jnp.asarray(X), jnp.asarray(z)
            data = engine.Data(Xj, zj)
            spec = engine.EngineSpec(family=family, steps=T, record_every=10)
            hyper = engine.Hyper(lr=lr)
            w0 = jnp.zeros(d, F64)
            flops = 4.0 * n * d * T
            reps = S["repeats"]
            t_np, _ = timeit(lambda: np_loop(X, z, lr, T, family), reps)
            t_jl, c_jl = timeit(jit_step_loop(Xj, zj, lr, T, family), reps)
            t_en, c_en = timeit(lambda: engine.simulate(w0, data, hyper, spec), reps)
            fam = "MSE" if family == "mse" else "soft-CE"
            g = f"traj {fam}"
            tag = f"({n},{d},{T})"
            tab.add(g, f"numpy loop {tag}", t_np, flops / t_np / 1e9)
            tab.add(g, f"python loop, jitted step {tag}", t_jl, flops / t_jl / 1e9, t_np / t_jl, "speed-up vs numpy", compile_s=c_jl)
            row = tab.add(g, f"engine, record every 10 {tag}", t_en, flops / t_en / 1e9, t_np / t_en, "speed-up vs numpy", compile_s=c_en)
            res[(n, d, T, family)] = dict(numpy=t_np, jit_loop=t_jl, engine=t_en)
            i = S["traj"].index((n, d, T))
            if i == 0:
                row.update(target=">= 2x numpy", passed=t_np / t_en >= 2.0)
                if not row["passed"]:
                    row["note"] = "small problem: a few us per step, where XLA's per-op dispatch inside the loop weighs as much as the two mat-vecs"
            elif i == 1:
                row.update(target=">= 1x numpy", passed=t_np / t_en >= 1.0)
                if not row["passed"]:
                    row["note"] = "numpy's threaded OpenBLAS gemv streams X from cache faster than XLA:CPU's gemv (see the mat-vec ceiling row)"
                frac = (flops / t_en / 1e9) / ceil["matvec_f64"]
                tab.add(g, f"engine / mat-vec ceiling {tag}", None, None, frac, "fraction of measured f64 mat-vec GFLOP/s",
                        ">= 0.85 of mat-vec ceiling", frac >= 0.85,
                        note="" if frac >= 0.85 else "the scan step adds the loss/gradient elementwise work and a record every 10 steps (n*d per record)")
            else:
                floor = T * 2 * X.nbytes / (ceil["read_GBps"] * 1e9)
                frac = floor / t_en
                tab.add(g, f"engine / bandwidth floor {tag}", floor, None, frac, "floor time (2 reads of X per step at read BW) / engine time",
                        ">= 0.80 of bandwidth floor", frac >= 0.80,
                        note="" if frac >= 0.80 else "XLA's CPU gemv does not stream X at full copy bandwidth (and the machine is shared)")
    return res


def sweep_section(tab: Table, S: dict, ceil: dict) -> None:
    n, d, T, K = S["sweep"]
    X, z, lr = make_problem(n, d, "mse")
    Xj, zj = jnp.asarray(X), jnp.asarray(z)
    lrs = np.linspace(0.2, 1.0, K) * lr
    spec = engine.EngineSpec(family="mse", steps=T, record_every=10)
    data = engine.Data(Xj, zj)
    t_sw, c_sw = timeit(lambda: engine.sweep(jnp.zeros(d, F64), data, engine.Hyper(lr=jnp.asarray(lrs)), spec), S["repeats"])
    t_np, _ = timeit(lambda: [np_loop(X, z, float(a), T, "mse") for a in lrs], max(1, S["repeats"] - 1))
    flops = 4.0 * n * d * T * K
    gf = flops / t_sw / 1e9
    tag = f"({n},{d},{T}) x {K}"
    tab.add("sweep", f"{K} sequential numpy runs {tag}", t_np, flops / t_np / 1e9)
    tab.add("sweep", f"vmapped sweep {tag}", t_sw, gf, t_np / t_sw, f"speed-up vs {K} numpy runs", f">= 3x {K} numpy runs",
            t_np / t_sw >= 3.0, compile_s=c_sw)
    frac = gf / ceil["matmul_f64"]
    tab.add("sweep", f"sweep / matmul ceiling {tag}", None, None, frac, "fraction of measured f64 matmul GFLOP/s",
            ">= 0.75 of matmul ceiling", frac >= 0.75,
            note="" if frac >= 0.75 else f"a ({n}x{d})@({d}x{K}) product is skinny: X is re-read for only {K} columns, memory-bound below the square-matmul peak")


def fast_paths(tab: Table, S: dict, traj: dict) -> None:
    n, d, T = S["traj"][1]
    X, z, lr = make_problem(n, d, "mse")
    Xj, zj = jnp.asarray(X), jnp.asarray(z)
    reps = S["repeats"]
    t_sp, _ = timeit(lambda: spectral.eigh_desc(Xj), reps)
    sp = spectral.eigh_desc(Xj)
    data = engine.Data(Xj, zj, basis=sp.basis[:, :10])
    spec = engine.EngineSpec(family="mse", steps=T, record_every=10)
    hyper = engine.Hyper(lr=lr)
    w0 = jnp.zeros(d, F64)
    t_np = traj[(n, d, T, "mse")]["numpy"]
    tag = f"({n},{d},{T})"
    tab.add("mse paths", f"spectrum eigh_desc (once per data set) d={d}", t_sp, None)
    t_plain, c = timeit(lambda: engine.simulate(w0, data, hyper, spec), reps)
    tab.add("mse paths", f"plain engine, top-10 coeffs {tag}", t_plain, 4.0 * n * d * T / t_plain / 1e9, t_np / t_plain, "speed-up vs numpy loop", compile_s=c)
    best = None
    for path in ("eigen", "gram", "closed_form"):
        fn = {"eigen": lambda: engine.simulate_eigen(w0, data, hyper, spec, sp),
              "gram": lambda: engine.simulate_gram(w0, data, hyper, spec),
              "closed_form": lambda: engine.simulate_closed_form(w0, data, hyper, spec, sp)}[path]
        t, c = timeit(fn, reps)
        best = t if best is None else min(best, t)
        tab.add("mse paths", f"{path} {tag}", t, None, t_np / t, "speed-up vs numpy loop", compile_s=c,
                note=f"with the spectrum: {t_np / (t + t_sp):.1f}x" if path in ("eigen", "closed_form") else "")
    tab.add("mse paths", f"fastest path vs numpy loop {tag}", best, None, t_np / best, "numpy loop / fastest exact path",
            ">= 100x numpy loop", t_np / best >= 100,
            note="spectrum computed once per data set and shared by every run and sweep member")
    tab.add("mse paths", f"closed form vs the simulation it replaces {tag}", None, None, t_plain / best, "plain engine / closed form")


def recording(tab: Table, S: dict) -> None:
    n, d, T = S["rec"]
    X, z, lr = make_problem(n, d, "binary")
    Xj, zj = jnp.asarray(X), jnp.asarray(z)
    sp = spectral.eigh_desc(Xj)
    data = engine.Data(Xj, zj, basis=sp.basis)  # all d eigen-coefficients
    Z = engine.eigen.eigen_design(Xj, sp)  # once per data set, like the spectrum
    hyper = engine.Hyper(lr=lr)
    w0 = jnp.zeros(d, F64)
    reps = S["repeats"]
    tag = f"soft-CE ({n},{d},{T}), all {d} coeffs"
    t_z, _ = timeit(lambda: engine.eigen.eigen_design(Xj, sp), reps)
    tab.add("record eigen", f"setup Z = XV (once per data set) ({n},{d})", t_z, 2.0 * n * d * d / t_z / 1e9)
    for path in ("plain", "eigen"):
        times = {}
        for label, every in (("every step", 1), ("every 10", 10), ("none (0 and T)", T)):
            spec = engine.EngineSpec(family="binary", steps=T, record_every=every)
            if path == "plain":
                fn = lambda spec=spec: engine.simulate(w0, data, hyper, spec)  # noqa: E731
            else:
                fn = lambda spec=spec: engine.simulate_eigen(w0, data, hyper, spec, sp, design=Z)  # noqa: E731
            t, c = timeit(fn, reps)
            times[every] = t
            tab.add(f"record {path}", f"{label} {tag}", t, 4.0 * n * d * T / t / 1e9, compile_s=c)
        r = times[1] / times[T]
        tab.add(f"record {path}", f"every step / none {tag}", None, None, r, "time ratio", target="<= 1.2x not recording",
                passed=r <= 1.2, note="" if r <= 1.2 else (
                    "plain engine: each record multiplies w by the d x d basis (d^2 flops = d/(4n) of a step) and evaluates the metrics"
                    if path == "plain" else "the metrics at every step add elementwise work over n"))


def memory(tab: Table, S: dict) -> None:
    if S["mem"] is None:
        return
    n, d, T = S["mem"]
    cases = [dict(path=p, n=n, d=d, T=T, every=10, family="mse") for p in S["mem_paths"]]
    if S["big_d"] is not None:
        bn, bd, bT = S["big_d"]
        cases.append(dict(path="eigen", n=bn, d=bd, T=bT, every=10, family="binary", axis=True))
    probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "memprobe.py")
    for case in cases:
        try:
            # a fixed mmap threshold: every large buffer is its own mapping, returned to the OS when
            # freed, so the resident-set high-water mark follows the live arrays
            env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
            out = subprocess.run([sys.executable, probe, json.dumps(case)], capture_output=True, text=True, timeout=300,
                                 check=True, env=env)
            r = json.loads(out.stdout.strip().splitlines()[-1])
        except (subprocess.SubprocessError, ValueError, IndexError) as e:
            tab.add("memory", f"{case['path']} ({case['n']},{case['d']},{case['T']})", note=f"probe failed: {e}")
            continue
        need = r["data_bytes"] + r["recorded_bytes"]
        ratio = r["run_bytes"] / need
        name = f"{case['path']}{' axis top-10' if case.get('axis') else ''} ({case['n']},{case['d']},{case['T']})"
        tab.add("memory", name, None, None, ratio, f"run peak / (data + recorded); run {r['run_bytes'] / 2**20:.0f} MiB, "
                f"data+rec {need / 2**20:.0f} MiB, estimate {r['estimate_bytes'] / 2**20:.0f} MiB, process peak {r['process_peak_bytes'] / 2**20:.0f} MiB",
                "<= 1.5x (data + recorded)", ratio <= 1.5, estimate_bytes=r["estimate_bytes"], run_bytes=r["run_bytes"],
                note="" if ratio <= 1.5 else "the path's work arrays (Z = XV, Σ̂, the basis) are counted in its estimate, not in data + recorded")


# --------------------------------------------------------------------------------------------
# GPU (runs only when jax.devices()[0].platform == "gpu"; ``force=True`` runs the same code on CPU)

_DT = {"f32": jnp.float32, "f64": jnp.float64}


def gpu_present() -> bool:
    return jax.devices()[0].platform == "gpu"


def _gpu_problem(n, d, dt, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    X = jax.random.normal(k1, (n, d), _DT[dt]) / float(np.sqrt(d))
    z = engine.objective.logits(X, jax.random.normal(k2, (d,), _DT[dt]))
    return X, z, engine.default_lr(X, "mse")


def gpu_ceilings(tab: Table, G: dict, reps: int) -> dict:
    """Read bandwidth (a jitted sum over ``bw_gib`` GiB on the device) and matmul GFLOP/s at the
    precision the engine uses (``Precision.HIGHEST``: true f32, no TF32)."""
    x = jnp.ones(int(G["bw_gib"] * 2**30) // 4, jnp.float32)
    total = jax.jit(jnp.sum)
    t, c = timeit(lambda: total(x), reps)
    out = {"read_GBps": x.nbytes / t / 1e9}
    tab.add("gpu", f"read bandwidth (jnp.sum over {x.nbytes / 2**30:.3g} GiB f32)", t, None, out["read_GBps"], "GB/s", compile_s=c)
    N = G["mm"]
    for dt in ("f32", "f64"):
        A = jax.random.normal(jax.random.key(3), (N, N), _DT[dt])
        mm = jax.jit(lambda a: jnp.matmul(a, a, precision=jax.lax.Precision.HIGHEST))
        t, c = timeit(lambda: mm(A), reps)
        out[f"matmul_{dt}"] = 2.0 * N**3 / t / 1e9
        tab.add("gpu", f"matmul {dt} HIGHEST ({N}^3)", t, out[f"matmul_{dt}"], compile_s=c)
    return out


def gpu_section(tab: Table, S: dict, force: bool = False) -> dict:
    """Single trajectories against the read floor (2 reads of X per step), sweeps against the
    matmul ceiling, and the f32 engine's error against the f64 closed form."""
    if not (force or gpu_present()):
        tab.add("gpu", "GPU section skipped", note=f"no GPU: jax.devices()[0].platform = {jax.devices()[0].platform!r}")
        return {"skipped": True}
    G, reps = S["gpu"], S["repeats"]
    ceil = gpu_ceilings(tab, G, reps)
    for n, d, dt, T in G["traj"]:
        X, z, lr = _gpu_problem(n, d, dt)
        spec = engine.EngineSpec(family="mse", steps=T, record_every=10)
        w0 = jnp.zeros(d, X.dtype)
        t, c = timeit(lambda: engine.simulate(w0, engine.Data(X, z), engine.Hyper(lr=lr), spec), reps)
        frac = T * 2 * X.nbytes / (ceil["read_GBps"] * 1e9) / t
        tab.add("gpu", f"MSE trajectory {dt} ({n},{d},{T}) vs read floor", t, 4.0 * n * d * T / t / 1e9, frac,
                "floor (2 reads of X per step at read BW) / time", ">= 0.70 of read floor", frac >= 0.70, compile_s=c,
                note=f"{1e3 * t / T:.3f} ms per step")
    for n, d, K, dt, T in G["sweep"]:
        X, z, lr = _gpu_problem(n, d, dt)
        spec = engine.EngineSpec(family="mse", steps=T, record_every=10)
        hyper = engine.Hyper(lr=jnp.asarray(np.linspace(0.2, 1.0, K) * lr, X.dtype))
        t, c = timeit(lambda: engine.sweep(jnp.zeros(d, X.dtype), engine.Data(X, z), hyper, spec), reps)
        gf = 4.0 * n * d * K * T / t / 1e9
        frac = gf / ceil[f"matmul_{dt}"]
        tab.add("gpu", f"{K}-member sweep {dt} ({n},{d},{T})", t, gf, frac, f"fraction of the {dt} HIGHEST matmul ceiling",
                ">= 0.85 of matmul ceiling", frac >= 0.85, compile_s=c)
    return {"error": gpu_f32_error(tab, G), **ceil}


def gpu_f32_error(tab: Table, G: dict) -> float:
    """Relative error of the f32 engine's final weights against the f64 closed form (same data)."""
    n, d, T = G["err"]
    X, z, lr = _gpu_problem(n, d, "f64", seed=1)
    spec = engine.EngineSpec(family="mse", steps=T, record_every=T)
    w0 = jnp.zeros(d)
    exact = engine.simulate_closed_form(w0, engine.Data(X, z), engine.Hyper(lr=lr), spec, engine.thin_spectrum(X)).params
    X32, z32 = X.astype(jnp.float32), z.astype(jnp.float32)
    got = engine.simulate(w0.astype(jnp.float32), engine.Data(X32, z32), engine.Hyper(lr=lr), spec).params
    err = float(jnp.linalg.norm(got.astype(jnp.float64) - exact) / jnp.linalg.norm(exact))
    tab.add("gpu", f"f32 engine vs f64 closed form ({n},{d},{T}), ||w32 - w64|| / ||w64||", None, None, err, "relative error",
            note="float32 rounding accumulated over T steps (HIGHEST precision: no TF32)")
    return err


# --------------------------------------------------------------------------------------------
# rows from the other benchmark modules (each exposes rows() -> list[dict])

EXTRA_MODULES = ("closed_form_speed", "temperature_speed", "network_speed", "claims_speed", "sgd_speed",
                 "distributed_speed")
_ROW_KEYS = ("group", "name", "seconds", "gflops", "ratio", "ratio_of", "target", "passed", "note", "compile_s")


def extra_rows(tab: Table, modules=EXTRA_MODULES) -> None:
    """Import ``benchmarks.<module>`` when present and add its ``rows()`` to the table."""
    import importlib

    for mod in modules:
        try:
            m = importlib.import_module(f"benchmarks.{mod}")
        except ImportError as e:
            tab.add("extra", f"benchmarks/{mod}.py", note=f"not present ({e})")
            continue
        try:
            rows = m.rows()
        except Exception as e:  # a broken sibling benchmark must not hide this run's table
            tab.add("extra", f"benchmarks/{mod}.py rows()", note=f"failed: {type(e).__name__}: {e}")
            continue
        for r in rows:
            rest = {k: v for k, v in r.items() if k not in _ROW_KEYS}
            tab.add(r.get("group", mod), r.get("name", mod), **{k: r.get(k) for k in _ROW_KEYS[2:]}, **rest)


# --------------------------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    dev = jax.devices()[0]
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "jax": jax.__version__, "jaxlib": getattr(jax.lib, "__version__", None) or __import__("jaxlib").__version__,
        "numpy": np.__version__, "backend": jax.default_backend(), "device": str(dev.device_kind),
        "devices": len(jax.devices()), "x64": x64_enabled(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "loadavg_start": os.getloadavg(),
        "no_gpu_note": None if jax.default_backend() != "cpu" else "no GPU on this machine: GPU numbers not measured (run with JAX_PLATFORMS=cuda on one)",
    }


def run(mode: str = "full", out: str | None = None, verbose: bool = True) -> dict:
    """Run every section at ``mode`` sizes; returns {"machine", "mode", "rows", "table"}."""
    if not x64_enabled():
        raise RuntimeError("benchmarks run in float64: enable jax_enable_x64 before calling run()")
    S = sizes(mode)
    info = machine_info()
    tab = Table()
    t0 = time.perf_counter()
    with jax.numpy_dtype_promotion("standard"):
        ceil = ceilings(tab, S)
        traj = trajectories(tab, S, ceil)
        sweep_section(tab, S, ceil)
        fast_paths(tab, S, traj)
        recording(tab, S)
        memory(tab, S)
        if S["extra"]:
            extra_rows(tab)
        gpu_section(tab, S)
    info["loadavg_end"] = os.getloadavg()
    info["wall_s"] = time.perf_counter() - t0
    text = tab.render()
    result = {"machine": info, "mode": mode, "rows": tab.rows, "table": text}
    if verbose:
        print(f"linkd benchmarks ({mode}) on {info['cpu']}, {info['cores']} cores, backend {info['backend']}, "
              f"jax {info['jax']}, numpy {info['numpy']}, float64; load avg {info['loadavg_start'][0]:.1f}")
        print(text)
        print(f"wall {info['wall_s']:.0f} s; load avg at end {info['loadavg_end'][0]:.1f}")
    if out:
        from linkd.atomic import atomic_write_text

        atomic_write_text(out, json.dumps(result, indent=1, default=str))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json"))
    a = ap.parse_args(argv)
    run("quick" if a.quick else "full", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
