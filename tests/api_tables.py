"""The API tables of docs/api.md, generated from each module's ``__all__`` and docstrings.

    .venv/bin/python tests/api_tables.py          # rewrite the tables in docs/api.md
    .venv/bin/python tests/api_tables.py --check  # exit 1 if a table's names differ from __all__

Each table sits between ``<!-- api-table: linkd.MODULE -->`` and ``<!-- /api-table -->``: one row
per name of the module's ``__all__`` (in that order) with the first sentence of its docstring.
tests/test_docs.py checks that the names in the tables are exactly the public surface.
"""
from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

__all__ = ["MODULES", "API_MD", "REGENERATE", "table_names", "render_table", "regenerate"]

MODULES = ("linkd.engine", "linkd.closed_form", "linkd.data", "linkd.spectral", "linkd.models",
           "linkd.losses", "linkd.metrics", "linkd.bounds")
API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"
REGENERATE = ".venv/bin/python tests/api_tables.py"

_BLOCK = re.compile(r"(<!-- api-table: (linkd[\w.]*) -->\n)(.*?)(<!-- /api-table -->)", re.S)
_ROW_NAME = re.compile(r"^\| `([A-Za-z_]\w*)` \|", re.M)
_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|obj|math):`~?([^`]*)`")


def _summary(obj) -> str:
    """First sentence of the object's own docstring, as one Markdown table cell."""
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj) or callable(obj)):
        text = repr(obj) if len(repr(obj)) <= 60 else type(obj).__name__  # a constant: its value
        return f"`{text}`".replace("|", "∣")
    para = (inspect.getdoc(obj) or "").strip().split("\n\n")[0].replace("\n", " ")
    para = re.sub(r"``([^`]+)``", r"`\1`", _ROLE.sub(lambda m: f"`{m.group(1)}`", para))
    end = re.search(r"(?<![.:][a-z])\.(\s|$)", para)
    first = para[: end.start() + 1] if end else para
    if len(first) > 200:
        first = first[:200].rsplit(" ", 1)[0]
        if first.count("`") % 2:  # never cut inside a code span
            first = first[: first.rindex("`")].rstrip()
        first += " …"
    # no "|" in a cell: GitHub and Python-Markdown escape it differently inside code spans
    return first.replace("\\|", "‖").replace("|", "∣") or "(no docstring)"


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "class"
    if inspect.isfunction(obj) or callable(obj):
        return "function"
    return "constant"


def render_table(module: str) -> str:
    """The Markdown table of ``module``'s public names (``__all__`` order)."""
    mod = importlib.import_module(module)
    rows = ["| name | kind | what it is |", "| --- | --- | --- |"]
    for name in mod.__all__:
        obj = getattr(mod, name)
        rows.append(f"| `{name}` | {_kind(obj)} | {_summary(obj)} |")
    return "\n".join(rows) + "\n"


def table_names(text: str) -> dict[str, list[str]]:
    """``{module: [names in its table]}`` for every generated table in ``text``."""
    return {m.group(2): _ROW_NAME.findall(m.group(3)) for m in _BLOCK.finditer(text)}


def regenerate(text: str) -> str:
    """``text`` with every table block rewritten from the current modules."""
    return _BLOCK.sub(lambda m: m.group(1) + render_table(m.group(2)) + m.group(4), text)


def main(argv: list[str]) -> int:
    text = API_MD.read_text()
    if "--check" in argv:
        bad = {m: n for m, n in table_names(text).items() if n != list(importlib.import_module(m).__all__)}
        for m in bad:
            print(f"{API_MD}: the table of {m} differs from {m}.__all__; run {REGENERATE}")
        return 1 if bad else 0
    new = regenerate(text)
    if new != text:
        API_MD.write_text(new)
    print(f"{API_MD}: {sum(len(n) for n in table_names(new).values())} names in {len(table_names(new))} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
