r"""Every step-size limit in one place: the largest stable step of each loss and optimizer.

All limits come from the curvature of the mean loss. For a linear model :math:`z = Xw` the
Hessian of :math:`\tfrac1n\sum_i\ell(z_i)` is :math:`X^\top\mathrm{diag}(\ell'')X/n \preceq
\kappa\,\hat\Sigma` when :math:`\ell'' \le \kappa`, so its largest eigenvalue is at most
:math:`L = \kappa\lambda_\max(\hat\Sigma)` (the smoothness constant, :func:`smoothness`):

* squared loss: :math:`\kappa = 1`, GD converges iff :math:`\eta < 2/\lambda_\max` and every
  filter :math:`1-(1-\eta\lambda_k)^t` is monotone iff :math:`\eta \le 1/\lambda_\max`
  (docs/theory.md §2.2; :func:`mse_convergent`, :func:`mse_monotone`);
* binary soft cross-entropy at temperature τ: :math:`\sigma' \le 1/4`, so the Hessian is
  :math:`\preceq \hat\Sigma/(4\tau^2)` (×τ² with ``tau2_scale``; docs/theory.md §1.2);
* multiclass tempered softmax: :math:`\mathrm{diag}\,p - pp^\top \preceq I/2`, so
  :math:`L = \lambda_\max/(2\tau^2)` (×τ²): with τ² scaling, descent for :math:`\eta < 4/\lambda_\max`
  at every τ (docs/theory.md §8; :func:`tempered_descent`). Near the teacher GD on the centred
  logits is MSE-GD with step :math:`\eta/C` (:func:`centred_logit_step`): monotone filters for
  :math:`\eta \le C/\lambda_\max` (:func:`tempered_monotone`); the binary limit is MSE-GD with
  step :math:`\eta/4`, descent for :math:`\eta < 8/\lambda_\max` (:func:`binary_descent`);
* GD is stable on a quadratic with curvature L iff :math:`\eta < 2/L` (:func:`gd_limit`); heavy
  ball (optax's form) iff :math:`\eta < 2(1+\mu)/L`, Nesterov iff
  :math:`\eta < 2(1+\mu)/((1+2\mu)L)` (:func:`momentum_limit`);
* deep-linear students of depth N (docs/theory.md §7.2): mode k moves with the step
  :math:`\varepsilon_k = \eta\lambda_k c_k^{2-2/N}` (:func:`deep_mode_steps`), stable iff
  :math:`\varepsilon_k < 2/N` (:func:`deep_mode_bound`, :func:`deep_lr_limit`). At the init, the
  engine bounds the curvature by :math:`\lambda_\max(J^\top J/n)`, J the Jacobian of the logits in
  all layers (:func:`init_jacobian_limit`; the power iteration lives in :mod:`linkd.engine.limits`).

Minibatch SGD on the squared loss (docs/theory.md §10.3): the second-moment map
:math:`\mathcal L(C) = ACA + \eta^2(\kappa/B)[F(C) - \hat\Sigma C\hat\Sigma]` must have spectral
radius < 1 (:func:`sgd_radius`); the largest such step is :math:`\eta_\max = 1/\rho(\mathcal T)`
(:func:`sgd_second_moment`), stricter than :math:`2/\lambda_\max` for small batches. Both are
matrix-free power iterations with certified brackets; they need X itself (fourth moments).

Every function but the SGD ones takes plain numbers (the caller computes :math:`\lambda_\max`) and
returns a float.
"""
from __future__ import annotations

import numpy as np

from linkd.errors import ConfigError

__all__ = [
    "FAMILY_CURVATURE",
    "smoothness",
    "gd_limit",
    "mse_convergent",
    "mse_monotone",
    "tempered_descent",
    "tempered_monotone",
    "binary_descent",
    "centred_logit_step",
    "momentum_limit",
    "deep_mode_bound",
    "deep_mode_steps",
    "deep_lr_limit",
    "init_jacobian_limit",
    "SGD_EXACT_SAMPLINGS",
    "sgd_noise_scale",
    "sgd_rowspace",
    "sgd_fourth_moment",
    "sgd_second_moment_map",
    "sgd_radius_bracket",
    "sgd_radius",
    "sgd_limit_bracket",
    "sgd_second_moment",
]

# κ with ℓ'' ⪯ κ I in the logits, per loss family (hard labels and KD at τ = 1)
FAMILY_CURVATURE = {"mse": 1.0, "binary": 0.25, "multiclass": 0.5}


def smoothness(family: str, lam_max: float, tau: float = 1.0, tau2_scale: bool = True) -> float:
    r"""Upper bound L on the Hessian's largest eigenvalue of the mean loss, for a linear model.

    ``mse``: :math:`L = \lambda_\max`; ``binary``: :math:`\lambda_\max/(4\tau^2)`; ``multiclass``:
    :math:`\lambda_\max/(2\tau^2)` (KD terms ×τ² with ``tau2_scale``). Hard-label terms use τ = 1;
    a mixture takes the max over its parts."""
    if family == "mse":
        return float(lam_max)
    c = FAMILY_CURVATURE.get(family)
    if c is None:
        raise ConfigError("family", family, "one of 'mse', 'binary', 'multiclass'", problem="unknown loss family")
    soft = c * lam_max / (tau * tau) * (tau * tau if tau2_scale else 1.0)
    return float(max(c * lam_max, soft))


def gd_limit(family: str, lam_max: float, tau: float = 1.0, tau2_scale: bool = True) -> float:
    r"""Largest stable GD step :math:`2/L`, L = :func:`smoothness` (docs/theory.md §1.2, §2.2)."""
    return 2.0 / smoothness(family, lam_max, tau, tau2_scale)


def mse_convergent(lam_max: float) -> float:
    r"""GD on the squared loss converges iff :math:`\eta < 2/\lambda_\max` (docs/theory.md §2.2)."""
    return 2.0 / float(lam_max)


def mse_monotone(lam_max: float) -> float:
    r"""Every GD filter :math:`1-(1-\eta\lambda_k)^t` is monotone in t iff :math:`\eta \le 1/\lambda_\max`."""
    return 1.0 / float(lam_max)


def tempered_descent(lam_max: float) -> float:
    r"""Descent bound :math:`4/\lambda_\max` of GD on the τ²-scaled tempered softmax loss at every
    τ (the Hessian is :math:`\preceq \tfrac12\hat\Sigma\otimes I`; docs/theory.md §8)."""
    return 4.0 / float(lam_max)


def tempered_monotone(lam_max: float, num_classes: int) -> float:
    r""":math:`C/\lambda_\max`: below it the centred-logit step :math:`\eta/C` keeps every
    :math:`\rho_k = 1 - \eta\lambda_k/C \ge 0` (monotone filters; docs/theory.md §8)."""
    return int(num_classes) / float(lam_max)


def binary_descent(lam_max: float) -> float:
    r"""Descent bound :math:`8/\lambda_\max` of the τ²-scaled binary soft-CE (its large-τ limit is
    MSE-GD on the logit with step :math:`\eta/4`; docs/theory.md §8)."""
    return 8.0 / float(lam_max)


def centred_logit_step(lr: float, num_classes: int) -> float:
    r"""The step :math:`\eta/C` of GD on the centred logits (the large-τ limit of tempered
    multiclass distillation, docs/theory.md §8)."""
    return float(lr) / int(num_classes)


def momentum_limit(optimizer: str, limit: float, momentum: float) -> tuple[float, str]:
    r"""From the GD limit :math:`2/L` of a quadratic to ``optimizer``'s: ``gd`` :math:`2/L`, heavy
    ball (``momentum``) :math:`2(1+\mu)/L`, ``nesterov`` :math:`2(1+\mu)/((1+2\mu)L)` (quadratic
    stability of optax's forms). Returns the limit and its formula."""
    mu = float(momentum)
    if optimizer == "momentum":
        return limit * (1.0 + mu), "2(1+μ)/L"
    if optimizer == "nesterov":
        return limit * (1.0 + mu) / (1.0 + 2.0 * mu), "2(1+μ)/((1+2μ)L)"
    if optimizer == "gd":
        return limit, "2/L"
    raise ConfigError("optimizer", optimizer, "one of 'gd', 'momentum', 'nesterov' (Adam has no step-size limit)")


def deep_mode_bound(depth: int) -> float:
    r"""The per-mode condition :math:`\varepsilon_k < 2/N` of a depth-N linear network (docs/theory.md §7.2)."""
    return 2.0 / int(depth)


def deep_mode_steps(lr: float, eigvals, strengths, depth: int) -> np.ndarray:
    r"""Per-mode steps :math:`\varepsilon_k = \eta\lambda_k c_k^{2-2/N}` (docs/theory.md §7.2)."""
    N = int(depth)
    return float(lr) * np.asarray(eigvals) * np.asarray(strengths) ** (2.0 - 2.0 / N)


def deep_lr_limit(eigvals, strengths, depth: int) -> float:
    r"""Largest η with every :math:`\varepsilon_k < 2/N`: :math:`\min_k (2/N)/(\lambda_k c_k^{2-2/N})`."""
    N = int(depth)
    lam, c = np.asarray(eigvals), np.asarray(strengths)
    return float(np.min(deep_mode_bound(N) / (lam * c ** (2.0 - 2.0 / N))))


def init_jacobian_limit(family: str, jac_lam_max: float, tau: float = 1.0, tau2_scale: bool = True) -> float:
    r""":math:`2/L` with L from :math:`\lambda_\max(J^\top J/n)` at the init (J the Jacobian of the
    logits in all layers of a deep-linear student). For a balanced aligned init this is
    :math:`N\lambda_k\sigma_0^{2-2/N}`, i.e. the per-mode condition :math:`\varepsilon < 2/N` of
    docs/theory.md §7.2 at the init; the curvature grows as modes are learnt, so passing is
    necessary, not sufficient."""
    return gd_limit(family, jac_lam_max, tau, tau2_scale)


# ------------------------------------------------------------------------------------ SGD second moment
# Minibatch SGD on the squared loss (docs/theory.md §10.3): the step below which the second moment
# E||w_t - w_inf||² contracts. It needs the rows of X (their fourth moments), not only the spectrum,
# so these functions take X (n, d) and compute in float64 numpy on the row space of X.

#: sampling schemes with an exact second-moment map (shuffled epochs have none)
SGD_EXACT_SAMPLINGS = ("with_replacement", "without_replacement")


def sgd_noise_scale(n: int, batch_size: int, sampling: str = "with_replacement") -> float:
    r"""The factor :math:`\kappa/B` of the minibatch gradient covariance :math:`\mathrm{Cov}(g_B) =
    (\kappa/B)(M(w) - \bar g\bar g^\top)` (docs/theory.md §10.1): :math:`\kappa = 1` for B indices drawn
    with replacement, :math:`\kappa = (n-B)/(n-1)` for B distinct indices drawn afresh each step."""
    n, B = int(n), int(batch_size)
    if B < 1:
        raise ConfigError("batch_size", B, "an integer >= 1")
    if sampling == "with_replacement":
        return 1.0 / B
    if sampling == "without_replacement":
        if B > n:
            raise ConfigError("batch_size", B, f"1 <= batch_size <= n = {n} when sampling without replacement")
        return (n - B) / (B * (n - 1.0)) if n > 1 else 0.0
    raise ConfigError("sampling", sampling, f"one of {SGD_EXACT_SAMPLINGS} (shuffled epochs have no exact "
                      "second-moment map)")


def sgd_rowspace(X) -> tuple[np.ndarray, np.ndarray]:
    r"""``(lam, Xr)``: the nonzero eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_r` of
    :math:`\hat\Sigma` and the rows in that eigenbasis, :math:`\tilde X = XV_r` (n, r), from the thin
    SVD of X (float64; the null space of X is left out: SGD never moves it)."""
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2 or Xa.shape[0] < 1:
        raise ConfigError("X", f"shape {Xa.shape}", "a 2-d array (n, d) with n >= 1")
    n = Xa.shape[0]
    U, s, _ = np.linalg.svd(Xa, full_matrices=False)
    lam = s * s / n
    r = int(np.sum(lam > max(Xa.shape) * np.finfo(np.float64).eps * 10 * max(float(lam[0]), 0.0))) if lam.size else 0
    return lam[:r], U[:, :r] * s[:r]


def sgd_fourth_moment(C: np.ndarray, Xr: np.ndarray) -> np.ndarray:
    r""":math:`F(C) = \frac1n\sum_i (x_i^\top C x_i)\,x_i x_i^\top` in :math:`O(nr^2)` (two products)."""
    q = np.einsum("ij,ij->i", Xr @ C, Xr)
    return (Xr.T * q) @ Xr / Xr.shape[0]


def sgd_second_moment_map(C: np.ndarray, lam: np.ndarray, Xr: np.ndarray, lr: float, scale: float) -> np.ndarray:
    r"""The map :math:`\mathcal L(C) = ACA + \eta^2(\kappa/B)[F(C) - \hat\Sigma C\hat\Sigma]` in the
    eigenbasis (``lam``, ``Xr`` from :func:`sgd_rowspace`; ``scale`` = κ/B), matrix-free."""
    a = 1.0 - lr * lam
    return np.outer(a, a) * C + lr * lr * scale * (sgd_fourth_moment(C, Xr) - np.outer(lam, lam) * C)


def _limit_map(C: np.ndarray, lam: np.ndarray, Xr: np.ndarray, scale: float) -> np.ndarray:
    r""":math:`\mathcal T(C) = \mathcal S^{-1}[(1-\kappa/B)\hat\Sigma C\hat\Sigma + (\kappa/B)F(C)]`,
    :math:`\mathcal S(C) = \hat\Sigma C + C\hat\Sigma`: its spectral radius is :math:`1/\eta_\max`."""
    G = (1.0 - scale) * np.outer(lam, lam) * C + scale * sgd_fourth_moment(C, Xr)
    return G / np.add.outer(lam, lam)


def _perron(apply, r: int, weight: np.ndarray, *, tol: float, max_iter: int, decide: float | None = None):
    r"""Bracket ``(lo, hi, iterations)`` of the spectral radius of a positive map on symmetric r × r
    matrices, by power iteration from :math:`I`. Bounds (docs/theory.md §10.3): Collatz–Wielandt,
    :math:`\lambda_{\min/\max}(P^{-1/2}\mathcal A(P)P^{-1/2})` for :math:`P \succ 0`, and the Rayleigh
    quotient :math:`\langle P, W\circ\mathcal A(P)\rangle / \langle P, W\circ P\rangle` (``weight`` W
    makes the map self-adjoint). Stops at relative width ``tol``, or once ``decide`` lies outside."""
    P, lo, hi = np.eye(r), 0.0, np.inf
    for it in range(1, max_iter + 1):
        Q = apply(P)
        lo = max(lo, float(np.sum(P * weight * Q) / np.sum(P * weight * P)))
        if it <= 3 or it % 8 == 0 or it == max_iter:
            w, U = np.linalg.eigh(P)
            if w[0] > 1e-300 * max(w[-1], 1e-300):
                R = (U / np.sqrt(w)) @ U.T
                ev = np.linalg.eigvalsh(R @ Q @ R)
                lo, hi = max(lo, float(ev[0])), min(hi, float(ev[-1]))
            if hi - lo <= tol * hi or (decide is not None and (lo >= decide or hi < decide)):
                return lo, hi, it
        P = Q / np.linalg.norm(Q)
        P = 0.5 * (P + P.T)
    return lo, hi, max_iter


def sgd_radius_bracket(X, lr: float, batch_size: int, sampling: str = "with_replacement", *, tol: float = 1e-10,
                       max_iter: int = 20000, decide: float | None = None) -> tuple[float, float, int]:
    r"""``(lo, hi, iterations)`` bracketing the spectral radius :math:`\rho(\mathcal L)` of the SGD
    second-moment map at step ``lr`` on the row space of X (docs/theory.md §10.3)."""
    lam, Xr = sgd_rowspace(X)
    scale = sgd_noise_scale(Xr.shape[0], batch_size, sampling)
    return _perron(lambda C: sgd_second_moment_map(C, lam, Xr, float(lr), scale), lam.size,
                   np.ones((lam.size, lam.size)), tol=tol, max_iter=max_iter, decide=decide)


def sgd_radius(X, lr: float, batch_size: int, sampling: str = "with_replacement", *, tol: float = 1e-10,
               max_iter: int = 20000) -> float:
    r""":math:`\rho(\mathcal L)`: :math:`\mathbb E[(w_t - w_\infty)(w_t - w_\infty)^\top]` contracts as
    :math:`\rho^t` iff it is < 1 (docs/theory.md §10.3). The midpoint of :func:`sgd_radius_bracket`."""
    lo, hi, _ = sgd_radius_bracket(X, lr, batch_size, sampling, tol=tol, max_iter=max_iter)
    return 0.5 * (lo + hi)


def sgd_limit_bracket(X, batch_size: int, sampling: str = "with_replacement", *, tol: float = 1e-10,
                      max_iter: int = 20000, decide_lr: float | None = None) -> tuple[float, float, int]:
    r"""``(lo, hi, iterations)`` bracketing the SGD second-moment limit :math:`\eta_\max = 1/\rho(\mathcal T)`
    (docs/theory.md §10.3); with ``decide_lr`` it stops once that step is known to lie below or above."""
    lam, Xr = sgd_rowspace(X)
    scale = sgd_noise_scale(Xr.shape[0], batch_size, sampling)
    decide = None if decide_lr is None else 1.0 / float(decide_lr)
    lo, hi, it = _perron(lambda C: _limit_map(C, lam, Xr, scale), lam.size, np.add.outer(lam, lam), tol=tol,
                         max_iter=max_iter, decide=decide)
    return 1.0 / hi, (1.0 / lo if lo > 0 else np.inf), it


def sgd_second_moment(X, batch_size: int, sampling: str = "with_replacement", *, tol: float = 1e-10,
                      max_iter: int = 20000) -> float:
    r"""The largest step at which minibatch SGD on the squared loss is stable in mean square:
    :math:`\eta_\max = 1/\rho(\mathcal T)` (docs/theory.md §10.3), at most the GD limit
    :math:`2/\lambda_\max` and equal to it as :math:`B \to \infty`. For ``lr`` below it
    :math:`\rho(\mathcal L) < 1`, above it :math:`\rho(\mathcal L) > 1`."""
    lo, hi, _ = sgd_limit_bracket(X, batch_size, sampling, tol=tol, max_iter=max_iter)
    return 0.5 * (lo + hi)
