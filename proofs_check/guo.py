"""Guo, Zhong, Liu, Feng, Ma (2024), docs/theory.md §5.2: a *linear analogue* of the attention/fidelity
findings. Two multiclass linear teachers are trained on independently augmented copies of the data
(Gaussian feature noise of strength sigma_a); a student is distilled from their logit-averaged
ensemble on augmented inputs (teacher and student see the same augmented inputs). The paper's
findings concern deep networks; whether they carry over to this linear analogue is the question
asked, and a trend that does not reproduce is reported as such, not tuned away."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import data, engine, metrics
from proofs_check._common import cached, key, pick, sim
from proofs_check.registry import qualitative, register

__all__: list[str] = []  # claims register themselves (proofs_check.registry); nothing to import

P = "guo"
STRENGTHS = (0.0, 0.5, 1.0, 2.0)
TAU, ALPHA = 3.0, 0.6  # RethinkKD CIFAR-100 scripts (docs/theory.md §5.1): tau = 3, hard-label weight 0.6


@cached
def _experiment(size):
    n, d, C, n_test = pick(size, (100, 30, 5, 2000), (400, 60, 10, 20000))
    steps = pick(size, 300, 1000)
    k = jax.random.split(key(71), 6)
    lam = data.power_law_spectrum(d, 1.0, scale=float(d))
    X = data.gaussian_design(k[0], n, lam)
    Xt = data.gaussian_design(k[1], n_test, lam)
    W_star = data.multiclass_teacher(k[2], d, C, scale=3.0)
    y = data.multiclass_hard_labels(X, W_star, flip=0.2, key=k[3])
    yt = data.multiclass_hard_labels(Xt, W_star)
    W0 = jnp.zeros((d, C))
    zeros = jnp.zeros((n, C))
    lr = engine.default_lr(X, "multiclass", fraction=0.5)
    rows = []
    for i, s in enumerate(STRENGTHS):
        ki = jax.random.fold_in(k[4], i)
        Xa = [data.feature_noise(jax.random.fold_in(ki, j), X, s) for j in range(3)]  # teacher 1, teacher 2, student
        Ws = [sim(W0, Xa[j], zeros, lr, steps, family="multiclass", labels=y, alpha=1.0).params for j in range(2)]
        z_ens = metrics.ensemble_logits([Xa[2] @ Ws[0], Xa[2] @ Ws[1]])  # teachers see the student's augmented inputs
        Wst = sim(W0, Xa[2], z_ens, lr, steps, family="multiclass", labels=y, alpha=ALPHA, tau=TAU,
                  tau2_scale=True).params
        zT, zS = metrics.ensemble_logits([Xt @ Ws[0], Xt @ Ws[1]]), Xt @ Wst
        iou = float(metrics.attention_iou(metrics.attention_map(Ws[0], Xt), metrics.attention_map(Ws[1], Xt), k=d // 5))
        fid = float(metrics.top1_agreement(zT, zS))
        mi = metrics.mutual_info_discrete(np.asarray(metrics.predicted_class(zT)), np.asarray(metrics.predicted_class(zS)))
        acc_tr = float(jnp.mean((jnp.argmax(X @ Wst, axis=-1).astype(y.dtype) == y).astype(jnp.float64)))
        acc_te = float(jnp.mean((jnp.argmax(Xt @ Wst, axis=-1).astype(yt.dtype) == yt).astype(jnp.float64)))
        rows.append({"strength": s, "iou": iou, "fidelity": fid, "mi": mi, "gap": acc_tr - acc_te, "test_acc": acc_te})
    return rows, {"n": n, "d": d, "C": C, "steps": steps, "flip": 0.2, "tau": TAU, "alpha": ALPHA,
                  "augmentation": "feature noise sigma_a", "strengths": STRENGTHS, "iou_mask": f"top-{d // 5} features"}


def _trend(metric, what):
    def fn(size="fast", corrupt=None):
        rows, params = _experiment(size)
        v = np.array([r[metric] for r in rows])
        dec = bool(np.all(np.diff(v) <= 0.0) and v[-1] < v[0])
        params = dict(params, test_acc=[r["test_acc"] for r in rows])
        note = f"{what} vs strength {list(STRENGTHS)}: {np.round(v, 4).tolist()}"
        return qualitative(dec, v, "decreasing in augmentation strength", error=float(v[-1] - v[0]), params=params, note=note)

    return fn


_COMMON = ("Linear analogue of Guo et al. (2 linear softmax teachers on Gaussian-noise-augmented copies of 20%-noisy "
           "data, student distilled from their logit-averaged ensemble, tau=3, alpha=0.6): with stronger augmentation ")
_REASON = "qualitative: reproduced iff the metric is non-increasing over the 4 strengths and lower at the end."

for _id, _metric, _what in (("guo.teacher_iou_falls", "iou", "teacher-teacher attention IoU (top-k |w*x| masks)"),
                            ("guo.fidelity_falls", "fidelity", "ensemble-student test top-1 agreement"),
                            ("guo.mutual_info_falls", "mi", "ensemble-student mutual information (plug-in, nats)"),
                            ("guo.train_test_gap_shrinks", "gap", "student train-test accuracy gap")):
    register(id=_id, paper=P, kind="qualitative", tolerance=None, tolerance_reason=_REASON,
             statement=_COMMON + f"the {_what} falls.")(_trend(_metric, _what))
