"""Structural checks on the library source (ast, no imports run): no import cycles, no function
over 60 lines, no short module aliases, and the one default-float helper."""
import ast
import re
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60



def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted((ROOT / "linkd").rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, modules: dict, module_level_only: bool) -> set[str]:
    """linkd modules ``name`` imports; ``from P import M`` counts as P.M when that is a module."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:  # imports under a top-level if/try still run at import time
        nodes = [n for top in tree.body for n in ([top] + (list(ast.walk(top)) if isinstance(top, (ast.If, ast.Try)) else []))]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(pkg + ([node.module] if node.module else []))
            subs = {f"{base}.{a.name}" for a in node.names} & set(modules)
            found |= subs or {base}
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    mods = _modules()
    graph = defaultdict(set)
    for name, path in mods.items():
        graph[name] |= _imports(name, path, mods, module_level_only)
        graph[name].discard("linkd")  # `import linkd` for __version__: the package's own imports are below
    return graph


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level", "with-function-level"])
def test_linkd_import_graph_has_no_cycles(module_level_only):
    cycles = _cycles(_graph(module_level_only))
    assert not cycles, f"import cycles: {cycles}"


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_layering_keeps_config_and_rundir_below_experiments_and_plotting():
    g = _graph(module_level_only=False)
    assert not {m for m in g["linkd.config"] if m.startswith(("linkd.experiments", "linkd.registry"))}
    assert not {m for m in g["linkd.rundir"] if m.startswith(("linkd.plotting", "linkd.experiments"))}


def _py_files():
    return [p for d in ("linkd", "tests") for p in sorted((ROOT / d).rglob("*.py"))]


def test_no_function_over_60_lines():
    long = []
    for p in _py_files():
        rel = p.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_LINES} lines (split them):\n" + "\n".join(long)


def test_no_short_module_aliases():
    """``from linkd import dynamics as D`` hides what a name is (and D is also a config section)."""
    bad = []
    for p in _py_files():
        rel = p.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mod = getattr(node, "module", None) or ""
                for a in node.names:
                    if a.asname and (mod.startswith("linkd") or a.name.startswith("linkd")) and len(a.asname) <= 2 \
                            and a.asname != "cf":  # `closed_form as cf`, as in the README
                        bad.append(f"{rel}:{node.lineno} {a.name} as {a.asname}")
    assert not bad, "short module aliases:\n" + "\n".join(bad)


def test_one_default_float_helper():
    """Library and claim code pick the float dtype through linkd.dtypes, never `jnp.zeros(()).dtype`
    or `jax.config.jax_enable_x64`."""
    pattern = re.compile(r"jnp\.zeros\(\(\)\)\.dtype|jax\.config\.jax_enable_x64|config\.read\(.jax_enable_x64")
    files = [p for pkg in ("linkd", "proofs_check", "benchmarks") for p in sorted((ROOT / pkg).rglob("*.py"))]
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in files
           for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not bad, "use linkd.dtypes.default_float()/x64_enabled():\n" + "\n".join(bad)


def test_default_float_follows_x64():
    from linkd.dtypes import default_float, x64_enabled

    assert x64_enabled() and default_float() == np.float64  # conftest turns x64 on
    try:
        jax.config.update("jax_enable_x64", False)
        assert not x64_enabled() and default_float() == np.float32
    finally:
        jax.config.update("jax_enable_x64", True)
