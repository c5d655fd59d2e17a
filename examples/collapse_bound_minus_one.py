"""Self-distillation collapse round (docs/theory.md §3.2): a false bound and the true one.

Mobahi-style self-distillation in eps mode (kernel ridge rounds, each round moves the targets by
exactly sqrt(K eps)) stops at the collapse round T_c, the first t with ||y_t||^2/K <= eps. With
ratio = ||y_0||^2/(K eps):

* ``collapse.minus_one`` claims T_c <= ratio - 1. It is false: one kernel point (K = 1) with
  ratio = 1.5 collapses after T_c = 1 round > 0.5. Try ``linkd falsify collapse.minus_one
  --claims examples/collapse_bound_minus_one.py``.
* ``collapse.upper`` claims T_c <= ratio, which docs/theory.md §3.2 proves.
"""
import math

from linkd import closed_form
from linkd.claims import Domain, Int, LogReal, Outcome, Real, claim, ingredients

DOMAIN = Domain(
    K=Int(1, 12),                  # kernel points
    ratio=LogReal(1.01, 50.0),     # ||y0||^2 / (K eps)
    lengthscale=LogReal(0.05, 1.0),
    noise=Real(0.0, 0.5),
    seed=Int(0, 99),
)


def collapse_round(p) -> float:
    """T_c of eps-mode self-distillation on a drawn RBF problem with ||y0||^2/(K eps) = ratio."""
    x, y, G = ingredients.kernel_problem(p["seed"], p["K"], p["lengthscale"], p["noise"])
    eps = float(y @ y) / (p["K"] * p["ratio"])
    r = closed_form.self_distill_rounds(G, y, eps=eps, rounds=math.ceil(p["ratio"]) + 1)
    return r.collapsed_at if r.collapsed_at >= 0 else math.inf   # never collapsing breaks any bound


@claim(id="collapse.minus_one", kind="bound", tolerance=0.0, domain=DOMAIN,
       statement="The collapse round satisfies T_c <= ||y0||^2/(K eps) - 1.")
def minus_one(p):
    return Outcome(measured=collapse_round(p), predicted=p["ratio"] - 1.0)


@claim(id="collapse.upper", kind="bound", tolerance=0.0, domain=DOMAIN,
       statement="The collapse round satisfies T_c <= ||y0||^2/(K eps) (docs/theory.md §3.2).")
def upper(p):
    return Outcome(measured=collapse_round(p), predicted=p["ratio"])
