"""Run directories: the contract's files, provenance, atomic writes under a simulated crash."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

import toy_experiment  # noqa: F401
from linkd import rundir
from linkd.atomic import atomic_open, atomic_write_json, atomic_write_npz, atomic_write_text, json_safe
from linkd.errors import InputError, RunDirError, RunDirExistsError
from linkd.experiments import execute, load_run
from linkd.registry import load_config
from linkd.rundir import RunDir


def leftovers(d):
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


# -------------------------------------------------------------------------------- atomic


def test_atomic_writes(tmp_path):
    p = atomic_write_text(tmp_path / "a.txt", "héllo")
    assert p.read_text() == "héllo"
    atomic_write_json(tmp_path / "a.json", {"x": np.float32(1.5), "y": (1, 2)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "y": [1, 2]}
    atomic_write_npz(tmp_path / "m.npz", {"a": np.arange(3), "b": jnp.ones(2)})
    with np.load(tmp_path / "m.npz") as z:
        assert z["a"].tolist() == [0, 1, 2] and z["b"].tolist() == [1.0, 1.0]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_crash_mid_write_leaves_no_partial_file(tmp_path, monkeypatch, where):
    target = tmp_path / "metrics.npz"
    old = tmp_path / "summary.json"
    atomic_write_text(old, "old contents")

    class Crash(RuntimeError):
        pass

    def boom(*a, **k):
        raise Crash(where)

    if where == "write":  # np.savez writes part of its output, then dies
        def partial_savez(file, **arrays):
            file.write(b"PK\x03\x04 half a zip")
            raise Crash("mid-write")

        monkeypatch.setattr(np, "savez", partial_savez)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:
        monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(Crash):
        atomic_write_npz(target, {"a": np.arange(10)})
    if where != "write":
        with pytest.raises(Crash):
            atomic_write_text(old, "new contents")
    assert not target.exists()
    assert old.read_text() == "old contents"  # the previous file survives intact
    assert leftovers(tmp_path) == []


def test_atomic_open_exception_in_block(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(tmp_path / "f.bin") as fh:
            fh.write(b"partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_interrupted_run_leaves_no_partial_file(tmp_path, monkeypatch):
    def partial_savez(file, **arrays):
        file.write(b"PK\x03\x04 half")
        raise RuntimeError("disk died")

    monkeypatch.setattr(np, "savez", partial_savez)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="disk died"):
        execute(load_config("kind:toy", ["train.steps=3"]), out, figures=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.toml", "meta.json"]  # whole files only; no metrics.npz, no temp file
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"].startswith("failed: RuntimeError: disk died")
    with pytest.raises(RunDirError, match="missing metrics.npz, summary.json"):
        load_run(out)


# ------------------------------------------------------------------------------- json_safe


def test_json_safe_notes_nonfinite(tmp_path):
    obj = {"a": np.float64("nan"), "b": [1.0, float("inf"), np.int64(3)], "c": {"d": np.array([[1, 2]])},
           "e": jnp.asarray(2.0), "f": np.bool_(True), "g": None}
    notes = {}
    safe = json_safe(obj, _notes=notes)
    assert safe == {"a": None, "b": [1.0, None, 3], "c": {"d": [[1, 2]]}, "e": 2.0, "f": True, "g": None}
    assert notes == {"a": "nan", "b[1]": "inf"}
    atomic_write_json(tmp_path / "s.json", obj, note_nonfinite=True)
    back = json.loads((tmp_path / "s.json").read_text())
    assert back["_nonfinite"] == {"a": "nan", "b[1]": "inf"}
    with pytest.raises(InputError, match="summary value at x"):
        json_safe({"x": object()})


# --------------------------------------------------------------------------------- RunDir


def test_rundir_refuses_nonempty_unless_overwrite(tmp_path):
    d = tmp_path / "r"
    RunDir(d).write_config(load_config("kind:toy"))
    (d / "notes.txt").write_text("mine")
    with pytest.raises(RunDirExistsError) as e:
        RunDir(d)
    msg = str(e.value)
    assert str(d) in msg and "--overwrite" in msg and "\n" not in msg
    assert isinstance(e.value, FileExistsError)
    RunDir(d, overwrite=True)
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]  # only the contract's files go
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="not a directory"):
        RunDir(tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    RunDir(empty)  # an existing empty directory is fine


def test_complete_run_dir_and_load_run(tmp_path):
    config = load_config("kind:toy", ["train.steps=4", "run.seed=7", "data.noise=0.01"])
    out = execute(config, tmp_path / "run", command=["linkd", "run", "toy"])
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "figures", "meta.json", "metrics.npz",
                                                     "summary.json"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["toy_coeffs.caption.txt", "toy_coeffs.pdf",
                                                                   "toy_coeffs.png"]
    run = load_run(out)
    cfg, metrics, summary, meta = run
    assert cfg == config
    assert {"steps", "eigvals", "coeffs"} <= set(metrics) and metrics["coeffs"].shape == (5, 3)
    assert summary["nan_example"] is None and summary["_nonfinite"] == {"nan_example": "nan"}
    for key in ("linkd_version", "python", "versions", "backend", "devices", "x64", "seeds", "git",
                "start_time", "wall_seconds", "command"):
        assert key in meta, key
    assert set(meta["versions"]) == {"jax", "jaxlib", "numpy", "scipy", "optax", "matplotlib"}
    assert meta["seeds"] == {"run.seed": 7} and meta["status"] == "complete" and meta["x64"] is False
    assert meta["wall_seconds"] > 0 and meta["start_time"].endswith("+00:00")
    assert set(meta["git"]) == {"commit", "dirty"}
    # re-running the written config.toml reproduces the numbers exactly
    again = execute(load_config(out / "config.toml"), tmp_path / "again", figures=False)
    _, metrics2, _, _ = load_run(again)
    assert all(np.array_equal(metrics[k], metrics2[k]) for k in metrics)


def test_git_info_outside_a_checkout(tmp_path):
    assert rundir.git_info(tmp_path) == {"commit": None, "dirty": None}


# --------------------------------------------------------------------- build beside, then swap


def test_staged_directory_swaps_only_on_success(tmp_path):
    from linkd.errors import LinkdError
    from linkd.rundir import staged_directory

    out = tmp_path / "r"
    out.mkdir()
    (out / "config.toml").write_text("old")
    (out / "notes.txt").write_text("mine")
    for exc in (LinkdError("bad input"), RuntimeError("a bug"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with staged_directory(out, overwrite=True) as new:
                assert new.parent == tmp_path and new.name.startswith(".r.")
                (new / "config.toml").write_text("new")
                raise exc
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # old run intact, nothing beside it
        assert (out / "config.toml").read_text() == "old"
    with staged_directory(out, overwrite=True) as new:
        (new / "config.toml").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert (out / "config.toml").read_text() == "new" and (out / "notes.txt").read_text() == "mine"
    with pytest.raises(RunDirExistsError):
        with staged_directory(out):
            pass


def test_staged_directory_removes_the_parents_it_made(tmp_path):
    from linkd.errors import LinkdError
    from linkd.rundir import staged_directory

    with pytest.raises(LinkdError):
        with staged_directory(tmp_path / "a" / "b" / "r"):
            raise LinkdError("refused after starting")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):  # a bug: a new directory is kept for inspection
        with staged_directory(tmp_path / "a" / "r") as new:
            (new / "meta.json").write_text("{}")
            raise RuntimeError("bug")
    assert sorted(p.name for p in (tmp_path / "a" / "r").iterdir()) == ["meta.json"]
