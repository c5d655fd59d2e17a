"""The import graph of linkd and proofs_check, read from the source with ast (no imports run):
no cycles, no hidden imports, and the layering rules of docs/ARCHITECTURE.md ("Layering rules").

Edges are ``import`` / ``from ... import`` statements anywhere in a module (function-level too)
and ``importlib.import_module("...")`` / ``__import__("...")`` calls (an f-string contributes its
constant prefix). A module-level ``__getattr__`` (a lazy-import shim) is refused outright: it
hides an edge from this graph.
"""
import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("linkd", "proofs_check")

# Run-time plugin discovery, the one edge allowed to close a cycle: the registry imports the
# experiment modules by name so that their ``register`` calls run (they import the registry).
# The claim registry's domain screening lives in proofs_check.points, which builds on the registry's
# records; Claim.run imports it lazily (a second allowed edge, listed so that no other can appear).
PLUGIN_EDGES = {("linkd.registry", "linkd.experiments"), ("proofs_check.registry", "proofs_check.points")}

LEAVES = ("linkd.errors", "linkd.dtypes", "linkd.stability", "linkd.atomic")
LEAF_MAY_IMPORT = {"linkd.errors", "linkd.dtypes"}
NO_ENGINE = ("linkd.closed_form", "linkd.bounds", "linkd.metrics", "linkd.data", "linkd.spectral")
ENGINE_MUST_NOT = ("linkd.closed_form", "linkd.bounds", "linkd.metrics", "linkd.experiments", "linkd.cli",
                   "linkd.plotting", "linkd.rundir", "linkd.registry", "proofs_check")
# (importer prefix, imported prefixes it must not reach directly)
RULES = [
    *((leaf, "only linkd.errors / linkd.dtypes") for leaf in LEAVES),
    *((m, ("linkd.engine",)) for m in NO_ENGINE),
    ("linkd.engine", ENGINE_MUST_NOT),
    ("linkd.config", ("linkd.experiments", "linkd.registry")),
    ("linkd.rundir", ("linkd.plotting", "linkd.experiments", "linkd.registry")),
    ("linkd.plotting", ("linkd.rundir",)),
]


def modules(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    out = {}
    for pkg in packages:
        for p in sorted((root / pkg).rglob("*.py")):
            parts = list(p.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


def _dynamic_target(call: ast.Call) -> str | None:
    """The module named by ``importlib.import_module(...)`` / ``__import__(...)``, or an f-string's constant prefix."""
    f = call.func
    named = (isinstance(f, ast.Attribute) and f.attr == "import_module") or (isinstance(f, ast.Name) and f.id in ("import_module", "__import__"))
    if not named or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value).rstrip(".")
    return None


def _resolve(name: str, mods) -> str | None:
    """The longest known module that ``name`` (a module or module.attribute) starts with."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(name: str, path: Path, mods) -> set[str]:
    """Modules of ``mods`` that module ``name`` imports; ``from P import M`` counts as P.M when M is a module."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(pkg + ([node.module] if node.module else []))
            subs = {f"{base}.{a.name}" for a in node.names} & set(mods)
            found |= subs or {base}
        elif isinstance(node, ast.Call) and (target := _dynamic_target(node)):
            found.add(target)
    resolved = {_resolve(m, mods) for m in found}
    return {m for m in resolved if m is not None and m != name and m not in PACKAGES}


def getattr_shims(mods) -> list[str]:
    """Modules defining a module-level ``__getattr__`` (lazy attribute / import shims)."""
    return [name for name, path in mods.items()
            if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in ast.parse(path.read_text()).body)]


def graph(mods) -> dict[str, set[str]]:
    g = defaultdict(set)
    for name, path in mods.items():
        g[name] |= imports_of(name, path, mods)
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _under(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def violations(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for importer, forbidden in RULES:
        for mod in sorted(m for m in g if _under(m, importer)):
            for dep in sorted(g[mod]):
                if isinstance(forbidden, str):  # a leaf
                    if dep not in LEAF_MAY_IMPORT and (_under(dep, "linkd") or _under(dep, "proofs_check")):
                        bad.append(f"{mod} -> {dep} (a leaf imports {forbidden})")
                elif any(_under(dep, f) for f in forbidden) and not _under(dep, importer):
                    bad.append(f"{mod} -> {dep}")
    return bad


@pytest.fixture(scope="module")
def repo_graph():
    return graph(modules())


def test_no_module_level_getattr_shims():
    assert getattr_shims(modules()) == []


def test_import_graph_has_no_cycles(repo_graph):
    g = {m: {d for d in deps if (m, d) not in PLUGIN_EDGES} for m, deps in repo_graph.items()}
    assert cycles(g) == [], "import cycles"


def test_layering_rules(repo_graph):
    assert violations(repo_graph) == []


def test_engine_package_exists_and_old_modules_are_gone(repo_graph):
    assert {"linkd.engine", "linkd.engine.runs", "linkd.stability"} <= set(repo_graph)
    assert not {"linkd.dynamics", "linkd.engines", "linkd.sharding"} & set(repo_graph)


# ------------------------------------------------------------------ the checker catches planted faults


def _planted(tmp_path: Path, files: dict[str, str]):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    mods = modules(tmp_path, ("linkd",))
    return mods, graph(mods)


def test_checker_sees_importlib_and_getattr_shims(tmp_path):
    mods, g = _planted(tmp_path, {
        "linkd/__init__.py": "",
        "linkd/errors.py": "",
        "linkd/engine/__init__.py": "from linkd.engine import runs\n",
        "linkd/engine/runs.py": "from linkd.engine.sharding import place\n",
        "linkd/engine/sharding.py": ("def __getattr__(name):\n    import importlib\n"
                                     "    return importlib.import_module('linkd.engine.runs').sweep\n"),
        "linkd/closed_form/__init__.py": "def f():\n    return __import__(f'linkd.engine.{1}')\n",
        "linkd/stability.py": "from linkd import losses\n",
        "linkd/losses.py": "",
    })
    assert getattr_shims(mods) == ["linkd.engine.sharding"]
    assert "linkd.engine.runs" in g["linkd.engine.sharding"]  # the importlib string is an edge
    assert cycles(g) == [["linkd.engine.runs", "linkd.engine.sharding"]]
    assert violations(g) == ["linkd.stability -> linkd.losses (a leaf imports only linkd.errors / linkd.dtypes)",
                             "linkd.closed_form -> linkd.engine"]


def test_checker_passes_a_clean_tree(tmp_path):
    mods, g = _planted(tmp_path, {
        "linkd/__init__.py": "from linkd import engine\n",
        "linkd/errors.py": "",
        "linkd/stability.py": "from linkd.errors import ConfigError\n",
        "linkd/engine/__init__.py": "from linkd.engine.runs import simulate\n",
        "linkd/engine/runs.py": "from linkd import stability\n",
    })
    assert getattr_shims(mods) == [] and cycles(g) == [] and violations(g) == []


# ------------------------------------------------------------------ the engine package


ENGINE_PUBLIC = ("EngineSpec", "Hyper", "Data", "Trajectory", "Converged", "Footprint", "simulate", "sweep",
                 "simulate_until", "simulate_auto", "select_path", "simulate_eigen", "simulate_gram",
                 "simulate_closed_form", "sweep_sharding", "default_lr", "check_lr", "lr_limit", "estimate_bytes",
                 "check_memory", "thin_spectrum")
MAX_ENGINE_MODULE_LINES = 300


def test_engine_public_names():
    import importlib

    from linkd import engine

    assert set(ENGINE_PUBLIC) <= set(engine.__all__) and len(set(engine.__all__)) == len(engine.__all__)
    assert [n for n in engine.__all__ if not hasattr(engine, n)] == []
    for name in engine.__all__:  # each public name is defined in exactly one engine module
        homes = [m for m in mods_of_engine() if name in importlib.import_module(m).__dict__.get("__all__", ())]
        assert len(homes) == 1, (name, homes)


def mods_of_engine() -> list[str]:
    return sorted(m for m in modules() if m.startswith("linkd.engine."))


def test_every_engine_module_is_short_and_declares_all():
    import importlib

    long = {m: n for m in mods_of_engine() if (n := len(modules()[m].read_text().splitlines())) > MAX_ENGINE_MODULE_LINES}
    assert long == {}, f"engine modules over {MAX_ENGINE_MODULE_LINES} lines"
    for m in mods_of_engine() + ["linkd.engine", "linkd.stability"]:
        mod = importlib.import_module(m)
        assert isinstance(getattr(mod, "__all__", None), list), f"{m} has no __all__"
        assert [n for n in mod.__all__ if not hasattr(mod, n)] == [], m
