"""What users read: sweep-figure labels, round-off drawn as zero, progress units and totals, and the
full (wrapped, never cut) values of `linkd show` and `linkd check`. Each check has a planted-bug twin."""
import io
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

import toy_experiment  # noqa: F401
from linkd import cli, registry
from linkd.experiments import runner
from linkd.plotting import labels
from linkd.plotting.eigen import gap_title
from linkd.plotting.sweep import sweep_summary
from linkd.progress_report import Progress
from linkd.sweeps import SweepTable
from proofs_check import runner as check_runner

# ----------------------------------------------------------------------------------- labels


def test_label_table_gives_symbols_and_words():
    assert labels.label("train.lr_fraction", "exaggeration") == r"step size $\eta\lambda_{\max}$"
    assert labels.label("train.lr_fraction", "fidelity") == r"step size $\eta L$"
    assert labels.label("student.lr_fraction", "confidence") == r"student: step size $\eta L$"
    assert labels.label("student.tau") == r"student: temperature $\tau$"
    assert labels.label("student.alpha") == r"student: hard-label weight $\alpha$"
    assert labels.label("data.noise") == r"label noise $\sigma$"
    assert labels.label("teacher_vs_closed_form.max_rel_error") == "teacher vs closed form: max. relative error"
    assert labels.label("closed_form_agreement_max_error_in_se") == "closed form vs Monte Carlo [SE]"
    assert labels.label("some_section.odd_key") == "some section: odd key"  # in no row: still readable


def _table(experiment="exaggeration", gap=(-1e-9, 0.02, 0.05), se=(2e-10, 1e-3, 1e-3)):
    """Three groups over train.lr_fraction (and two data.noise values for two axes)."""
    groups = [{"train.lr_fraction": f} for f in (0.3, 0.6, 0.9)]
    mean = np.array([[g, 1e-13] for g in gap])
    return SweepTable(experiment, ("train.lr_fraction",), groups, ("exaggeration_gap_min", "max_rel_error"),
                      mean, np.array([[s, 1e-14] for s in se]), np.full((3, 2), 3))


def _texts(fig) -> list[str]:
    out = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return [t for t in out if t]


def raw_keys(fig, keys) -> list[str]:
    """Texts of ``fig`` that show a dotted or snake_case key as it is."""
    return [t for t in _texts(fig) for k in keys if k in t]


def test_sweep_figure_uses_readable_labels():
    table = _table()
    fig = sweep_summary(table, list(table.metrics))
    try:
        assert raw_keys(fig, ["train.lr_fraction", "exaggeration_gap_min", "max_rel_error"]) == []
        assert fig.axes[0].get_xlabel() == r"step size $\eta\lambda_{\max}$"
        assert fig.axes[1].get_ylabel() == "max. relative error"
    finally:
        plt.close(fig)


def test_raw_key_labels_are_caught(monkeypatch):
    monkeypatch.setattr("linkd.plotting.sweep.label", lambda key, experiment="", wrap=None: key)  # the planted bug
    fig = sweep_summary(_table(), ["exaggeration_gap_min"])
    try:
        assert raw_keys(fig, ["train.lr_fraction", "exaggeration_gap_min"]) != []
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------- round-off


def test_zero_tolerance_is_sqrt_eps_times_scale():
    assert labels.zero_tolerance(1.0, np.float64) == 2.0 ** -26  # √(2⁻⁵²)
    assert abs(labels.zero_tolerance(2.0, np.float32) - 2.0 * 2.0 ** -11.5) < 1e-12
    assert labels.zero_tolerance(None) == 0.0
    got = labels.snap_zero([-1e-9, 1.4e-8, 1.5e-8, np.nan, -0.5], 2.0 ** -26)
    assert got[0] == 0.0 and got[1] == 0.0 and got[2] == 1.5e-8 and np.isnan(got[3]) and got[4] == -0.5
    assert labels.tolerance_note(2.0 ** -26) == "|value| ≤ 1.5e-08 (round-off) shown as 0"


def _gap_y(fig) -> np.ndarray:
    line = next(ln for ln in fig.axes[0].lines if len(ln.get_ydata()) == 3)
    return np.asarray(line.get_ydata(), float)


def test_sweep_draws_round_off_as_zero_and_says_so():
    fig = sweep_summary(_table(), ["exaggeration_gap_min", "max_rel_error"])
    try:
        assert _gap_y(fig).tolist() == [0.0, 0.02, 0.05]
        errors = next(ln for ln in fig.axes[1].lines if len(ln.get_ydata()) == 3).get_ydata()
        assert np.allclose(errors, 1e-13, rtol=0, atol=0)  # errors are never snapped
        assert "|value| ≤ 1.5e-08 (round-off) shown as 0" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_unsnapped_round_off_is_caught(monkeypatch):
    monkeypatch.setitem(labels.QUANTITIES, "exaggeration_gap_min", labels.Quantity("smallest gap"))  # no scale
    fig = sweep_summary(_table(), ["exaggeration_gap_min"])
    try:
        assert _gap_y(fig)[0] == -1e-9 and "round-off" not in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_exaggeration_title_shows_round_off_as_zero():
    title = gap_title(-3e-9, "float64")
    assert "= 0\n" in title and "1.5e-08" in title and "claim" not in title and "e-09" not in title
    assert "= -0.02\n" in gap_title(-0.02, "float64")  # a real negative gap is shown
    assert "= 0\n" in gap_title(-1e-4, "float32") and "= -0.0001\n" in gap_title(-1e-4, "float64")


# -------------------------------------------------------------------------------- progress


class _Recorder(Progress):
    lines: list = []

    def __init__(self, desc="", **kw):
        self.buf = io.StringIO()
        super().__init__(desc, **{**kw, "stream": self.buf, "force": True, "interval": 0.0})
        _Recorder.lines.append(self)


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    _Recorder.lines = []
    monkeypatch.setattr(runner, "Progress", _Recorder)
    monkeypatch.chdir(tmp_path)
    return _Recorder.lines


def _counts(line: str, desc: str, total: int, unit: str) -> bool:
    """``line`` is the final progress line ``desc  total/total unit ...``."""
    return line.startswith(f"{desc}  {total}/{total} {unit}  ")


def test_six_point_sweep_counts_six_points(recorded):
    config = registry.load_config("kind:toy", ["train.steps=3"])
    grid = {"data.noise": [0.0, 0.1, 0.2], "run.seed": [0, 1]}  # data.noise is not vectorized
    runner.execute_sweep(config, grid, Path("sw"), quiet=False, figures=False)
    points = json.loads(Path("sw/sweep.json").read_text())["points"]
    sweep_lines = recorded[-1].buf.getvalue().splitlines()
    assert len(points) == 6 and _counts(sweep_lines[-1], "toy sweep", len(points), "points")
    assert [ln.split()[2] for ln in sweep_lines] == [f"{i}/6" for i in range(1, 7)]


def test_vectorized_sweep_counts_gd_steps_of_every_point(recorded):
    config = registry.load_config("kind:toy", ["train.steps=7"])
    runner.execute_sweep(config, {"run.seed": [0, 1, 2, 3, 4, 5]}, Path("sw"), quiet=False, figures=False)
    line = recorded[-1].buf.getvalue().splitlines()[-1]
    assert _counts(line, "toy sweep (6 points, vectorized)", 7, "GD steps"), line


def test_progress_counted_in_phases_is_caught(recorded, monkeypatch):
    original = toy_experiment.run

    def phases(config, ctx):  # the planted bug: reports "1/1" phases, no unit
        ctx.progress(1, 1)
        return original(config, ctx._replace(progress=registry.null_progress))

    monkeypatch.setattr(toy_experiment, "run", phases)
    config = registry.load_config("kind:toy", ["train.steps=7"])
    runner.execute_sweep(config, {"run.seed": [0, 1]}, Path("sw"), quiet=False, figures=False)
    line = recorded[-1].buf.getvalue().splitlines()[-1]
    assert not _counts(line, "toy sweep (2 points, vectorized)", 7, "GD steps"), line


# ------------------------------------------------------------------------------ show, check


def _column(lines: list[str], key: str, column: str) -> str:
    """The full text of cell (row ``key``, ``column``) of a wrapped `linkd show` table: the slice of
    the row's first line and its continuation lines under the column's header, joined by spaces; a
    column not in the header line is read from the lines indented by 4 under the row."""
    head = next(i for i, ln in enumerate(lines) if ln.startswith("key "))
    first = next(i for i in range(head + 1, len(lines)) if lines[i].split()[:1] == [key])
    rows, k = [lines[first]], first + 1
    while k < len(lines) and lines[k].startswith(" "):
        rows.append(lines[k])
        k += 1
    names = lines[head].split()
    if column not in names:  # printed under the row
        return " ".join(r.strip() for r in rows if re.match(r"    \S", r))
    starts = [m.start() for m in re.finditer(r"\S+", lines[head])]
    j = names.index(column)
    lo, hi = starts[j], (starts[j + 1] if j + 1 < len(starts) else None)
    return " ".join(r[lo:hi].strip() for r in rows if not re.match(r"    \S", r) and r[lo:hi].strip())


def _show(monkeypatch, capsys, columns: int, *argv) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert cli.main(["show", *argv]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("columns", [80, 130])
def test_show_prints_full_values_wrapped_to_the_terminal(monkeypatch, capsys, columns):
    taus = "[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0]"
    lines = _show(monkeypatch, capsys, columns, "temperature", "--set", "train.taus=" + taus[1:-1].replace(" ", ""))
    assert _column(lines, "train.taus", "value") == taus + " *"
    assert _column(lines, "train.taus", "default") == "[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]"
    meaning = registry.get("temperature").full_schema["record"]["gap_min_residual"].doc
    assert _column(lines, "record.gap_min_residual", "meaning") == " ".join(meaning.split())
    assert "…" not in "\n".join(lines) and max(len(ln) for ln in lines) <= columns
    assert ("meaning" in lines[next(i for i, ln in enumerate(lines) if ln.startswith("key "))]) == (columns > 100)


def test_cut_show_values_are_caught():
    lines = ["key         value", "train.taus  [1.0, 2.0, 4…", "train.steps  3"]  # the old, cut rendering
    assert _column(lines, "train.taus", "value") != "[1.0, 2.0, 4.0, 8.0]"


def _record(cid, statement, measured):
    return {"id": cid, "paper": "x", "statement": statement, "kind": "exact", "measured": measured,
            "predicted": [0.0] * len(measured), "error": 1e-12, "tolerance": 1e-10, "passed": True, "seconds": 0.5,
            "params": {"size": "fast"}, "command": f"linkd check --only {cid}"}


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_check_table_holds_every_full_statement_and_value():
    from proofs_check import registry as claims

    records = [_record(c.id, c.statement, [0.1234 + i for i in range(17)]) for c in claims.all_claims()]
    text = check_runner.table(records, width=80)
    flat = _flat(text)
    for r in records:
        assert f"statement: {_flat(r['statement'])}" in flat, r["id"]
    assert "measured: [" + ", ".join(f"{v:.4g}" for v in records[0]["measured"]) + "]" in flat
    assert max(len(ln) for ln in text.splitlines() if ln.startswith("    ")) <= 80
    md = check_runner.markdown(records[:2], "fast", 1.0, {})
    assert json.dumps(records[0]["measured"]) in md and "…" not in md


def test_cut_check_values_are_caught():
    long = "x" * 50 + " statement " + "y" * 50
    cut = long[:27] + "…"  # what a width-28 cell showed
    assert f"statement: {_flat(long)}" not in _flat(cut)
