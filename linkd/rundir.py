"""Run directories: the contract, provenance, and building a run beside its final path.

A run directory holds exactly::

    config.toml    the fully resolved config (`linkd run DIR/config.toml` reproduces the run)
    meta.json      provenance: versions, backend, devices, x64, seeds, git commit, times, command
    metrics.npz    the recorded arrays
    summary.json   scalar results (non-finite numbers are written as null and listed in
                   "_nonfinite")
    figures/       PDF + PNG, and <stem>.caption.txt with the figure's parameters

``meta.json`` records where the config came from (``config_origin``: preset path and location,
SHA-256 of the file) and ``config_sha256``, the digest of the resolved config. Every file is
written through :mod:`linkd.atomic` (temporary name, fsync, rename), so an interrupted run never
leaves a half-written file under a final name; files get 0666 less the umask. A whole run
is built in a staging directory beside its final path and renamed into place when complete
(:func:`staged_directory`), so ``--overwrite`` replaces a previous run only with a finished one.
Reading a run back needs the experiment registry (its schema), so ``load_run`` lives one layer up,
in :mod:`linkd.experiments.runner`.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from linkd.atomic import atomic_write_json, atomic_write_npz, atomic_write_text, current_umask, fsync_dir
from linkd.config import Config, dump_toml
from linkd.errors import LinkdError, RunDirError, RunDirExistsError

__all__ = ["collect_meta", "git_info", "utc_now", "RunDir", "RUN_FILES", "check_output_dir", "staged_directory",
           "remove_stale_staging", "discard_active_staging"]

RUN_FILES = ("config.toml", "meta.json", "metrics.npz", "summary.json")
_PACKAGES = ("jax", "jaxlib", "numpy", "scipy", "optax", "matplotlib")


# ---------------------------------------------------------------------------- provenance


def git_info(repo: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"commit": sha | None, "dirty": bool | None}`` of the checkout holding linkd (or ``repo``).

    None when it is not a git checkout (e.g. an installed wheel) or git is missing.
    """
    root = Path(repo) if repo is not None else Path(__file__).resolve().parents[1]
    none = {"commit": None, "dirty": None}

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel")).resolve()
        if top != root.resolve():  # linkd installed inside some other repository
            return none
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return none
    return {"commit": commit, "dirty": dirty}


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def collect_meta(*, seeds: Any = None, command: list[str] | None = None, x64: bool | None = None,
                 start_time: str | None = None, wall_seconds: float | None = None,
                 status: str = "running", **extra: Any) -> dict[str, Any]:
    """Provenance for ``meta.json``. Imports jax (but creates no arrays)."""
    import jax

    from linkd.dtypes import x64_enabled

    try:
        import linkd

        version = getattr(linkd, "__version__", None)
    except Exception:  # pragma: no cover - a broken package still gets its meta written
        version = None
    version = version or _version("linkd")
    return {
        "linkd_version": version,
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in _PACKAGES},
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": x64_enabled() if x64 is None else bool(x64),
        "seeds": seeds,
        "git": git_info(),
        "start_time": start_time or utc_now(),
        "wall_seconds": wall_seconds,
        "status": status,
        "command": list(sys.argv if command is None else command),
        "platform": platform.platform(),
        **extra,
    }


# ----------------------------------------------------------------- build beside, then swap


def check_output_dir(out: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse ``out`` if it is a file, a non-empty directory without ``overwrite``, or cannot be
    created or written (the nearest existing directory above it is a file or not writable).
    Cheap (no jax): the CLI calls it before any work starts."""
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RunDirExistsError(f"{out} exists and is not empty; pass --overwrite to replace it "
                                "or choose another --out")
    d = out.parent
    while not d.exists() and d != d.parent:
        d = d.parent
    if not d.is_dir():
        raise RunDirError(f"cannot create {out}: {d} is not a directory; choose another --out")
    try:  # a real probe: os.access says yes to root even on read-only or virtual file systems
        os.rmdir(tempfile.mkdtemp(prefix=".linkd-probe.", dir=d))
    except OSError as e:
        raise RunDirError(f"cannot write in {d} ({e.strerror}); choose another --out") from None


def _make_parents(d: Path) -> list[Path]:
    """``mkdir -p d``; returns the directories it created, outermost first."""
    missing = []
    while not d.exists():
        missing.append(d)
        d = d.parent
    made: list[Path] = []
    for m in reversed(missing):
        try:
            m.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            _remove_dirs(made)
            raise RunDirError(f"cannot create directory {m}: {e.strerror}") from None
        made.append(m)
    return made


def _remove_dirs(made: list[Path]) -> None:
    for m in reversed(made):
        with contextlib.suppress(OSError):
            m.rmdir()


def _is_run_output(entry: Path) -> bool:
    """Entries a run or sweep writes (replaced by ``--overwrite``); anything else is the user's."""
    return entry.name in (*RUN_FILES, "figures", "sweep.json", "sweep_summary.csv") or (entry / "meta.json").exists()


#: Staging directories of this process not yet swapped in (removed by :func:`discard_active_staging`).
_ACTIVE: set[Path] = set()
_STARTED = time.time()


def _staging_name(out: Path, kind: str) -> str:
    """``.<name>.<pid>.<random>.linkd-<kind>``: the pid lets a later run tell a dead run's leftovers
    from a live concurrent run's."""
    return f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.linkd-{kind}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_staging(out: str | os.PathLike) -> list[Path]:
    """Remove the staging directories (``.<name>.*.linkd-new``) that a killed run to ``out`` left
    beside it; returns those removed. One is stale when the process that made it (the pid in its
    name) is no longer running on this host and it was last changed before this process started; a
    live concurrent run's is never touched. Names without a pid (older linkd) are stale when
    untouched for a day. A ``.linkd-old`` directory (a previous run being replaced when the process
    was killed) may be the only copy of that run: it is left for the user."""
    out = Path(os.path.abspath(out))
    removed: list[Path] = []
    try:
        entries = list(out.parent.glob(f".{_glob_escape(out.name)}.*.linkd-new"))
    except OSError:
        return removed
    for e in entries:
        if e.suffix != ".linkd-new" or not e.is_dir() or e in _ACTIVE:
            continue
        middle = e.name[len(out.name) + 2: -len(e.suffix)].split(".")
        try:
            mtime = e.stat().st_mtime
        except OSError:
            continue
        if len(middle) == 2 and middle[0].isdigit():
            stale = not _pid_alive(int(middle[0])) and mtime < _STARTED
        else:
            stale = mtime < time.time() - 86400
        if stale:
            shutil.rmtree(e, ignore_errors=True)
            removed.append(e)
    return removed


def _glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def discard_active_staging() -> None:
    """Remove every staging directory of this process (a watchdog's last act before it exits)."""
    for d in list(_ACTIVE):
        shutil.rmtree(d, ignore_errors=True)
        _ACTIVE.discard(d)


def _swap_in(new: Path, out: Path, keep: Callable[[Path], bool]) -> None:
    """Put the finished directory ``new`` at ``out``; the previous ``out`` is removed only after
    the rename succeeded, and its entries for which ``keep`` is true are moved across."""
    if out.is_dir() and not any(out.iterdir()):  # keep the (empty) directory the user made
        for entry in new.iterdir():
            os.rename(entry, out / entry.name)
        new.rmdir()
        return
    if not out.exists():
        os.rename(new, out)
        return
    old = out.with_name(_staging_name(out, "old"))
    os.rename(out, old)
    try:
        os.rename(new, out)
    except OSError:
        os.rename(old, out)
        raise
    for entry in old.iterdir():
        if keep(entry) and not (out / entry.name).exists():
            os.rename(entry, out / entry.name)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(out: str | os.PathLike, *, overwrite: bool = False,
                     keep: Callable[[Path], bool] = lambda e: not _is_run_output(e)) -> Iterator[Path]:
    """Yield a fresh directory beside ``out`` to write a run (or sweep) into; when the block
    completes it replaces ``out``, so a failing run never touches a previous good one.

    ``out`` is refused up front if it is a file or a non-empty directory without ``overwrite``.
    On a user error (:class:`LinkdError`) or an interrupt the staging directory, and any parent
    directory made for it, is removed: nothing is written. On any other exception (a bug) it is
    renamed to ``out`` for inspection when ``out`` did not exist, and removed otherwise. With
    ``overwrite`` the previous directory's entries that no run writes (``keep``) are carried over.
    """
    out = Path(os.path.abspath(out))  # "." and "runs/.." have a parent and a name too
    check_output_dir(out, overwrite)
    made = _make_parents(out.parent)
    remove_stale_staging(out)
    new = out.parent / _staging_name(out, "new")
    try:
        new.mkdir(mode=0o700)
    except OSError as e:
        _remove_dirs(made)
        raise RunDirError(f"cannot write in {out.parent}: {e.strerror}") from None
    _ACTIVE.add(new)
    try:
        os.chmod(new, 0o777 & ~current_umask())
        yield new
    except Exception as e:
        if not isinstance(e, LinkdError) and not out.exists():
            os.rename(new, out)
        else:
            shutil.rmtree(new, ignore_errors=True)
            _remove_dirs(made)
        raise
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        _remove_dirs(made)
        raise
    finally:
        _ACTIVE.discard(new)
    _swap_in(new, out, keep)
    fsync_dir(out.parent)


# ------------------------------------------------------------------------------ run dir


class RunDir:
    """A run directory being written.

    ``RunDir(path)`` creates ``path`` (and parents); an existing non-empty directory is refused
    unless ``overwrite=True``, which removes the previous run's files (only those of the
    contract; anything else is left alone).
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path} exists and is not a directory; choose another --out")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not overwrite:
                raise RunDirExistsError(f"{self.path} exists and is not empty; pass --overwrite "
                                        f"to replace it or choose another --out")
            for name in RUN_FILES:
                with contextlib.suppress(FileNotFoundError):
                    (self.path / name).unlink()
            shutil.rmtree(self.path / "figures", ignore_errors=True)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create run directory {self.path}: {e.strerror}") from None

    def write_config(self, config: Config) -> Path:
        return atomic_write_text(self.path / "config.toml", dump_toml(config))

    def write_meta(self, meta: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.path / "meta.json", meta)

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        return atomic_write_npz(self.path / "metrics.npz", metrics)

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.path / "summary.json", summary, note_nonfinite=True)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)
