"""A tiny progress reporter on stderr (no tqdm): done/total in the unit that moves, rate, time left.

Nothing is shown for the first ``delay`` seconds (2 s), so quick runs print nothing; after that
a terminal gets one line rewritten in place, and a log or pipe a line every ``interval`` (10 s).
Silent when ``quiet``. Usable as a callback; the caller names the unit it counts (GD steps, sweep
points, geometries, claims), and may change it with the call that sets a new total::

    progress = Progress("train")
    for chunk in ...:
        progress(done, total, "GD steps")
    progress.close()
"""
from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

__all__ = ["Progress", "ProgressCallback", "format_seconds"]


class ProgressCallback(Protocol):
    """What an experiment calls to report progress: ``done`` of ``total`` items of ``unit``
    (``total`` and ``unit`` keep their previous values when None)."""

    def __call__(self, done: int, total: int | None = None, unit: str | None = None) -> None: ...


def format_seconds(s: float) -> str:
    """``3725.2 -> "1:02:05"``, ``42 -> "0:42"``."""
    if s != s or s in (float("inf"), float("-inf")):
        return "?"
    s = int(round(max(s, 0.0)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """Reports ``desc done/total unit  rate unit/s  ETA m:ss`` at most every ``interval`` s, once
    ``delay`` seconds have passed since it was made (``force``: from the first report).

    On a terminal one line is rewritten in place (``\\r``, every 0.2 s); on a non-terminal each
    report is its own line (every 10 s).
    """

    def __init__(self, desc: str = "", *, total: int | None = None, unit: str = "steps",
                 quiet: bool = False, force: bool = False, stream: TextIO | None = None,
                 interval: float | None = None, delay: float = 2.0, clock=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        isatty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = not quiet
        self.inplace = isatty
        self.delay = 0.0 if force else float(delay)
        self.desc, self.total, self.unit = desc, total, unit
        self.interval = interval if interval is not None else (0.2 if isatty else 10.0)
        self._clock = clock
        self._start = clock()
        self._last = float("-inf")
        self._done = 0
        self._width = 0
        self._closed = False
        self._written: int | None = None  # ``done`` at the last line written

    def __call__(self, done: int, total: int | None = None, unit: str | None = None) -> None:
        """Report ``done`` items of ``unit`` finished (of ``total``, if given now or at construction)."""
        if total is not None:
            self.total = total
        if unit is not None:
            self.unit = unit
        self._done = done
        if not self.enabled:
            return
        now = self._clock()
        if now - self._start < self.delay:
            return
        finished = self.total is not None and done >= self.total
        if finished or now - self._last >= self.interval:
            self._last = now
            self._written = done
            self._write(self.line(now))

    def update(self, n: int = 1) -> None:
        """Advance by ``n``."""
        self(self._done + n)

    def line(self, now: float | None = None) -> str:
        elapsed = (self._clock() if now is None else now) - self._start
        rate = self._done / elapsed if elapsed > 0 else float("nan")
        parts = [self.desc] if self.desc else []
        parts.append(f"{self._done}/{self.total} {self.unit}" if self.total is not None else f"{self._done} {self.unit}")
        if rate == rate:
            parts.append(f"{rate:.3g} {self.unit}/s")
        if self.total and rate == rate and rate > 0:
            left = max(self.total - self._done, 0) / rate
            parts.append(f"ETA {format_seconds(left)}" if left else f"done in {format_seconds(elapsed)}")
        return "  ".join(parts)

    def _write(self, text: str) -> None:
        if self.inplace:
            pad = max(self._width - len(text), 0)
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Final report and newline, if anything was reported (idempotent)."""
        if self._closed:
            return
        self._closed = True
        shown = self._last != float("-inf") or (self._done and self._clock() - self._start >= self.delay)
        if self.enabled and shown:
            if self._written != self._done:
                self._write(self.line())
            if self.inplace:
                self.stream.write("\n")
                self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
