r"""F9: ensemble attention and fidelity against augmentation strength (Guo et al., theory §5.2,
our linear analogue).

Data: Gaussian inputs (power-law spectrum, random basis), binary labels 1{x·w* > 0} each flipped
with probability ``data.flip`` (train and test alike, so the train–test gap measures overfitting).
For every augmentation strength s (``augment.strengths``; Gaussian feature noise σ_a or masking
rate ρ, :func:`linkd.data.augment`):

* ``teachers.m`` logistic teachers, each trained by GD from zero on its own independently augmented
  copy of the training inputs (hard labels);
* attention :math:`a(x) = |w\odot x|` (:func:`linkd.metrics.attention_map`) on clean test inputs;
  teacher–teacher IoU of top-k masks and of min–max-normalised masks thresholded at ``thr``
  (:func:`linkd.metrics.attention_iou`), averaged over teacher pairs;
* a logistic student trained by GD on the **logit-averaged** ensemble
  (:func:`linkd.metrics.ensemble_logits`), evaluated on the student's own augmented copy (teacher and
  student see the same augmented input, as in Guo et al.), α-mixed with the hard labels;
* test T–S fidelity (top-1 agreement with the ensemble), plug-in MI(top1_T, top1_S) in nats
  (:func:`linkd.metrics.mutual_info_discrete`, Guo's "mis"), Guo's KL = 10·KL(p_S‖p_T), the student's
  train–test accuracy gap, and the teachers' affinity Acc(augmented test)/Acc(clean test).

Everything runs for ``data.seeds`` seeds: all (strength, seed, teacher) members in one vmapped
sweep, all (strength, seed) students in a second; error bars are ±1 standard error over seeds.
The paper's directions as strength ↑: IoU ↓, fidelity ↓, MI ↓, gap ↓; the summary says which
reproduce here (sign of the least-squares slope of the seed-mean against strength).
"""
from __future__ import annotations

import itertools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd import data, engine, metrics
from linkd.config import Field
from linkd.errors import ConfigError
from linkd.experiments._mse_common import population_spectrum
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "DIRECTIONS", "validate", "run", "figure"]

_FRACTION = Field(float, 0.9, "η as a fraction of 1/L, L = λ_max(Σ̂)/4 (max over the sweep); < 2 is stable",
                  low=0.0, high=2.0, low_open=True, high_open=True)

SCHEMA = {
    "data": {
        "n": Field(int, 100, "number of training points", low=2),
        "d": Field(int, 50, "input dimension", low=2),
        "n_test": Field(int, 2000, "number of test points", low=2),
        "spectrum": Field(str, "power_law", "population spectrum kind", choices=("power_law", "exponential")),
        "exponent": Field(float, 1.0, "power-law exponent a (λ_k ∝ k^-a) or exponential rate", low=0.0),
        "teacher_profile": Field(float, 0.0, "ground truth coefficients c_k ∝ k^-profile"),
        "flip": Field(float, 0.1, "label-flip probability (train and test labels)", low=0.0, high=0.5,
                      high_open=True),
        "seeds": Field(int, 4, "independent problems (vmapped); error bars over them", low=1),
    },
    "augment": {
        "kind": Field(str, "noise", "augmentation: Gaussian feature noise σ_a or feature masking rate ρ",
                      choices=("noise", "mask")),
        "strengths": Field(list[float], (0.0, 0.1, 0.2, 0.4, 0.6, 0.8), "augmentation strengths (σ_a or ρ)",
                           low=0.0),
    },
    "teachers": {
        "m": Field(int, 2, "number of teachers in the ensemble", low=2),
        "steps": Field(int, 400, "teacher GD steps on their augmented copies (hard labels)", low=1),
        "lr_fraction": _FRACTION,
    },
    "student": {
        "steps": Field(int, 400, "student GD steps", low=1),
        "alpha": Field(float, 0.0, "hard-label weight α of the KD mixture", low=0.0, high=1.0),
        "tau": Field(float, 1.0, "distillation temperature τ (KD term scaled by τ²)", low=0.0, low_open=True),
        "augment": Field(bool, True, "train the student on its own augmented copy (same input for teacher and student)"),
        "lr_fraction": _FRACTION,
    },
    "record": {
        "top_k": Field(int, 5, "k of the top-k attention masks", low=1),
        "thr": Field(float, 0.4, "threshold of the min–max-normalised attention masks", low=0.0, high=1.0,
                     high_open=True),
    },
}

DIRECTIONS = {"iou_topk": -1, "iou_thr": -1, "fidelity": -1, "mi": -1, "gap": -1}


def validate(cfg) -> None:
    if cfg.get("record.top_k") > cfg.get("data.d"):
        raise ConfigError("record.top_k", cfg.get("record.top_k"), f"1 <= top_k <= data.d = {cfg.get('data.d')}")
    if cfg.get("augment.kind") == "mask" and max(cfg.get("augment.strengths")) >= 1.0:
        raise ConfigError("augment.strengths", max(cfg.get("augment.strengths")), "masking rates in [0, 1)")
    if not cfg.get("augment.strengths"):
        raise ConfigError("augment.strengths", "[]", "at least one strength")


def _train(X, targets, labels, lr, alpha, tau, steps):
    M, n, d = X.shape
    return engine.sweep(
        jnp.zeros((M, d), X.dtype), engine.Data(X=X, targets=targets, labels=labels),
        engine.Hyper(lr=lr, tau=tau, alpha=alpha),
        engine.EngineSpec(family="binary", steps=steps, record_every=steps), batched=("params", "data"))


def _slope(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    xc = x - x.mean()
    return float(np.sum(xc * (y - y.mean())) / np.sum(xc * xc)) if np.sum(xc * xc) > 0 else float("nan")


class _Problems(NamedTuple):
    """Per-seed designs and {0, 1} labels, stacked on axis 0, and each seed's augmentation key."""

    X: jax.Array
    X_test: jax.Array
    y: jax.Array
    y_test: jax.Array
    aug_keys: list


def _problems(D, lam, seed: int) -> _Problems:
    Xs, Xts, ys, yts, aug_keys = [], [], [], [], []
    for key in jax.random.split(jax.random.key(seed), D["seeds"]):
        k_design, k_teacher, k_flip, k_flip_test, k_aug = jax.random.split(key, 5)
        design = data.make_design(k_design, D["n"], D["d"], lam, n_test=D["n_test"], basis="random")
        w_star = data.linear_teacher(k_teacher, lam, basis=design.basis, profile=D["teacher_profile"])
        Xs.append(design.X)
        Xts.append(design.X_test)
        ys.append(data.binary_hard_labels(design.X, w_star, flip=D["flip"], key=k_flip))
        yts.append(data.binary_hard_labels(design.X_test, w_star, flip=D["flip"], key=k_flip_test))
        aug_keys.append(k_aug)
    X, X_test, y, y_test = (jnp.stack(a) for a in (Xs, Xts, ys, yts))
    return _Problems(X, X_test, y, y_test, aug_keys)


def _augmenter(kind: str, strengths: list[float], aug_keys: list) -> Callable:
    """``aug(g, s, j, X)``: copy j of seed s's inputs at strength g (j = 0..m-1 teachers, m the
    student, m+1 the test copy for affinity), each from its own folded key."""
    def aug(g, s, j, Xin):
        key = jax.random.fold_in(jax.random.fold_in(aug_keys[s], g), j)
        return data.augment(kind, key, Xin, strengths[g])
    return aug


def _pair_metrics(Ws, w_s, Xn, Xtn, yn, ytn, X_aug_test, R) -> dict[str, float]:
    """Every recorded number for one (strength, seed) pair: m teachers ``Ws`` (m, d), the student
    ``w_s`` (d,), train/test inputs and {0, 1} labels, and the augmented test copy (affinity)."""
    m = Ws.shape[0]
    zt = Xtn @ Ws.T  # (n_test, m)
    att = [metrics.attention_map(Ws[j], Xtn) for j in range(m)]
    ij = list(itertools.combinations(range(m), 2))
    z_e = np.asarray(metrics.ensemble_logits(zt.T))  # logit average (Guo et al.)
    z_s = Xtn @ w_s
    top_e, top_s = (z_e > 0).astype(np.int64), (z_s > 0).astype(np.int64)
    train_acc = float(np.mean((Xn @ w_s > 0) == (yn > 0.5)))
    test_acc = float(np.mean(top_s == (ytn > 0.5)))
    t_train = np.mean([(Xn @ Ws[j] > 0) == (yn > 0.5) for j in range(m)])
    t_test = np.mean([(zt[:, j] > 0) == (ytn > 0.5) for j in range(m)])
    acc_aug = np.mean([(X_aug_test @ Ws[j] > 0) == (ytn > 0.5) for j in range(m)])
    return {
        "iou_topk": np.mean([float(metrics.attention_iou(att[i], att[j], k=R["top_k"])) for i, j in ij]),
        "iou_thr": np.mean([float(metrics.attention_iou(att[i], att[j], thr=R["thr"])) for i, j in ij]),
        "teacher_agreement": np.mean([float(np.mean((zt[:, i] > 0) == (zt[:, j] > 0))) for i, j in ij]),
        "fidelity": float(np.mean(top_e == top_s)),
        "mi": metrics.mutual_info_discrete(jnp.asarray(top_e), jnp.asarray(top_s)),
        "guo_kl": float(metrics.guo_kl(jax.nn.sigmoid(jnp.asarray(z_e)), jax.nn.sigmoid(jnp.asarray(z_s)))),
        "student_train_acc": train_acc,
        "student_test_acc": test_acc,
        "gap": train_acc - test_acc,
        "teacher_test_acc": t_test,
        "teacher_gap": t_train - t_test,
        "ensemble_test_acc": float(np.mean(top_e == (ytn > 0.5))),
        "affinity": float(metrics.affinity(acc_aug, t_test)),
    }


def _directions(strengths: list[float], out: dict[str, np.ndarray]) -> dict[str, dict]:
    """Slope sign and monotonicity of each seed-averaged metric against the strength (the paper's claims)."""
    found = {}
    for k, sign in DIRECTIONS.items():
        mean = out[k].mean(axis=1)
        sl = _slope(strengths, mean)
        found[k] = {
            "paper": "decreases" if sign < 0 else "increases",
            "slope": sl,
            "first": float(mean[0]),
            "last": float(mean[-1]),
            "reproduced": bool(np.isfinite(sl) and np.sign(sl) == sign),
            "monotone": bool(np.all(np.diff(mean) * sign >= 0)),
        }
    return found


_NAMES = ("iou_topk", "iou_thr", "fidelity", "mi", "guo_kl", "gap", "student_train_acc", "student_test_acc",
          "teacher_agreement", "teacher_test_acc", "ensemble_test_acc", "affinity", "teacher_gap")


def run(cfg, ctx) -> Result:
    D, A, Tc, St, R = cfg["data"], cfg["augment"], cfg["teachers"], cfg["student"], cfg["record"]
    strengths = [float(s) for s in A["strengths"]]
    G, S, m = len(strengths), D["seeds"], Tc["m"]
    lam = population_spectrum(D)
    X, X_test, y, y_test, aug_keys = _problems(D, lam, ctx.seed)
    aug = _augmenter(A["kind"], strengths, aug_keys)
    total = Tc["steps"] + St["steps"]

    members = list(itertools.product(range(G), range(S), range(m)))
    X_T = jnp.stack([aug(g, s, j, X[s]) for g, s, j in members])
    y_T = jnp.stack([y[s] for g, s, j in members])
    ctx.progress(0, total, "GD steps")
    lr_T = engine.default_lr(X_T, "binary", Tc["lr_fraction"])
    teachers = _train(X_T, jnp.zeros(y_T.shape, X.dtype), y_T, lr_T, 1.0, 1.0, Tc["steps"])
    ctx.progress(Tc["steps"], total)
    W_T = np.asarray(teachers.params).reshape(G, S, m, D["d"])

    pairs = [(g, s) for g in range(G) for s in range(S)]
    X_S = jnp.stack([aug(g, s, m, X[s]) if St["augment"] else X[s] for g, s in pairs])
    z_ens = jnp.einsum("pnd,pkd->pn", X_S, jnp.asarray(W_T.reshape(G * S, m, D["d"]))) / m  # logit average
    lr_S = engine.default_lr(X_S, "binary", St["lr_fraction"], St["tau"])
    student = _train(X_S, z_ens, jnp.stack([y[s] for g, s in pairs]), lr_S, St["alpha"], St["tau"], St["steps"])
    ctx.progress(total, total)
    W_S = np.asarray(student.params).reshape(G, S, D["d"])

    out = {k: np.zeros((G, S)) for k in _NAMES}
    Xn, Xtn, yn, ytn = (np.asarray(a) for a in (X, X_test, y, y_test))
    for g, s in pairs:
        row = _pair_metrics(W_T[g, s], W_S[g, s], Xn[s], Xtn[s], yn[s], ytn[s], np.asarray(aug(g, s, m + 1, X_test[s])), R)
        for k, v in row.items():
            out[k][g, s] = v

    res = {"strengths": np.asarray(strengths), "eigvals": np.asarray(lam), "steps": np.asarray(student.steps),
           "teacher_weights": W_T, "student_weights": W_S, **out}
    summary: dict = {"augment": A["kind"], "teachers": m, "seeds": S, "lr_teacher": lr_T, "lr_student": lr_S,
                     "alpha": St["alpha"], "tau": St["tau"], "dtype": str(np.asarray(X).dtype),
                     "directions": _directions(strengths, out),
                     **{f"{k}_mean": [float(v) for v in out[k].mean(axis=1)] for k in _NAMES}}
    return Result(res, summary)


def figure(metrics_, summary, cfg) -> dict:
    from linkd.plotting import fidelity as figures

    return {"ensemble_attention": figures.ensemble_attention(metrics_, summary)}


register(Experiment(
    name="ensemble_attention",
    description="F9: teacher-teacher attention IoU, T-S fidelity, MI and student generalization gap vs augmentation strength",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
))
