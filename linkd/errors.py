"""User-facing errors: the CLI prints ``linkd: error: <str(e)>`` on one line and exits 2.

Everything a user can cause by bad input (a config value, an existing run directory, a diverging
learning rate) derives from :class:`LinkdError`; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from typing import Any

__all__ = ["LinkdError", "ConfigError", "InputError", "RunDirError", "RunDirExistsError", "DivergenceError", "MemoryBudgetError", "one_line"]


def one_line(text: str) -> str:
    """Collapse whitespace runs (newlines included) so a message fits on one line."""
    return " ".join(str(text).split())


class LinkdError(Exception):
    """Base class of errors caused by user input; ``str(e)`` is one line naming problem and fix."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class ConfigError(LinkdError, ValueError):
    """A config key or value is refused.

    ``str(e)`` reads ``"<key> = <value>: <problem>; allowed: <allowed>"``: the key, the value
    given and what would be accepted, on one line.
    """

    def __init__(self, key: str, value: Any, allowed: str, problem: str = "not allowed"):
        self.key, self.value, self.allowed, self.problem = key, value, allowed, problem
        super().__init__(key, value, allowed, problem)

    def __str__(self) -> str:
        value = self.value if isinstance(self.value, str) else repr(self.value)
        return one_line(f"{self.key} = {value}: {self.problem}; allowed: {self.allowed}")


class InputError(LinkdError, ValueError):
    """An argument of a library call is refused (a shape, a range, a missing key).

    ``str(e)`` names the function and argument, the value given and what is allowed, e.g.
    ``"power_law_spectrum: exponent must be a finite number in [0, inf); got inf"``. It is a
    :class:`ValueError` too, so ``except ValueError`` in existing code keeps working.
    """


class RunDirError(LinkdError):
    """A run directory is missing, incomplete, or cannot be written."""


class RunDirExistsError(RunDirError, FileExistsError):
    """The output directory exists and is not empty (pass ``--overwrite`` / ``overwrite=True``)."""


class DivergenceError(LinkdError, FloatingPointError):
    """A simulated run blew up; names the first bad step (and the sweep member)."""

    def __init__(self, message: str, step: int, member: int | None = None):
        self.step, self.member = step, member
        super().__init__(message)


class MemoryBudgetError(LinkdError, MemoryError):
    """A run whose recorded arrays would not fit in memory; refused before it starts."""

    def __init__(self, message: str, needed_bytes: int, available_bytes: int):
        self.needed_bytes, self.available_bytes = needed_bytes, available_bytes
        super().__init__(message)
