"""Point forms of the dl.* claims (proofs_check/beyond_deep.py): by-hand values and the hypotheses their domains carry."""
import math

import numpy as np
import pytest

from proofs_check import beyond_deep as bd


def test_dilation_point_matches_the_n2_formula_by_hand():
    """R(2) = (1/Q) ln(Qc/sigma0 - 1)/ln(c/sigma0 - 1) (docs/theory.md §7.4b), measured by scalar ODEs."""
    p = {"N": 2, "Q": 0.3, "c": 1.5, "sigma0": 1e-3}
    out = bd._dilation_at(p)
    by_hand = math.log(0.3 * 1.5 / 1e-3 - 1) / math.log(1.5 / 1e-3 - 1) / 0.3
    assert out.predicted == pytest.approx(by_hand, rel=1e-12)
    assert out.measured == pytest.approx(by_hand, rel=1e-8)


def test_gap_domain_carries_both_orders_not_the_product_order():
    """The sign statement needs lambda_2 <= lambda_1 AND c_2 <= c_1: a mode 2 larger but slower (c_2 > c_1, product
    order only; examples/deep_gap_product_order.py) lies outside the domain."""
    dom = bd.GAP_NONNEG_DOMAIN
    assert dom.params["lam2"].hi <= 1.0 and dom.params["c2"].hi <= 1.0
    assert dom.violated({**dom.default(), "c2": 2.0})
    pts = dom.sample(32, seed=3)
    assert np.all(pts["sigma0"] < 0.5 * pts["c2"])


def test_modified_equation_constant_at_its_worst_corner():
    """C2 = sup_k |y_GD - y_mod|/eps^2 is largest at N = 2, y0 -> 1e-6, eps -> 0.01 (screens): 0.179 < 0.2."""
    out = bd._mod_constant_at({"N": 2, "y0": 1e-6, "eps": 0.01})
    assert 0.17 < out.measured < out.predicted == 0.2


def test_modified_equation_order_domain_stops_at_the_stated_eps():
    """The ratio-4 statement (eps = 0.04 -> 0.02) is asymptotic; its domain stops at eps = 0.04, the bound's at 0.08."""
    assert bd.MOD_ORDER_DOMAIN.params["eps"].hi == 0.04
    assert bd.ERROR_DOMAIN.params["eps"].hi == 0.08
    out = bd._mod_order_at({"N": 4, "y0": 0.034, "eps": 0.04})
    assert abs(out.measured - 4.0) <= 0.35
