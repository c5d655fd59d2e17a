"""Domains of the tau.* point claims (proofs_check/beyond_temperature.py): constraints and tau != 1."""
from proofs_check import beyond_temperature as bt


def test_vanishing_cases_only():
    dom = bt.ZERO_DOMAIN
    base = dict(dom.default())
    assert dom.violated(dict(base, C=3, data="generic")) == ["C = 2 or symmetric data"]
    assert dom.violated(dict(base, C=2, data="generic")) == []
    assert dom.violated(dict(base, C=5, fraction=0.9)) == ["eta lambda_max < 4 (descent bound)"]


def test_temperatures_away_from_one():
    assert bt.GRADIENT_DOMAIN.params["tau"].lo < 1 < bt.GRADIENT_DOMAIN.params["tau"].hi
    assert bt.INVARIANT_DOMAIN.params["tau"].lo < 1 < bt.INVARIANT_DOMAIN.params["tau"].hi
    for dom in (bt.SLOPE_DOMAIN, bt.VANISHING_DOMAIN, bt.BINARY_DOMAIN):  # tau = ratio Lambda 2^k >> Lambda
        assert dom.params["ratio"].lo >= 1.8
