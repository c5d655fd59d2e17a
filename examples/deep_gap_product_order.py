"""Deep-linear exaggeration at matched progress (docs/theory.md §7.4a): a false sign condition.

A depth-N student distilled from a depth-N teacher is compared with a depth-N reference trained on
the labels, at the reference time where both have the same progress on mode 1. The gap on mode 2
(reference progress minus student progress) is >= 0 whenever lambda_1 >= lambda_2 and
c_1 >= c_2. ``deep.gap_product_order`` claims it already when the weaker product order
lambda_1 c_1 >= lambda_2 c_2 holds. For N <= 2 no counterexample is known; for N >= 3 the gap
turns negative when mode 2 is larger but slower (c_2 > c_1): -1.5e-5 at N = 3 in the project's grid.
"""
import numpy as np

from linkd import closed_form
from linkd.claims import Domain, Int, LogReal, Outcome, Real, claim


def matched_gap(lam, c, sigma0, depth, teacher_q1, fraction):
    """Gap on mode 2: teacher run until q_1 = teacher_q1, student stopped at fraction * Q_1 (closed forms)."""
    def g(y):
        return closed_form.deep_g(np.asarray(y, dtype=float), depth=depth)

    T = (g(teacher_q1) - g(sigma0 / c[0])) / (lam[0] * c[0] ** (2 - 2 / depth))
    a = closed_form.deep_gf_trajectory(lam, c, sigma0, np.float64(T), depth=depth)       # teacher strengths a_k
    t = (g(fraction) - g(sigma0 / a[0])) / (lam[0] * a[0] ** (2 - 2 / depth))            # student time
    q_student = closed_form.deep_distilled_trajectory(lam, a, sigma0, np.atleast_1d(t), depth=depth) / c
    return closed_form.deep_matched_progress_gap(lam, c, sigma0, q_student, depth=depth).gap[0, 1]


@claim(id="deep.gap_product_order", kind="bound", sense="lower", tolerance=1e-12,
       tolerance_reason="float64 inversions of g_N: ~1e-13 (docs/theory.md §7.4a)",
       statement="For depth N >= 3, the matched-progress gap on mode 2 is >= 0 whenever "
                 "lambda_1 c_1 >= lambda_2 c_2 (lambda_1 = c_1 = 1).",
       domain=Domain(depth=Int(3, 4), speed2=Real(0.01, 1.0), c2=LogReal(0.1, 10.0),   # speed2 = lambda_2 c_2
                     sigma0=LogReal(1e-4, 1e-2), teacher_q1=Real(0.5, 0.99), fraction=Real(0.05, 0.99),
                     where={"sigma0 < c_2/2": lambda p: p["sigma0"] < 0.5 * p["c2"]}))
def gap_product_order(p):
    lam, c = np.array([1.0, p["speed2"] / p["c2"]]), np.array([1.0, p["c2"]])
    return Outcome(measured=matched_gap(lam, c, p["sigma0"], p["depth"], p["teacher_q1"], p["fraction"]),
                   predicted=0.0)
