"""The README and the user guide (docs/*.md) cannot rot silently.

* every ```python block runs: the blocks of one page in order, as one script, in a fresh
  interpreter (the examples enable x64 themselves and must not lean on the test configuration);
  a block may be skipped only with a ``<!-- no-exec -->`` line right before it, and at most
  ``MAX_SKIPPED`` are;
* every ``linkd ...`` line of a console/sh block parses with the real CLI parser, and the presets,
  keys, grid axes and claim ids it names exist (nothing is run);
* the API tables of docs/api.md name exactly the public surface (``__all__``) of the modules;
* no session or change-log wording; every relative link (and anchor) resolves.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import api_tables

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), *sorted((DOCS / "reference").glob("*.md"))]
MAX_SKIPPED = 2
NO_EXEC = "<!-- no-exec -->"

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_LINK = re.compile(r"!?\[(?:[^\]`]|`[^`]*`)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_FORBIDDEN = re.compile(
    r"this session|not lent|was lent|SECTIONS BELOW|FILLED IN AS|replaces the whole|\(was [0-9]|now covers"
    r"|older name|re-run marked|marked \"re-run\"", re.I)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fences(path: Path) -> list[tuple[str, str, int, bool]]:
    """(language, body, first body line (1-based), skipped) of every fenced block of ``path``."""
    return _fences_of(path.read_text())


def _fences_of(text: str) -> list[tuple[str, str, int, bool]]:
    out = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 2
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        out.append((m.group(1).lower(), m.group(2), line, before == NO_EXEC))
    return out


def _python_pages() -> list[Path]:
    return [p for p in PAGES if any(lang == "python" for lang, *_ in fences(p))]


# ------------------------------------------------------------------------ (a) python blocks

# One interpreter runs every page (each page in its own namespace, its blocks in order), so the
# import of jax and the compilation of small eager ops are paid once; XLA's backend optimisation is
# off there (compile time dominates these tiny examples; results agree to round-off).
_DRIVER = r"""
import json, sys, traceback
pages = json.loads(sys.stdin.read())
results = {}
for page, blocks in pages.items():
    ns = {"__name__": "__main__"}
    try:
        for start, body in blocks:
            exec(compile("\n" * (start - 1) + body, page, "exec"), ns)
        results[page] = ""
    except BaseException:
        results[page] = traceback.format_exc()
print("\n@@RESULTS@@" + json.dumps(results))
"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, str]:
    """``{page: traceback or ""}`` from running every page's python blocks in a fresh interpreter."""
    pages = {_rel(p): [(line, body) for lang, body, line, skip in fences(p) if lang == "python" and not skip]
             for p in _python_pages()}
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg",
           "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}
    r = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(pages), capture_output=True, text=True,
                       cwd=tmp_path_factory.mktemp("examples"), env=env, timeout=900)
    assert "@@RESULTS@@" in r.stdout, f"the example runner died (exit {r.returncode}):\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.rsplit("@@RESULTS@@", 1)[1])


def test_examples_exist_and_few_are_skipped():
    pages = {_rel(p) for p in _python_pages()}
    assert {"README.md", "docs/api.md"} <= pages, pages
    skipped = [(_rel(p), line) for p in PAGES for lang, _, line, skip in fences(p) if lang == "python" and skip]
    assert len(skipped) <= MAX_SKIPPED, f"too many {NO_EXEC} python blocks: {skipped}"


def test_example_runner_reports_a_broken_block():
    """Negative control: a failing block is reported with its page and line; later pages still run."""
    pages = {"a.md": [(3, "x = 1"), (9, "assert x == 2")], "b.md": [(1, "y = 1")]}
    r = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(pages), capture_output=True, text=True,
                       timeout=60)
    results = json.loads(r.stdout.rsplit("@@RESULTS@@", 1)[1])
    assert 'File "a.md", line 9' in results["a.md"] and results["b.md"] == ""
    body = "```python\nprint(1)\n```\n<!-- no-exec -->\n```python\nboom\n```\n"
    assert [skip for *_, skip in _fences_of(body)] == [False, True]


@pytest.mark.parametrize("page", _python_pages(), ids=_rel)
def test_python_blocks_run(page, executed):
    assert executed[_rel(page)] == "", f"{_rel(page)}: a python block failed\n{executed[_rel(page)][-4000:]}"


# ------------------------------------------------------------------------ (a) linkd command lines


def command_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line, argv after ``linkd``) of every ``linkd`` command in a console/sh block of ``path``."""
    out = []
    for lang, body, start, _ in fences(path):
        if lang not in ("console", "sh", "bash", "shell", ""):
            continue
        prompted = any(line.startswith("$ ") for line in body.splitlines())
        for i, raw in enumerate(body.replace("\\\n", " ").splitlines()):
            if prompted and not raw.startswith("$ "):
                continue  # output lines of a transcript
            lexer = shlex.shlex(raw.split(" #")[0].strip().removeprefix("$ "), posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words: list[str] = []
            for w in [*lexer, ";"]:
                if w not in ("&&", "||", ";"):
                    words.append(w)
                    continue
                cut = next((j for j, x in enumerate(words) if x in ("|", ">", ">>", "<", "&")), len(words))
                words = words[:cut]
                if words[:1] == ["linkd"] or words[:3] == [".venv/bin/python", "-m", "linkd"]:
                    out.append((start + i, words[1:] if words[0] == "linkd" else words[3:]))
                words = []
    return out


def _command_cases():
    for page in PAGES:
        for line, argv in command_lines(page):
            yield pytest.param(argv, id=f"{_rel(page)}:{line}")


def _check_command(argv: list[str]) -> None:
    from linkd import cli

    args, extra = cli.build_parser().parse_known_args(argv)
    assert args.command, argv
    if args.command == "check":
        from proofs_check import registry, runner

        ids = {c.id for c in registry.all_claims()}
        opts = runner.build_parser().parse_args(extra)
        assert set(opts.only) <= ids, f"unknown claim ids {sorted(set(opts.only) - ids)}"
        return
    assert not extra, f"unrecognized arguments {extra}"
    if args.command == "figures":
        from linkd.registry import list_presets

        assert set(args.only) <= {p.name for p in list_presets()}, args.only
    elif args.command in ("run", "sweep", "show") and not (args.experiment or "").endswith(".toml"):
        # keys, types and ranges (not the data-dependent cross-field checks: tests/test_cli.py runs
        # those on the --help examples)
        from linkd.experiments.runner import parse_grid
        from linkd.registry import load_config

        experiment = cli._take_experiment(args)
        overrides = [*args.set, *([f"run.seed={args.seed}"] if args.seed is not None else [])]
        config = load_config(experiment, overrides, check=False)
        assert config.origin["type"] in ("preset", "experiment defaults")
        if args.command == "sweep":
            assert parse_grid(config, args.grid)


@pytest.mark.parametrize("argv", list(_command_cases()))
def test_linkd_command_lines_parse(argv, tmp_path, monkeypatch):
    """The documented command parses, and its preset, keys, grid and claim ids exist (not run)."""
    monkeypatch.chdir(tmp_path)
    try:
        _check_command(argv)
    except SystemExit as e:  # argparse refused it
        pytest.fail(f"`linkd {shlex.join(argv)}` does not parse (exit {e.code})")
    assert list(tmp_path.iterdir()) == []


def test_command_lines_are_found():
    """The parser above sees the documented commands (so a parse failure cannot hide)."""
    found = {_rel(p): len(command_lines(p)) for p in PAGES}
    assert found["docs/cli.md"] >= 10 and found["README.md"] >= 1, found


def test_a_renamed_flag_fails():
    """Negative control: a flag the CLI does not have is caught by the same check."""
    with pytest.raises((SystemExit, AssertionError)):
        _check_command(["run", "eigen_convergence", "--outdir", "x"])
    with pytest.raises(Exception):
        _check_command(["run", "eigen_convergence", "--set", "teacher.stepz=3"])
    with pytest.raises(AssertionError):
        _check_command(["check", "--only", "ng.no_such_claim"])


# ------------------------------------------------------------------------ (b) API tables


def test_api_tables_name_exactly_the_public_surface():
    import importlib

    tables = api_tables.table_names(api_tables.API_MD.read_text())
    fix = f"regenerate the tables with `{api_tables.REGENERATE}`"
    assert set(tables) == set(api_tables.MODULES), f"docs/api.md tables {sorted(tables)}; {fix}"
    documented = {n for names in tables.values() for n in names}
    public = {n for m in api_tables.MODULES for n in importlib.import_module(m).__all__}
    assert documented == public, (f"undocumented: {sorted(public - documented)}; "
                                  f"not public: {sorted(documented - public)}; {fix}")
    for module, names in tables.items():
        assert names == list(importlib.import_module(module).__all__), f"{module}: {fix}"


def test_api_table_check_catches_a_missing_name():
    text = api_tables.API_MD.read_text()
    name = api_tables.table_names(text)["linkd.engine"][0]
    broken = re.sub(rf"^\| `{name}` \|.*\n", "", text, count=1, flags=re.M)
    assert name not in api_tables.table_names(broken)["linkd.engine"]
    assert api_tables.table_names(api_tables.regenerate(broken)) == api_tables.table_names(text)


def test_every_module_has_a_reference_page():
    for module in api_tables.MODULES:
        page = DOCS / "reference" / f"{module.split('.')[-1]}.md"
        assert page.is_file() and f"::: {module}" in page.read_text(), page
        assert f"reference/{page.name}" in (ROOT / "mkdocs.yml").read_text(), page


# ------------------------------------------------------------------------ (c) wording


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_no_session_or_change_log_wording(page):
    bad = [(i + 1, m.group(0)) for i, line in enumerate(page.read_text().splitlines()) for m in _FORBIDDEN.finditer(line)]
    assert not bad, f"{_rel(page)}: session / change-log wording at {bad}"


def test_wording_check_catches_planted_phrases():
    for phrase in ("No GPU was lent to this session", "1.70× numpy (was 1.35×)", "this now covers",
                   "<!-- SECTIONS BELOW ARE FILLED IN AS ISSUES LAND -->"):
        assert _FORBIDDEN.search(phrase), phrase


# ------------------------------------------------------------------------ (d) links


def slugs(heading: str) -> set[str]:
    """The anchors of a heading under Python-Markdown's toc (mkdocs) and GitHub: a link must use an
    anchor both agree on (they differ on non-ASCII letters and on runs of spaces)."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    mkdocs = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", ascii_text).strip())
    github = re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))
    return {mkdocs} if mkdocs == github else set()


def anchors(text: str) -> set[str]:
    text = _FENCE.sub("", text)
    return {a for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M) for a in slugs(m.group(1))}


def links(text: str) -> list[str]:
    text = _FENCE.sub("", text)
    return [m.group(1) for m in _LINK.finditer(_INLINE_CODE.sub("", text))]


def link_errors(path: Path, text: str | None = None) -> list[str]:
    text = path.read_text() if text is None else text
    errors = []
    for target in links(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if file and not dest.exists():
            errors.append(f"{target}: no such file")
        elif path.is_relative_to(DOCS) and not dest.is_relative_to(DOCS):
            errors.append(f"{target}: leaves docs/ (the built site would have a dead link)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text() if file else text):
            errors.append(f"{target}: no heading with anchor #{anchor} (in both mkdocs' and GitHub's slugs)")
    return errors


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page):
    assert not link_errors(page), f"{_rel(page)}: {link_errors(page)}"


def test_link_check_catches_dead_links():
    assert links((DOCS / "api.md").read_text()), "no links found: the link pattern is broken"
    probe = "# A probe\n[a](no_such_page.md) [b](api.md#no-such-anchor) [c](../README.md) [d](#a-probe) [e](#τ)\n"
    errors = link_errors(DOCS / "probe.md", probe)
    assert len(errors) == 4, errors
    assert "no such file" in errors[0] and "anchor" in errors[1] and "leaves" in errors[2] and "#τ" in errors[3]
    assert slugs("Softmax students at temperature τ (§8)") == set()  # mkdocs and GitHub disagree: unusable
    assert slugs("The engine (`linkd.engine`)") == {"the-engine-linkdengine"}


def test_guide_pages_are_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.glob("*.md"):
        assert f": {page.name}" in nav, f"docs/{page.name} is not in mkdocs.yml's nav"
