"""Several processes (linkd.distributed, docs/distributed.md): two local CPU processes (gloo) give the
single-process result bit for bit; a killed peer stops the other with one line and no directory;
--shard/--merge rebuild the single-run sweep directory; SIGTERM and stale staging directories;
an unusable --out is refused before any work.

The two-process runs are subprocesses (a driver that runs several `linkd` commands in one process,
so the import and the jax.distributed start are paid once), each with a free port and a timeout.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import toy_experiment  # noqa: F401 - registers the toy experiment kind in-process
from linkd import cli, distributed, registry, sweeps
from linkd.errors import ConfigError, LinkdError
from linkd.rundir import discard_active_staging, remove_stale_staging

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TIMEOUT = 120
PRESET = 'experiment = "toy"\ndescription = "toy preset"\n[train]\nsteps = 4\n'
SWEEP = ["sweep", "toy_small", "--grid", "train.lr=0.1,0.2,0.3", "--grid", "run.seed=0,1", "-q", "--no-figures"]
CHECK = ["check", "--only", "mb.collapse_bounds", "ng.exaggeration_gap_closed_form", "--domain", "3", "-q"]
FALSIFY = ["falsify", "ng.gap_nonnegative", "--claims", str(ROOT / "examples" / "exaggeration_gap.py"), "--budget", "128", "--no-plot"]
VOLATILE = {"start_time", "wall_seconds", "command", "devices", "platform", "backend", "git"}

# The driver: the test session's jax settings (tests/conftest.py), then each command of argv[1].
DRIVER = """
import json, os, signal, sys
import jax
jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
from linkd import cli
if os.environ.get("KILL_ME") == os.environ["LINKD_PROCESS_ID"]:  # die mid-run, before the gather
    from linkd.experiments import runner
    real = runner._sweep_results
    def dying(*a, **k):
        yield from real(*a, **k)
        os.kill(os.getpid(), signal.SIGKILL)
    runner._sweep_results = dying
for argv in json.loads(sys.argv[1]):
    print("RC", cli.main(argv), flush=True)
"""


@pytest.fixture
def presets(tmp_path, monkeypatch):
    d = tmp_path / "presets"
    d.mkdir()
    (d / "toy_small.toml").write_text(PRESET)
    monkeypatch.setenv("LINKD_PRESETS", str(d))
    monkeypatch.setattr(registry, "preset_dirs", lambda: [d])
    monkeypatch.chdir(tmp_path)
    return d


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
           "LINKD_EXPERIMENT_MODULES": "toy_experiment", "MPLBACKEND": "Agg", **extra}
    env.pop("XLA_FLAGS", None)
    return env


def _two(tmp_path, commands, **extra):
    """Run ``commands`` (lists of argv) in two processes; returns [(rc, stdout, stderr)] by process."""
    env = _env(LINKD_COORDINATOR=f"127.0.0.1:{_port()}", LINKD_NUM_PROCESSES="2", **extra)
    cmds = [[*c, "--distributed", "--peer-timeout", "60"] for c in commands]
    procs = [subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(cmds)], cwd=tmp_path, text=True,
                              env={**env, "LINKD_PROCESS_ID": str(i)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    out = []
    try:
        for p in procs:
            o, e = p.communicate(timeout=TIMEOUT)
            out.append((p.returncode, o, e))
    finally:
        for p in procs:
            p.kill()
    return out


def _norm(path: Path):
    if path.name in ("meta.json", "sweep.json"):
        return {k: v for k, v in json.loads(path.read_text()).items() if k not in VOLATILE}
    return path.read_bytes()


def assert_same_tree(a: Path, b: Path) -> None:
    """Every file byte for byte, meta.json/sweep.json apart from timing, command and host fields."""
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert fa == fb
    assert [f for f in fa if _norm(a / f) != _norm(b / f)] == []


def _records(path: Path) -> list:
    """Claim records apart from seconds (and object ids inside error messages)."""
    text = re.sub(r"object id \d+", "object id N", path.read_text())
    return [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(text)]


def test_two_processes_equal_one(presets, tmp_path):
    """(a) a sweep, (b) `linkd check --domain` of two claims, (c) a falsify search: two processes
    write what one writes."""
    runs = _two(tmp_path, [[*SWEEP, "--out", "sw2"], [*CHECK, "--json", "c2.json"], [*FALSIFY, "--out", "f2"]])
    for rc, out, err in runs:
        assert rc == 0 and out.count("RC 0") == 3, (out, err)
    assert not (tmp_path / "c2.json.0").exists()
    assert cli.main([*SWEEP, "--out", "sw1"]) == 0
    assert cli.main([*CHECK, "--json", "c1.json"]) == 0
    assert cli.main([*FALSIFY, "--out", "f1"]) == 0
    assert_same_tree(tmp_path / "sw1", tmp_path / "sw2")
    assert _records(tmp_path / "c1.json") == _records(tmp_path / "c2.json")
    f1, f2 = (json.loads((tmp_path / d / "falsify.json").read_text()) for d in ("f1", "f2"))
    for f in (f1, f2):
        f.pop("seconds"), f.pop("files")
    assert f1 == f2 and f1["evaluations"] > 64  # the screen was split (two blocks)
    assert (tmp_path / "f1" / "closest.toml").read_bytes() == (tmp_path / "f2" / "closest.toml").read_bytes()
    assert list(tmp_path.glob(".*linkd-*")) == []


def test_killed_peer_stops_the_other(presets, tmp_path):
    runs = _two(tmp_path, [[*SWEEP, "--out", "sw"]], KILL_ME="1")
    (rc0, _, err0), (rc1, _, _) = runs
    assert rc1 == -signal.SIGKILL
    assert rc0 != 0
    lines = [ln for ln in err0.splitlines() if ln.startswith("linkd: error:")]
    assert len(lines) == 1 and "lost process 1" in lines[0], err0
    assert "Traceback" not in err0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["presets"]  # no sweep, no staging directory


def test_shard_merge_rebuilds_the_single_run(presets, tmp_path, capsys):
    assert cli.main([*SWEEP, "--out", "full"]) == 0
    assert cli.main([*SWEEP, "--shard", "0/2", "--out", "s0"]) == 0
    assert cli.main([*SWEEP, "--shard", "1/2", "--out", "s1"]) == 0
    assert len(json.loads(Path("s0/sweep.json").read_text())["points"]) == 3
    assert cli.main(["sweep", "--merge", "s1", "s0", "--out", "merged"]) == 0
    assert_same_tree(tmp_path / "full", tmp_path / "merged")
    capsys.readouterr()
    assert cli.main(["sweep", "--merge", "s0", "--out", "half"]) == 2
    assert "missing 1/2" in capsys.readouterr().err and not Path("half").exists()
    assert cli.main([*SWEEP, "--shard", "2/2", "--out", "bad"]) == 2
    with pytest.raises(LinkdError, match="not a slice"):
        sweeps.merge(["full"], tmp_path / "m2")
    discard_active_staging()  # nothing staged now: a no-op
    assert not Path("m2").exists()


def test_split_and_shard_parsing():
    parts = [list(distributed.Split(7, 3).part(i)) for i in range(3)]
    assert parts == [[0, 1], [2, 3], [4, 5, 6]] and distributed.Split(7, 3).owner(5) == 2
    assert distributed.parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError):
            distributed.parse_shard(bad)
    assert distributed.LOCAL.gather("x") == ["x"] and distributed.LOCAL.mine(3) == [0, 1, 2]
    distributed.LOCAL.barrier()
    distributed.LOCAL.agree(None)
    with pytest.raises(LinkdError, match="refused"):
        distributed.LOCAL.agree("refused")
    with pytest.raises(ConfigError, match="missing --process-id"):
        distributed.initialize("127.0.0.1:1", 2)
    import argparse

    p = argparse.ArgumentParser()
    distributed.add_arguments(p)
    args = p.parse_args(["--peer-timeout", "30"])
    assert not args.distributed and distributed.from_args(args) is distributed.LOCAL
    with pytest.raises(ConfigError, match="with --distributed"):
        distributed.from_args(p.parse_args(["--process-id", "1"]))
    assert set(distributed.ENV_VARS.values()) == {"LINKD_COORDINATOR", "LINKD_NUM_PROCESSES", "LINKD_PROCESS_ID"}
    assert "SLURM_JOB_ID" in distributed.CLUSTER_ENV and distributed.DEFAULT_TIMEOUT > 0
    assert callable(distributed.exit_now)  # os._exit after a flush: exercised by the two-process tests


def test_gather_timeout_gives_up_on_a_silent_peer(monkeypatch):
    """The watchdog of --gather-timeout (in-process: a collective that never returns)."""
    import threading

    said = []
    release = threading.Event()
    monkeypatch.setattr(distributed, "_die", lambda line, code: (said.append((line, code)), release.set()))
    ctx = distributed.Context(0, 2, gather_timeout=0.2)
    assert ctx._collective(lambda: release.wait(TIMEOUT) and "done", "sweep points") == "done"
    assert said and said[0][1] == 1 and "no answer from process 1 within 0.2 s" in said[0][0]
    with pytest.raises(distributed.PeerError, match="lost process 1"):
        ctx._collective(lambda: 1 / 0, "claim records")


def test_sigterm_leaves_no_staging_directory(presets, tmp_path):
    """SIGTERM mid-run (what `timeout` and schedulers send) is Ctrl-C: exit 143, nothing left."""
    p = subprocess.Popen([sys.executable, "-m", "linkd", "run", "toy_small", "--set", "train.steps=2000000",
                          "--out", "r", "-q"], cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not list(tmp_path.glob(".r.*.linkd-new")) and time.monotonic() - t0 < TIMEOUT:
            time.sleep(0.1)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=TIMEOUT)
    finally:
        p.kill()
    assert p.returncode == 143 and "terminated (SIGTERM)" in err, err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["presets"]


def test_stale_staging_is_cleaned_by_the_next_run(presets, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, timeout=TIMEOUT).stdout.strip()
    stale = tmp_path / f".r.{dead}.0123abcd.linkd-new"
    live = tmp_path / f".r.{os.getpid()}.0123abcd.linkd-new"  # a concurrent run (alive): kept
    for d in (stale, live):
        d.mkdir()
        os.utime(d, (time.time() - 3600, time.time() - 3600))
    assert cli.main(["run", "toy_small", "--out", "r", "-q", "--no-figures"]) == 0
    assert not stale.exists() and live.exists() and Path("r/summary.json").is_file()
    assert remove_stale_staging(tmp_path / "r") == []


@pytest.mark.parametrize("how", ["file", "parent_file", "not_empty"])
def test_unusable_out_is_refused_before_any_work(presets, tmp_path, capsys, monkeypatch, how):
    Path("f").write_text("x")
    Path("full").mkdir()
    Path("full/x").write_text("x")
    out = {"file": "f", "parent_file": "f/sub/r", "not_empty": "full"}[how]
    monkeypatch.setattr(registry, "load_config", lambda *a, **k: pytest.fail("work started"))
    for cmd in (["run", "toy_small"], [*SWEEP], *([["falsify", "pl.bound"]] if how != "not_empty" else [])):
        capsys.readouterr()
        assert cli.main([*cmd, "--out", out]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("linkd: error:"), err
