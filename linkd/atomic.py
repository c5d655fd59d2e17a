"""Atomic file writing: the one place linkd writes a file.

Every writer puts its bytes in ``.<name>.<random>.tmp`` in the destination directory, flushes and
fsyncs it, renames it onto the final name (``os.replace``) and fsyncs the directory: a reader sees
the old file or the complete new one, never a half-written file, even if the process dies
mid-write. Files get the mode a plain ``open`` would give, ``0o666 & ~umask``, not ``mkstemp``'s
private 0600.

A leaf module: it imports nothing from linkd but :mod:`linkd.errors`, so the run directory
(:mod:`linkd.rundir`), the figures (:mod:`linkd.plotting`), the sweep summary, the CLI and the
claim report all write through it without importing each other.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np

from linkd.errors import InputError

__all__ = [
    "current_umask", "fsync_dir", "atomic_open", "atomic_write_bytes", "atomic_write_text", "json_safe",
    "atomic_write_json", "atomic_write_npz", "atomic_savefig",
]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows, else set-and-restore)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def fsync_dir(d: str | os.PathLike) -> None:
    """fsync a directory, so a rename inside it survives a crash (a no-op where unsupported)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Binary file handle whose contents appear at ``path`` only if the block completes.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``Path(path)``."""
    with atomic_open(path) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``Path(path)``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any, _path: str = "", _notes: dict | None = None) -> Any:
    """``obj`` with numpy scalars/arrays made Python, tuples made lists, and nan/±inf made None.

    If ``_notes`` (a dict) is given, each replaced non-finite value is recorded there as
    ``{"a.b[2]": "nan"}``.
    """
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v, f"{_path}.{k}" if _path else str(k), _notes) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, f"{_path}[{i}]", _notes) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):  # jax arrays
        return json_safe(np.asarray(obj), _path, _notes)
    if isinstance(obj, float) and not math.isfinite(obj):
        if _notes is not None:
            _notes[_path] = repr(obj)
        return None
    if isinstance(obj, complex):
        return json_safe([obj.real, obj.imag], _path, _notes)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise InputError(f"json_safe: summary value at {_path or '<root>'} must be JSON-able (number, str, bool, None, "
                     f"list, dict, numpy array/scalar); got {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any, *, note_nonfinite: bool = False) -> Path:
    """Write ``json_safe(obj)`` (indented, keys in the order given). With ``note_nonfinite`` and a
    dict ``obj``, replaced nan/inf values are listed under ``"_nonfinite"``."""
    notes: dict[str, str] = {}
    safe = json_safe(obj, _notes=notes)
    if note_nonfinite and notes and isinstance(safe, dict):
        safe["_nonfinite"] = notes
    return atomic_write_text(path, json.dumps(safe, indent=2, allow_nan=False) + "\n")


def atomic_write_npz(path: str | os.PathLike, arrays: Mapping[str, Any], *, compress: bool = False) -> Path:
    """``np.savez`` of ``arrays`` (name -> array-like), written atomically."""
    arrays = {str(k): np.asarray(v) for k, v in arrays.items()}
    with atomic_open(path) as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return Path(path)


def atomic_savefig(fig: Any, path: str | os.PathLike, **savefig_kw: Any) -> Path:
    """``fig.savefig(handle, **savefig_kw)`` into ``path`` atomically (a matplotlib ``Figure``;
    pass ``format=`` since the handle has no file name to guess it from)."""
    with atomic_open(path) as fh:
        fig.savefig(fh, **savefig_kw)
    return Path(path)
