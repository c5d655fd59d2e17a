r"""Standard pieces of a conjecture, built from a point (docs/theory.md §2.2, §3.1).

Each helper is traceable in the parameters a claim usually varies (reals, seeds, step counts used
as indices), so a claim built from them screens under ``jax.vmap``; array sizes (n, d, K) must be
plain integers. Seeds are folded with a fixed tag per ingredient, so ``design(seed)`` and
``teacher(seed)`` are independent draws.

* :func:`spectrum` — :math:`\lambda_k = s\,k^{-a}` (power law) or :math:`s\,e^{-r(k-1)}`;
* :func:`design` — X (n, d), rows :math:`x \sim N(0, \mathrm{diag}\,\lambda)`;
* :func:`teacher`, :func:`labels` — :math:`w_*`, :math:`y = Xw_* + \sigma\varepsilon`;
* :func:`eig`, :func:`coords` — :math:`\hat\Sigma = X^\top X/n = V\Lambda V^\top` and the min-norm
  coordinates :math:`c_k^* = v_k^\top X^\top y/(n\lambda_k)` (0 where :math:`\lambda_k = 0`);
* :func:`lr` — the step size with :math:`\eta\lambda_{\max}` = ``fraction``;
* :func:`gd_trajectory` — full-batch GD on :math:`\tfrac1{2n}\|Xw - y\|^2` by the engine
  (:func:`linkd.engine.simulate`), every step, shape (steps + 1, d);
* :func:`closed_form_trajectory` — :math:`c_k(t) = c_k^* + (1-\eta\lambda_k)^t(c_k(0) - c_k^*)`
  (:func:`linkd.closed_form.gd_mse_trajectory`);
* :func:`kernel_problem` — Mobahi's setting (§3.1): K points on [−1, 1], y = sin 3x + noise,
  G = RBF Gram / K (numpy, host).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd.dtypes import default_float

__all__ = ["key", "spectrum", "design", "teacher", "labels", "eig", "coords", "lr", "gd_trajectory",
           "closed_form_trajectory", "kernel_problem"]

_TAGS = {"design": 1, "teacher": 2, "labels": 3, "kernel": 4}


def key(seed, tag: str | int = 0):
    """A PRNG key from an integer seed (traced or not), folded with ``tag``."""
    k = jax.random.key(seed)
    t = _TAGS.get(tag, 0) if isinstance(tag, str) else int(tag)
    return jax.random.fold_in(k, t) if t else k


def spectrum(d: int, exponent=1.0, scale=1.0, kind: str = "power_law"):
    r"""(d,) eigenvalues: ``power_law`` :math:`s\,k^{-a}` or ``exponential`` :math:`s\,e^{-a(k-1)}`."""
    k = jnp.arange(1, int(d) + 1, dtype=default_float())
    if kind == "exponential":
        return scale * jnp.exp(-exponent * (k - 1.0))
    return scale * k ** (-exponent)


def design(seed, n: int, eigvals, n_test: int = 0):
    """X (n, d) with i.i.d. rows N(0, diag(eigvals)); with ``n_test`` > 0, also X_test (n_test, d)."""
    from linkd import data

    lam = jnp.asarray(eigvals, dtype=default_float())
    k1, k2 = jax.random.split(key(seed, "design"))
    X = data.gaussian_design(k1, int(n), lam)
    if n_test:
        return X, data.gaussian_design(k2, int(n_test), lam)
    return X


def teacher(seed, d: int, profile=0.0, norm=1.0):
    r""":math:`w_*` (d,) with :math:`|c_k^*| \propto k^{-\text{profile}}`, random signs, :math:`\|w_*\|` = norm."""
    from linkd import data

    return data.linear_teacher(key(seed, "teacher"), int(d), profile=profile, norm=norm)


def labels(seed, X, w_star, noise=0.0):
    r""":math:`y = Xw_* + \text{noise}\cdot\varepsilon`, :math:`\varepsilon \sim N(0, I)`."""
    from linkd import data

    return data.regression_labels(key(seed, "labels"), X, w_star, noise)


def eig(X):
    """(eigvals descending, basis V) of Σ̂ = XᵀX/n, exact zeros on the null space of X."""
    from linkd import spectral

    X = jnp.asarray(X)
    tol = 10.0 * max(X.shape) * float(jnp.finfo(X.dtype).eps)  # spectral.default_rank_tol, from the dtype only
    s = spectral.eigh_desc(X, rank_tol=tol)
    return s.eigvals, s.basis


def coords(X, y):
    r"""(eigvals, basis, coeffs_star): min-norm least-squares coordinates :math:`c_k^* = v_k^\top X^\top y/(n\lambda_k)`."""
    lam, V = eig(X)
    n = X.shape[0]
    proj = V.T @ (X.T @ y) / n
    return lam, V, jnp.where(lam > 0, proj / jnp.where(lam > 0, lam, 1.0), 0.0)


def lr(eigvals, fraction):
    r"""η with :math:`\eta\lambda_{\max}` = ``fraction`` (GD converges for < 2, filters are monotone for ≤ 1)."""
    return fraction / jnp.max(jnp.asarray(eigvals))


def gd_trajectory(X, targets, lr, steps: int, w0=None, every: int = 1):
    r"""Weights of full-batch GD on :math:`\tfrac1{2n}\|Xw - \text{targets}\|^2` from ``w0`` (0), recorded
    every ``every`` steps (and at the last): shape (steps + 1, d) for ``every=1``, by
    :func:`linkd.engine.simulate` (unchecked, so ``lr`` may be traced)."""
    from linkd import engine

    X = jnp.asarray(X)
    d = X.shape[1]
    w0 = jnp.zeros(d, X.dtype) if w0 is None else jnp.asarray(w0)
    spec = engine.EngineSpec(family="mse", optimizer="gd", steps=int(steps), record_every=int(every))
    data = engine.Data(X, jnp.asarray(targets), basis=jnp.eye(d, dtype=X.dtype))
    tr = engine.simulate(w0, data, engine.Hyper(lr=lr), spec, check=False)
    return tr.coeffs


def closed_form_trajectory(eigvals, coeffs_star, coeffs0, lr, steps):
    r"""Closed-form GD coordinates :math:`c_k(t)`, shape (steps + 1, d) (:func:`linkd.closed_form.gd_mse_trajectory`)."""
    from linkd import closed_form

    return closed_form.gd_mse_trajectory(eigvals, coeffs_star, coeffs0, lr, steps)


def kernel_problem(seed: int, K: int, lengthscale: float = 0.2, noise: float = 0.0):
    r"""(x, y, G): K inputs uniform on [−1, 1] (sorted), :math:`y = \sin 3x + \text{noise}\cdot\varepsilon`,
    :math:`G = \text{rbf}(x, x, \ell)/K` (float64 numpy, drawn by ``numpy.random.default_rng(seed)``;
    Mobahi's setting, docs/theory.md §3.1)."""
    rng = np.random.default_rng(int(seed))
    x = np.sort(rng.uniform(-1.0, 1.0, int(K)))
    y = np.sin(3 * x) + float(noise) * rng.standard_normal(int(K))
    G = np.exp(-((x[:, None] - x[None, :]) ** 2) / (2.0 * float(lengthscale) ** 2)) / int(K)
    return x, y, G
