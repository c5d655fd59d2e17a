"""Shared pieces of the squared-loss teacher→student experiments (Nagarajan et al., docs/theory.md §2).

Problem: Gaussian design X (n, d) with a chosen population spectrum, linear ground truth w*,
noisy labels y = Xw* + σε, test set with clean targets X_test w*. Everything is expressed in the
eigenbasis of Σ̂ = XᵀX/n, where the GD closed forms of :mod:`linkd.closed_form.gd` live.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd import data, engine, spectral
from linkd.config import Field
from linkd.dtypes import x64_enabled
from linkd.errors import ConfigError, MemoryBudgetError

DATA_SECTION = {
    "n": Field(int, 100, "number of training points", low=1),
    "d": Field(int, 200, "input dimension", low=1),
    "n_test": Field(int, 1000, "number of test points", low=1),
    "spectrum": Field(str, "power_law", "population spectrum kind", choices=("power_law", "exponential")),
    "exponent": Field(float, 1.0, "power-law exponent a (λ_k ∝ k^-a) or exponential rate", low=0.0),
    "basis": Field(str, "random", "population eigenbasis", choices=("random", "axis")),
    "noise": Field(float, 0.5, "label noise std σ in y = Xw* + σε", low=0.0),
    "teacher_profile": Field(float, 0.0, "ground truth coefficients c_k ∝ k^-profile", ),
}

TRAIN_SECTION = {
    "lr_fraction": Field(float, 0.9, "η·λ_max(Σ̂) (< 1: monotone filters; < 2: convergent)", low=0.0, high=2.0,
                         low_open=True, high_open=True),
}


class MSEProblem(NamedTuple):
    X: jnp.ndarray
    y: jnp.ndarray
    X_test: jnp.ndarray
    y_test: jnp.ndarray  # clean targets X_test w*
    w_star: jnp.ndarray
    eigvals: jnp.ndarray  # of Σ̂ (train), descending, exact zeros on the null space
    basis: jnp.ndarray  # (d, d), column k = v_k
    c_star: jnp.ndarray  # v_kᵀ X⁺ y
    lr: float


#: Problems already drawn, newest last: validation draws a problem and the run (or every point of a
#: sweep, validated one by one before the sweep runs) reuses it. Bounded by count and bytes.
_PROBLEMS: OrderedDict = OrderedDict()
_CACHE_MAX_PROBLEMS = 64
_CACHE_MAX_BYTES = 512 * 2**20


def _problem_nbytes(p: MSEProblem) -> int:
    return sum(int(getattr(a, "nbytes", 0)) for a in p)


def build_problem(cfg, seed: int) -> MSEProblem:
    """Draw the design, teacher and labels from ``seed`` (independent subkeys). Problems are kept
    (keyed by the resolved config's digest, the seed and the x64 flag; at most 64 problems and
    512 MiB), so the validation that inspects one (:func:`validate`) costs the run nothing, also
    for every point of a sweep."""
    key = (cfg.digest() if hasattr(cfg, "digest") else None, seed, x64_enabled())
    if key[0] is not None and key in _PROBLEMS:
        _PROBLEMS.move_to_end(key)
        return _PROBLEMS[key]
    p = _draw_problem(cfg, seed)
    if key[0] is not None:
        _PROBLEMS[key] = p
        while len(_PROBLEMS) > 1 and (len(_PROBLEMS) > _CACHE_MAX_PROBLEMS or
                                      sum(map(_problem_nbytes, _PROBLEMS.values())) > _CACHE_MAX_BYTES):
            _PROBLEMS.popitem(last=False)
    return p


def _draw_problem(cfg, seed: int) -> MSEProblem:
    D = cfg["data"]
    k_design, k_teacher, k_noise = jax.random.split(jax.random.key(seed), 3)
    lam_pop = population_spectrum(D)
    design = data.make_design(k_design, D["n"], D["d"], lam_pop, n_test=D["n_test"], basis=D["basis"])
    w_star = data.linear_teacher(k_teacher, lam_pop, basis=design.basis, profile=D["teacher_profile"])
    y = data.regression_labels(k_noise, design.X, w_star, noise=D["noise"])
    sp = spectral.eigh_desc(design.X)
    lr = float(cfg["train"]["lr_fraction"]) / float(sp.eigvals[0])
    return MSEProblem(design.X, y, design.X_test, design.X_test @ w_star, w_star, sp.eigvals, sp.basis,
                      spectral.min_norm_coeffs(design.X, y, sp.basis), lr)


def population_spectrum(D) -> jnp.ndarray:
    """The ``[data]`` section's population spectrum: ``spectrum`` kind with ``exponent`` as the
    power-law exponent or the exponential rate (:func:`linkd.data.make_spectrum`)."""
    param = "exponent" if D["spectrum"] == "power_law" else "rate"
    return data.make_spectrum(D["spectrum"], D["d"], **{param: D["exponent"]})


def train_mse(p: MSEProblem, targets, steps: int, record_every: int, *, labels=None, switch_step=None):
    """GD from zero on ``targets`` (switching from ``labels`` at ``switch_step`` if given)."""
    spec = engine.EngineSpec(family="mse", steps=steps, record_every=record_every, switch_step=switch_step)
    d = engine.Data(X=p.X, targets=targets, labels=labels, basis=p.basis, X_test=p.X_test, labels_test=p.y_test)
    return engine.simulate(jnp.zeros(p.X.shape[1], p.X.dtype), d, engine.Hyper(lr=p.lr), spec)


def closed_form_errors(sim, pred) -> dict:
    """Max absolute and relative (to max |prediction|) error of a closed-form comparison."""
    sim, pred = np.asarray(sim), np.asarray(pred)
    abs_err = float(np.max(np.abs(sim - pred)))
    return {"max_abs_error": abs_err, "max_rel_error": abs_err / max(float(np.max(np.abs(pred))), 1e-300)}


def test_mse_from_coeffs(p: MSEProblem, coeffs) -> np.ndarray:
    """Test mean squared error ‖X_test w − y_test‖²/n_test for each row of coefficients."""
    W = np.asarray(coeffs) @ np.asarray(p.basis).T  # (R, d)
    r = W @ np.asarray(p.X_test).T - np.asarray(p.y_test)[None, :]
    return np.mean(r * r, axis=1)


def directions(cfg_dirs, eigvals) -> list[int]:
    """Validated 1-based direction indices → 0-based, restricted to λ_k > 0."""
    r = int(np.sum(np.asarray(eigvals) > 0))
    out = []
    for k in cfg_dirs:
        if not 1 <= k <= r:
            raise ConfigError("record.directions", k, f"1-based indices in [1, rank X = {r}]")
        out.append(int(k) - 1)
    return out


def progress_trajectory(coeffs, c_star) -> np.ndarray:
    """Progress q_k(t) = c_k(t)/c_k* (:func:`linkd.spectral.progress`) of a (T, d) coefficient trajectory."""
    return np.asarray(spectral.progress(jnp.asarray(coeffs), jnp.asarray(c_star)[None, :]))


def validate_lr_fraction(cfg) -> None:
    """Cross-field checks shared by the presets, before anything runs: refuse η past the stability
    limit (η·λ_max < 2, theory §2.2; ``lr_fraction`` = η·λ_max(Σ̂), i.e. η = lr_fraction/L as in
    :func:`linkd.engine.default_lr` with L = λ_max for the squared loss) and a problem that would
    not fit in memory (:func:`check_memory`)."""
    frac = cfg.get("train.lr_fraction")
    if not 0 < frac < 2:
        raise ConfigError("train.lr_fraction", frac, "0 < η·λ_max < 2 (stability limit of GD on the squared loss)")
    check_memory(cfg)


def problem_bytes(cfg) -> int:
    """Bytes a run holds at its peak: X and X_test, the d × d population basis, Σ̂ and its
    eigenbasis with LAPACK's workspace (≈ 6 d² in all), and the recorded trajectories (teacher and
    student coefficients, their closed forms and progress: 6 arrays of (steps/every + 1) × d)."""
    D = cfg["data"]
    n, d, nt = D["n"], D["d"], D["n_test"]
    every = cfg.get("record.every", 1)
    R = sum(cfg.get(f"{who}.steps", 0) // every + 1 for who in ("teacher", "student"))
    itemsize = 8 if cfg.get("run.x64") else 4
    return int(itemsize * ((n + nt) * d + 6 * d * d + 6 * R * d))


def check_memory(cfg) -> None:
    """Refuse, before anything starts, a problem larger than 80 % of the available memory."""
    need, have = problem_bytes(cfg), engine.memory.available_bytes()
    if need > 0.8 * have:
        D = cfg["data"]
        raise MemoryBudgetError(
            f"data.d = {D['d']}: with data.n = {D['n']}, data.n_test = {D['n_test']} the run would need about "
            f"{need / 2**30:.3g} GiB (a d × d eigenbasis of Σ̂ and the recorded trajectories) but "
            f"{have / 2**30:.3g} GiB is available; allowed: sizes within 80 % of it (lower data.d, or raise "
            "record.every)", need, have)


def validate(cfg) -> None:
    """:func:`validate_lr_fraction`, then every ``record.directions`` index within the rank of Σ̂ (the problem
    is drawn now, and reused by the run): a fast-decaying spectrum has fewer than d directions."""
    validate_lr_fraction(cfg)
    p = build_problem(cfg, cfg.get("run.seed"))
    r = int(np.sum(np.asarray(p.eigvals) > 0))
    bad = [k for k in cfg.get("record.directions") if k > r]
    if bad:
        D = cfg["data"]
        raise ConfigError("record.directions", ",".join(map(str, bad)),
                          f"1-based indices in [1, {r}], the rank of Σ̂ for data.spectrum = {D['spectrum']!r}, "
                          f"data.exponent = {D['exponent']}, data.n = {D['n']}, data.d = {D['d']}",
                          "beyond the rank of the data (eigenvalues below round-off are 0)")


__all__ = ["DATA_SECTION", "TRAIN_SECTION", "MSEProblem", "build_problem", "population_spectrum", "train_mse", "closed_form_errors",
           "test_mse_from_coeffs", "directions", "progress_trajectory", "validate_lr_fraction", "check_memory", "problem_bytes", "validate"]
