"""Several processes or hosts for one linkd command, on JAX's own multi-process runtime.

``--distributed`` on ``linkd sweep``, ``linkd check`` and ``linkd falsify`` (docs/distributed.md):
every process calls :func:`initialize` (``jax.distributed.initialize``: auto-detected under SLURM,
Open MPI or on a TPU pod, else ``--coordinator HOST:PORT --num-processes N --process-id I`` or the
environment variables of :data:`ENV_VARS`; gloo collectives on CPU), takes its :class:`Split` of
the work items (grid points, claims, screen points: contiguous blocks, the same on every
process), computes them exactly as a single process would, and :meth:`Context.gather` brings
every process's results to all (``multihost_utils.process_allgather`` of pickled bytes); process 0
writes the one output. No mathematics here (nothing to cite in docs/theory.md).

Failure: a peer that dies closes its gloo connection and the collective fails at once; a host that
vanishes is declared dead by JAX's coordination service after ``peer_timeout`` seconds without a
heartbeat; with ``gather_timeout`` a collective also runs under a watchdog that gives up on a peer
that is alive but silent (a slow peer is otherwise waited for: the work may be unbalanced). The
process prints one line naming the peer, removes its staging directories
(:func:`linkd.rundir.discard_active_staging`) and exits non-zero without waiting for JAX's
shutdown barrier (:func:`exit_now`).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pickle
import sys
import threading
from typing import Any, Callable, Iterator

import numpy as np

from linkd.errors import ConfigError, LinkdError, one_line

__all__ = ["ENV_VARS", "CLUSTER_ENV", "DEFAULT_TIMEOUT", "PeerError", "Context", "LOCAL", "Split", "add_arguments",
           "initialize", "from_args", "parse_shard", "exit_now"]

#: Environment variables read when the matching flag is not given.
ENV_VARS = {"coordinator": "LINKD_COORDINATOR", "num_processes": "LINKD_NUM_PROCESSES",
            "process_id": "LINKD_PROCESS_ID"}
#: Variables whose presence lets ``jax.distributed.initialize()`` detect the cluster by itself.
CLUSTER_ENV = ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")
#: Seconds to connect, and without a heartbeat before JAX declares a process dead.
DEFAULT_TIMEOUT = 300.0


class PeerError(LinkdError):
    """A peer process died or stopped answering during a collective (one line, names the peer)."""


@dataclasses.dataclass(frozen=True)
class Context:
    """Where this process stands: ``process_id`` of ``num_processes``; ``gather_timeout`` (seconds,
    None: no limit) bounds each wait at a collective. ``LOCAL`` is the single-process context
    (gather returns ``[x]``)."""

    process_id: int = 0
    num_processes: int = 1
    gather_timeout: float | None = None

    @property
    def is_main(self) -> bool:
        """Process 0: the one that writes."""
        return self.process_id == 0

    @property
    def active(self) -> bool:
        return self.num_processes > 1

    def split(self, n: int) -> "Split":
        return Split(n, self.num_processes)

    def mine(self, n: int) -> list[int]:
        """The indices of ``n`` work items this process computes."""
        return list(self.split(n).part(self.process_id))

    def gather(self, obj: Any, what: str = "results") -> list[Any]:
        """Every process's ``obj`` (picklable), in process order, on every process."""
        if not self.active:
            return [obj]
        from jax.experimental import multihost_utils as mu

        data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
        sizes = self._collective(lambda: mu.process_allgather(np.asarray([data.size], np.int32)), what)
        sizes = np.asarray(sizes).reshape(-1)
        buf = np.zeros(int(sizes.max()), np.uint8)
        buf[: data.size] = data
        every = np.asarray(self._collective(lambda: mu.process_allgather(buf), what)).reshape(len(sizes), -1)
        return [pickle.loads(every[i, : int(sizes[i])].tobytes()) for i in range(len(sizes))]

    def agree(self, problem: str | None, what: str = "the start") -> None:
        """Share each process's refusal (None if none); raise the first on every process."""
        problems = [p for p in self.gather(problem, what) if p]
        if problems:
            raise LinkdError(problems[0])

    def barrier(self, what: str = "barrier") -> None:
        self.gather(None, what)

    def _peers(self) -> str:
        others = [i for i in range(self.num_processes) if i != self.process_id]
        return f"process {others[0]}" if len(others) == 1 else f"one of processes {', '.join(map(str, others))}"

    def _collective(self, fn: Callable[[], Any], what: str) -> Any:
        done = threading.Event()
        me = f"process {self.process_id} of {self.num_processes}"

        def expire() -> None:
            if not done.is_set():
                _die(f"{me}: no answer from {self._peers()} within {self.gather_timeout:g} s while gathering "
                     f"{what} (--gather-timeout; it hangs or is far slower); stopping", 1)

        timer = threading.Timer(self.gather_timeout or 0.0, expire)
        timer.daemon = True
        if self.gather_timeout is not None:
            timer.start()
        try:
            return fn()
        except Exception as e:  # gloo: "Connection closed by peer" the moment a peer dies
            raise PeerError(f"{me}: lost {self._peers()} while gathering {what} (it died or was killed: "
                            f"{one_line(str(e))[:160]}); stopping") from None
        finally:
            done.set()
            timer.cancel()


LOCAL = Context()


@dataclasses.dataclass(frozen=True)
class Split:
    """``n`` work items over ``parts`` processes in contiguous blocks (sizes differ by at most one;
    the first ``n % parts`` blocks are the longer): deterministic, the same on every process."""

    n: int
    parts: int

    def part(self, i: int) -> range:
        if not 0 <= i < self.parts:
            raise ConfigError("--shard", f"{i}/{self.parts}", f"0 <= I < {self.parts}", "no such part")
        return range(i * self.n // self.parts, (i + 1) * self.n // self.parts)

    def owner(self, item: int) -> int:
        """The part that holds ``item``."""
        return next(i for i in range(self.parts) if item in self.part(i))


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with 0 <= I < N."""
    head, slash, tail = str(text).partition("/")
    try:
        i, n = int(head), int(tail)
    except ValueError:
        i, n = -1, 0
    if not slash or n < 1 or not 0 <= i < n:
        raise ConfigError("--shard", text, "I/N with 0 <= I < N, e.g. 0/4", "malformed shard")
    return i, n


def add_arguments(q: argparse.ArgumentParser) -> None:
    """``--distributed`` and its options (``--coordinator``, ``--num-processes``, ``--process-id``,
    ``--peer-timeout``, ``--gather-timeout``)."""
    g = q.add_argument_group("several processes (docs/distributed.md)")
    g.add_argument("--distributed", action="store_true",
                   help="split the work over processes/hosts with jax.distributed (auto-detected under SLURM, "
                        "Open MPI, TPU; else the options below or LINKD_COORDINATOR/LINKD_NUM_PROCESSES/"
                        "LINKD_PROCESS_ID); process 0 writes the output")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator")
    g.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
    g.add_argument("--process-id", type=int, metavar="I", help="this process's id, 0 <= I < N")
    g.add_argument("--peer-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SEC",
                   help=f"seconds to connect, and without a heartbeat before a process is dead (default "
                        f"{DEFAULT_TIMEOUT:g}); a peer that exits is noticed at once")
    g.add_argument("--gather-timeout", type=float, default=None, metavar="SEC",
                   help="give up on a peer that is alive but silent for SEC seconds at a gather (default: wait)")


def _env(name: str, value: Any, cast: Callable[[str], Any]) -> Any:
    if value is not None:
        return value
    text = os.environ.get(ENV_VARS[name])
    if text in (None, ""):
        return None
    try:
        return cast(text)
    except ValueError:
        raise ConfigError(ENV_VARS[name], text, "an integer", "malformed") from None


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               *, timeout: float = DEFAULT_TIMEOUT, gather_timeout: float | None = None) -> Context:
    """``jax.distributed.initialize`` with linkd's defaults; returns this process's :class:`Context`.

    Explicit arguments first, then :data:`ENV_VARS`; with none of them, JAX's own cluster
    detection (SLURM, Open MPI, TPU) when one of :data:`CLUSTER_ENV` is set, else a
    :class:`ConfigError`. CPU collectives use gloo. Call before any array is made; a second call
    in the same process returns the context of the first."""
    import jax

    if gather_timeout is not None and gather_timeout <= 0:
        raise ConfigError("--gather-timeout", str(gather_timeout), "seconds > 0", "not positive")
    if jax.distributed.is_initialized():  # a second command in the same process (scripts, tests)
        return Context(jax.process_index(), jax.process_count(), gather_timeout)
    coordinator = _env("coordinator", coordinator, str)
    num_processes = _env("num_processes", num_processes, int)
    process_id = _env("process_id", process_id, int)
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ConfigError("--distributed", "incomplete", "all of --coordinator HOST:PORT, --num-processes N and "
                          "--process-id I (or LINKD_COORDINATOR, LINKD_NUM_PROCESSES, LINKD_PROCESS_ID), or none "
                          "under SLURM / Open MPI / TPU", "missing " + ", ".join(
                              n for n, g in zip(("--coordinator", "--num-processes", "--process-id"), given) if not g))
    if not any(given) and not any(k in os.environ for k in CLUSTER_ENV):
        raise ConfigError("--distributed", "no cluster", "--coordinator HOST:PORT --num-processes N --process-id I "
                          "(or the LINKD_* variables), or a SLURM / Open MPI / TPU job", "nothing to connect to")
    if all(given):
        assert num_processes is not None and process_id is not None
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise ConfigError("--process-id", str(process_id), f"0 <= I < N = {num_processes}", "out of range")
    if timeout <= 0:
        raise ConfigError("--peer-timeout", str(timeout), "seconds > 0", "not positive")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    t = int(max(10, timeout))
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=t,
                                   heartbeat_timeout_seconds=t)
    except Exception as e:  # noqa: BLE001 - unreachable coordinator, port taken, timeout
        raise PeerError(f"jax.distributed.initialize failed ({coordinator or 'auto-detected'}): "
                        f"{one_line(str(e))[:200]}") from None
    ctx = Context(jax.process_index(), jax.process_count(), gather_timeout)
    with _quiet_stdout():  # gloo prints "[Gloo] Rank 0 is connected ..." on stdout
        ctx.barrier("the start")  # connects the collectives now: a later death is then seen at once
    return ctx


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """File descriptor 1 to /dev/null for the block (C++ libraries print there)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (captured): nothing to hide
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def from_args(args: argparse.Namespace) -> Context:
    """:func:`initialize` from the parsed flags when ``--distributed`` is given, else :data:`LOCAL`."""
    if not getattr(args, "distributed", False):
        given = [f for f, v in (("--coordinator", args.coordinator), ("--num-processes", args.num_processes),
                                ("--process-id", args.process_id)) if v is not None]
        if given:
            raise ConfigError(given[0], "given", "with --distributed", "no --distributed")
        return LOCAL
    return initialize(args.coordinator, args.num_processes, args.process_id, timeout=args.peer_timeout,
                      gather_timeout=args.gather_timeout)


def _die(line: str, code: int) -> None:
    from linkd.rundir import discard_active_staging

    discard_active_staging()
    print(f"linkd: error: {line}", file=sys.stderr, flush=True)
    exit_now(code)


def exit_now(code: int) -> None:
    """Flush and exit at once: skips ``jax.distributed.shutdown``'s barrier, which would abort the
    process (and print pages) when a peer is gone."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)

