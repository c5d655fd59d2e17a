r"""Fidelity, confidence, information and attention metrics (docs/theory.md §1.1, §2.1, §4.1, §5.1).

Input conventions (one rule for every function here):

* Multiclass: arrays of shape (n, C) — probabilities (or logits where a function says so);
  the predicted class is the argmax over the last axis.
* Binary: 1-D arrays of shape (n,). Probabilities are :math:`p = P(\text{class }1)`; the class is
  1 iff p > 1/2. Logits z: class 1 iff z > 0 (the same rule, since :math:`\sigma(0) = 1/2`).
  Where a 1-D input could be either, the function takes ``binary="logits"`` (default) or
  ``binary="probs"``.

Direction conventions: :func:`predictive_kl_teacher_student` is
:math:`\frac1n\sum_i\mathrm{KL}(p_T\|p_S)` (Stanton et al.'s average predictive KL, Eq. 3);
:func:`predictive_kl_student_teacher` is the reverse (Guo et al.; :func:`guo_kl` = 10 × it). These
take probabilities, teacher first, and average over examples — unlike the training losses
:func:`linkd.losses.kl_teacher_student` / :func:`linkd.losses.kl_student_teacher`, which are
per-example, on logits, student first.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import rel_entr
from numpy.typing import ArrayLike

from linkd.dtypes import default_float
from linkd.errors import InputError

Array = jnp.ndarray

__all__ = [
    "predicted_class",
    "top1_agreement",
    "predictive_kl_teacher_student",
    "predictive_kl_student_teacher",
    "guo_kl",
    "ensemble_probs",
    "ensemble_logits",
    "logit_confidence",
    "ConfidenceScatter",
    "confidence_scatter",
    "mutual_info_discrete",
    "attention_map",
    "attention_masks",
    "attention_iou",
    "attention_iou_per_example",
    "affinity",
    "disagreement_risk",
]

_BINARY = ("logits", "probs")


def _check_binary(binary: str, fn: str) -> None:
    if binary not in _BINARY:
        raise InputError(f"{fn}: binary must be one of {_BINARY}; got {binary!r}")


def predicted_class(a: Array, binary: str = "logits") -> Array:
    """Top-1 class: argmax over the last axis for (n, C); for 1-D input, 1{z > 0}
    (``binary="logits"``) or 1{p > 1/2} (``binary="probs"``)."""
    _check_binary(binary, "predicted_class")
    a = jnp.asarray(a)
    if a.ndim == 1:
        thr = 0.0 if binary == "logits" else 0.5
        return (a > thr).astype(jnp.int32)
    if a.ndim == 2:
        return jnp.argmax(a, axis=-1).astype(jnp.int32)
    raise InputError(f"predicted_class: predictions must have shape (n,) (binary) or (n, C); got shape {a.shape}")


def top1_agreement(p_or_logits_T: Array, p_or_logits_S: Array, binary: str = "logits") -> Array:
    r"""Average top-1 agreement :math:`\frac1n\sum_i 1\{\hat y_S(x_i) = \hat y_T(x_i)\}` (Stanton Eq. 2,
    as a fraction, not ×100). (n, C) probabilities or logits give the same answer; for 1-D input
    both arrays are logits (``binary="logits"``, class = z > 0) or both probabilities
    (``binary="probs"``, class = p > 1/2)."""
    a, b = jnp.asarray(p_or_logits_T), jnp.asarray(p_or_logits_S)
    if a.shape != b.shape:
        raise InputError(f"top1_agreement: p_or_logits_T and p_or_logits_S must have the same shape (n,) or (n, C); "
                         f"got {a.shape} and {b.shape}")
    _check_binary(binary, "top1_agreement")
    ya, yb = predicted_class(a, binary), predicted_class(b, binary)
    return jnp.mean((ya == yb).astype(default_float()))


def _as_categorical(p: Array, name: str) -> Array:
    p = jnp.asarray(p)
    if p.ndim == 1:  # Bernoulli: P(class 1) → (n, 2)
        return jnp.stack([1.0 - p, p], axis=-1)
    if p.ndim == 2:
        return p
    raise InputError(f"predictive_kl_teacher_student: {name} must be probabilities of shape (n,) (binary) or (n, C); "
                     f"got shape {p.shape}")


def predictive_kl_teacher_student(pT: Array, pS: Array) -> Array:
    r"""Average predictive KL :math:`\frac1n\sum_i\mathrm{KL}(p_T(\cdot|x_i)\,\|\,p_S(\cdot|x_i))`
    (Stanton et al. Eq. 3; evaluate at temperature 1). Probabilities in, teacher first: (n, C) or (n,)
    Bernoulli. :math:`0\log 0 = 0`; +inf where p_S = 0 < p_T."""
    a, b = _as_categorical(pT, "pT"), _as_categorical(pS, "pS")
    if a.shape != b.shape:
        raise InputError(f"predictive_kl_teacher_student: pT and pS must have the same shape; got {a.shape} and {b.shape}")
    return jnp.mean(jnp.sum(rel_entr(a, b), axis=-1))


def predictive_kl_student_teacher(pT: Array, pS: Array) -> Array:
    r"""Reverse direction :math:`\frac1n\sum_i\mathrm{KL}(p_S\,\|\,p_T)` (Guo et al.'s, before ×10).
    Arguments are still teacher first."""
    return predictive_kl_teacher_student(pS, pT)


def guo_kl(pT: Array, pS: Array) -> Array:
    r"""Guo et al.'s KL metric: :math:`10\cdot\frac1n\sum_i\mathrm{KL}(p_S\|p_T)`
    (``F.kl_div(log p_T, p_S, reduction='batchmean') * 10``)."""
    return 10.0 * predictive_kl_student_teacher(pT, pS)


def _stack(members, fn: str) -> Array:
    z = jnp.stack([jnp.asarray(m) for m in members]) if isinstance(members, (list, tuple)) else jnp.asarray(members)
    if z.ndim not in (2, 3):
        raise InputError(
            f"{fn}: logits must be a sequence of m arrays of shape (n,) or (n, C), or one array (m, n) / (m, n, C); "
            f"got stacked shape {z.shape}"
        )
    return z


def ensemble_probs(logits: Sequence[Array] | Array, tau: float = 1.0) -> Array:
    r"""Probability-averaged ensemble (Stanton et al.): :math:`p_T = \frac1m\sum_k\mathrm{softmax}(z_k/\tau)`.

    ``logits``: m members, stacked (m, n, C) or a sequence of (n, C); binary members (n,) (stacked
    (m, n)) use :math:`\sigma` and return P(class 1) of shape (n,)."""
    z = _stack(logits, "ensemble_probs") / tau
    p = jax.nn.sigmoid(z) if z.ndim == 2 else jax.nn.softmax(z, axis=-1)
    return jnp.mean(p, axis=0)


def ensemble_logits(logits: Sequence[Array] | Array) -> Array:
    r"""Logit-averaged ensemble (Guo et al.): :math:`z_T = \frac1m\sum_k z_k` (apply softmax/σ yourself)."""
    return jnp.mean(_stack(logits, "ensemble_logits"), axis=0)


def _logit(p: Array) -> Array:
    r""":math:`\varphi(p) = \log(p/(1-p))` with p clipped to [δ, 1−δ], δ = the dtype's eps."""
    p = jnp.asarray(p)
    eps = jnp.finfo(p.dtype).eps
    p = jnp.clip(p, eps, 1.0 - eps)
    return jnp.log(p) - jnp.log1p(-p)


def logit_confidence(pT: Array, pS: Array, logits: bool = False) -> tuple[Array, Array]:
    r"""Per-example pair :math:`(\varphi(p_T(\hat y_T|x)), \varphi(p_S(\hat y_T|x)))`,
    :math:`\hat y_T = \arg\max_j p_T(j|x)`, :math:`\varphi(p) = \log(p/(1-p))`.

    ``logits=False``: probabilities in, clipped to [eps, 1−eps] before φ (no inf).
    ``logits=True``: logits in; φ is computed stably as
    :math:`z_{\hat y} - \mathrm{logsumexp}_{j\ne\hat y} z_j` (binary: :math:`\pm z`), exact far in the tails.
    """
    a, b = jnp.asarray(pT), jnp.asarray(pS)
    if a.shape != b.shape or a.ndim not in (1, 2):
        raise InputError(f"logit_confidence: pT and pS must have the same shape (n,) or (n, C); "
                         f"got {a.shape} and {b.shape}")
    if a.ndim == 1:
        yhat = predicted_class(a, "logits" if logits else "probs")
        sgn = 2.0 * yhat.astype(a.dtype) - 1.0
        if logits:
            return sgn * a, sgn * b
        return _logit(jnp.where(yhat == 1, a, 1.0 - a)), _logit(jnp.where(yhat == 1, b, 1.0 - b))
    yhat = jnp.argmax(a, axis=-1)
    if not logits:
        pick = lambda p: jnp.take_along_axis(p, yhat[:, None], axis=-1)[:, 0]  # noqa: E731
        return _logit(pick(a)), _logit(pick(b))
    mask = jax.nn.one_hot(yhat, a.shape[-1], dtype=bool)

    def phi(z):
        top = jnp.take_along_axis(z, yhat[:, None], axis=-1)[:, 0]
        rest = jax.nn.logsumexp(jnp.where(mask, -jnp.inf, z), axis=-1)
        return top - rest

    return phi(a), phi(b)


class ConfidenceScatter(NamedTuple):
    """Confidence-exaggeration plot data (Nagarajan et al.; docs/theory.md §2.1).

    x, y: per-example :math:`\\varphi(p_T(\\hat y_T|x))`, :math:`\\varphi(p_S(\\hat y_T|x))`;
    slope, intercept: ordinary least squares of y on x (slope > 1 ⇔ exaggeration);
    bin_x, bin_y: means of x and y in ``bins`` equal-count bins of x (sorted by x).
    """

    x: Array
    y: Array
    slope: Array
    intercept: Array
    bin_x: Array
    bin_y: Array


def confidence_scatter(pT: Array, pS: Array, bins: int = 20, logits: bool = False) -> ConfidenceScatter:
    r"""Logit-scale confidence pairs, OLS line and equal-count binned means (see :class:`ConfidenceScatter`).

    Inputs as in :func:`logit_confidence`. OLS: slope = cov(x, y)/var(x) (NaN if all x are equal),
    intercept = ȳ − slope·x̄. Bins: example of rank r (by x) goes to bin ⌊r·bins/n⌋, so bin sizes
    differ by at most one; ``bins`` is capped at n. The binning is our choice (not confirmed
    from the paper).
    """
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InputError(f"confidence_scatter: bins must be an integer >= 1; got {bins!r}")
    x, y = logit_confidence(pT, pS, logits=logits)
    n = x.shape[0]
    if n < 2:
        raise InputError(f"confidence_scatter: pT and pS need at least 2 examples (rows) for a least-squares "
                         f"slope; got {n}")
    xc, yc = x - jnp.mean(x), y - jnp.mean(y)
    sxx = jnp.sum(xc * xc)
    slope = jnp.where(sxx > 0, jnp.sum(xc * yc) / jnp.where(sxx > 0, sxx, 1.0), jnp.nan)
    intercept = jnp.mean(y) - slope * jnp.mean(x)
    nb = int(min(bins, n))
    order = jnp.argsort(x)
    idx = (jnp.arange(n) * nb) // n
    counts = jnp.zeros(nb, x.dtype).at[idx].add(1.0)
    bin_x = jnp.zeros(nb, x.dtype).at[idx].add(x[order]) / counts
    bin_y = jnp.zeros(nb, x.dtype).at[idx].add(y[order]) / counts
    return ConfidenceScatter(x, y, slope, intercept, bin_x, bin_y)


def mutual_info_discrete(a: ArrayLike, b: ArrayLike) -> float:
    r"""Plug-in mutual information of two label sequences, in nats (= sklearn ``mutual_info_score``):
    :math:`\sum_{ij} p_{ij}\log\frac{p_{ij}}{p_i\,p_j}` from the contingency table. Host numpy;
    labels may be any hashable integer/str values. Guo et al.'s "mis" = MI(top1_T, top1_S)."""
    la, lb = np.asarray(a), np.asarray(b)
    if la.ndim != 1 or la.shape != lb.shape or la.shape[0] == 0:
        raise InputError(f"mutual_info_discrete: a and b must be non-empty 1-D label arrays of the same length; "
                         f"got shapes {la.shape} and {lb.shape}")
    _, ia = np.unique(la, return_inverse=True)
    _, ib = np.unique(lb, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia.ravel(), ib.ravel()), 1.0)
    pij = table / la.shape[0]
    pi, pj = pij.sum(axis=1, keepdims=True), pij.sum(axis=0, keepdims=True)
    nz = pij > 0
    mi = float(np.sum(pij[nz] * (np.log(pij[nz]) - np.log((pi @ pj)[nz]))))
    return max(mi, 0.0)


def attention_map(w: Array, X: Array) -> Array:
    r"""Per-feature attribution :math:`a(x) = |w \odot x|` for each row of X: shape (n, d).

    ``w`` (d,) — or (d, C) for C outputs, then :math:`a(x) = \sum_c |w_{:,c}\odot x|` (our linear
    stand-in for Guo et al.'s class-summed CAM)."""
    w, X = jnp.asarray(w), jnp.asarray(X)
    if X.ndim != 2 or w.ndim not in (1, 2) or w.shape[0] != X.shape[1]:
        raise InputError(f"attention_map: need X of shape (n, d) and w of shape (d,) or (d, C) with matching d; "
                         f"got X {X.shape}, w {w.shape}")
    if w.ndim == 1:
        return jnp.abs(X * w[None, :])
    return jnp.sum(jnp.abs(X[:, :, None] * w[None, :, :]), axis=-1)


def attention_masks(A: Array, k: int | None = None, thr: float = 0.4) -> Array:
    r"""Binary masks from attributions A (n, d), one row per example.

    * ``k`` given: the k largest entries of each row (ties broken by position, ``lax.top_k``).
    * else: per-example min–max normalisation :math:`(a-\min)/(\max-\min)` and ``> thr`` (strict, as
      in Guo et al.'s code). A constant row gives an empty mask (no 0/0).

    Note: docs/theory.md §5.1 gives threshold 0.4; the two versions of RethinkKD's ``calculate-IoU.py``
    we read use ``Threshold = 0.5`` with the same strict ``>``. Pass ``thr=0.5`` to match that code.
    """
    A = jnp.asarray(A)
    if A.ndim != 2:
        raise InputError(f"attention_masks: A (attributions) must have shape (n, d); got shape {A.shape}")
    if k is not None:
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= A.shape[1]:
            raise InputError(f"attention_masks: k must be None or an integer in [1, d={A.shape[1]}]; got {k!r}")
        _, idx = jax.lax.top_k(A, int(k))
        return jnp.zeros(A.shape, bool).at[jnp.arange(A.shape[0])[:, None], idx].set(True)
    if not 0.0 <= thr < 1.0:
        raise InputError(f"attention_masks: thr must be in [0, 1); got {thr!r}")
    lo, hi = jnp.min(A, axis=1, keepdims=True), jnp.max(A, axis=1, keepdims=True)
    span = hi - lo
    norm = jnp.where(span > 0, (A - lo) / jnp.where(span > 0, span, 1.0), 0.0)
    return norm > thr


def _masks_pair(A1, A2, k, thr, fn: str):
    A1, A2 = jnp.asarray(A1), jnp.asarray(A2)
    if A1.shape != A2.shape:
        raise InputError(f"{fn}: A1 and A2 must have the same shape (n, d); got {A1.shape} and {A2.shape}")
    return attention_masks(A1, k, thr), attention_masks(A2, k, thr)


def attention_iou(A1: Array, A2: Array, k: int | None = None, thr: float = 0.4) -> Array:
    r"""Batch IoU of attention masks :math:`\sum(m_1\wedge m_2)/\sum(m_1\vee m_2)` summed over all
    examples and features (Guo et al.'s per-batch IoU). Masks from :func:`attention_masks`
    (top-k if ``k`` else min–max normalise and threshold ``thr``). Both masks empty → 1."""
    m1, m2 = _masks_pair(A1, A2, k, thr, "attention_iou")
    inter = jnp.sum(m1 & m2).astype(default_float())
    union = jnp.sum(m1 | m2).astype(inter.dtype)
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 1.0)


def attention_iou_per_example(A1: Array, A2: Array, k: int | None = None, thr: float = 0.4) -> Array:
    """IoU of each example's pair of masks, shape (n,) (1 where both masks are empty)."""
    m1, m2 = _masks_pair(A1, A2, k, thr, "attention_iou_per_example")
    inter = jnp.sum(m1 & m2, axis=1).astype(default_float())
    union = jnp.sum(m1 | m2, axis=1).astype(inter.dtype)
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 1.0)


def affinity(acc_aug, acc_clean):
    r"""Augmentation affinity (Guo et al.): Acc(model on augmented val) / Acc(model on clean val)."""
    acc_aug, acc_clean = jnp.asarray(acc_aug), jnp.asarray(acc_clean)
    try:
        bad = bool(jnp.any(acc_clean <= 0))
    except jax.errors.ConcretizationTypeError:
        bad = False
    if bad:
        raise InputError(f"affinity: acc_clean must be > 0 (an accuracy on clean data); got {acc_clean}")
    return acc_aug / acc_clean


def disagreement_risk(w: Array, w_star: Array, X_test: Array) -> Array:
    r"""Empirical teacher-disagreement risk :math:`\frac1m\sum_i 1\{\mathrm{sign}(w^\top x_i) \ne
    \mathrm{sign}(w_*^\top x_i)\}` (docs/theory.md §1.1; test agreement = 1 − this). ``w`` (d,) or (k, d)
    (→ (k,)). A zero score counts as its own sign (0), so w = 0 disagrees everywhere w_* ≠ 0."""
    w, w_star, X = jnp.asarray(w), jnp.asarray(w_star), jnp.asarray(X_test)
    if X.ndim != 2 or w_star.shape != (X.shape[1],) or w.shape[-1] != X.shape[1] or w.ndim not in (1, 2):
        raise InputError(f"disagreement_risk: need X_test (m, d), w_star (d,) and w (d,) or (k, d) with matching d; "
                         f"got X_test {X.shape}, w_star {w_star.shape}, w {w.shape}")
    s_star = jnp.sign(X @ w_star)
    if w.ndim == 1:
        return jnp.mean((jnp.sign(X @ w) != s_star).astype(X.dtype))
    return jnp.mean((jnp.sign(X @ w.T) != s_star[:, None]).astype(X.dtype), axis=0)
