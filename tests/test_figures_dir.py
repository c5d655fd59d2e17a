"""The committed figures/ is what `linkd figures` (`make figures`) writes for the current presets.

Nothing is re-run: the expected file set comes from the presets (`figure = true`) and each kind's
declared figure stems; each figure's caption file, PNG text chunk and PDF Info dictionary must carry
the same caption, naming the preset, the digest of its resolved config (compared with the current
preset's) and the SHA-256 of the preset file (hashed here with hashlib), and listing the preset
file's values (read here with tomllib). A preset edited without regenerating figures/ fails.
"""
import hashlib
import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from linkd.registry import get, list_presets, load_config

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"
FORMATS = ("pdf", "png")  # the default --format of `linkd figures`
#: Written into figures/ by `linkd check --report figures/claims.md`, not by `linkd figures`.
OTHER_FILES = {"claims.md"}


def expected() -> tuple[dict[str, str], list[str]]:
    """Figure stem -> the preset that draws it, for every preset `linkd figures` runs; and the
    stems two presets would both draw (`linkd figures` refuses those)."""
    out: dict[str, str] = {}
    clashes = []
    for p in list_presets():
        if p.figure:
            for stem in get(load_config(p.name, check=False).experiment).stems:
                if stem in out:
                    clashes.append(f"presets {out[stem]} and {p.name} both draw {stem}")
                out.setdefault(stem, p.name)
    return out, clashes


def pdf_subject(path: Path) -> str:
    """The /Subject literal string of a PDF's Info dictionary, decoded per the PDF spec (escapes
    \\\\ \\( \\) \\n \\r; a UTF-16BE string starts with the byte-order mark FE FF)."""
    data = path.read_bytes()
    i = data.rindex(b"/Subject (") + len(b"/Subject (")
    out, esc = bytearray(), {ord("n"): 10, ord("r"): 13, ord("\\"): 92, ord("("): 40, ord(")"): 41}
    while data[i] != ord(")"):
        if data[i] == ord("\\"):
            i += 1
            out.append(esc[data[i]])
        else:
            out.append(data[i])
        i += 1
    raw = bytes(out)
    return raw[2:].decode("utf-16-be") if raw.startswith(b"\xfe\xff") else raw.decode("ascii")


def _caption_facts(text: str) -> dict:
    """Preset name, kind, parameter strings, config digest and origin from a caption."""
    params = re.search(r"^Parameters \((.+?), experiment (\w+)\): (.*)\.$", text, re.M)
    config = re.search(r"^Config (sha256:[0-9a-f]{64}); origin (\{.*\})\.$", text, re.M)
    if not params or not config:
        return {}
    values = dict(item.split(" = ", 1) for item in params.group(3).split("; "))
    return {"source": params.group(1), "kind": params.group(2), "values": values, "digest": config.group(1),
            "origin": json.loads(config.group(2))}


def _same_value(preset_value, shown: str) -> bool:
    """A preset value against its caption rendering (floats to 4 significant digits)."""
    if isinstance(preset_value, bool):
        return shown == str(preset_value).lower()
    if isinstance(preset_value, (int, float)):
        return abs(float(shown) - preset_value) <= 5e-4 * abs(preset_value)
    if isinstance(preset_value, list):
        items = [s for s in shown.strip("[]").split(", ") if s]
        return len(items) == len(preset_value) and all(_same_value(v, s) for v, s in zip(preset_value, items))
    return shown == str(preset_value)


def _preset_problems(stem: str, preset: str, facts: dict) -> list[str]:
    cfg = load_config(preset, check=False)
    path = Path(cfg.origin["path"])
    problems = []
    if facts["source"] != preset or facts["kind"] != cfg.experiment:
        problems.append(f"{stem}: drawn by {facts['source']} ({facts['kind']}), expected {preset} ({cfg.experiment})")
    if facts["digest"] != cfg.digest():
        problems.append(f"{stem}: config {facts['digest']} but preset {preset} resolves to {cfg.digest()}")
    file_sha = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    if facts["origin"].get("sha256") != file_sha:
        problems.append(f"{stem}: drawn from preset file {facts['origin'].get('sha256')}, now {file_sha}")
    table = tomllib.loads(path.read_text())
    for sec, vals in table.items():
        for key, value in (vals.items() if isinstance(vals, dict) else ()):
            shown = facts["values"].get(f"{sec}.{key}")
            if shown is None or not _same_value(value, shown):
                problems.append(f"{stem}: {sec}.{key} = {value!r} in the preset, {shown!r} in the figure")
    return problems


def _figure_problems(d: Path, stem: str, preset: str) -> list[str]:
    caption = (d / f"{stem}.caption.txt").read_text(encoding="utf-8")
    problems = []
    if Image.open(d / f"{stem}.png").text.get("Description") != caption:
        problems.append(f"{stem}.png: Description text differs from {stem}.caption.txt")
    if pdf_subject(d / f"{stem}.pdf") != caption:
        problems.append(f"{stem}.pdf: Subject differs from {stem}.caption.txt")
    facts = _caption_facts(caption)
    if not facts:
        return problems + [f"{stem}.caption.txt: no Parameters/Config lines"]
    return problems + _preset_problems(stem, preset, facts)


def figure_dir_problems(d: Path) -> list[str]:
    """Everything by which directory ``d`` differs from what `linkd figures --out d` writes now."""
    want, problems = expected()
    files = {f"{s}.{ext}" for s in want for ext in (*FORMATS, "caption.txt")}
    have = {p.name for p in d.iterdir()} - OTHER_FILES
    problems += [f"missing {n}" for n in sorted(files - have)]
    problems += [f"not drawn by any preset: {n}" for n in sorted(have - files)]
    for stem, preset in sorted(want.items()):
        if {f"{stem}.{ext}" for ext in (*FORMATS, "caption.txt")} <= have:
            problems += _figure_problems(d, stem, preset)
    return problems


def test_committed_figures_match_the_presets():
    problems = figure_dir_problems(FIGURES)
    assert not problems, ("figures/ is stale; run `make figures`:\n" + "\n".join(problems))


def test_every_figure_preset_has_its_stems():
    want, clashes = expected()
    assert not clashes
    assert set(want.values()) == {p.name for p in list_presets() if p.figure}
    assert len(want) >= 11


@pytest.fixture
def copies(tmp_path, monkeypatch):
    """Copies of figures/ and of the presets; the copied presets are the ones found first."""
    figs, presets = tmp_path / "figures", tmp_path / "presets"
    shutil.copytree(FIGURES, figs)
    shutil.copytree(ROOT / "experiments", presets)
    monkeypatch.setenv("LINKD_PRESETS", str(presets))
    return figs, presets


def test_a_changed_preset_value_fails(copies):
    figs, presets = copies
    assert figure_dir_problems(figs) == []  # the copies agree before the edit
    p = presets / "exaggeration.toml"
    text = p.read_text()
    edited = re.sub(r"(?m)^steps = (\d+)", lambda m: f"steps = {int(m.group(1)) + 1}", text, count=1)
    assert edited != text
    p.write_text(edited)
    problems = figure_dir_problems(figs)
    assert any(m.startswith("exaggeration: config sha256:") for m in problems), problems
    assert any("steps" in m and "in the preset" in m for m in problems), problems
    assert all(m.startswith("exaggeration") for m in problems), problems


def test_a_changed_description_a_new_preset_and_a_lost_file_fail(copies):
    figs, presets = copies
    p = presets / "temperature.toml"
    p.write_text(p.read_text().replace("description = \"", "description = \"(edited) ", 1))
    shutil.copy(presets / "fidelity.toml", presets / "fidelity_copy.toml")
    (figs / "pl_risk.caption.txt").unlink()
    (figs / "old_figure.png").write_bytes(b"")
    problems = figure_dir_problems(figs)
    assert any(m.startswith("temperature: drawn from preset file") for m in problems), problems
    assert "missing pl_risk.caption.txt" in problems
    assert "not drawn by any preset: old_figure.png" in problems
    assert "presets fidelity and fidelity_copy both draw fidelity" in problems


def test_metadata_that_disagrees_with_the_caption_fails(copies):
    figs, _ = copies
    cap = figs / "deep_modes.caption.txt"
    cap.write_text(cap.read_text(encoding="utf-8").replace("run.seed = 0", "run.seed = 1"), encoding="utf-8")
    problems = figure_dir_problems(figs)
    assert "deep_modes.png: Description text differs from deep_modes.caption.txt" in problems
    assert "deep_modes.pdf: Subject differs from deep_modes.caption.txt" in problems
    assert any(m.startswith("deep_modes: run.seed") for m in problems), problems
