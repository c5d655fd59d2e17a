r"""Matched-progress gaps: one result type for every closed form that compares two learning paths
at matched progress (docs/theory.md §2.2, §6.3, §7.4, §8).

A reference path :math:`q^R(\sigma)` (a teacher, or a model trained on the labels) is run to the
time :math:`\sigma^*_i` at which its progress on direction i equals the student's,
:math:`q_i^R(\sigma^*_i) = q_i^S`; the gap on direction j is
:math:`\mathrm{gap}[i, j] = q_j^R(\sigma^*_i) - q_j^S`. For geometric GD paths
:math:`q^R_j(\sigma) = 1 - e^{\sigma\ell_j}` (:math:`\ell_j` = log of the per-step decay) this is
:math:`\sigma^*_i = \ln r_i/\ell_i` and :math:`\mathrm{gap}[i, j] = r_j - e^{\sigma^*_i\ell_j}`, with the
student's residuals :math:`r = 1 - q^S` (residuals avoid the cancellation in :math:`\ln(1-q)`).

Every gap function returns :class:`MatchedGap`: NaN marks an undefined entry (a pair outside
:math:`\lambda_i > \lambda_j > 0`, or a row left out), ``excluded`` marks the rows whose matched time
is undefined or ill-conditioned, and ``reason`` states the rule that left them out.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd.closed_form import _checks as checks

Array = jnp.ndarray
AnyArray = jnp.ndarray | np.ndarray  # jax for the jax closed forms, numpy float64 for the host ones

__all__ = ["MatchedGap", "matched_progress_gap"]


class MatchedGap(NamedTuple):
    r"""A matched-progress gap.

    ``gap``: :math:`q_j^R(\sigma^*_i) - q_j^S`, shape (..., d, d) with row i the matched direction
    (one matched direction: (..., d)); NaN where undefined. ``tau_star``: the matched reference time
    :math:`\sigma^*` per row (NaN where excluded), in the reference path's time unit (GD steps, flow
    time, or recorded-row index). ``excluded``: bool, True for rows left out. ``reason``: the rule
    that leaves rows out. ``n_excluded``: how many rows that is."""

    gap: AnyArray
    tau_star: AnyArray
    excluded: AnyArray
    reason: str

    @property
    def n_excluded(self) -> int:
        """Number of rows left out."""
        return int(np.sum(np.asarray(self.excluded)))


def _lead(x: Array, k: int) -> Array:
    """Prepend k singleton axes."""
    x = jnp.asarray(x)
    return x.reshape((1,) * k + x.shape)


def _pairwise_gap(residual: Array, log_decay: Array, lam: Array, keep: Array, reason: str) -> MatchedGap:
    r"""The pairwise gap of geometric reference paths: residuals ``residual`` (..., d), per-unit-time
    log decays :math:`\ell` (d,) < 0, eigenvalues (d,), and ``keep`` (..., d) the rows allowed (rows
    with :math:`r_i \le 0` are left out too). Entries outside :math:`\lambda_i > \lambda_j > 0` are NaN."""
    gap, tau, excluded = _pairwise_arrays(jnp.asarray(residual), log_decay, lam, keep)
    return MatchedGap(gap, tau, excluded, reason)


@jax.jit
def _pairwise_arrays(r: Array, log_decay: Array, lam: Array, keep: Array):
    k = r.ndim - 1
    ok = keep & (r > 0)
    tau = jnp.log(jnp.where(ok, r, 1.0)) / _lead(log_decay, k)  # (..., d)
    gap = r[..., None, :] - jnp.exp(tau[..., :, None] * _lead(log_decay, k + 1))  # (..., d, d)
    pairs = (lam[:, None] > lam[None, :]) & (lam[None, :] > 0)
    gap = jnp.where(_lead(pairs, k) & ok[..., :, None], gap, jnp.nan)
    return gap, jnp.where(ok, tau, jnp.nan), ~ok


def matched_progress_gap(q_reference, q_student, *, eigvals=None, min_residual: float = 1e-8) -> MatchedGap:
    r"""Matched-progress gap between two *measured* paths, for any teacher and any loss.

    ``q_reference`` (R, d): a reference path recorded at equally spaced times (e.g. a teacher's or a
    reference student's progress per direction); ``q_student`` (d,): the progress to compare.
    :math:`\sigma^*_i` (``tau_star``, in units of the recording interval) is the first crossing,
    interpolated linearly in the log-residual :math:`\ell = \ln(1 - q)` (exact for geometric GD paths,
    for which this equals :func:`linkd.closed_form.exaggeration_gap_from_progress`), and
    :math:`q_j^R(\sigma^*_i)` is read off with the same interpolation. Rows are left out where direction
    i never reaches :math:`q_i^S` on the recorded path or :math:`1 - q_i^S <` ``min_residual``
    (round-off makes σ* meaningless); entries whose reference residual is ≤ 0 are NaN. With
    ``eigvals``, only pairs :math:`\lambda_i > \lambda_j > 0` are kept (others NaN)."""
    fn = "matched_progress_gap"
    qR = checks.floats(q_reference)
    if qR.ndim != 2 or qR.shape[0] == 0:
        raise checks.refuse(fn, "q_reference", f"shape {tuple(qR.shape)}", "an array of shape (R, d), R >= 1")
    qS = checks.coeffs(fn, "q_student", q_student, qR.shape[1], ndim=(1,))
    lam = None if eigvals is None else checks.eigvals(fn, eigvals)
    if lam is not None and lam.shape != qS.shape:
        raise checks.refuse(fn, "eigvals", f"shape {tuple(lam.shape)}", f"shape {tuple(qS.shape)} (one per direction)")
    mr = checks.scalar(fn, "min_residual", min_residual, strict=False)
    gap, tau, excluded = _matched_gap(qR, qS, lam, mr)
    return MatchedGap(gap, tau, excluded, f"direction i never reaches q_i^S on the recorded reference path, or "
                                          f"1 - q_i^S < min_residual = {mr:g} (round-off makes the matched time meaningless)")


@jax.jit
def _matched_gap(qR: Array, qS: Array, lam: Array | None, min_residual):
    rR, rS = 1.0 - qR, 1.0 - qS
    logR = jnp.log(jnp.where(rR > 0, rR, jnp.nan))  # (R, d)
    logS = jnp.log(jnp.where(rS >= min_residual, rS, jnp.nan))  # (d,)
    reached = jnp.transpose(rR <= rS[None, :])  # (i, R): reference residual of i has dropped to the student's
    ok = jnp.any(reached, axis=1) & ~reached[:, 0]
    hit = jnp.argmax(reached, axis=1)  # first recorded index at or past the crossing
    k0 = jnp.maximum(hit - 1, 0)
    idx = jnp.arange(qS.shape[0])
    l0, l1 = logR[k0, idx], logR[hit, idx]
    w = jnp.where(l1 != l0, (logS - l0) / jnp.where(l1 != l0, l1 - l0, 1.0), 1.0)  # fraction of the interval
    lj = logR[k0, :] * (1.0 - w[:, None]) + logR[hit, :] * w[:, None]  # (i, j)
    gap = rS[None, :] - jnp.exp(lj)
    at_start = rR[0] == rS  # the student sits exactly at the reference's first record: σ* = 0
    gap = jnp.where(at_start[:, None], rS[None, :] - rR[0][None, :], gap)
    keep = (ok | at_start) & jnp.isfinite(logS)
    gap = jnp.where(keep[:, None], gap, jnp.nan)
    if lam is not None:
        gap = jnp.where((lam[:, None] > lam[None, :]) & (lam[None, :] > 0), gap, jnp.nan)
    tau = jnp.where(at_start, 0.0, k0.astype(qS.dtype) + w)
    return gap, jnp.where(keep, tau, jnp.nan), ~keep
