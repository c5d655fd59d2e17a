"""Every citation of the math points at the repository's own document, and at a section it has.

The code, the presets and the README cite ``docs/theory.md §N.M``; ``../shared`` is not shipped.
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
SOURCES = [*sorted((ROOT / "linkd").rglob("*.py")), *sorted((ROOT / "proofs_check").rglob("*.py")),
           *sorted((ROOT / "experiments").glob("*.toml")), *sorted((ROOT / "benchmarks").glob("*.py")),
           ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if p.name != "theory.md")]


def _sections() -> set[str]:
    heads = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", THEORY.read_text(encoding="utf-8"), flags=re.M)
    return set(heads)


def test_theory_document_has_every_numbered_section():
    secs = _sections()
    for s in ("1", "1.4", "2.2", "3.2", "4.3", "5.2", "6", "6.3", "7", "7.2", "7.4", "8", "9", "9.3"):
        assert s in secs, s


def test_every_citation_points_at_docs_theory():
    bad = []
    for path in SOURCES:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in re.finditer(r"(\S*)theory\.md", line):
                relative_ok = path.parent.name == "docs" and m.group(1).endswith(("[`", "("))  # a link inside docs/
                if not m.group(1).endswith("docs/") and not relative_ok:
                    bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
            if "shared/" in line and "theory" in line:
                bad.append(f"{path.relative_to(ROOT)}:{i}: cites ../shared")
    assert not bad, "\n".join(bad[:20])


def test_cited_sections_exist():
    secs = _sections()
    missing = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"docs/theory\.md\s*§\s*(\d+(?:\.\d+)?)", text):
            if m.group(1) not in secs:
                missing.append(f"{path.relative_to(ROOT)}: §{m.group(1)}")
    assert not missing, "\n".join(sorted(set(missing)))
