"""Peak memory of one engine run, measured in a fresh process (called by benchmarks/run.py).

Usage: ``python benchmarks/memprobe.py '{"path": "plain", "n": 8000, "d": 2000, "T": 40, ...}'``
prints one JSON line: the engine's own estimate, the data bytes, and the measured peaks.

Method: build the data on the device, run once (compile), drop the outputs, read the resident
set, reset the kernel's high-water mark (``/proc/self/clear_refs`` = 5, Linux ≥ 4.0), run again
and read ``VmHWM``. ``run_bytes`` = data + (peak during the second run − resident before it): the
run's own footprint, without the interpreter, jax's runtime and the compiler (reported separately
as ``process_peak_bytes``). On a GPU, ``device.memory_stats()["peak_bytes_in_use"]`` is used
instead when available.
"""
from __future__ import annotations

import gc
import json
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from linkd import engine  # noqa: E402


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


def main(case: dict) -> dict:
    n, d, T, every, m = case["n"], case["d"], case["T"], case["every"], case.get("m", 10)
    family, path = case.get("family", "mse"), case["path"]
    k1, k2 = jax.random.split(jax.random.key(0))
    X = jax.random.normal(k1, (n, d), jnp.float64) / float(np.sqrt(d))
    z = X @ jax.random.normal(k2, (d,), jnp.float64)
    axis = case.get("axis", False)
    spectrum = None
    if path in ("eigen", "closed_form"):
        spectrum = engine.thin_spectrum(X)
    basis = None if axis else (jnp.eye(d, m, dtype=X.dtype) if spectrum is None else spectrum.basis[:, :m])
    data = engine.Data(X, z, basis=basis)
    spec = engine.EngineSpec(family=family, steps=T, record_every=every)
    hyper = engine.Hyper(lr=0.5)
    w0 = jnp.zeros(d, X.dtype)
    top = m if axis else None
    data_bytes = int(sum(x.nbytes for x in jax.tree_util.tree_leaves(data)))
    R = len(spec.recorded_steps)
    recorded = R * (m + 8) * 8
    if path == "plain":
        estimate = engine.memory.record_bytes(spec, data, w0)

        def run():
            return engine.simulate(w0, data, hyper, spec)
    else:
        estimate = engine.estimate_bytes(path, w0, data, spec, spectrum=spectrum, record_top=top).total

        def run():
            return engine.simulate_auto(w0, data, hyper, spec, spectrum, path=path, record_top=top)

    jax.block_until_ready(run())
    gc.collect()
    dev = jax.devices()[0]
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    before = _status("VmRSS")
    reset = _reset_hwm()
    jax.block_until_ready(run())
    peak = _status("VmHWM")
    out = {
        "case": case,
        "data_bytes": data_bytes,
        "recorded_bytes": recorded,
        "estimate_bytes": int(estimate),
        "process_peak_bytes": peak,
        "hwm_reset": reset,
    }
    if stats and "peak_bytes_in_use" in (dev.memory_stats() or {}):
        out["run_bytes"] = int(dev.memory_stats()["peak_bytes_in_use"])
        out["method"] = "device.memory_stats peak_bytes_in_use"
    else:
        out["run_bytes"] = int(data_bytes + max(peak - before, 0)) if reset else int(peak)
        out["method"] = "data + VmHWM delta over the second run" if reset else "process VmHWM"
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
