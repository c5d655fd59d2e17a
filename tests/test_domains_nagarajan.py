"""By-hand checks of the Nagarajan point forms (proofs_check/nagarajan.py, ``linkd check --domain``):
the numpy problem they draw, the two-level law's A at T = t = 1 (why A > 1 is not part of the point
form) and the SE encoding of the gradient-variance claim."""
from __future__ import annotations

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from linkd import closed_form  # noqa: E402
from linkd.claims import Claim, Outcome  # noqa: E402
from proofs_check import nagarajan as ng  # noqa: E402
from proofs_check import registry  # noqa: E402


@pytest.mark.parametrize("shape", sorted(ng.SHAPES))
def test_point_problem_eigendecomposition_and_least_squares_coefficients(shape):
    p = dict(ng.TEACHER_DOMAIN.default(), shape=shape, seed=3)
    X, y, lam, V, c_star = ng._pt_problem(p)
    n, d = ng.SHAPES[shape]
    assert X.shape == (n, d) and np.all(np.diff(lam) <= 0) and np.sum(lam > 0) == min(n, d)
    np.testing.assert_allclose(V @ np.diag(lam) @ V.T, X.T @ X / n, atol=1e-12)
    np.testing.assert_allclose(V.T @ V, np.eye(d), atol=1e-12)
    w = V @ c_star  # the minimum-norm least-squares solution: X^T (X w - y) = 0 and w in the row space
    np.testing.assert_allclose(X.T @ (X @ w - y), 0.0, atol=1e-10)
    np.testing.assert_allclose(c_star[lam == 0], 0.0, atol=1e-12)


def test_two_level_A_is_F1_plus_F2_when_T_equals_t_and_below_one_at_one_step():
    """T = t: A = (F1^2 - F2^2)/(F1 - F2) = F1 + F2; at T = t = 1, eta lambda_1 = 0.9, lambda_2 = 0.1:
    F = eta lambda, A = 0.9 + 0.09 = 0.99 < 1 (the fixed claim's A > 1 needs longer training)."""
    F1, F2 = 0.9, 0.09
    A, B = closed_form.two_level_affine(F1, F2, F1, F2)
    assert float(A) == pytest.approx(0.99, abs=1e-15) and float(A) < 1.0
    assert float(B) == pytest.approx(F2 * F2 - 0.99 * F2, abs=1e-15)
    p = dict(ng.TWO_LEVEL_DOMAIN.default(), T=1, t=1)
    assert ng.TWO_LEVEL_DOMAIN.violated(p) == []
    c = registry.get("ng.confidence_two_level").point
    assert c.error(c.outcome(p)) <= c.tolerance  # the affine law itself holds there


def test_variance_encoding_gives_the_fixed_claims_two_criteria():
    """measured = [6 - min z, 0, cumsum(step z)]: the monotone (increasing) error is max(6 - min z, -min step z),
    so tolerance 3 means min z >= 3 and every step >= -3 SE."""
    mono = Claim("x", "x", "monotone", lambda p: None, ng.VARIANCE_DOMAIN, tolerance=3.0, direction="increasing")
    for zmin, steps in ((10.0, [1.0, 2.0, 0.5]), (2.0, [1.0, 1.0, 1.0]), (10.0, [1.0, -4.0, 1.0])):
        m = np.concatenate([[6.0 - zmin, 0.0], np.cumsum(steps)])
        assert mono.error(Outcome(m)) == pytest.approx(max(6.0 - zmin, -min(steps)))
