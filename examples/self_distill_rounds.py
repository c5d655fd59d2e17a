"""Self-distillation rounds in closed form (docs/theory.md §3.2): a true statement.

Round t of eps-mode self-distillation fits y_{t-1} by kernel ridge with the c_t that meets
(1/K)||y_t - y_{t-1}||^2 = eps, so y_t = G (c_t I + G)^{-1} y_{t-1}. With G = V diag(d) V^T this is
y_t = V B_t V^T y_0, B_t = prod_{i <= t} d/(d + c_i). The library computes the rounds from B_t; the
claim re-computes them by direct linear solves (residual form y - c (c I + G)^{-1} y).
"""
import numpy as np

from linkd import closed_form
from linkd.claims import Domain, Int, LogReal, Outcome, Real, claim, ingredients


@claim(id="mb.rounds_closed_form", kind="exact", tolerance=1e-9,
       tolerance_reason="float64 solves of c I + G relative to max |y|; c_t is found to ~1e-15 relative",
       statement="Every round before collapse, y_t = V B_t V^T y_0 with B_t = prod_{i<=t} d/(d + c_i) equals the "
                 "direct solve y_t = y_{t-1} - c_t (c_t I + G)^{-1} y_{t-1} (RBF kernel, eps = fraction * mean y^2).",
       domain=Domain(K=Int(2, 16), lengthscale=LogReal(0.05, 0.3), noise=Real(0.0, 0.1),
                     fraction=LogReal(0.02, 0.5), seed=Int(0, 999)))
def rounds_closed_form(p):
    x, y, G = ingredients.kernel_problem(p["seed"], p["K"], p["lengthscale"], p["noise"])
    r = closed_form.self_distill_rounds(G, y, eps=p["fraction"] * float(np.mean(y ** 2)), rounds=30)
    Tc = r.collapsed_at if r.collapsed_at >= 0 else 30
    direct = [y]
    for c in np.asarray(r.c)[:Tc]:
        direct.append(direct[-1] - c * np.linalg.solve(c * np.eye(p["K"]) + G, direct[-1]))
    scale = np.max(np.abs(y))
    return Outcome(measured=np.array(direct[1:]) / scale, predicted=np.asarray(r.y)[1:Tc + 1] / scale)
