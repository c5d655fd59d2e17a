"""Cost of coordination: one ``linkd sweep`` on two local processes against one process, on the same cores.

    python benchmarks/distributed_speed.py [--quick]

:func:`rows` returns rows in the format of ``benchmarks/run.py``'s table:

* the wall time of ``linkd sweep`` (a vectorized eigen_convergence grid of 32 points,
  ``--no-figures``, sized to take about a minute on one process of an idle 2-core machine) as one process, and as two processes
  with ``--distributed`` (gloo collectives, ``127.0.0.1``) on the same machine: the ratio two/one,
  target <= 1.15 (the overhead of coordination: a second interpreter, import and compile, the
  gather, process 0 writing everything). Each side is timed from launch to exit (imports and
  compilation included, since the second process pays them again), once, median of ``repeats``.
* the CPU time (user + sys of the processes) two/one: the work coordination adds, which other load
  on the cores does not distort as it does the wall time.
* the bitwise check: the two directories are equal file for file, byte for byte, apart from the
  timing, command and host fields of ``meta.json``/``sweep.json`` (docs/distributed.md).

Nothing else may run on the cores for the numbers to mean anything; on a shared machine the ratio is noise.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 1.15
VOLATILE = {"start_time", "wall_seconds", "command", "devices", "platform", "backend", "git"}


def sweep_argv(quick: bool) -> list[str]:
    """The benchmarked sweep (32 vectorized points at full size, 8 at quick)."""
    seeds = ",".join(str(s) for s in range(8 if not quick else 2))
    size = ["data.n=100", "data.d=200", "student.steps=2000", "teacher.steps=200"] if not quick else \
        ["data.n=40", "data.d=60", "student.steps=200", "teacher.steps=50", "record.directions=1,2,5"]
    return ["sweep", "eigen_convergence", "--grid", "train.lr_fraction=0.2,0.4,0.6,0.8", "--grid",
            f"run.seed={seeds}", "--set", *size, "--no-figures", "-q"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    env.pop("XLA_FLAGS", None)
    return env


def run_one(argv: list[str], out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "linkd", *argv, "--out", str(out)], env=_env(), check=True,
                   capture_output=True, timeout=1800)
    return time.perf_counter() - t0


def run_two(argv: list[str], out: Path) -> float:
    env = {**_env(), "LINKD_COORDINATOR": f"127.0.0.1:{_port()}", "LINKD_NUM_PROCESSES": "2"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "linkd", *argv, "--out", str(out), "--distributed"],
                              env={**env, "LINKD_PROCESS_ID": str(i)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    try:
        for p in procs:
            _, err = p.communicate(timeout=1800)
            if p.returncode:
                raise RuntimeError(f"process failed ({p.returncode}): {err.decode()[-300:]}")
    finally:
        for p in procs:
            p.kill()
    return time.perf_counter() - t0


def _norm(path: Path):
    if path.name in ("meta.json", "sweep.json"):
        return {k: v for k, v in json.loads(path.read_text()).items() if k not in VOLATILE}
    return path.read_bytes()


def same_tree(a: Path, b: Path) -> list[str]:
    """Files that differ between two sweep directories (timing, command and host fields aside)."""
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if fa != fb:
        return sorted(str(f) for f in set(fa) ^ set(fb))
    return [str(f) for f in fa if _norm(a / f) != _norm(b / f)]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def rows(quick: bool = False, repeats: int = 1) -> list[dict]:
    argv = sweep_argv(quick)
    one, two, differ, cpu1, cpu2 = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="linkd-dist-bench-") as tmp:
        for r in range(repeats):
            a, b = Path(tmp) / f"one{r}", Path(tmp) / f"two{r}"
            c0 = _cpu()
            one.append(run_one(argv, a))
            c1 = _cpu()
            two.append(run_two(argv, b))
            cpu1.append(c1 - c0)
            cpu2.append(_cpu() - c1)
            differ = same_tree(a, b)
    t1, t2 = statistics.median(one), statistics.median(two)
    k1, k2 = statistics.median(cpu1), statistics.median(cpu2)
    load = os.getloadavg()[0]
    points = len(argv[3].split(",")) * len(argv[5].split(","))
    note = (f"{points} points, {os.cpu_count()} cores, load avg {load:.1f} at the end"
            + ("; other work on the cores: noisy" if load > (os.cpu_count() or 1) else ""))
    return [
        dict(group="distributed", name=f"linkd sweep, 1 process ({points} points)", seconds=t1, note=note),
        dict(group="distributed", name="linkd sweep --distributed, 2 processes, same cores", seconds=t2,
             ratio=t2 / t1, ratio_of="2 processes / 1", target=f"<= {TARGET}", passed=t2 / t1 <= TARGET,
             note="wall from launch to exit, imports and compile included"),
        dict(group="distributed", name="CPU seconds (user+sys), 2 processes / 1", seconds=k2, ratio=k2 / k1,
             ratio_of="2 processes / 1", note=f"1 process {k1:.1f} s CPU; robust to other load on the cores "
                                               "(the wall ratio is not)"),
        dict(group="distributed", name="2-process sweep directory == 1-process (bitwise)", passed=not differ,
             note="equal byte for byte apart from timing/command/host fields" if not differ
             else f"differ: {', '.join(differ[:5])}"),
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    for r in rows(args.quick, args.repeats):
        print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
