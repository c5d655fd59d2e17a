"""Reduced sizes of every preset for the test suite (one place; `tests/test_presets.py` fails if a
preset has no entry here). Each entry is a list of `--set key=value` overrides."""
from __future__ import annotations

from pathlib import Path

REDUCED: dict[str, list[str]] = {
    'confidence': ['data.n=40', 'data.d=20', 'data.n_test=200', 'data.seeds=2', 'teacher.steps=10', 'student.steps=20', 'record.every=5', 'record.bins=8'],
    'eigen_convergence': ['data.n=20', 'data.d=40', 'data.n_test=50', 'teacher.steps=15', 'student.steps=30', 'record.directions=1,5,15'],
    'deep_modes': ['data.n=12', 'train.eps=0.1', 'train.t_end=10', 'train.records=60', 'model.depths=2,4', 'distill.t_end=60', 'dilation.depths=1,2,3', 'dilation.Q=0.2,0.5'],
    'ensemble_attention': ['data.n=30', 'data.d=10', 'data.n_test=200', 'data.seeds=2', 'augment.strengths=0,0.3,0.8', 'teachers.steps=40', 'student.steps=40', 'record.top_k=3'],
    'exaggeration': ['data.n=20', 'data.d=40', 'data.n_test=50', 'teacher.steps=10', 'student.steps=20', 'record.directions=2,8,15'],
    'fidelity': ['data.d=8', 'data.n_values=2,4,8,16', 'data.n_curves=4,16', 'data.n_test=300', 'data.seeds=2', 'data.exponent=1.0', 'train.steps=1000', 'record.every=20', 'record.points=10'],
    'late_distillation': ['data.n=20', 'data.d=40', 'data.n_test=50', 'teacher.steps=10', 'student.steps=60', 'student.switch_step=20', 'record.every=5'],
    'pl_convergence': ['data.n=4', 'data.d=10', 'model.depths=2,3', 'model.width=6', 'model.init_scales=0.03,0.1', 'train.steps=300'],
    'pl_risk': ['data.d=12', 'data.ns=1,2,4,8', 'mc.sets=200', 'mc.check_sets=20', 'mc.n_test=200', 'bound.p_samples=2000', 'bound.grid=401', 'linear.ns=2', 'linear.sets=1', 'deep.depths=2', 'deep.ns=4', 'deep.sets=4', 'deep.steps=300', 'deep.width=8'],
    'self_distillation': ['data.n_test=100'],
    'sgd_denoising': ['data.n=30', 'data.d=4', 'data.n_test=10', 'teacher.steps=10', 'student.steps=30', 'train.seeds=200', 'record.directions=1,4'],
    'temperature': ['data.n=60', 'train.steps=60', 'train.taus=2,32,64,128'],
    'wide_network': ['data.n=12', 'data.n_test=6', 'train.steps=20', 'widths.widths=16,64', 'widths.seeds=1', 'distill.widths=16,64', 'distill.student_steps=10', 'distill.directions=3'],
}


def overrides(preset: str, extra: tuple[str, ...] = ()) -> list[str]:
    """`--set` arguments of the reduced size (plus ``extra`` key=value pairs)."""
    return [a for kv in (*REDUCED[preset], *extra) for a in ("--set", kv)]


def run_preset(preset: str, out: Path, extra: tuple[str, ...] = ()) -> Path:
    """`linkd run PRESET` at the reduced size into ``out``; asserts exit code 0."""
    from linkd import cli

    assert cli.main(["run", preset, *overrides(preset, extra), "--out", str(out), "--quiet"]) == 0
    return out
