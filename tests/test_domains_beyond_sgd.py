"""Domains of the sgd.* point claims (proofs_check/beyond_sgd.py): the hypotheses a screen found missing."""
from proofs_check import beyond_sgd


def test_floor_domain_needs_stationary_runs():
    # found by `linkd check --domain 128 --seed 0`: eta lambda_min = 0.015 at this draw, so 200 steps leave the
    # transient (1 - eta lambda_min)^200 = 0.05 of the mean and the Monte Carlo mean sits 45 SE from X^+ y
    point = {"seed": 756, "B": 1, "noise": 1.473204765, "fraction": 0.3069172621, "mc_seed": 502}
    assert beyond_sgd.FLOOR_DOMAIN.violated(point) == ["200 eta lambda_min >= 8 (stationary)"]
    assert beyond_sgd.FLOOR_DOMAIN.violated(beyond_sgd.FLOOR_DOMAIN.default()) == []


def test_sgd_steps_stay_below_the_limit():
    for dom in (beyond_sgd.MOMENTS_DOMAIN, beyond_sgd.FLOOR_DOMAIN):
        assert dom.params["fraction"].hi <= 0.5  # eta <= 0.5 eta_max (linkd.stability.sgd_second_moment)
    assert beyond_sgd.STABILITY_DOMAIN.params["below"].hi < 1 < beyond_sgd.STABILITY_DOMAIN.params["above"].lo
