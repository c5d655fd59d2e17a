"""GD filters against the number of steps (docs/theory.md §2.2): a conjecture that is false.

The filter F_k(t) = 1 - (1 - eta lambda_k)^t is the fraction of its target that GD has learned
along eigendirection k after t steps. It rises monotonically when eta lambda_max <= 1; the
conjecture below claims it for every convergent step size, eta lambda_max < 2, and fails: for
eta lambda > 1 the factor 1 - eta lambda is negative and F overshoots, then oscillates.
"""
import jax.numpy as jnp

from linkd import closed_form
from linkd.claims import Domain, Int, Outcome, Real, claim, ingredients


@claim(id="gd.filter_monotone", kind="monotone", direction="increasing", tolerance=1e-12,
       statement="For eta lambda_max < 2, every GD filter F_k(t) = 1 - (1 - eta lambda_k)^t is non-decreasing in t.",
       domain=Domain(d=Int(2, 50), exponent=Real(0.0, 2.0), fraction=Real(0.01, 1.99),
                     k=Int(1, 50, traced=True), where=lambda p: p["k"] <= p["d"]))
def filter_monotone(p):
    lam = ingredients.spectrum(p["d"], p["exponent"])        # lambda_k = k^-exponent
    eta = ingredients.lr(lam, p["fraction"])                  # eta lambda_max = fraction
    F = closed_form.gd_filter(lam, eta, jnp.arange(101))      # (101, d): t = 0..100
    return Outcome(measured=F[:, p["k"] - 1])
