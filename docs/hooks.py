"""mkdocs hook: the docstrings use Sphinx roles (:func:`x`, :math:`x`); in the rendered reference
they become plain code (``~`` shortening to the last dotted component, as Sphinx does)."""
import re

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc|math):<code>(~?)([^<]*)</code>")


def _code(m: re.Match) -> str:
    text = m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)
    return f"<code>{text}</code>"


def on_page_content(html, page, config, files):
    return _ROLE.sub(_code, html)
