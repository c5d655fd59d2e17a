"""benchmarks/run.py runs end to end at tiny sizes (no timing assertions: never a timed unit test)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import run as bench  # noqa: E402

GROUPS = ["ceiling", "traj MSE", "traj soft-CE", "sweep", "mse paths", "record plain", "record eigen"]


def test_quick_benchmark_tiny_sizes(tmp_path):
    out = tmp_path / "results.json"
    res = bench.run("tiny", str(out), verbose=False)
    assert out.exists()
    groups = {r["group"] for r in res["rows"]}
    assert set(GROUPS) <= groups
    names = [r["name"] for r in res["rows"]]
    for key in ("mat-vec", "matmul", "copy bandwidth", "numpy loop", "python loop", "engine, record every 10",
                "vmapped sweep", "closed_form", "gram", "eigen", "every step", "every 10", "none"):
        assert any(key in n for n in names), key
    ratios = [r["ratio"] for r in res["rows"] if r["ratio"] is not None]
    assert ratios and all(r > 0 for r in ratios)
    assert all(r["seconds"] is None or r["seconds"] > 0 for r in res["rows"])
    assert res["machine"]["backend"] and res["machine"]["cores"]
    assert "MISS" in res["table"] or "PASS" in res["table"]
