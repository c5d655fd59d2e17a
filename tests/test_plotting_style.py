"""The paper style and figure helpers: sizes, palette, fonts, atomic vector/raster output, checks."""
import struct

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest

import toy_experiment
from linkd.plotting import (
    DOUBLE_COLUMN,
    MARKERS,
    PALETTE,
    SINGLE_COLUMN,
    check_figure,
    new_figure,
    save_figure,
    styled,
    use_style,
)
from linkd.registry import load_config


@pytest.fixture(autouse=True)
def close_all():
    yield
    plt.close("all")


def test_style_applies_and_restores():
    before = dict(mpl.rcParams)
    with use_style():
        rc = mpl.rcParams
        assert rc["font.family"] == ["serif"] and rc["mathtext.fontset"] == "stix" and not rc["text.usetex"]
        assert 8 <= rc["font.size"] <= 9 and rc["axes.labelsize"] == 8 and rc["legend.fontsize"] == 7
        assert not rc["axes.spines.top"] and not rc["axes.spines.right"] and not rc["legend.frameon"]
        assert rc["lines.linewidth"] <= 1.0 and rc["savefig.dpi"] == 300 and rc["pdf.fonttype"] == 42
        colors = [mpl.colors.to_hex(c["color"]).upper() for c in rc["axes.prop_cycle"]]
        assert colors == [c.upper() for c in PALETTE] and len(set(colors)) == 8
    assert dict(mpl.rcParams) == before


def _assert_math_glyphs(text: str) -> None:
    """mathtext (no TeX) lays ``text`` out as the glyphs η λ k t in the paper's STIX font, the
    subscript k smaller than the rest."""
    from matplotlib.mathtext import MathTextParser

    parsed = MathTextParser("path").parse(text, dpi=72, prop=mpl.font_manager.FontProperties(size=8))
    glyphs = [(chr(code), font.family_name, size) for font, size, code, *_ in parsed.glyphs]
    assert [g[0] for g in glyphs] == ["η", "λ", "k", "t"], glyphs
    assert {g[1] for g in glyphs} == {"STIXGeneral"} and glyphs[2][2] < glyphs[0][2] == glyphs[3][2]


def _pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)


def test_mathtext_renders_without_tex(tmp_path):
    with use_style():
        assert not mpl.rcParams["text.usetex"]
        _assert_math_glyphs(r"$\eta\lambda_k t$")
        blank, _ = new_figure()
        fig, ax = new_figure()
        label = ax.set_xlabel(r"$\eta\lambda_k t$")
        ax.set_ylabel(r"$q_k(t) = c_k / c_k^\star$")
        diff = np.abs(_pixels(fig) - _pixels(blank)).sum(axis=-1)
        box = label.get_window_extent()  # display pixels, origin bottom-left
        h = diff.shape[0]
        inside = diff[int(h - box.y1):int(h - box.y0) + 1, int(box.x0):int(box.x1) + 1]
        assert box.width > 10 and inside.mean() > 5.0  # ink where the label is
        paths = save_figure(fig, tmp_path, "math", formats=("png",))
    img = plt.imread(paths[0])
    assert img.shape[0] > 100 and img[..., :3].std() > 0.01


def test_math_glyph_check_fails_on_a_planted_bug():
    with use_style():
        with pytest.raises(AssertionError):  # no $...$: the TeX source shows as literal characters
            _assert_math_glyphs(r"\eta\lambda_k t")
        with pytest.raises(AssertionError), mpl.rc_context({"mathtext.fontset": "dejavusans"}):  # not the paper font
            _assert_math_glyphs(r"$\eta\lambda_k t$")


@pytest.mark.parametrize("width, expect", [("single", SINGLE_COLUMN), ("double", DOUBLE_COLUMN), (5.0, 5.0)])
def test_new_figure_sizes(width, expect):
    fig, ax = new_figure(width)
    w, h = fig.get_size_inches()
    assert w == expect and 0.5 * w < h < w
    fig, axes = new_figure("double", nrows=2, ncols=3)
    assert axes.shape == (2, 3) and fig.get_size_inches()[0] == DOUBLE_COLUMN
    fig, ax = new_figure("single", aspect=1.0)
    assert tuple(fig.get_size_inches()) == (SINGLE_COLUMN, SINGLE_COLUMN)
    with pytest.raises(ValueError, match="width"):
        new_figure("triple")


def test_save_figure_pdf_vector_png_300dpi_atomic(tmp_path):
    with use_style():
        fig, ax = new_figure("single")
        ax.plot([0, 1], [0, 1], marker=MARKERS[0], label="a")
    paths = save_figure(fig, tmp_path / "figs", "f")
    assert [p.name for p in paths] == ["f.pdf", "f.png"]
    pdf = (tmp_path / "figs" / "f.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" not in pdf  # vector, no embedded raster
    png = (tmp_path / "figs" / "f.png").read_bytes()
    width_px, height_px = struct.unpack(">II", png[16:24])
    assert width_px == round(SINGLE_COLUMN * 300)
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["f.pdf", "f.png"]  # no temp files
    save_figure(fig, tmp_path / "again", "f", formats=("pdf",))
    assert (tmp_path / "again" / "f.pdf").read_bytes() == pdf  # reproducible bytes (no dates)


def _good():
    fig, ax = new_figure("single")
    ax.plot([0, 1], [0, 1], label="teacher")
    ax.plot([0, 1], [1, 0], label="student")
    ax.axhline(0.5, label="_nolegend_")
    ax.set_xlabel("step")
    ax.set_ylabel("$q_k$")
    ax.legend()
    return fig, ax


def test_check_figure():
    fig, ax = _good()
    assert check_figure(fig) == []
    ax.get_legend().remove()
    assert check_figure(fig) == ["axes 0: 2 series but no legend"]  # the _nolegend_ line is not a series
    fig.legend()
    assert check_figure(fig) == []
    fig2, axes = new_figure(4.0, ncols=2)
    axes[0].plot([0, 1], [0, 1])
    axes[1].set_title("right")
    problems = check_figure(fig2)
    assert "figure width 4 in is not one of 3.25, 6.75 in" in problems
    assert "axes 0: no x label" in problems and "axes 1 ('right'): no y label" in problems


def test_check_figure_shared_legend_in_other_panel():
    fig, axes = new_figure("double", ncols=2)
    for ax in axes:
        ax.plot([0, 1], label="GD")
        ax.plot([1, 0], label="GF")
        ax.set_xlabel("t")
        ax.set_ylabel("y")
    axes[0].legend()
    assert check_figure(fig) == []


def test_styled_decorator_and_toy_figure_passes_checks():
    cfg = load_config("kind:toy", ["train.steps=3"])
    metrics = {"steps": np.arange(4), "coeffs": np.ones((4, 3))}
    figs = styled(toy_experiment.figures)(metrics, {}, cfg)
    assert list(figs) == ["toy_coeffs"]
    fig = figs["toy_coeffs"]
    assert check_figure(fig) == []
    assert fig.axes[0].xaxis.label.get_fontsize() == 8


def test_legend_overlaps_finds_a_legend_over_data_and_not_one_beside_it():
    from linkd.plotting import legend_overlaps

    fig, ax = new_figure("single")
    x = np.linspace(0.0, 1.0, 50)
    ax.plot(x, 0.5 + 0.0 * x, label="flat")  # a line straight through the middle
    ax.plot(x, x, marker="o", ls="none", label="points")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="center")
    assert any("axes 0 legend covers" in p for p in legend_overlaps(fig))  # planted: must be found
    ax.get_legend().remove()
    fig.legend(loc="outside lower center", ncol=2)
    assert legend_overlaps(fig) == []


def test_save_figure_metadata_caption_and_no_stale_format(tmp_path):
    with use_style():
        fig, ax = new_figure("single")
        ax.plot([0, 1], [0, 1])
    d = tmp_path / "figs"
    save_figure(fig, d, "f", formats=("pdf", "png", "svg"))
    paths = save_figure(fig, d, "f", formats=("pdf", "png"), caption="F: q_k(t).\nParameters: data.n = 100.\n",
                        title="f: a title", keywords="data.n = 100")
    assert [p.name for p in paths] == ["f.pdf", "f.png", "f.caption.txt"]
    assert sorted(p.name for p in d.iterdir()) == ["f.caption.txt", "f.pdf", "f.png"]  # stale f.svg removed
    assert (d / "f.caption.txt").read_text().startswith("F: q_k(t).")
    pdf = (d / "f.pdf").read_bytes()
    assert b"/Title (f: a title)" in pdf and b"/Keywords (data.n = 100)" in pdf and b"Parameters: data.n = 100." in pdf
    from PIL import Image

    info = Image.open(d / "f.png").text
    assert info["Title"] == "f: a title" and "data.n = 100" in info["Description"]
