r"""The training engine: a whole gradient-descent trajectory of a linear or deep-linear student
as one jitted ``jax.lax.scan``, and faster exact paths for linear students (docs/theory.md §2.2).

    from linkd import engine
    spec = engine.EngineSpec(family="mse", steps=100)
    tr = engine.simulate(w0, engine.Data(X, targets=z_T, basis=V), engine.Hyper(lr=0.5), spec)

Modules, one concern each: :mod:`~linkd.engine.types` (spec, hyper-parameters, data,
trajectory), :mod:`~linkd.engine.objective` (the loss and metrics in the logits),
:mod:`~linkd.engine.divergence`, :mod:`~linkd.engine.optimizers`, :mod:`~linkd.engine.recording`,
:mod:`~linkd.engine.limits` (step-size limits; formulas in :mod:`linkd.stability`),
:mod:`~linkd.engine.memory`, :mod:`~linkd.engine.checks`; the solvers :mod:`~linkd.engine.plain`,
:mod:`~linkd.engine.eigen`, :mod:`~linkd.engine.gram`, :mod:`~linkd.engine.analytic` (closed
form); :mod:`~linkd.engine.paths` (path choice), :mod:`~linkd.engine.runs` (simulate, sweep,
simulate_until), :mod:`~linkd.engine.seeds` (many SGD seeds in one vmap, their moments),
:mod:`~linkd.engine.sampling` (minibatches) and :mod:`~linkd.engine.sharding`.
"""
from linkd.engine.analytic import simulate_closed_form
from linkd.engine.eigen import simulate_eigen
from linkd.engine.gram import simulate_gram
from linkd.engine.limits import check_lr, default_lr, lr_limit
from linkd.engine.memory import Footprint, check_memory, estimate_bytes
from linkd.engine.paths import select_path, simulate_auto, thin_spectrum
from linkd.engine.runs import Converged, simulate, simulate_until, sweep
from linkd.engine.seeds import SeedMoments, seed_moments, simulate_seeds
from linkd.engine.sharding import sweep_sharding
from linkd.engine.types import Data, EngineSpec, Hyper, Trajectory

__all__ = [
    "EngineSpec",
    "Hyper",
    "Data",
    "Trajectory",
    "Converged",
    "Footprint",
    "simulate",
    "sweep",
    "simulate_until",
    "simulate_seeds",
    "seed_moments",
    "SeedMoments",
    "simulate_auto",
    "select_path",
    "simulate_eigen",
    "simulate_gram",
    "simulate_closed_form",
    "sweep_sharding",
    "default_lr",
    "check_lr",
    "lr_limit",
    "estimate_bytes",
    "check_memory",
    "thin_spectrum",
]
