"""The error contract: every refused argument raises a LinkdError (InputError / ConfigError, both
ValueErrors too) whose one-line message names the argument; the library never raises a bare
ValueError or TypeError for user input."""
import ast
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import atomic, bounds, config, data, metrics, models, plotting, registry, spectral
from linkd import closed_form as cf
from linkd.errors import LinkdError

ROOT = Path(__file__).resolve().parents[1]



def _bare_raises(path: Path) -> list[str]:
    """``"<file>:<line>: raise ValueError"`` for every bare ValueError/TypeError raised in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in ("ValueError", "TypeError"):
                found.append(f"{path.name}:{node.lineno}: raise {exc.id}")
    return sorted(found, key=lambda h: int(h.split(":")[1]))


def test_library_raises_no_bare_value_or_type_error():
    files = [p for pkg in ("linkd", "proofs_check") for p in sorted((ROOT / pkg).rglob("*.py"))]
    bad = [f"{p.relative_to(ROOT)}: {hit}" for p in files for hit in _bare_raises(p)]
    assert not bad, "user-caused errors must raise linkd.errors.InputError/ConfigError:\n" + "\n".join(bad)


def test_the_scan_finds_a_planted_raise(tmp_path):
    planted = tmp_path / "x.py"
    planted.write_text("def f(x):\n    if x:\n        raise ValueError('no')\n    raise TypeError\n")
    assert _bare_raises(planted) == ["x.py:3: raise ValueError", "x.py:4: raise TypeError"]


KEY = jax.random.key(0)
X = jax.random.normal(jax.random.key(1), (6, 3))
W = jnp.ones(3)
WC = jnp.ones((3, 4))
LAM = jnp.asarray([3.0, 2.0, 1.0])
G = jnp.eye(3)


def _figure():
    fig, _ = plotting.new_figure("single")
    return fig


# (call, argument name that must appear in str(e))
BAD_INPUTS = {
    "power_law_spectrum d": (lambda: data.power_law_spectrum(0), "d"),
    "power_law_spectrum exponent": (lambda: data.power_law_spectrum(5, exponent=math.inf), "exponent"),
    "make_spectrum kind": (lambda: data.make_spectrum("nope", 5), "kind"),
    "spiked_spectrum spikes": (lambda: data.spiked_spectrum(3, [1.0, 2.0, 3.0, 4.0]), "spikes"),
    "explicit_spectrum values": (lambda: data.explicit_spectrum([1.0, -1.0]), "values"),
    "make_design n": (lambda: data.make_design(KEY, 0, 3, LAM), "n"),
    "make_design eigvals": (lambda: data.make_design(KEY, 4, 5, LAM), "eigvals"),
    "make_design basis": (lambda: data.make_design(KEY, 4, 3, LAM, basis="weird"), "basis"),
    "gaussian_design basis": (lambda: data.gaussian_design(KEY, 4, LAM, jnp.eye(2)), "basis"),
    "regression_labels noise": (lambda: data.regression_labels(KEY, X, W, noise=-1.0), "noise"),
    "binary_hard_labels flip": (lambda: data.binary_hard_labels(X, W, flip=1.5, key=KEY), "flip"),
    "binary_hard_labels key": (lambda: data.binary_hard_labels(X, W, flip=0.3), "key"),
    "multiclass_hard_labels key": (lambda: data.multiclass_hard_labels(X, WC, sample=True), "key"),
    "softmax_labels tau": (lambda: data.softmax_labels(X, WC, tau=0.0), "tau"),
    "margin_cone psi_max": (lambda: data.margin_cone(KEY, 5, W, psi_max=3.0), "psi_max"),
    "isotropic radius": (lambda: data.isotropic(KEY, 5, 3, radius="big"), "radius"),
    "aligned_design n": (lambda: data.aligned_design(KEY, 2, LAM, [1.0]), "n"),
    "eigh_desc X": (lambda: spectral.eigh_desc(jnp.ones(3)), "X"),
    "init_linear key": (lambda: models.init_linear(3, scale=1.0), "key"),
    "init_deep_linear widths": (lambda: models.init_deep_linear(3, [], scale=1.0, key=KEY), "widths"),
    "init_deep_aligned depth": (lambda: models.init_deep_aligned(jnp.eye(2), jnp.eye(2), 0.1, 0, key=KEY), "depth"),
    "stable_lr eigvals": (lambda: cf.stable_lr(jnp.zeros(3)), "eigvals"),
    "gd_mse_trajectory steps": (lambda: cf.gd_mse_trajectory(LAM, W, W, 0.1, -1), "steps"),
    "rbf_gram lengthscale": (lambda: cf.rbf_gram(jnp.ones(3), jnp.ones(3), 0.0), "lengthscale"),
    "self_distill_rounds eps": (lambda: cf.self_distill_rounds(G, W), "eps"),
    "self_distill_rounds G": (lambda: cf.self_distill_rounds(jnp.ones((2, 3)), W, eps=0.1), "G"),
    "collapse_round_bounds K": (lambda: cf.collapse_round_bounds(1.0, 0, 0.1), "K"),
    "pl_limit w0": (lambda: cf.pl_limit(X, W, jnp.ones(2)), "w0"),
    "temperature_lr num_classes": (lambda: cf.temperature_lr(LAM, 1), "num_classes"),
    "deep_gd_trajectory depth": (lambda: cf.deep_gd_trajectory(LAM, LAM, 0.1, 0.1, 3, depth=0), "depth"),
    "Field type": (lambda: config.Field(dict, {}), "type"),
    "load_config EXPERIMENT": (lambda: registry.load_config("kind:no_such_kind"), "EXPERIMENT"),
    "load_config override key": (lambda: registry.load_config("kind:eigen_convergence", ["train.nope=1"]), "train.nope"),
    "register exp": (lambda: registry.register(object()), "exp"),
    "new_figure width": (lambda: plotting.new_figure(-1.0), "width"),
    "save_figure format": (lambda: plotting.save_figure(_figure(), "/nonexistent-dir", "x", formats=("bmp",)), "format"),
    "json_safe value": (lambda: atomic.json_safe({"x": object()}), "x"),
    "angle_to_boundary w_star": (lambda: bounds.angle_to_boundary(X, jnp.zeros(3)), "w_star"),
    "empirical_p angles": (lambda: bounds.empirical_p(jnp.zeros(0)), "angles"),
    "pl_bound grid": (lambda: bounds.pl_bound(3, bounds.empirical_p(W), grid=jnp.asarray([2.0])), "grid"),
    "pl_bound n": (lambda: bounds.pl_bound(-1, bounds.empirical_p(W)), "n"),
    "iso_gaussian_expected_risk d": (lambda: bounds.iso_gaussian_expected_risk(1, 0), "d"),
    "mc_learning_curve n_sets": (lambda: bounds.mc_learning_curve(KEY, lambda k, m: jnp.ones((m, 3)), W, [1], 1, 5),
                                 "n_sets"),
    "top1_agreement binary": (lambda: metrics.top1_agreement(W, W, binary="logit"), "binary"),
    "predictive_kl_teacher_student pS": (lambda: metrics.predictive_kl_teacher_student(jnp.full((2, 2), 0.5), jnp.full((2, 2, 2), 0.5)), "pS"),
    "ensemble_probs logits": (lambda: metrics.ensemble_probs(jnp.ones(3)), "logits"),
    "confidence_scatter bins": (lambda: metrics.confidence_scatter(W, W, bins=0), "bins"),
    "mutual_info_discrete a": (lambda: metrics.mutual_info_discrete([0, 1], [0]), "a and b"),
    "attention_masks thr": (lambda: metrics.attention_masks(jnp.ones((2, 3)), thr=1.5), "thr"),
    "attention_iou A1": (lambda: metrics.attention_iou(jnp.ones((2, 3)), jnp.ones((2, 4))), "A1"),
    "affinity acc_clean": (lambda: metrics.affinity(0.5, 0.0), "acc_clean"),
    "disagreement_risk X_test": (lambda: metrics.disagreement_risk(W, W, jnp.ones(3)), "X_test"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_raises_linkd_error_naming_the_argument(name):
    call, arg = BAD_INPUTS[name]
    with pytest.raises(LinkdError) as e:
        call()
    msg = str(e.value)
    assert isinstance(e.value, ValueError), f"{name}: {type(e.value).__name__} is not also a ValueError"
    assert "\n" not in msg and msg == " ".join(msg.split()), f"{name}: message is not one line: {msg!r}"
    assert arg in msg, f"{name}: {msg!r} does not name the argument {arg!r}"
    assert len(msg) > len(arg) + 10, f"{name}: message too terse to say what is allowed: {msg!r}"


def test_numpy_input_is_refused_too():
    with pytest.raises(LinkdError, match="eigvals"):
        data.make_design(KEY, 4, 5, np.asarray([1.0, 2.0]))
