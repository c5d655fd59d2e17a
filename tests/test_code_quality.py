"""Structural checks on the library source (ast, no imports run): no function over 60 lines, no
short module aliases, and the one default-float helper (the import graph: tests/test_layering.py)."""
import ast
import re
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60


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
