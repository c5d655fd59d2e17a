"""Teacher -> student filters compose (docs/theory.md §2.2): a true statement, checked by simulation.

A linear teacher trained T GD steps from 0 on y has coordinates F(T) c* along the eigenvectors of
Sigma_hat = X^T X/n, with F(t) = 1 - (1 - eta lambda)^t. A student trained t steps from 0 on the
teacher's train predictions X w_T has F(t) F(T) c*. Both are simulated by the engine (full-batch GD
on the squared loss) and compared with the closed form, for any stable step eta lambda_max < 2.
"""
import jax.numpy as jnp

from linkd import closed_form
from linkd.claims import Choice, Domain, Int, Outcome, Real, claim, ingredients

STEPS = 64   # steps simulated; T and t index into the trajectories (so they stay traced under vmap)
# n and d set array shapes: each combination compiles once, so the domain offers a few of them
# (n < d, n = d, n > d).


@claim(id="ng.filters_compose", kind="exact", relative=True, tolerance=1e-9,
       tolerance_reason="float64 GD over <= 64 steps against the closed form, relative to max |prediction|",
       statement="A student trained t GD steps on the train predictions of a teacher trained T steps has "
                 "coordinates F(t) F(T) c*, F(t) = 1 - (1 - eta lambda)^t (any eta lambda_max < 2, n < d or n >= d).",
       domain=Domain(n=Choice((4, 8, 12)), d=Choice((8,)), exponent=Real(0.0, 2.0), fraction=Real(0.05, 1.9),
                     noise=Real(0.0, 1.0), T=Int(1, STEPS, traced=True), t=Int(1, STEPS, traced=True),
                     seed=Int(0, 10**6, traced=True)))
def filters_compose(p):
    X = ingredients.design(p["seed"], p["n"], ingredients.spectrum(p["d"], p["exponent"]))
    y = ingredients.labels(p["seed"], X, ingredients.teacher(p["seed"], p["d"]), p["noise"])
    lam, V, c_star = ingredients.coords(X, y)                      # Sigma_hat = V diag(lam) V^T, min-norm c*
    eta = ingredients.lr(lam, p["fraction"])
    w_teacher = ingredients.gd_trajectory(X, y, eta, STEPS)[p["T"]]
    w_student = ingredients.gd_trajectory(X, X @ w_teacher, eta, STEPS)[p["t"]]
    predicted = closed_form.teacher_student_filters(lam, eta, p["T"], p["t"]) * c_star
    return Outcome(measured=V.T @ w_student, predicted=jnp.where(lam > 0, predicted, 0.0))
