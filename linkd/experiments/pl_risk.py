r"""F5: Phuong–Lampert risk of a distilled linear / deep-linear student (docs/theory.md §1.4–1.5).

For each data geometry (margin cone, power-law angle, isotropic Gaussian) and training-set size n:

* **linear student** = the soft-CE limit :math:`\hat w_n = P_nw_*` from :math:`w_0 = 0`
  (:func:`~linkd.closed_form.pl_limit`, Theorem A). Monte Carlo over ``mc.sets`` independent training
  sets; the sets are *nested* (the first n rows of one draw), so consecutive n are paired and the
  monotonicity check uses the standard error of the paired difference.
* **risk of one student** :math:`R(w) = P_x[\mathrm{sign}\,w^\top x \ne \mathrm{sign}\,w_*^\top x]`,
  computed exactly given the angle :math:`\varphi = \angle(w, w_*)`: every geometry here is
  rotation-invariant about :math:`w_*` (:math:`x = r\,s(\sin\bar\theta\,\hat w_* + \cos\bar\theta\,u)`, u
  uniform on the sphere of :math:`w_*^\perp`), so

  .. math:: R(\varphi) = E_{\bar\theta}\Big[\tfrac12 I_{1-c^2}\big(\tfrac{d-2}2,\tfrac12\big)\,1\{c<1\}\Big],
            \qquad c = \tan\bar\theta/\tan\varphi,

  a 1-D Gauss–Legendre quadrature over :math:`\bar\theta` (and :math:`R = \varphi/\pi` for the isotropic
  case), :func:`linkd.bounds.geometry_risk`. A run cross-checks it against fresh test points on the first ``mc.check_sets`` sets
  (``summary[geometry]["test_point_check"]``); the standard error is over training sets.
* **bound** :math:`\min_\beta p(\beta) + p(\pi/2-\beta)^n` (:func:`~linkd.bounds.pl_bound`) with the exact
  p of the geometry (the β grid includes the margin γ = π/2 − ψ_max, where the cone bound is attained),
  and the same bound from the empirical CDF of ``bound.p_samples`` sampled angles as a cross-check.
  For the isotropic geometry also the exact :math:`E[R_n]` (:func:`~linkd.bounds.iso_gaussian_expected_risk`).
* **trained students**: on a few n, a linear student trained by the engine to ‖∇L‖ ≤ ``linear.grad_tol``
  (checks that it reaches :math:`P_nw_*`), and deep-linear students (N in ``deep.depths``, small init)
  trained ``deep.steps`` GD steps on the first ``deep.sets`` training sets; their risk is plotted as
  extra markers, and the linear risk on the same sets is recorded for a paired comparison.

Speed: the trained students run on training sets zero-padded to the largest n of their list
(:func:`pad_rows`): a zero row adds a constant to the soft-CE loss and nothing to its gradient, so
with step η·n_pad/n (per sweep member) the iterates are those of GD with step η on the unpadded set,
and the linear check stops at ‖∇L_pad‖ ≤ grad_tol·n/n_pad, i.e. ‖∇L‖ ≤ grad_tol on the unpadded set
(the reported ``grad_norm`` is the unpadded one). All n and sets of one depth N are one vmapped
sweep, with the same shapes for every geometry (one compilation per N); the Monte Carlo and
test-point kernels are module-level jitted functions (one compilation per geometry, reused by a
second run in the same process).

``metrics.npz``: ``ns``, ``steps`` (the deep students' recorded steps, [0, deep.steps]),
``<kind>_eigvals`` (eigenvalues of Σ̂ = XᵀX/n, descending, of the first Monte Carlo training set at
n = max(data.ns)) and ``eigvals`` (the same for the first geometry), ``<kind>_mc_mean``/``_mc_se``,
``<kind>_bound``/``_bound_empirical_p``, ``isotropic_exact``, ``<kind>_deep<N>_risk_mean``/``_risk_se``/
``_linear_same_sets_mean``, ``linear_ns``, ``deep_ns``, ``deep_depths``.
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from linkd import bounds, data, engine, spectral, stability
from linkd.closed_form import pl_limit
from linkd.config import Field
from linkd.data import GEOMETRY_KINDS
from linkd.dtypes import default_float
from linkd.errors import ConfigError
from linkd.models import end_to_end, init_deep_linear
from linkd.registry import Experiment, Result, register

SCHEMA = {
    "data": {
        "d": Field(int, 50, "input dimension (>= 3)", low=3),
        "ns": Field(list[int], (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40), "training-set sizes n (increasing)", low=1),
        "geometries": Field(list[str], GEOMETRY_KINDS, "data geometries to run", choices=GEOMETRY_KINDS),
        "psi_max": Field(float, 5 * math.pi / 12, "margin cone: ψ ~ U[0, ψ_max], margin γ = π/2 − ψ_max",
                         low=0.0, high=math.pi / 2, low_open=True),
        "power_beta": Field(float, 1.0, "power-law geometry: p(θ) = (2θ/π)^β", low=0.0, low_open=True),
    },
    "mc": {
        "sets": Field(int, 2000, "Monte Carlo training sets per geometry", low=2),
        "check_sets": Field(int, 100, "sets on which the exact risk is cross-checked against test points", low=0),
        "n_test": Field(int, 1000, "test points per set for that cross-check", low=1),
        "quadrature": Field(int, 96, "Gauss–Legendre nodes of the exact-risk integral over θ̄", low=8),
    },
    "bound": {
        "grid": Field(int, 2001, "β grid points on [0, π/2]", low=2),
        "p_samples": Field(int, 100_000, "samples of θ̄ for the empirical-p bound (cross-check)", low=10),
    },
    "linear": {
        "ns": Field(list[int], (2, 8), "n at which a trained linear student is checked against P_n w*", low=1),
        "sets": Field(int, 2, "training sets per (geometry, n) for that check", low=0),
        "grad_tol": Field(float, 1e-10, "stop when ‖∇L‖ ≤ grad_tol", low=0.0, low_open=True),
        "max_steps": Field(int, 200_000, "step limit of that training", low=1),
        "lr_fraction": Field(float, 1.5, "η as a fraction of 1/L, L = λ_max(Σ̂)/4", low=0.0, high=2.0,
                             low_open=True, high_open=True),
    },
    "deep": {
        "depths": Field(list[int], (2, 3), "depths N of the deep-linear students (empty: none)", low=2),
        "width": Field(int, 32, "hidden width", low=1),
        "init_scale": Field(float, 0.03, "init std × sqrt(fan_in) of every layer (small init)", low=0.0, low_open=True),
        "ns": Field(list[int], (2, 8, 24), "n at which deep students are trained", low=1),
        "sets": Field(int, 16, "training sets (the first of the Monte Carlo sets) per n", low=2),
        "steps": Field(int, 4000, "GD steps", low=1),
        "lr_fraction": Field(float, 1.0, "η·N·L (L = λ_max(Σ̂)/4, max over the sets)", low=0.0, high=2.0,
                             low_open=True, high_open=True),
    },
}


def validate(cfg) -> None:
    ns = cfg.get("data.ns")
    if len(ns) < 1 or any(b <= a for a, b in zip(ns, ns[1:])):
        raise ConfigError("data.ns", ",".join(map(str, ns)), "a non-empty strictly increasing list of sizes >= 1")
    if len(cfg.get("data.geometries")) == 0 or len(set(cfg.get("data.geometries"))) != len(cfg.get("data.geometries")):
        raise ConfigError("data.geometries", ",".join(cfg.get("data.geometries")),
                          "a non-empty list of distinct geometries from " + ", ".join(GEOMETRY_KINDS))
    for key in ("linear.ns", "deep.ns"):
        bad = [n for n in cfg.get(key) if n not in ns]
        if bad:
            raise ConfigError(key, bad[0], f"sizes from data.ns = {','.join(map(str, ns))}")
    if cfg.get("mc.check_sets") > cfg.get("mc.sets"):
        raise ConfigError("mc.check_sets", cfg.get("mc.check_sets"), f"0 <= check_sets <= mc.sets = {cfg.get('mc.sets')}")
    if cfg.get("deep.sets") > cfg.get("mc.sets"):
        raise ConfigError("deep.sets", cfg.get("deep.sets"), f"2 <= deep.sets <= mc.sets = {cfg.get('mc.sets')}")


# ------------------------------------------------------------------------------------- geometry


def _geom_params(cfg, kind: str) -> dict:
    if kind == "margin_cone":
        return {"psi_max": float(cfg.get("data.psi_max"))}
    if kind == "power_law":
        return {"beta": float(cfg.get("data.power_beta"))}
    return {}


def _angle(W, w_star):
    """Angle between each column of W (d, m) and w_star (d,)."""
    cos = (w_star @ W) / (jnp.linalg.norm(W, axis=0) * jnp.linalg.norm(w_star))
    return jnp.arccos(jnp.clip(cos, -1.0, 1.0))


def _sample(kind, key, m, w_star, params):
    return data.geometry(kind, key, m, w_star, **dict(params))


def _set_keys(key, S: int):
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(S))


def _static(params: dict) -> tuple:
    """Geometry parameters as a hashable static argument of the module-level jitted functions."""
    return tuple(sorted(params.items()))


def _cols(ns, d: int) -> np.ndarray:
    n_max = int(max(ns))
    return np.minimum(np.asarray(ns), min(d, n_max)) - 1


# ------------------------------------------------------------------------------------------- run
# Module-level jitted functions (static: geometry kind/params and sizes; the risk table, keys and w*
# are arguments), so every geometry of a run, and a second run in the same process, reuse them.


def _pad_to(x, m: int):
    """Pad the leading axis of x to m entries by repeating its last entry (results dropped)."""
    return jnp.concatenate([x, jnp.repeat(x[-1:], m - x.shape[0], axis=0)]) if m > x.shape[0] else x


@partial(jax.jit, static_argnames=("kind", "n_max", "n_test", "n_check", "n_keep", "p_samples", "batch", "pstat"))
def _draws(keys, tkey, pkey, w_star, cols, tab, rank_tol, *, kind, n_max, n_test, n_check, n_keep, p_samples,
           batch, pstat):
    """All sampling of one geometry in one compilation (each sampler shape is compiled once):

    * ``R`` (S, len(ns)): exact risk of P_n w* on every Monte Carlo set (nested sets, one QR each),
      in chunks of ``batch`` sets (S padded to a multiple of it; the padding is dropped);
    * ``X`` (n_keep, n_max, d): the first n_keep Monte Carlo sets (first chunk; n_keep ≤ batch);
    * ``tp`` (n_check, len(ns)): test-point risk of the same P_n w* on the first n_check sets;
    * ``angles`` (p_samples,): boundary angles of fresh samples (empirical-p bound);
    * ``eigvals`` (d,): eigenvalues of Σ̂ of the first set (descending, rank threshold as
      :func:`linkd.spectral.eigh_desc`)."""
    S, d = keys.shape[0], w_star.shape[0]
    m = cols.shape[0]
    n_chunks = -(-S // batch)
    kc = _pad_to(keys, n_chunks * batch).reshape((n_chunks, batch) + keys.shape[1:])

    def limits(X):
        Q, _ = jnp.linalg.qr(X.T)  # (d, min(d, n_max)); span of the first j columns = span of x_1..x_j
        return jnp.cumsum(Q * (Q.T @ w_star)[None, :], axis=1)[:, cols]  # (d, len(ns)): P_n w*

    def chunk(carry, a):
        i, k = a
        X = jax.vmap(lambda kk: _sample(kind, kk, n_max, w_star, pstat))(k)  # (batch, n_max, d)
        W = jax.vmap(limits)(X)  # (batch, d, m)
        r = jax.vmap(lambda w: bounds.apply_risk_table(kind, _angle(w, w_star), tab))(W)
        first = i == 0
        carry = (jnp.where(first, X[:n_keep], carry[0]), jnp.where(first, W[:n_keep], carry[1]))
        return carry, r

    init = (jnp.zeros((n_keep, n_max, d), w_star.dtype), jnp.zeros((n_keep, d, m), w_star.dtype))
    (Xk, Wk), R = jax.lax.scan(chunk, init, (jnp.arange(n_chunks), kc))
    R = R.reshape((n_chunks * batch, m))[:S]

    tb = 16
    n_tc = -(-max(n_check, 1) // tb)
    idx = _pad_to(jnp.arange(max(n_check, 1)), n_tc * tb)
    Wc = _pad_to(Wk[:max(n_check, 1)], n_tc * tb)

    def tp_one(a):
        i, W = a
        Xt = _sample(kind, jax.random.fold_in(tkey, i), n_test, w_star, pstat)
        return jnp.mean((jnp.sign(Xt @ W) != jnp.sign(Xt @ w_star)[:, None]).astype(W.dtype), axis=0)

    tp = jax.lax.map(tp_one, (idx, Wc), batch_size=tb)[:n_check]
    angles = bounds.angle_to_boundary(_sample(kind, pkey, p_samples, w_star, pstat), w_star)
    lam = jnp.linalg.eigvalsh(Xk[0].T @ Xk[0] / n_max)[::-1]
    lam = jnp.where(lam > rank_tol * jnp.maximum(lam[0], 0.0), lam, 0.0)
    return {"R": R, "X": Xk, "tp": tp, "angles": angles, "eigvals": lam}


@partial(jax.jit, static_argnames=("ns",))
def _lam_max(X, *, ns):
    """λ_max(Σ̂) of X[:, :n] per set (len(ns), S)."""
    return jnp.stack([jnp.linalg.eigvalsh(jnp.einsum("sni,snj->sij", X[:, :n], X[:, :n]) / n)[:, -1] for n in ns])


@partial(jax.jit, static_argnames=("kind",))
def _deep_post(params, X, w_star, tab, *, kind):
    """Risk, row-space error and orthogonal part of the end-to-end weights of a batch of students."""
    w = jax.vmap(end_to_end)(params)  # (S, d)
    P = jax.vmap(lambda A: jnp.linalg.pinv(A) @ A)(X)  # (S, d, d); zero rows do not change the row space
    Pw = jnp.einsum("sij,sj->si", P, w)
    rowspace_err = jnp.linalg.norm(Pw - jnp.einsum("sij,j->si", P, w_star), axis=1) / jnp.linalg.norm(w_star)
    orth = jnp.linalg.norm(w - Pw, axis=1) / jnp.linalg.norm(w_star)
    return bounds.apply_risk_table(kind, _angle(w.T, w_star), tab), rowspace_err, orth


def pad_rows(X, n_pad: int):
    """Append zero rows to X (..., n, d) up to n_pad rows.

    A zero row has logit 0 and teacher logit 0, so under the soft-CE (binary KD) loss it adds the
    constant log 2 to the summed loss and exactly zero to its gradient: the mean-loss gradient on
    the padded set is (n/n_pad) times the one on X. GD with step η·n_pad/n on the padded set is
    therefore GD with step η on X, and ‖∇L_pad‖ ≤ tol·n/n_pad ⇔ ‖∇L‖ ≤ tol."""
    n = X.shape[-2]
    pad = [(0, 0)] * X.ndim
    pad[-2] = (0, int(n_pad) - n)
    return jnp.pad(X, pad)


def _test_point_summary(tp, risk_mc, n_test):
    """Test-point risk on the first sets (same draws as the Monte Carlo) against the exact risk."""
    S = tp.shape[0]
    diff = tp - risk_mc[:S]
    se = diff.std(axis=0, ddof=1) / np.sqrt(S)
    z = np.abs(diff.mean(axis=0)) / np.where(se > 0, se, np.inf)
    return {"sets": S, "n_test": n_test, "test_point_mean": tp.mean(axis=0).tolist(),
            "exact_mean": risk_mc[:S].mean(axis=0).tolist(), "max_abs_z": float(np.max(z)),
            "agrees_within_4se": bool(np.all(np.abs(diff.mean(axis=0)) <= 4 * se + 1e-12))}


def _train_linear_check(kind, key, w_star, cfg, params, X_first):
    """Train a soft-CE linear student from 0 to ‖∇L‖ ≤ tol; compare with P_n w*.

    Every training set is zero-padded to max(linear.ns) rows (one compilation for all n, sets and
    geometries) with step η·n_pad/n and tolerance grad_tol·n/n_pad (see :func:`pad_rows`): the
    same iterates and the same stopping rule on the unpadded gradient, whose norm is reported."""
    L = cfg["linear"]
    out = []
    n_max = int(max(cfg.get("data.ns")))
    n_pad = int(max(L["ns"]))
    spec = engine.EngineSpec(family="binary", steps=L["max_steps"])
    for s in range(L["sets"]):
        X_all = X_first[s] if s < X_first.shape[0] else _sample(kind, jax.random.fold_in(key, s), n_max, w_star, params)
        for n in L["ns"]:
            X = X_all[:n]
            lr = engine.default_lr(X, "binary", L["lr_fraction"])
            scale = n / n_pad
            Xp = pad_rows(X, n_pad)
            conv = engine.simulate_until(jnp.zeros_like(w_star), engine.Data(X=Xp, targets=Xp @ w_star),
                                           engine.Hyper(lr=lr / scale), spec, grad_tol=L["grad_tol"] * scale)
            limit = pl_limit(X, w_star)
            err = float(jnp.linalg.norm(conv.params - limit) / jnp.linalg.norm(limit))
            out.append({"set": s, "n": int(n), "steps": int(conv.steps), "grad_norm": float(conv.grad_norm) / scale,
                        "rel_error_to_P_w_star": err})
    return out


def _deep_sets(cfg, X_first):
    """The first deep.sets Monte Carlo training sets, each zero-padded at every n in deep.ns to
    n_pad = max(deep.ns) rows: (len(deep.ns)·S, n_pad, d), member j·S + i = set i at n = deep.ns[j];
    and λ_max(Σ̂) (max over the sets) per n."""
    D = cfg["deep"]
    S = D["sets"]
    n_pad = int(max(D["ns"]))
    X = X_first[:S]  # (S, n_max, d)
    lam_max = [float(v) for v in np.max(np.asarray(_lam_max(X, ns=tuple(int(n) for n in D["ns"]))), axis=1)]
    Xp = jnp.concatenate([pad_rows(X[:, :n], n_pad) for n in D["ns"]], axis=0)
    return Xp, lam_max


def _train_deep(kind, key, w_star, cfg, Xp, lam_max, tab, N: int):
    """Deep-linear students of depth N on the first deep.sets Monte Carlo training sets at every n
    in deep.ns: ONE vmapped sweep over (n, set) on zero-padded data with per-member step
    η_n·n_pad/n (= GD with step η_n on the unpadded set, see :func:`pad_rows`). Same shapes for
    every geometry, so the compiled sweep is reused. Returns per-n dicts."""
    D = cfg["deep"]
    S, d = D["sets"], w_star.shape[0]
    ns_deep = [int(n) for n in D["ns"]]
    n_pad = max(ns_deep)
    wn = max(1.0, float(jnp.linalg.norm(w_star)) ** (2.0 - 2.0 / N))
    lrs = [D["lr_fraction"] / (N * stability.smoothness("binary", lm) * wn) for lm in lam_max]
    member_lr = jnp.asarray(np.repeat([lr * n_pad / n for lr, n in zip(lrs, ns_deep)], S), w_star.dtype)
    ikeys = jax.random.split(jax.random.fold_in(key, 7919 * N + 1), S)
    widths = (D["width"],) * (N - 1)
    params0 = jax.vmap(lambda k: init_deep_linear(d, widths, scale=D["init_scale"], key=k))(ikeys)
    params0 = jax.tree_util.tree_map(lambda x: jnp.tile(x, (len(ns_deep),) + (1,) * (x.ndim - 1)), params0)
    spec = engine.EngineSpec(family="binary", steps=D["steps"], record_every=D["steps"])
    traj = engine.sweep(params0, engine.Data(X=Xp, targets=Xp @ w_star), engine.Hyper(lr=member_lr), spec,
                          batched=("params", "data", "hyper"))
    r, rowspace_err, orth = (np.asarray(a) for a in _deep_post(traj.params, Xp, w_star, tab, kind=kind))
    return [{"n": n, "risk": r[j * S:(j + 1) * S], "lr": lrs[j],
             "rowspace_rel_error": rowspace_err[j * S:(j + 1) * S], "orth_rel_norm": orth[j * S:(j + 1) * S]}
            for j, n in enumerate(ns_deep)]


def _mc_draws(cfg, kind: str, key, w_star, ns: np.ndarray, tab, params: dict) -> dict:
    """The Monte Carlo draws of one geometry (:func:`_draws`): per-set exact risks ``R`` (S, len(ns)),
    test-point risks, sampled boundary angles, the kept training sets and the first set's eigenvalues."""
    M, d = cfg["mc"], w_star.shape[0]
    n_keep = min(M["sets"], max(1, M["check_sets"], cfg.get("linear.sets"),
                                cfg.get("deep.sets") if cfg.get("deep.depths") else 0))
    rank_tol = spectral.default_rank_tol(jnp.zeros((int(ns[-1]), d), default_float()))
    return _draws(_set_keys(key, M["sets"]), jax.random.fold_in(key, 2**30), jax.random.fold_in(key, 2**31 - 1),
                  w_star, jnp.asarray(_cols(ns, d)), tab, rank_tol,
                  kind=kind, n_max=int(ns[-1]), n_test=int(M["n_test"]), n_check=int(M["check_sets"]),
                  n_keep=int(n_keep), p_samples=int(cfg.get("bound.p_samples")),
                  batch=int(min(M["sets"], max(256, n_keep))), pstat=_static(params))


def _pl_bounds(cfg, kind: str, ns: np.ndarray, d: int, params: dict, angles) -> tuple[np.ndarray, np.ndarray]:
    """The PL bound with the geometry's exact p (β grid with the cone's margin γ included) and with
    the empirical p of the sampled ``angles`` (cross-check)."""
    grid = np.linspace(0.0, 0.5 * np.pi, cfg.get("bound.grid"))
    if kind == "margin_cone":
        grid = np.unique(np.append(grid, 0.5 * np.pi - params["psi_max"]))
    p_exact = lambda th: data.geometry_p(kind, th, d, **params)  # noqa: E731
    bound = np.asarray(bounds.pl_bound(ns, p_exact, grid=jnp.asarray(grid)))
    bound_emp = np.asarray(bounds.pl_bound(ns, bounds.empirical_p(angles), grid=jnp.asarray(grid)))
    return bound, bound_emp


def _risk_summary(ns: np.ndarray, R: np.ndarray, bound: np.ndarray, bound_emp: np.ndarray,
                  params: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """Summary of one geometry's Monte Carlo risks ``R`` (S, len(ns)): mean ± se, the bound check
    (mean ≤ bound + 3 se) and monotonicity from the paired differences of the nested sets; also
    returns the mean and standard error per n."""
    S = R.shape[0]
    mean, se = R.mean(axis=0), R.std(axis=0, ddof=1) / np.sqrt(S)
    holds = mean <= bound + 3 * se
    diff = R[:, 1:] - R[:, :-1]
    dmean, dse = diff.mean(axis=0), diff.std(axis=0, ddof=1) / np.sqrt(S)
    g = {"ns": ns.tolist(), "mc_mean": mean.tolist(), "mc_se": se.tolist(), "bound": bound.tolist(),
         "bound_empirical_p": bound_emp.tolist(),
         "bound_exact_vs_empirical_max_abs": float(np.max(np.abs(bound - bound_emp))),
         "mean_le_bound_plus_3se": holds.tolist(), "bound_holds_all_n": bool(np.all(holds)),
         "max_mean_over_bound": float(np.max(mean - bound)),
         "monotone_diff_mean": dmean.tolist(), "monotone_diff_se": dse.tolist(),
         "non_increasing_within_3se": bool(np.all(dmean <= 3 * dse + 1e-15)),
         "zero_mc_mean_ns": ns[mean == 0].tolist(), **params}
    return g, mean, se


def _deep_rows(results: list[dict], R: np.ndarray, ns: np.ndarray) -> dict[str, list[float]]:
    """Per-n summary of the depth-N students of :func:`_train_deep`, paired with the linear student's
    risk ``R`` on the same training sets."""
    rows: dict[str, list[float]] = {"risk_mean": [], "risk_se": [], "linear_same_sets_mean": [],
                                    "paired_diff_mean": [], "paired_diff_se": [], "rowspace_rel_error_max": [],
                                    "orth_rel_norm_mean": [], "lr": []}
    for res in results:
        S = res["risk"].shape[0]
        lin = R[:S, int(np.flatnonzero(ns == res["n"])[0])]
        dd = res["risk"] - lin
        rows["risk_mean"].append(float(res["risk"].mean()))
        rows["risk_se"].append(float(res["risk"].std(ddof=1) / np.sqrt(S)))
        rows["linear_same_sets_mean"].append(float(lin.mean()))
        rows["paired_diff_mean"].append(float(dd.mean()))
        rows["paired_diff_se"].append(float(dd.std(ddof=1) / np.sqrt(S)))
        rows["rowspace_rel_error_max"].append(float(res["rowspace_rel_error"].max()))
        rows["orth_rel_norm_mean"].append(float(res["orth_rel_norm"].mean()))
        rows["lr"].append(float(res["lr"]))
    return rows


def _run_geometry(cfg, kind: str, key, w_star, ns: np.ndarray, metrics: dict, first: bool) -> dict:
    """Monte Carlo risk, bounds, trained linear and deep students of one geometry; fills ``metrics``
    and returns the geometry's summary."""
    M, d = cfg["mc"], w_star.shape[0]
    params = _geom_params(cfg, kind)
    tab = bounds.geometry_risk_table(kind, d, M["quadrature"], **params)
    dr = _mc_draws(cfg, kind, key, w_star, ns, tab, params)
    R = np.asarray(dr["R"])  # (S, len(ns))
    bound, bound_emp = _pl_bounds(cfg, kind, ns, d, params, dr["angles"])
    g, mean, se = _risk_summary(ns, R, bound, bound_emp, params)
    metrics[f"{kind}_mc_mean"], metrics[f"{kind}_mc_se"] = mean, se
    metrics[f"{kind}_bound"], metrics[f"{kind}_bound_empirical_p"] = bound, bound_emp
    if kind == "isotropic":
        exact = np.asarray(bounds.iso_gaussian_expected_risk(ns, d))
        metrics["isotropic_exact"] = exact
        g["exact_expected_risk"] = exact.tolist()
        g["mc_vs_exact_max_abs_z"] = float(np.max(np.abs(mean - exact) / np.where(se > 0, se, np.inf)))
        g["mc_vs_exact_max_abs_error"] = float(np.max(np.abs(mean - exact)))
    if M["check_sets"] >= 2:
        g["test_point_check"] = _test_point_summary(np.asarray(dr["tp"]), R, M["n_test"])
    if cfg.get("linear.sets") > 0:
        g["trained_linear"] = _train_linear_check(kind, key, w_star, cfg, params, dr["X"])
        g["trained_linear_max_rel_error"] = max(e["rel_error_to_P_w_star"] for e in g["trained_linear"])
    metrics[f"{kind}_eigvals"] = np.asarray(dr["eigvals"])  # first MC set, n = max(ns)
    if first:
        metrics["eigvals"] = metrics[f"{kind}_eigvals"]
    if cfg.get("deep.depths"):
        Xp, lam_max = _deep_sets(cfg, dr["X"])
        g["deep"] = {}
        for N in cfg.get("deep.depths"):
            rows = _deep_rows(_train_deep(kind, key, w_star, cfg, Xp, lam_max, tab, N), R, ns)
            for k2 in ("risk_mean", "risk_se", "linear_same_sets_mean"):
                metrics[f"{kind}_deep{N}_{k2}"] = np.asarray(rows[k2])
            g["deep"][f"N={N}"] = rows
    return g


def run(cfg, ctx) -> Result:
    D = cfg["data"]
    d = D["d"]
    ns = np.asarray(D["ns"], dtype=np.int64)
    k_teacher, k_geo = jax.random.split(jax.random.key(ctx.seed))
    w_star = jax.random.normal(k_teacher, (d,), default_float())
    w_star = w_star / jnp.linalg.norm(w_star)
    metrics: dict = {"ns": ns, "steps": engine.EngineSpec(steps=cfg.get("deep.steps"),
                                                            record_every=cfg.get("deep.steps")).recorded_steps,
                     "linear_ns": np.asarray(cfg.get("linear.ns"), np.int64),
                     "deep_ns": np.asarray(cfg.get("deep.ns"), np.int64),
                     "deep_depths": np.asarray(cfg.get("deep.depths"), np.int64)}
    summary: dict = {"d": d, "mc_sets": cfg.get("mc.sets"), "deep_sets": cfg.get("deep.sets"),
                     "geometries": list(D["geometries"]),
                     "risk_method": "exact risk given the student's angle to w* (1-D quadrature over the "
                                    "boundary angle), averaged over Monte Carlo training sets; cross-checked "
                                    "against test points"}
    gidx = {g: i for i, g in enumerate(GEOMETRY_KINDS)}
    for done, kind in enumerate(D["geometries"]):
        key = jax.random.fold_in(k_geo, gidx[kind])
        summary[kind] = _run_geometry(cfg, kind, key, w_star, ns, metrics, first=done == 0)
        ctx.progress(done + 1, len(D["geometries"]), "geometries")
    summary["bound_holds_everywhere"] = all(summary[k]["bound_holds_all_n"] for k in D["geometries"])
    summary["non_increasing_everywhere"] = all(summary[k]["non_increasing_within_3se"] for k in D["geometries"])
    return Result(metrics, summary)


def figure(metrics, summary, cfg) -> dict:
    from linkd.plotting import theory

    return {"pl_risk": theory.pl_risk(metrics, summary)}


register(Experiment(
    name="pl_risk",
    description="F5: Phuong–Lampert E[R_n] vs n for three geometries, bound overlaid, linear and deep-linear students",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
))

__all__ = ["SCHEMA", "run", "validate", "pad_rows", "figure"]
