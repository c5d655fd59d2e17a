"""linkd.stability: every step-size limit against an independent route (numpy spectral radii,
Hessians of linkd.losses by autodiff, scalar recursions), each with a planted wrong limit that the
same check rejects. τ ≠ 1 wherever temperature appears."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import losses, stability
from linkd.errors import ConfigError

TAU = 2.5


def _design(n=30, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(1.5, 0.3, d)
    return X, float(np.linalg.eigvalsh(X.T @ X / n)[-1])


def _tight(pred: float, measured: float) -> bool:
    return abs(pred - measured) <= 1e-10 * abs(measured)


def _top_hessian_eig(loss_of_w, w) -> float:
    H = np.asarray(jax.hessian(loss_of_w)(jnp.asarray(w)))
    return float(np.linalg.eigvalsh(H.reshape(w.size, w.size))[-1])


@pytest.mark.parametrize("tau2_scale", [True, False])
def test_binary_smoothness_is_the_hessian_at_zero_logits(tau2_scale):
    """σ' ≤ 1/4 with equality at z = 0: the KD Hessian at w = 0 attains L = λ_max/(4τ²) (×τ²)."""
    X, lam = _design()
    zT = jnp.asarray(X @ np.ones(X.shape[1]))
    f = lambda w: jnp.mean(losses.kd_binary(jnp.asarray(X) @ w, zT, TAU, tau2_scale))  # noqa: E731
    h = _top_hessian_eig(f, np.zeros(X.shape[1]))
    kd_only = 0.25 * lam / TAU**2 * (TAU**2 if tau2_scale else 1.0)
    assert _tight(kd_only, h)
    assert stability.smoothness("binary", lam, TAU, tau2_scale) == max(0.25 * lam, kd_only)  # hard term at τ = 1
    assert not _tight(0.25 * lam / TAU * (TAU if tau2_scale else 1.0) * 1.0001, h)  # planted: τ for τ²


def test_multiclass_smoothness_is_attained_for_two_classes_and_bounds_more():
    """diag p − ppᵀ ⪯ I/2 (tight at C = 2, p = ½): L = λ_max/(2τ²) ×τ²; a bound for C = 4."""
    X, lam = _design(seed=1)
    n, d = X.shape
    for C, w0 in ((2, np.zeros((d, 2))), (4, np.random.default_rng(2).standard_normal((d, 4)))):
        zT = jnp.asarray(X @ np.random.default_rng(3).standard_normal((d, C)))
        f = lambda w, zT=zT, C=C: jnp.mean(losses.kd_softmax(jnp.asarray(X) @ w.reshape(d, C), zT, TAU, True))  # noqa: E731
        h = _top_hessian_eig(f, w0.reshape(-1))
        L = stability.smoothness("multiclass", lam, TAU, True)
        assert h <= L * (1 + 1e-12)
        if C == 2:
            assert _tight(L, h) and not _tight(1.01 * L, h)
    assert stability.tempered_descent(lam) == pytest.approx(stability.gd_limit("multiclass", lam, TAU, True), rel=1e-15)
    assert stability.binary_descent(lam) == pytest.approx(stability.gd_limit("binary", lam, TAU, True), rel=1e-15)


def _rho(A: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(A))))


def _transition(optimizer: str, lr: float, h: float, mu: float) -> np.ndarray:
    """One step of optax's sgd / heavy ball / Nesterov on ½hw² as a linear map of (w, m)."""
    if optimizer == "gd":
        return np.array([[1.0 - lr * h]])
    # m' = μm + hw; heavy ball: w' = w − ηm'; Nesterov: w' = w − η(μm' + hw)
    m_row = np.array([h, mu])
    if optimizer == "momentum":
        w_row = np.array([1.0, 0.0]) - lr * m_row
    else:
        w_row = np.array([1.0, 0.0]) - lr * (mu * m_row + np.array([h, 0.0]))
    return np.stack([w_row, m_row])


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov"])
@pytest.mark.parametrize("mu", [0.5, 0.9])
def test_momentum_limits_are_the_spectral_radius_edge(optimizer, mu):
    h = 3.7
    limit, formula = stability.momentum_limit(optimizer, stability.gd_limit("mse", h), mu)
    assert "L" in formula
    assert _rho(_transition(optimizer, 0.999 * limit, h, mu)) < 1.0 < _rho(_transition(optimizer, 1.001 * limit, h, mu))
    wrong = limit * (1.0 + mu) if optimizer != "gd" else 2.2 / h  # planted: a limit 5-90 % too large
    assert _rho(_transition(optimizer, 0.999 * wrong, h, mu)) > 1.0


def test_mse_limits():
    lam = np.array([2.0, 0.7, 0.1])
    conv, mono = stability.mse_convergent(lam.max()), stability.mse_monotone(lam.max())
    t = np.arange(60)
    for lr, converges, monotone in ((0.999 * conv, True, False), (1.001 * conv, False, False), (0.999 * mono, True, True)):
        filt = 1.0 - (1.0 - lr * lam[None, :]) ** t[:, None]  # numpy integer powers
        assert (abs(filt[-1, 0] - 1.0) < 0.9) == converges
        assert bool(np.all(np.diff(filt, axis=0) >= 0)) == monotone


def _deep_mode_converges(lr: float, lam: float, c: float, N: int) -> bool:
    """Scalar GD on one mode of a balanced depth-N network (docs/theory.md §7.2), started near c."""
    w = (c * 1.01) ** (1.0 / N)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(3000):
            w = w + lr * lam * w ** (N - 1) * (c - w**N)
            if not np.isfinite(w):
                return False
    return abs(w**N - c) < 1e-6 * c


@pytest.mark.parametrize("N", [2, 3])
def test_deep_limit_is_where_the_mode_recursion_stops_converging(N):
    lam, c = np.array([1.3, 0.4]), np.array([2.0, 0.5])
    lim = stability.deep_lr_limit(lam, c, N)
    k = int(np.argmax(lam * c ** (2 - 2 / N)))  # the binding mode
    assert _deep_mode_converges(0.98 * lim, lam[k], c[k], N) and not _deep_mode_converges(1.02 * lim, lam[k], c[k], N)
    assert np.all(stability.deep_mode_steps(0.98 * lim, lam, c, N) < stability.deep_mode_bound(N))
    wrong = 2.0 / float(np.max(lam * c ** (2 - 2 / N)))  # planted: 2 instead of 2/N
    assert not _deep_mode_converges(0.98 * wrong, lam[k], c[k], N)


def test_losses_delegate_and_unknown_family_refused():
    assert losses.stability_limit("binary", 3.0, TAU, False) == stability.gd_limit("binary", 3.0, TAU, False)
    assert stability.centred_logit_step(0.6, 3) == pytest.approx(0.2)
    assert stability.tempered_monotone(2.0, 3) == pytest.approx(1.5)
    with pytest.raises(ConfigError, match="family"):
        stability.smoothness("hinge", 1.0)
    with pytest.raises(ConfigError, match="optimizer"):
        stability.momentum_limit("adam", 1.0, 0.9)
