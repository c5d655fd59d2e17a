"""Phuong–Lampert risk against n for one draw of the training set (docs/theory.md §1.5): false.

The distilled linear student trained on the first n points converges to w_n = P_n w* (the
projection of the teacher onto the span of those points). For Gaussian inputs x ~ N(0, Sigma) its
risk is exactly R(w) = angle(Sigma^1/2 w, Sigma^1/2 w*)/pi. The expected risk falls with n, but
``pl.monotone_per_draw`` claims more: that R(w_n) never rises as points are added to one fixed
draw. Adding a point turns the projection towards the new point, which can move it away from the
teacher in the Sigma metric, so the claim fails once the inputs are anisotropic.
"""
import jax.numpy as jnp

from linkd import bounds
from linkd.claims import Domain, Int, Outcome, Real, claim, ingredients


@claim(id="pl.monotone_per_draw", kind="monotone", direction="decreasing", tolerance=1e-12,
       tolerance_reason="float64 projections: round-off ~1e-15 in the angle",
       statement="For every draw of the inputs, the risk of P_n w* does not increase as the n-th point is added "
                 "(x ~ N(0, diag(k^-a)) in d dimensions, n = 1..d).",
       domain=Domain(d=Int(3, 4), anisotropy=Real(0.0, 3.0), seed=Int(0, 10**6, traced=True)))
def monotone_per_draw(p):
    d = p["d"]
    lam = ingredients.spectrum(d, exponent=p["anisotropy"])         # population eigenvalues k^-a
    X = ingredients.design(p["seed"], d, lam)                         # d points (n = d spans R^d)
    w_star = ingredients.teacher(p["seed"], d)
    root = jnp.sqrt(lam)                                               # Sigma^1/2 (axis-aligned)
    Q, _ = jnp.linalg.qr(X.T)                  # q_1..q_n span the first n points, for every n
    w = jnp.cumsum(Q * (Q.T @ w_star)[None, :], axis=1).T             # row n-1: P_n w* = sum_{k<=n} q_k q_k^T w*
    return Outcome(measured=bounds.iso_gaussian_risk(root[None, :] * w, root * w_star))
