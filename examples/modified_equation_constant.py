"""Deep-linear GD against plain gradient flow (docs/theory.md §7.2): a constant stated too small.

Per mode, GD on a depth-N linear network is u <- u + eps F(u) with F(u) = u^(N-1)(1 - u^N) in units
of the mode's target, eps = eta lambda c^(2-2/N). Plain gradient flow at the same time t = eta k
misses it by sup_k |y_GD - y_GF| = C1 eps to first order. An early project note quoted
C1 in [0.10, 2.4] from a few grid points; ``deep.gf_error_constant`` states C1 <= 2.4 over the
whole range it was measured on, which is false: the constant grows as the initial scale y0
shrinks (measured up to about 3.4).
"""
import numpy as np

from linkd import closed_form
from linkd.claims import Domain, Int, LogReal, Outcome, Real, claim

STEPS = 1 << 16   # enough steps for every point of the domain to converge (one compilation per depth)


@claim(id="deep.gf_error_constant", kind="bound", tolerance=0.0,
       statement="sup_k |y_GD(k) - y_GF(eta k)| <= 2.4 eps for depth N = 2..4, init y0 in [1e-6, 0.1], "
                 "per-mode step eps in [0.01, 0.08].",
       domain=Domain(depth=Int(2, 4), y0=LogReal(1e-6, 0.1), eps=Real(0.01, 0.08)))
def gf_error_constant(p):
    N, eps, y0 = p["depth"], p["eps"], p["y0"]
    lam, c = np.array([eps]), np.array([1.0])        # lambda = eps, c = 1, eta = 1: the mode's step is eps
    gd = closed_form.deep_gd_trajectory(lam, c, y0, 1.0, STEPS, depth=N)[:, 0]
    gf = closed_form.deep_gf_trajectory(lam, c, y0, np.arange(STEPS + 1.0), depth=N)[:, 0]
    return Outcome(measured=np.max(np.abs(gd - gf)), predicted=2.4 * eps)
