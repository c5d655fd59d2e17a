"""Shared timing helper for the benchmark modules."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import jax

__all__ = ["median_time"]


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(median seconds after a warm-up, warm-up minus median ≈ compile)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    return med, max(first - med, 0.0)
