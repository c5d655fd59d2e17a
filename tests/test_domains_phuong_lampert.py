"""By-hand values behind the domains of proofs_check/phuong_lampert.py (docs/theory.md §1.4, §1.5)."""
from __future__ import annotations

import itertools
import math

import jax.numpy as jnp
import numpy as np
import pytest

from linkd import bounds, data
from proofs_check import phuong_lampert as pl


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_margin_min_by_hand(n):
    # psi ~ U[0, pi/3]: gamma = pi/6, q = 1/2 and n q^(n-1) <= 1 for every n, so the bound is 2^-n
    assert pl._margin_min(n, math.pi / 3) == pytest.approx(0.5 ** n, rel=1e-14)
    # psi_max = pi/2 (no margin) is the cone closed form u* + (1-u*)^n
    assert pl._margin_min(n, math.pi / 2) == pytest.approx(float(pl._cone_min(n)), rel=1e-14)
    # psi_max <= pi/4: every point is at angle >= pi/4 from the boundary, the bound (and the risk) is 0
    assert pl._margin_min(n, 0.7) == 0.0


def test_isotropic_bound_drops_below_one_at_n_equal_d():
    """Why VACUOUS_DOMAIN has n < d: in d = 2 the isotropic p is 2 theta/pi, and at n = 2 the bound is 3/4."""
    p2 = lambda th: data.isotropic_p(th, 2)  # noqa: E731
    b = np.asarray(bounds.pl_bound(jnp.asarray([1, 2]), p2, grid=jnp.linspace(0.0, math.pi / 2, 2001)))
    assert b[0] == pytest.approx(1.0, abs=1e-12)
    assert b[1] == pytest.approx(0.75, abs=1e-6)


def _atom_curve(A, nmax):
    w = np.array([1.0, 0.0, 0.0])
    y = np.sign(A @ w)
    out = []
    for n in range(1, nmax + 1):
        risks = [np.mean(np.sign(A @ (np.linalg.pinv(A[list(i)]) @ (A[list(i)] @ w))) != y)
                 for i in itertools.product(range(len(A)), repeat=n)]
        out.append(float(np.mean(risks)))
    return out


def test_strong_monotonicity_in_expectation_fails_for_three_atoms():
    """Finding: E[R_{n+1}] <= E[R_n] does not hold for every P_x. P_x uniform on three atoms (pairwise positive inner
    products, all on the negative side of w* = e_1): every one-point student -x classifies all atoms correctly
    (E[R_1] = 0), two distinct atoms give P w* in their span, which misclassifies the third atom for 2 of the 9 pairs."""
    A = np.array([[-0.9, -0.2, 1.3], [-0.2, 0.9, 1.2], [-1.9, -0.8, 1.3]])
    r = _atom_curve(A, 2)
    assert r[0] == 0.0
    assert r[1] == pytest.approx(2 / 27, abs=1e-15)


def test_fixed_atoms_curve_is_monotone():
    """The fixed claim's five atoms: E[R_n] = 0.48, 0.368, 0.1824, 0.08 (docs/theory.md §1.5 rounds 0.1824 to 0.182)."""
    assert _atom_curve(pl.ATOMS, 4) == pytest.approx([0.48, 0.368, 0.1824, 0.08], abs=1e-12)


def test_monotone_fails_for_atoms_claim_reports_the_finding():
    """pl.monotone_fails_for_atoms (qualitative): the three-atom counterexample, exact 0 then 2/27."""
    from proofs_check import registry

    rec = registry.get("pl.monotone_fails_for_atoms").run("fast")
    assert rec["status"] == "reproduced" and rec["passed"]
    assert rec["measured"]["E[R_1]"] == 0.0
    assert rec["measured"]["E[R_2]"] == pytest.approx(2 / 27, abs=1e-10)  # the record rounds to 10 digits
    assert rec["params"]["min_abs_score"] > 0.09  # no sign decided by round-off


def test_five_atoms_are_not_monotone_for_every_teacher():
    """Why ATOMS_DOMAIN fixes w* = e_1: a teacher near e_1 gives E[R_1] = 0.16 < E[R_2] = 0.176 on the same atoms."""
    t, f = 1.561878314, 6.026028301
    w = np.array([math.sin(t) * math.cos(f), math.sin(t) * math.sin(f), math.cos(t)])
    r = pl._atoms_curve(w, 2)
    assert r == pytest.approx([0.16, 0.176], abs=1e-12)
    assert pl._atoms_curve(pl.ATOMS_TEACHERS["e_1"], 4) == pytest.approx([0.48, 0.368, 0.1824, 0.08], abs=1e-12)
