"""benchmarks/run.py runs end to end at tiny sizes (no timing assertions: never a timed unit test)."""
import os
import sys

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import run as bench  # noqa: E402

GROUPS = ["ceiling", "traj MSE", "traj soft-CE", "sweep", "mse paths", "record plain", "record eigen", "gpu"]


def test_quick_benchmark_tiny_sizes(tmp_path):
    out = tmp_path / "results.json"
    res = bench.run("tiny", str(out), verbose=False)
    assert out.exists()
    groups = {r["group"] for r in res["rows"]}
    assert set(GROUPS) <= groups
    names = [r["name"] for r in res["rows"]]
    for key in ("mat-vec", "matmul", "read bandwidth", "copy bandwidth", "numpy loop", "python loop",
                "engine, record every 10", "vmapped sweep", "closed_form", "gram", "eigen", "every step", "every 10", "none"):
        assert any(key in n for n in names), key
    ratios = [r["ratio"] for r in res["rows"] if r["ratio"] is not None]
    assert ratios and all(r > 0 for r in ratios)
    assert all(r["seconds"] is None or r["seconds"] > 0 for r in res["rows"])
    assert res["machine"]["backend"] and res["machine"]["cores"]
    assert "MISS" in res["table"] or "PASS" in res["table"]
    # no GPU here: the GPU section says it was skipped and measures nothing
    assert jax.devices()[0].platform == "cpu"
    gpu = [r for r in res["rows"] if r["group"] == "gpu"]
    assert len(gpu) == 1 and "skipped" in gpu[0]["name"] and gpu[0]["ratio"] is None


def test_gpu_section_code_runs_on_cpu_at_tiny_sizes():
    """The GPU section's code (forced onto CPU at tiny sizes): every row measured, and the f32
    engine's error against the f64 closed form is float32 rounding, not an algorithmic gap."""
    tab = bench.Table()
    with jax.numpy_dtype_promotion("standard"):
        res = bench.gpu_section(tab, bench.sizes("tiny"), force=True)
    names = [r["name"] for r in tab.rows]
    assert sum("trajectory f32" in n for n in names) == 1 and sum("sweep f64" in n for n in names) == 1
    assert any("read bandwidth" in n for n in names) and sum("HIGHEST" in n for n in names) == 2
    assert all(r["ratio"] > 0 for r in tab.rows if r["target"])
    assert 0 < res["error"] < 1e-4


def test_extra_rows_are_imported_when_present():
    tab = bench.Table()
    bench.extra_rows(tab, modules=("no_such_benchmark",))
    assert tab.rows[0]["group"] == "extra" and "not present" in tab.rows[0]["note"]
