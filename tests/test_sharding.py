"""A sweep sharded over 4 forced CPU devices (tests/conftest.py) equals the single-device sweep."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import engine, spectral
from linkd.errors import ConfigError


def problem(n=16, d=10, seed=0):
    rng = np.random.default_rng(seed)
    X = jnp.asarray(rng.standard_normal((n, d)) / np.sqrt(d))
    w = rng.standard_normal(d)
    return X, jnp.asarray(X @ w), jnp.asarray((X @ w > 0).astype(float))


def test_four_devices_and_mesh():
    assert len(jax.devices()) == 4
    sh = engine.sweep_sharding()
    assert sh.mesh.axis_names == ("sweep",) and sh.mesh.shape["sweep"] == 4
    assert sh.mesh.axis_types == (jax.sharding.AxisType.Auto,)


def _shard_rows(x):
    return sorted((s.device.id, s.data.shape[0]) for s in x.addressable_shards)


@pytest.mark.parametrize("S", [8, 6])
def test_sharded_sweep_equals_single_device(S):
    X, z, lab = problem()
    sp = spectral.eigh_desc(X)
    data = engine.Data(X, z, labels=lab, basis=sp.basis[:, :4], X_test=X[:5], targets_test=z[:5], labels_test=lab[:5])
    spec = engine.EngineSpec(family="binary", steps=20, record_every=5)
    hyper = engine.Hyper(lr=jnp.linspace(0.1, 1.0, S), tau=jnp.linspace(1.0, 3.0, S), alpha=0.2)
    ref = engine.sweep(jnp.zeros(10), data, hyper, spec)
    if S % 4 == 0:
        got = engine.sweep(jnp.zeros(10), data, hyper, spec, sharding=engine.sweep_sharding())
        # the outputs really live on 4 devices, S/4 members each
        assert len(got.coeffs.sharding.device_set) == 4
        assert _shard_rows(got.coeffs) == [(i, S // 4) for i in range(4)]
        assert len(got.metrics["train_loss"].sharding.device_set) == 4
    else:
        with pytest.raises(ConfigError, match="multiple of the 4 devices"):  # the mesh helper alone refuses
            engine.sharding.place_batched([hyper.lr], [0], engine.sweep_sharding())
        got = engine.sweep(jnp.zeros(10), data, hyper, spec, sharding=engine.sweep_sharding())  # pads to 8, trims to 6
    assert got.coeffs.shape == ref.coeffs.shape
    np.testing.assert_allclose(got.coeffs, ref.coeffs, rtol=1e-12, atol=1e-12)
    for k in ref.metrics:
        np.testing.assert_allclose(got.metrics[k], ref.metrics[k], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got.bad_step, ref.bad_step)


def test_sharded_sweep_over_params_and_keys():
    X, z, _ = problem()
    keys = jax.random.split(jax.random.key(1), 4)
    w0s = jnp.stack([0.1 * jax.random.normal(k, (10,)) for k in keys])
    spec = engine.EngineSpec(steps=12, record_every=4, batch_size=8)
    data = engine.Data(X, z, basis=jnp.eye(10)[:, :3])
    args = (w0s, data, engine.Hyper(lr=0.3), spec, keys)
    ref = engine.sweep(*args, batched=("params", "key"))
    got = engine.sweep(*args, batched=("params", "key"), sharding=engine.sweep_sharding())
    assert len(got.params.sharding.device_set) == 4
    np.testing.assert_allclose(got.coeffs, ref.coeffs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-12, atol=1e-12)


def test_mesh_helpers_import_no_other_engine_module():
    """linkd.engine.sharding holds the mesh helpers only: no linkd import but linkd.errors, no
    lazy ``__getattr__`` or ``importlib`` (the layering test in tests/test_layering.py covers the
    whole package)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(engine.sharding))
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m for m in mods if m.startswith("linkd")} == {"linkd.errors"}
    assert "importlib" not in mods
    assert not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
    assert not hasattr(engine.sharding, "sweep_sharded") and not hasattr(engine, "sweep_sharded")
