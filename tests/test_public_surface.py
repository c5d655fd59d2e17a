"""The public surface: every module declares ``__all__``, ``__all__`` lists exactly the module's
public top-level definitions, and every public callable of linkd is named by a test or a claim.

"Public" is what ``__all__`` says: a helper other code should not call is ``_private``. The last
check greps each public callable's name in ``tests/`` and ``proofs_check/`` (word boundaries);
there is no allow-list, so a new public function lands with its test. Modules whose dotted name
has a ``_private`` part (``linkd.data._checks``) are package-internal and are not part of it.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import re
import types
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
NOT_IMPORTED = {"linkd.__main__"}  # running it is `linkd` itself


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for p in sorted((ROOT / package).rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


LINKD = _modules("linkd")
PROOFS = _modules("proofs_check")


def _declares_all(path: Path) -> bool:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def _public_definitions(path: Path) -> set[str]:
    """Top-level functions and classes without a leading underscore."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not n.name.startswith("_")}


def _surface_mismatch(path: Path, exported: list[str], module) -> list[str]:
    """Public definitions missing from ``__all__``, and ``__all__`` names the module lacks."""
    bad = [f"{n} (public, not in __all__)" for n in sorted(_public_definitions(path) - set(exported))]
    return bad + [f"{n} (in __all__, not defined)" for n in exported if not hasattr(module, n)]


def _unnamed(names: set[str], corpus: str) -> set[str]:
    """The names that occur nowhere in ``corpus`` as a whole word (identifier)."""
    return set(names) - set(re.findall(r"\w+", corpus))


def _is_private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _is_callable_definition(obj) -> bool:
    """A function or class (jitted ones too); not a module, a typing alias like ``Callable[..]`` or a
    ``typing.Protocol`` (a type for annotations, nothing to run)."""
    return (callable(obj) and not isinstance(obj, types.ModuleType) and typing.get_origin(obj) is None
            and not getattr(obj, "_is_protocol", False))


def _public_callables() -> dict[str, str]:
    """``name -> module`` for every callable (not a module) in a public linkd module's ``__all__``."""
    out: dict[str, str] = {}
    for name in LINKD:
        if name in NOT_IMPORTED or _is_private(name):
            continue
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if _is_callable_definition(obj):
                out.setdefault(attr, name)
    return out


def _test_and_claim_source() -> str:
    files = [p for d in ("tests", "proofs_check") for p in sorted((ROOT / d).rglob("*.py")) if p.resolve() != THIS]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


@pytest.mark.parametrize("name", sorted({**LINKD, **PROOFS}))
def test_every_module_declares_all(name):
    assert _declares_all({**LINKD, **PROOFS}[name]), f"{name} has no __all__"


def test_all_lists_exactly_the_public_definitions():
    bad = []
    for name, path in {**LINKD, **PROOFS}.items():
        if name in NOT_IMPORTED:
            continue
        module = importlib.import_module(name)
        bad += [f"{name}.{b}" for b in _surface_mismatch(path, list(module.__all__), module)]
    assert not bad, "make the helper _private or list it in __all__:\n" + "\n".join(bad)


# Public callables that still lack a test of their own against an independent route. Empty: the last
# ones (engine internals, the claim-API plumbing, atomic writes, plotting helpers) got theirs in
# tests/test_surface_pending.py. It may only shrink: a new public name must never be added to it.
PENDING: frozenset[str] = frozenset()

def test_every_public_callable_is_named_by_a_test_or_a_claim():
    names = _public_callables()
    missing = sorted(f"{names[n]}.{n}" for n in _unnamed(set(names), _test_and_claim_source()))
    stale = sorted(PENDING - set(missing))
    assert not stale, "tested now, remove from PENDING:\n" + "\n".join(stale)
    missing = [m for m in missing if m not in PENDING]
    assert not missing, (f"{len(missing)} public callables are named by no test in tests/ and no claim in "
                         "proofs_check/ (test each against an independent route, or make it _private):\n"
                         + "\n".join(missing))


def test_the_surface_checks_catch_planted_gaps(tmp_path):
    """Negative controls: each check flags a planted gap and passes the repaired one."""
    corpus = "from linkd import data\ndata.power_law_spectrum(4)\n# mentions make_design_x only\n"
    assert _unnamed({"power_law_spectrum", "make_design", "spectrum"}, corpus) == {"make_design", "spectrum"}
    planted = tmp_path / "planted.py"
    planted.write_text("__all__ = ['f', 'gone']\n\ndef f():\n    pass\n\ndef helper():\n    pass\n\ndef _ok():\n    pass\n")
    module = types.SimpleNamespace(f=lambda: None, helper=lambda: None)
    assert _surface_mismatch(planted, ["f", "gone"], module) == ["helper (public, not in __all__)",
                                                                 "gone (in __all__, not defined)"]
    assert _surface_mismatch(planted, ["f", "helper"], module) == []
    assert _declares_all(planted) and not _declares_all(Path(inspect.getfile(_unnamed)).with_name("conftest.py"))
    assert _is_private("linkd.data._checks") and not _is_private("linkd.data.labels")
    assert _is_callable_definition(len) and _is_callable_definition(Path) and not _is_callable_definition(re)
    assert not _is_callable_definition(typing.Callable[[int], None]) and not _is_callable_definition(3)
    assert not _is_callable_definition(typing.SupportsInt)
