"""The `linkd` command: contract behaviour, one-line errors with exit code 2, sweeps, plot, list."""
import dataclasses
import io
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jax
import numpy as np
import pytest

import toy_experiment
from linkd import cli, experiments, registry
from linkd.experiments import load_run
from linkd.progress_report import Progress, format_seconds

TESTS = Path(__file__).resolve().parent
PRESET = 'experiment = "toy"\ndescription = "toy preset for the CLI tests"\n[train]\nsteps = 4\n'


@pytest.fixture
def presets(tmp_path, monkeypatch):
    d = tmp_path / "presets"
    d.mkdir()
    (d / "toy_small.toml").write_text(PRESET)
    (d / "toy_nofig.toml").write_text(PRESET.replace("[train]", "figure = false\n[train]"))
    monkeypatch.setenv("LINKD_PRESETS", str(d))  # for subprocesses
    monkeypatch.setattr(registry, "preset_dirs", lambda: [d])  # in-process: only these
    monkeypatch.chdir(tmp_path)
    return d


def run_cli(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc, err, *parts):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linkd: error: "), err
    assert "Traceback" not in err
    for p in parts:
        assert p in err, (p, err)


# -------------------------------------------------------------------------------------- run


def test_run_writes_run_dir_and_prints_path(presets, capsys, tmp_path):
    rc, out, err = run_cli(capsys, "run", "toy_small", "--out", "r", "--seed", "3", "--set", "data.noise=0.1",
                           "--quiet")
    assert rc == 0 and err == ""
    assert out.strip() == "r"
    run = load_run("r")
    assert run.config.run.seed == 3 and run.config.train.steps == 4 and run.config.data.noise == 0.1
    assert run.meta["command"][:3] == ["linkd", "run", "toy_small"]
    assert (tmp_path / "r" / "figures" / "toy_coeffs.pdf").is_file()
    # re-running the written config reproduces metrics.npz exactly
    rc, out, _ = run_cli(capsys, "run", "r/config.toml", "--out", "r2", "--quiet", "--no-figures")
    assert rc == 0
    again = load_run("r2")
    assert again.config == run.config
    assert all(np.array_equal(run.metrics[k], again.metrics[k]) for k in run.metrics)


def test_default_out_dir(presets, capsys):
    rc, out, _ = run_cli(capsys, "run", "toy_small", "-q", "--no-figures")
    path = Path(out.strip())
    assert rc == 0 and path.parent == Path("runs") and path.name.startswith("toy_small-")
    assert (path / "metrics.npz").is_file()


def test_x64_flag_and_precision_recorded(presets, capsys):
    assert jax.config.jax_enable_x64  # conftest
    rc, _, _ = run_cli(capsys, "run", "toy_small", "--out", "f32", "-q", "--no-figures")
    assert rc == 0
    r32 = load_run("f32")
    assert r32.metrics["coeffs"].dtype == np.float32 and r32.meta["x64"] is False
    assert jax.config.jax_enable_x64  # restored after the run
    rc, _, _ = run_cli(capsys, "run", "toy_small", "--out", "f64", "--x64", "-q", "--no-figures")
    r64 = load_run("f64")
    assert r64.metrics["coeffs"].dtype == np.float64 and r64.meta["x64"] is True
    assert r64.config.run.x64 is True  # so config.toml alone reproduces the precision


def test_existing_dir_refused_then_overwritten(presets, capsys):
    assert run_cli(capsys, "run", "toy_small", "--out", "r", "-q", "--no-figures")[0] == 0
    rc, out, err = run_cli(capsys, "run", "toy_small", "--out", "r", "-q")
    assert_user_error(rc, err, "r exists and is not empty", "--overwrite")
    rc, out, err = run_cli(capsys, "run", "toy_small", "--out", "r", "-q", "--overwrite", "--set", "train.steps=2")
    assert rc == 0 and load_run("r").config.train.steps == 2


@pytest.mark.parametrize("argv, parts", [
    (["run", "toy_small", "--set", "train.lrr=0.1"], ["train.lrr = 0.1", "unknown key", "did you mean train.lr"]),
    (["run", "toy_small", "--set", "train.lr=fast"], ["train.lr = fast", "wrong type", "a number > 0.0"]),
    (["run", "toy_small", "--set", "train.lr=0"], ["train.lr = 0", "out of range", "> 0.0"]),
    (["run", "toy_small", "--set", "train.lr=2.5"], ["train.lr = 2.5", "stability limit", "0 < lr < 2"]),
    (["run", "toy_small", "--set", "train.steps=0"], ["train.steps = 0", "out of range", "an integer >= 1"]),
    (["run", "toy_small", "--set", "data.spectrum=1,-2"], ["data.spectrum = 1,-2", "out of range", "numbers > 0.0"]),
    (["run", "toy_small", "--set", "train.method=adam"], ["train.method = adam", "'gd', 'gf'"]),
    (["run", "toy_small", "--set", "train.lr"], ["--set = train.lr", "malformed override", "key=value"]),
    (["run", "toy_small", "--seed", "-1"], ["run.seed = -1", "out of range", ">= 0"]),
    (["run", "toy_smal"], ["EXPERIMENT = toy_smal", "unknown experiment", "did you mean toy_small",
                           "a path to a .toml file"]),
    (["run", "nowhere.toml"], ["nowhere.toml", "no such file"]),
    (["run", "toy_small", "--format", "gif"], ["--format = gif", "pdf, png"]),
    (["run", "toy_small", "--set", "train.diverge=true"], ["diverged", "lower train.lr"]),
    (["run", "toy_small", "--seed", "x"], ["invalid int value: 'x'"]),
    (["run", "toy_small", "--bogus"], ["unrecognized arguments: --bogus"]),
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    ([], ["no command given"]),
    (["plot", "no/such/run"], ["no/such/run is not a directory"]),
    (["sweep", "toy_small", "--grid", "train.lr=0.1,x"], ["train.lr = x", "wrong type"]),
    (["sweep", "toy_small", "--grid", "train.lr"], ["--grid = train.lr", "key=v1,v2"]),
    (["sweep", "toy_small", "--grid", "train.l=1,2"], ["train.l = 1,2", "unknown key"]),
    (["sweep", "toy_small", "--grid", "train.lr=0.1", "--grid", "train.lr=0.2"], ["given twice"]),
    (["sweep", "toy_small", "--grid", "run.x64=true,false"], ["cannot sweep precision"]),
    (["sweep", "toy_small", "--grid", "train.lr=0.5,3.0"], ["train.lr = 3.0", "stability limit"]),
    (["sweep", "toy_small"], ["no grid axes"]),
    (["figures", "--only", "nope"], ["--only = nope", "toy_small"]),
])
def test_bad_input_is_one_line_exit_2(presets, capsys, argv, parts):
    rc, out, err = run_cli(capsys, *argv, "--out", "bad") if argv and argv[0] in ("run", "sweep") \
        else run_cli(capsys, *argv)
    assert_user_error(rc, err, *parts)
    assert not Path("bad").exists()  # refused before (or cleaned up after) touching the disk


def test_help_and_version(capsys):
    assert run_cli(capsys, "--help")[0] == 0
    rc, out, _ = run_cli(capsys, "--version")
    assert rc == 0 and out.startswith("linkd ")


# ------------------------------------------------------------------------------------ sweep


def test_sweep_vectorized(presets, capsys, monkeypatch):
    called = []
    real = toy_experiment.TOY.run_sweep

    spy = dataclasses.replace(toy_experiment.TOY, run_sweep=lambda c, pts, ctx: called.append(pts) or real(c, pts, ctx))

    experiments.register(spy, replace=True)
    try:
        rc, out, err = run_cli(capsys, "sweep", "toy_small", "--grid", "train.lr=0.1,0.2", "--grid", "run.seed=0,1",
                               "--out", "sw", "-q", "--no-figures")
    finally:
        experiments.register(toy_experiment.TOY, replace=True)
    assert rc == 0, err
    assert len(called) == 1 and len(called[0]) == 4  # one vmapped call for the whole grid
    index = json.loads(Path("sw/sweep.json").read_text())
    assert index["vectorized"] is True and index["grid"] == {"train.lr": [0.1, 0.2], "run.seed": [0, 1]}
    dirs = [p["dir"] for p in index["points"]]
    assert dirs == ["train.lr=0.1,run.seed=0", "train.lr=0.1,run.seed=1", "train.lr=0.2,run.seed=0",
                    "train.lr=0.2,run.seed=1"]
    for p in index["points"]:
        run = load_run(Path("sw") / p["dir"])
        assert run.config.train.lr == p["params"]["train.lr"] and run.config.run.seed == p["params"]["run.seed"]
        assert run.summary["vectorized"] is True and run.meta["sweep"]["vectorized"] is True


def test_sweep_loops_over_non_vectorized_axes(presets, capsys):
    rc, out, err = run_cli(capsys, "sweep", "toy_small", "--grid", "data.spectrum=1,0.5;1.5", "--grid",
                           "run.seed=1", "--out", "sw", "-q", "--format", "pdf")
    assert rc == 0, err
    index = json.loads(Path("sw/sweep.json").read_text())
    assert index["vectorized"] is False and len(index["points"]) == 2  # data.* is not vectorizable
    assert [p["dir"] for p in index["points"]] == ["data.spectrum=1.0+0.5,run.seed=1", "data.spectrum=1.5,run.seed=1"]
    run = load_run(Path("sw") / "data.spectrum=1.5,run.seed=1")
    assert run.metrics["coeffs"].shape == (5, 1) and run.config.data.spectrum == (1.5,)
    assert (Path("sw") / "data.spectrum=1.5,run.seed=1" / "figures" / "toy_coeffs.pdf").is_file()
    assert "summary" in index["points"][0]


# ------------------------------------------------------------------------------------- plot


def test_plot_redraws_without_running(presets, capsys, monkeypatch):
    assert run_cli(capsys, "run", "toy_small", "--out", "r", "-q", "--no-figures")[0] == 0
    assert not (Path("r") / "figures").exists()

    def no_run(*a, **k):
        raise AssertionError("plot must not re-run")

    experiments.register(dataclasses.replace(toy_experiment.TOY, run=no_run), replace=True)
    try:
        rc, out, err = run_cli(capsys, "plot", "r")
        assert rc == 0, err
        assert sorted(out.split()) == ["r/figures/toy_coeffs.caption.txt", "r/figures/toy_coeffs.pdf",
                                       "r/figures/toy_coeffs.png"]
        rc, out, err = run_cli(capsys, "plot", "r", "--format", "svg", "--out", "elsewhere")
        assert rc == 0 and out.split() == ["elsewhere/toy_coeffs.svg", "elsewhere/toy_coeffs.caption.txt"]
        # every format asked is rewritten, and no other rendering of the figure is left stale
        rc, out, err = run_cli(capsys, "plot", "r", "--format", "png")
        assert rc == 0 and sorted(p.name for p in Path("r/figures").iterdir()) == ["toy_coeffs.caption.txt",
                                                                                  "toy_coeffs.png"]
    finally:
        experiments.register(toy_experiment.TOY, replace=True)
    (Path("r") / "metrics.npz").unlink()
    rc, out, err = run_cli(capsys, "plot", "r")
    assert_user_error(rc, err, "not a complete run directory", "metrics.npz")


# ---------------------------------------------------------------------- list, check, figures


def test_list_one_line_each(presets, capsys, monkeypatch):
    fake = types.ModuleType("proofs_check")
    fake.registry = types.SimpleNamespace(all_claims=lambda: [
        types.SimpleNamespace(id="PL19.thm1", statement="GD converges\nto P w*")])
    monkeypatch.setitem(sys.modules, "proofs_check", fake)
    rc, out, err = run_cli(capsys, "list")
    assert rc == 0
    lines = out.splitlines()
    assert any(l.split()[:2] == ["preset", "toy_small"] and l.endswith("toy preset for the CLI tests [toy]")
               for l in lines)
    assert any(l.split()[:2] == ["experiment", "toy"] for l in lines)
    assert any(l.split()[:2] == ["claim", "PL19.thm1"] and "GD converges to P w*" in l for l in lines)


def test_list_without_claims(presets, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "proofs_check", None)  # import fails
    rc, out, err = run_cli(capsys, "list")
    assert rc == 0 and "preset" in out and "no claims listed" in err


def test_check_forwards_to_runner(capsys, monkeypatch):
    seen = []
    runner = types.SimpleNamespace(main=lambda argv: seen.append(argv) or 1)
    fake = types.ModuleType("proofs_check")
    fake.runner = runner
    monkeypatch.setitem(sys.modules, "proofs_check", fake)
    monkeypatch.setitem(sys.modules, "proofs_check.runner", runner)
    rc, _, _ = run_cli(capsys, "check", "--fast", "--only", "A", "B", "--json", "x.json")
    assert rc == 1 and seen == [["--fast", "--only", "A", "B", "--json", "x.json"]]
    monkeypatch.setitem(sys.modules, "proofs_check", None)
    monkeypatch.delitem(sys.modules, "proofs_check.runner")
    rc, _, err = run_cli(capsys, "check", "--fast")
    assert_user_error(rc, err, "proofs_check", "not importable")


def test_figures_collects_figure_presets(presets, capsys):
    rc, out, err = run_cli(capsys, "figures", "--out", "figs", "-q", "--format", "pdf")
    assert rc == 0, err
    assert sorted(p.name for p in Path("figs").iterdir()) == ["toy_coeffs.caption.txt", "toy_coeffs.pdf"]
    rc, out, err = run_cli(capsys, "figures", "--out", "figs", "-q", "--format", "png")  # toy_nofig skipped
    assert sorted(p.name for p in Path("figs").iterdir()) == ["toy_coeffs.caption.txt", "toy_coeffs.png"]


# ------------------------------------------------------------------------------- subprocess


def _env(presets):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               LINKD_EXPERIMENT_MODULES="toy_experiment", LINKD_PRESETS=str(presets), JAX_PLATFORMS="cpu")
    return env


def test_python_m_linkd_end_to_end(presets, tmp_path):
    env = _env(presets)
    ok = subprocess.run([sys.executable, "-m", "linkd", "run", "toy_small", "--out", str(tmp_path / "r"),
                         "--x64", "--set", "train.steps=3", "--no-figures"],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(tmp_path / "r")
    assert load_run(tmp_path / "r").metrics["coeffs"].dtype == np.float64
    bad = subprocess.run([sys.executable, "-m", "linkd", "run", "toy_small", "--set", "train.lr=-1"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "linkd: error: train.lr = -1: out of range; allowed: a number > 0.0"
    exists = subprocess.run([sys.executable, "-m", "linkd", "run", "toy_small", "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert exists.returncode == 2 and "Traceback" not in exists.stderr and "--overwrite" in exists.stderr


# --------------------------------------------------------------------------------- progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_reports_rate_and_eta():
    clock, s = Clock(), Tty()
    p = Progress("train", total=100, unit="steps", stream=s, clock=clock, interval=0.0)
    clock.t = 2.0
    p(50)
    assert s.getvalue() == "\rtrain  50/100 steps  25 steps/s  ETA 0:02"
    clock.t = 4.0
    p(100)
    p.close()
    assert s.getvalue().endswith("100/100 steps  25 steps/s  done in 0:04\n")


def test_progress_only_for_runs_over_two_seconds_and_never_when_quiet():
    clock, s = Clock(), io.StringIO()  # a log file: one line per report
    p = Progress("run", total=10, stream=s, clock=clock)
    clock.t = 1.9
    p(5)
    assert s.getvalue() == ""  # a quick run prints nothing
    clock.t = 2.5
    p(6)
    clock.t = 3.0
    p(7)  # within the 10 s interval of a non-terminal: not repeated
    clock.t = 4.0
    p(10), p.close()
    assert s.getvalue().splitlines() == ["run  6/10 steps  2.4 steps/s  ETA 0:02",
                                         "run  10/10 steps  2.5 steps/s  done in 0:04"]
    fast, q = Progress(total=10, stream=io.StringIO(), clock=Clock()), Progress(total=10, stream=Tty(), quiet=True)
    fast(10), fast.close(), q(10), q.close()
    assert fast.stream.getvalue() == "" and q.stream.getvalue() == ""
    f = Progress("runs", total=2, unit="runs", stream=s, force=True)
    f(2)
    assert s.getvalue().splitlines()[-1].startswith("runs  2/2 runs")


def test_progress_close_without_reports_prints_nothing():
    s = Tty()
    Progress("run", stream=s).close()
    assert s.getvalue() == ""


def test_format_seconds():
    assert format_seconds(42) == "0:42" and format_seconds(3725.2) == "1:02:05" and format_seconds(float("nan")) == "?"


# ----------------------------------------------------------- issue 11: nothing lost, nothing written


def _tree(root: Path) -> dict:
    """Every file under ``root`` with its bytes (hidden staging directories included)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("sets, field, parts", [
    (["data.exponent=inf"], "data.exponent = inf", ["not a finite number", "allowed: a number >= 0.0"]),
    (["data.n=10", "data.d=100000"], "data.d = 100000", ["GiB", "allowed:"]),
    (["data.spectrum=exponential"], "record.directions = 30,90",
     ["beyond the rank", "allowed: 1-based indices in [1, 29]", "data.spectrum = 'exponential'"]),
])
@pytest.mark.parametrize("existing", [False, True])
def test_issue_inputs_refused_in_one_line_nothing_written(in_tmp, capsys, sets, field, parts, existing):
    """The three inputs of issue 11 on the real preset: exit 2, one line naming the field, and the
    disk untouched: no new directory, and an existing run kept byte for byte under --overwrite."""
    if existing:
        (in_tmp / "x").mkdir()
        (in_tmp / "x" / "config.toml").write_text("old run")
        (in_tmp / "x" / "notes.txt").write_text("mine")
    before = _tree(in_tmp)
    rc, out, err = run_cli(capsys, "run", "eigen_convergence", "--set", *sets, "--out", "x/new" if not existing else "x",
                           *(["--overwrite"] if existing else []))
    assert_user_error(rc, err, field, *parts)
    assert out == "" and _tree(in_tmp) == before


def test_memory_budget_error_is_a_linkd_error_with_the_size():
    from linkd.errors import LinkdError, MemoryBudgetError
    from linkd.registry import load_config

    with pytest.raises(MemoryBudgetError) as e:
        load_config("eigen_convergence", ["data.n=10", "data.d=100000"])
    assert isinstance(e.value, LinkdError) and e.value.needed_bytes > 6 * 8 * 10**10
    assert f"{e.value.needed_bytes / 2**30:.3g} GiB" in str(e.value)


def test_overwrite_keeps_the_old_run_until_the_new_one_succeeds(presets, capsys):
    assert run_cli(capsys, "run", "toy_small", "--out", "r", "-q", "--format", "pdf")[0] == 0
    (Path("r") / "notes.txt").write_text("mine")
    before = _tree(Path("."))
    rc, out, err = run_cli(capsys, "run", "toy_small", "--out", "r", "-q", "--overwrite", "--set", "train.diverge=true")
    assert_user_error(rc, err, "diverged")  # fails after starting (inside the run)
    assert _tree(Path(".")) == before  # old run intact, no staging directory left
    rc, out, err = run_cli(capsys, "run", "toy_small", "--out", "r", "-q", "--overwrite", "--set", "train.steps=2",
                           "--format", "png")
    assert rc == 0 and load_run("r").config.train.steps == 2
    assert sorted(p.name for p in Path(".").iterdir()) == ["presets", "r"]  # swapped in place, nothing beside
    assert (Path("r") / "notes.txt").read_text() == "mine"  # the user's file is carried over
    assert sorted(p.name for p in (Path("r") / "figures").iterdir()) == ["toy_coeffs.caption.txt", "toy_coeffs.png"]


def test_sweep_overwrite_failure_keeps_old_sweep(presets, capsys):
    assert run_cli(capsys, "sweep", "toy_small", "--grid", "run.seed=0,1", "--out", "sw", "-q", "--no-figures")[0] == 0
    before = _tree(Path("."))
    rc, out, err = run_cli(capsys, "sweep", "toy_small", "--grid", "run.seed=0,1", "--grid", "train.diverge=false,true",
                           "--out", "sw", "-q", "--overwrite", "--no-figures")
    assert_user_error(rc, err, "diverged")
    assert _tree(Path(".")) == before


def test_set_may_come_before_the_preset(presets, capsys):
    rc, out, err = run_cli(capsys, "run", "--set", "train.steps=2", "data.noise=0.1", "toy_small", "--out", "r", "-q",
                           "--no-figures")
    assert rc == 0, err
    assert load_run("r").config.train.steps == 2 and load_run("r").config.data.noise == 0.1
    rc, out, err = run_cli(capsys, "show", "--set", "train.steps=5", "toy_small")
    assert rc == 0 and any(l.split()[:2] == ["train.steps", "5"] for l in out.splitlines())
    rc, out, err = run_cli(capsys, "run", "--set", "train.steps=2", "--out", "r2")
    assert_user_error(rc, err, "EXPERIMENT", "missing")
    assert not Path("r2").exists()


def test_show_lists_every_key_with_default_range_and_meaning(presets, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per key (wrapping: tests/test_output_format.py)
    rc, out, err = run_cli(capsys, "show", "toy_small", "--set", "train.lr=0.25")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "toy_small: toy preset for the CLI tests"
    assert str(presets / "toy_small.toml") in lines[1] and "sha256:" in lines[1]
    rows = {l.split()[0]: l for l in lines[4:]}
    assert set(rows) == {f"{s}.{k}" for s, fs in toy_experiment.TOY.full_schema.items() for k in fs}
    assert rows["train.lr"].split()[:4] == ["train.lr", "0.25", "*", "0.5"] and "step size η" in rows["train.lr"]
    assert "a number > 0.0" in rows["train.lr"]
    assert rows["train.steps"].split()[:4] == ["train.steps", "4", "*", "20"]  # preset value vs kind default
    assert "one of 'gd', 'gf'" in rows["train.method"]
    rc, out, err = run_cli(capsys, "show", "toy_small", "--toml", "--set", "train.lr=0.25")
    Path("c.toml").write_text(out)
    from linkd.registry import load_config

    assert load_config("c.toml") == load_config("toy_small", ["train.lr=0.25"])
    rc, out, err = run_cli(capsys, "show", "toy_small", "--set", "train.lr=9")
    assert_user_error(rc, err, "train.lr = 9", "stability limit")


def test_show_real_preset_and_lr_fraction_meaning(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    rc, out, err = run_cli(capsys, "show", "eigen_convergence")
    assert rc == 0, err
    row = next(l for l in out.splitlines() if l.startswith("train.lr_fraction"))
    assert "a number in (0.0, 2.0)" in row and "η·λ_max" in row


def _examples():
    from linkd.cli import EXAMPLES

    for command, text in EXAMPLES.items():
        for line in text.splitlines()[1:]:
            argv = line.split("(")[0].split(">")[0].split()[1:]
            if argv and argv[0] in ("run", "sweep", "show") and not argv[1].endswith(".toml"):
                yield pytest.param(argv, id=" ".join(argv))


@pytest.mark.parametrize("argv", list(_examples()))
def test_help_examples_resolve_on_the_preset_they_name(argv, capsys, in_tmp):
    """Every example in `linkd <command> --help` parses, names an existing preset and keys it has,
    and passes validation (without running)."""
    args = cli.build_parser().parse_args(argv)
    if args.command == "sweep":
        config, grid = cli._prepare_sweep(args)
        assert grid
    else:
        config = cli._load(args)
    assert config.origin["type"] in ("preset", "experiment defaults")
    assert list(in_tmp.iterdir()) == []


def test_help_shows_examples(capsys):
    for command in ("run", "sweep", "plot", "show"):
        rc, out, _ = run_cli(capsys, command, "--help")
        assert rc == 0 and "examples:" in out and f"linkd {command} " in out


# ------------------------------------------------------------------------- provenance, files


def test_meta_records_preset_source_and_config_hash(presets, capsys):
    import hashlib

    assert run_cli(capsys, "run", "toy_small", "--out", "r", "-q", "--set", "train.steps=3", "--format", "pdf")[0] == 0
    run = load_run("r")
    origin = run.meta["config_origin"]
    assert origin["type"] == "preset" and origin["name"] == "toy_small" and origin["location"] == "LINKD_PRESETS"
    assert origin["path"] == str(presets / "toy_small.toml")
    assert origin["sha256"] == "sha256:" + hashlib.sha256((presets / "toy_small.toml").read_bytes()).hexdigest()
    assert run.meta["config_sha256"] == run.config.digest()  # hash of the resolved config.toml
    caption = (Path("r") / "figures" / "toy_coeffs.caption.txt").read_text()
    assert "train.steps = 3" in caption and run.config.digest() in caption and "linkd run toy_small" in caption
    pdf = (Path("r") / "figures" / "toy_coeffs.pdf").read_bytes()
    assert b"/Title (toy_coeffs: toy preset for the CLI tests)" in pdf and b"train.steps = 3" in pdf


def test_output_files_respect_the_umask(presets, capsys):
    umask, file_mode, dir_mode = 0o027, 0o640, 0o750  # neither mkstemp's 0600 nor mkdtemp's 0700
    old = os.umask(umask)
    try:
        assert run_cli(capsys, "run", "toy_small", "--out", "r", "-q", "--format", "png")[0] == 0
        assert run_cli(capsys, "sweep", "toy_small", "--grid", "run.seed=0,1", "--out", "sw", "-q")[0] == 0
    finally:
        os.umask(old)
    for root in (Path("r"), Path("sw")):
        for p in [root, *root.rglob("*")]:
            assert (p.stat().st_mode & 0o777) == (dir_mode if p.is_dir() else file_mode), p


# ------------------------------------------------------------------------------ sweep aggregate


def test_plot_sweep_dir_mean_and_se_over_seeds(presets, capsys):
    import csv
    import shlex

    rc, out, err = run_cli(capsys, "sweep", "toy_small", "--grid", "train.lr=0.1,0.2", "--grid", "data.noise=0.1",
                           "--grid", "run.seed=0,1,2", "--out", "sw", "-q", "--no-figures")
    assert rc == 0, err
    index = json.loads(Path("sw/sweep.json").read_text())
    assert index["format"] == 1 and index["config_origin"]["name"] == "toy_small"
    for p in index["points"]:
        assert shlex.quote(p["dir"]) == p["dir"]  # no shell quoting needed
    rc, out, err = run_cli(capsys, "plot", "sw", "--metric", "max_abs_error", "--format", "pdf")
    assert rc == 0, err
    assert sorted(out.split()) == ["sw/figures/sweep_summary.caption.txt", "sw/figures/sweep_summary.pdf",
                                   "sw/sweep_summary.csv"]
    rows = [r for r in csv.DictReader(Path("sw/sweep_summary.csv").open()) if r["metric"] == "max_abs_error"]
    assert [r["train.lr"] for r in rows] == ["0.1", "0.2"] and "run.seed" not in rows[0]
    for r in rows:  # independent route: each point's own summary.json
        errs = [json.loads((Path("sw") / f"train.lr={r['train.lr']},data.noise=0.1,run.seed={s}" / "summary.json")
                           .read_text())
                ["max_abs_error"] for s in (0, 1, 2)]
        assert int(r["n"]) == 3
        np.testing.assert_allclose(float(r["mean"]), np.mean(errs), rtol=1e-12)
        np.testing.assert_allclose(float(r["se"]), np.std(errs, ddof=1) / np.sqrt(3), rtol=1e-12)
    assert float(rows[0]["se"]) > 0
    rc, out, err = run_cli(capsys, "plot", "sw", "--metric", "nope")
    assert_user_error(rc, err, "--metric = nope", "max_abs_error")


def test_sweep_summary_figure_has_no_legend_over_data():
    from linkd import sweeps
    from linkd.plotting import check_figure
    from linkd.plotting.style import legend_overlaps
    from linkd.plotting.sweep import sweep_summary

    index = {"experiment": "toy", "grid": {"a.x": [1.0, 2.0, 3.0], "a.k": ["p", "q"], "run.seed": [0, 1]},
             "points": [{"params": {"a.x": x, "a.k": k, "run.seed": s}, "summary": {"m": x * (1 + s) + len(k)}}
                        for x in (1.0, 2.0, 3.0) for k in ("p", "q") for s in (0, 1)]}
    table = sweeps.aggregate(index)
    assert table.axes == ("a.x", "a.k") and table.n.min() == 2
    fig = sweep_summary(table, ["m"])
    assert check_figure(fig) == [] and legend_overlaps(fig) == []
