r"""Your own claims: a statement, the domain where it should hold, and a search for counterexamples
(docs/theory.md §6.9; user guide: docs/own-claims.md).

    from linkd.claims import Domain, Int, LogReal, Outcome, Real, claim, ingredients

    @claim(id="gd.filter_below_one", kind="bound", tolerance=1e-12,
           statement="every GD filter 1 - (1 - eta lambda)^t stays <= 1 when eta lambda_max <= 2",
           domain=Domain(d=Int(2, 30), exponent=Real(0.0, 2.0), fraction=Real(0.05, 2.0), t=Int(1, 500, traced=True)))
    def filter_below_one(p):
        lam = ingredients.spectrum(p["d"], p["exponent"])
        F = 1.0 - (1.0 - ingredients.lr(lam, p["fraction"]) * lam) ** p["t"]
        return Outcome(measured=F, predicted=1.0)

``linkd check --claims FILE.py`` runs such claims (same records, report and exit codes as the
built-in registry); ``linkd falsify ID --claims FILE.py`` searches the domain for the largest
violation (:mod:`linkd.claims.falsify`).

* :mod:`~linkd.claims.params` — :class:`Int`, :class:`Real`, :class:`LogReal`, :class:`Choice`;
* :mod:`~linkd.claims.domain` — :class:`Domain` (ranges, constraints, quasi-random sampling);
* :mod:`~linkd.claims.claim` — :func:`claim`, :class:`Claim`, :class:`Outcome`, the error by kind;
* :mod:`~linkd.claims.batch` — evaluation under ``jax.vmap`` with a loop fallback;
* :mod:`~linkd.claims.ingredients` — spectrum, design, teacher, labels, GD and closed-form trajectories;
* :mod:`~linkd.claims.loader` — reading a claims file or module;
* :mod:`~linkd.claims.falsify` — screen, gradient/pattern refinement, shrinking.
"""
from linkd.claims import ingredients
from linkd.claims.batch import Evaluator, Screen
from linkd.claims.claim import KINDS, Claim, Outcome, claim
from linkd.claims.domain import Domain
from linkd.claims.loader import ClaimFileError, load_claims
from linkd.claims.params import Choice, Int, LogReal, Param, Real

__all__ = ["Claim", "Outcome", "claim", "KINDS", "Domain", "Param", "Int", "Real", "LogReal", "Choice",
           "Evaluator", "Screen", "ingredients", "load_claims", "ClaimFileError"]
