"""The Phuong–Lampert risk bound (docs/theory.md §1.4): the true bound and one made too tight.

A linear student distilled from the teacher w* on n points converges to w_n = P_n w*. Its expected
risk obeys E[R_n] <= B(n) = min_beta p(beta) + p(pi/2 - beta)^n, where p(theta) is the mass of the
input distribution within angle theta of the teacher's decision boundary.

* ``pl.bound`` checks E[R_n] <= B(n) for the margin cone and isotropic Gaussian inputs;
* ``pl.bound_over_n`` claims the bound one power of n tighter, E[R_n] <= B(n)/n. It is false:
  isotropic inputs have B(n) = 1, and E[R_n] exceeds 1/n for 4 <= n <= 8 at d = 10 (0.285 > 1/4 at n = 4).

E[R_n] is a Monte Carlo mean over training sets, compared as its lower 3-standard-error limit; the
risk of each student is exact for isotropic inputs (angle/pi) and measured on a shared test set
for the margin cone.
"""
import math

import jax
import jax.numpy as jnp

from linkd import bounds, data
from linkd.claims import Choice, Domain, Int, Outcome, Real, claim, ingredients

D, SETS, TEST = 10, 64, 500        # dimension, training sets, test points (margin cone)


def p_fn(p):
    if p["geometry"] == "isotropic":
        return lambda theta: data.isotropic_p(theta, D)
    return lambda theta: data.margin_cone_p(theta, p["psi_max"])


def draw(p, key, m):
    w_star = jnp.zeros(D).at[0].set(1.0)
    if p["geometry"] == "isotropic":
        return data.isotropic(key, m, D)
    return data.margin_cone(key, m, w_star, p["psi_max"])


def risk_and_bound(p):
    """(MC mean - 3 SE of E[R_n], B(n)) at the point's n."""
    w_star = jnp.zeros(D).at[0].set(1.0)
    k_train, k_test = jax.random.split(ingredients.key(p["seed"]))
    X_test = draw(p, k_test, TEST) if p["geometry"] == "margin_cone" else None

    def one_set(k):                                              # risks of w_1 .. w_D for one draw
        Q, _ = jnp.linalg.qr(draw(p, k, D).T)                    # q_1..q_n span the first n points
        W = jnp.cumsum(Q * (Q.T @ w_star)[None, :], axis=1).T    # row n-1: P_n w*
        if p["geometry"] == "isotropic":
            return bounds.iso_gaussian_risk(W, w_star)
        return jnp.mean(jnp.sign(X_test @ W.T) != jnp.sign(X_test @ w_star)[:, None], axis=0, dtype=X_test.dtype)

    risks = jax.vmap(one_set)(jax.random.split(k_train, SETS))[:, p["n"] - 1]
    low = jnp.mean(risks) - 3.0 * jnp.std(risks, ddof=1) / math.sqrt(SETS)
    beta = jnp.linspace(0.0, math.pi / 2, 1001)
    pb = p_fn(p)
    bound = jnp.minimum(jnp.min(pb(beta) + pb(math.pi / 2 - beta) ** p["n"]), 1.0)
    return low, bound


DOMAIN = Domain(geometry=Choice(("margin_cone", "isotropic")), n=Int(1, D - 1, traced=True),
                psi_max=Real(0.3, 1.4), seed=Int(0, 10**6, traced=True))


@claim(id="pl.bound", kind="bound", tolerance=0.0, domain=DOMAIN,
       statement="E[R_n] <= min_beta p(beta) + p(pi/2 - beta)^n (margin cone with psi ~ U[0, psi_max], "
                 "or isotropic Gaussian inputs; d = 10).")
def bound(p):
    low, b = risk_and_bound(p)
    return Outcome(measured=low, predicted=b)


@claim(id="pl.bound_over_n", kind="bound", tolerance=0.0, domain=DOMAIN,
       statement="E[R_n] <= [min_beta p(beta) + p(pi/2 - beta)^n] / n (one power of n tighter).")
def bound_over_n(p):
    low, b = risk_and_bound(p)
    return Outcome(measured=low, predicted=b / p["n"])
