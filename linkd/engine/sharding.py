r"""Sharding a sweep across devices: the sweep axis is partitioned over a 1-D device mesh.

:func:`linkd.engine.sweep` vmaps one trajectory (docs/theory.md §2.2) over a leading sweep axis
S. Passing ``sharding=sweep_sharding()`` places every batched input with that axis split across
all k visible devices (``PartitionSpec("sweep")``) and every shared input (X, unswept
hyper-parameters) replicated; the jitted, vmapped scan then runs S/k members on each device with
no communication (the members are independent), and the outputs stay sharded the same way::

    from linkd import engine
    sh = engine.sweep_sharding()                     # all devices: GPUs, TPU cores, CPU devices
    tr = engine.sweep(w0, data, engine.Hyper(lr=lrs), spec, sharding=sh)  # any S: padded, trimmed

This module holds the mesh helpers only and imports nothing else from the engine.

The same code runs on one CPU, several GPUs (``JAX_PLATFORMS=cuda``) or a TPU slice. On CPU,
``jax.config.update("jax_num_cpu_devices", 4)`` (before any computation) gives 4 host devices;
they share the machine's cores, so this tests the placement rather than speeding anything up.

Multi-host (several machines, each with its own devices): start every process with the same
program and call ``jax.distributed.initialize()`` first (on a cluster manager such as SLURM or
a Cloud TPU pod it finds its coordinator by itself; otherwise pass
``coordinator_address="host0:1234", num_processes=P, process_id=i``). ``jax.devices()`` then lists
the devices of all processes, ``sweep_sharding()`` builds the mesh over all of them, and
``jax.device_put`` of an input that is identical on every process places each process's shard
on its own devices. The outputs are global arrays of which each process holds its own shards
(``array.addressable_shards``); gather them on every process with
``jax.experimental.multihost_utils.process_allgather(x)`` before writing, or let process 0 write
only its shards. :func:`linkd.engine.sweep` pads the sweep to a multiple of the global device
count and trims the outputs.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from linkd.errors import ConfigError

AXIS = "sweep"

__all__ = ["AXIS", "padded_size", "place_batched", "sweep_sharding"]


def sweep_sharding(devices: Sequence[Any] | None = None) -> NamedSharding:
    """A :class:`jax.sharding.NamedSharding` splitting a leading sweep axis over ``devices``
    (default: ``jax.devices()``, all devices of all processes), on a 1-D mesh with axis name
    ``"sweep"`` of type ``AxisType.Auto`` (XLA propagates the sharding through the jitted sweep)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ConfigError("devices", devices, "a non-empty list of jax devices")
    mesh = Mesh(np.asarray(devices, dtype=object), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
    return NamedSharding(mesh, PartitionSpec(AXIS))


def _n_devices(sharding: NamedSharding) -> int:
    return int(sharding.mesh.shape[AXIS])


def padded_size(S: int, sharding: NamedSharding) -> int:
    """The smallest multiple of the device count that holds S members."""
    k = _n_devices(sharding)
    return -(-S // k) * k


def place_batched(args, in_axes, sharding: NamedSharding):
    """``jax.device_put`` each leaf of ``args``: leaves whose ``in_axes`` entry is 0 are split
    along their leading axis over the mesh, the others (``in_axes`` None) replicated.

    ``in_axes`` is a prefix of ``args`` as in :func:`jax.vmap` (None / 0 for a whole argument,
    or a matching tree). Raises :class:`~linkd.errors.ConfigError` if a batched leading size is
    not a multiple of the device count (:func:`linkd.engine.sweep` pads and trims)."""
    k = _n_devices(sharding)
    split = sharding
    repl = NamedSharding(sharding.mesh, PartitionSpec())

    def place_subtree(axis, sub):
        if axis is None:
            return jax.tree_util.tree_map(lambda x: jax.device_put(x, repl), sub)
        if axis != 0:
            raise ConfigError("in_axes", axis, "0 or None (the sweep axis leads)")

        def put(x):
            S = np.shape(x)[0]
            if S % k:
                raise ConfigError(
                    "sweep size", S,
                    f"a multiple of the {k} devices of the mesh (pad to {padded_size(S, sharding)}: "
                    "linkd.engine.sweep(..., sharding=...) does it and trims the outputs)",
                    problem="cannot be split evenly",
                )
            return jax.device_put(x, split)

        return jax.tree_util.tree_map(put, sub)

    is_leaf = lambda x: x is None or isinstance(x, int)  # noqa: E731
    return type(args)(
        jax.tree_util.tree_map(place_subtree, ax, arg, is_leaf=is_leaf) if not is_leaf(ax) else place_subtree(ax, arg)
        for ax, arg in zip(in_axes, args)
    )
