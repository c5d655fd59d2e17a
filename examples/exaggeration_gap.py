"""Exaggeration at matched progress (docs/theory.md §2.2): a true statement about the closed form.

The distilled student's progress on eigendirection k after t steps (teacher: T steps) is
q_k = F_k(t) F_k(T). Run the teacher on its own to the time s* at which its progress on a larger
direction i equals the student's; the gap q_j^T(s*) - q_j^S on every smaller direction j is >= 0
when the filters are monotone, eta lambda_max <= 1. Computed from the residuals
1 - q = a + b - ab (a = rho^t, b = rho^T) so that converged directions lose no digits.
"""
import jax.numpy as jnp

from linkd import closed_form
from linkd.claims import Domain, Int, Outcome, Real, claim, ingredients

D = 16   # largest dimension; d <= D is traced (one compilation for every d)


@claim(id="ng.gap_nonnegative", kind="bound", sense="lower", tolerance=1e-12,
       tolerance_reason="float64: the matched time log(r_i)/log(rho_i) carries ~1e-16 relative round-off",
       statement="For a linear student distilled from a GD teacher with eta lambda_max <= 1, the exaggeration gap "
                 "q_j^T(s*) - q_j^S(t; T) >= 0 for every pair lambda_i > lambda_j > 0.",
       domain=Domain(d=Int(2, D, traced=True), exponent=Real(0.1, 3.0), fraction=Real(0.01, 1.0),
                     T=Int(1, 3000, traced=True, log=True), t=Int(1, 3000, traced=True, log=True)))
def gap_nonnegative(p):
    k = jnp.arange(1, D + 1)
    lam = jnp.where(k <= p["d"], ingredients.spectrum(D, p["exponent"]), 0.0)   # d traced: zeros pad to D
    eta = ingredients.lr(lam, p["fraction"])
    a, b = closed_form.gd_decay(lam, eta, p["t"]), closed_form.gd_decay(lam, eta, p["T"])
    r = a + b - a * b                                             # student residual 1 - q^S
    log_rho = jnp.log1p(-eta * lam)                               # teacher: residual rho^s = e^{s log rho}
    s_star = jnp.log(r) / log_rho                                 # teacher time matching direction i
    gap = r[None, :] - jnp.exp(s_star[:, None] * log_rho[None, :])   # [i, j] = q_j^T(s*_i) - q_j^S
    pairs = (lam[:, None] > lam[None, :]) & (lam[None, :] > 0) & (r[:, None] > 0)   # r_i = 0: s* undefined
    smallest = jnp.min(jnp.where(pairs, gap, jnp.inf))
    return Outcome(measured=jnp.where(jnp.any(pairs), smallest, 0.0), predicted=0.0)   # no pair: nothing claimed
