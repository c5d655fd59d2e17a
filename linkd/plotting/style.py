"""The paper style and figure helpers.

Draw inside :func:`use_style` (or decorate a figure function with :func:`styled`): matplotlib
reads rcParams when an artist is created, so labels made outside the context are unstyled.
The CLI calls ``Experiment.figures`` inside it.

>>> with use_style():
...     fig, ax = new_figure("single")
...     ax.plot(t, q, label="student"); ax.set_xlabel("step $t$"); ax.set_ylabel("$q_k(t)$")
...     ax.legend()
...     save_figure(fig, "figures", "eigen_convergence")   # figures/eigen_convergence.{pdf,png}
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from linkd.atomic import atomic_savefig, atomic_write_text
from linkd.errors import ConfigError, InputError

__all__ = [
    "SINGLE_COLUMN", "DOUBLE_COLUMN", "OKABE_ITO", "PALETTE", "MARKERS", "LINESTYLES", "STYLE_PATH",
    "FORMATS", "CAPTION_SUFFIX", "use_style", "styled", "new_figure", "save_figure", "check_figure",
    "legend_overlaps",
]

#: Figure widths in inches: one column / full width of a two-column paper (e.g. ICML, NeurIPS).
SINGLE_COLUMN = 3.25
DOUBLE_COLUMN = 6.75
STYLE_PATH = Path(__file__).with_name("paper.mplstyle")

#: Okabe & Ito (2008) colour-blind-safe colours, by name.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
#: The default colour cycle (same order as in ``paper.mplstyle``; yellow last: weak on white).
PALETTE = tuple(OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "reddish_purple",
                                       "orange", "sky_blue", "black", "yellow"))
#: Markers for simulation points, distinguishable in greyscale.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 2)))
FORMATS = ("pdf", "png", "svg", "eps")
_GOLDEN = (5**0.5 - 1) / 2


@contextlib.contextmanager
def use_style() -> Iterator[None]:
    """Apply ``paper.mplstyle`` for the duration of the block (restored afterwards)."""
    with mpl.style.context(STYLE_PATH):
        yield


def styled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run a figure function inside :func:`use_style`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with use_style():
            return fn(*args, **kwargs)

    return wrapper


def _width(width: str | float) -> float:
    if width == "single":
        return SINGLE_COLUMN
    if width == "double":
        return DOUBLE_COLUMN
    if isinstance(width, (int, float)) and not isinstance(width, bool) and width > 0:
        return float(width)
    raise InputError(f"new_figure: width must be 'single', 'double' or inches > 0; got {width!r}")


def new_figure(width: str | float = "single", aspect: float | None = None, nrows: int = 1,
               ncols: int = 1, **subplots_kw: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` at a paper width: ``"single"`` (3.25 in) or ``"double"`` (6.75 in).

    ``aspect`` is height / width of the whole figure; by default each panel is golden-ratio
    (one column) or 0.8 (several columns) high. Returns ``(fig, axes)`` as ``plt.subplots``.
    """
    w = _width(width)
    if aspect is None:
        h = nrows * (w / ncols) * (_GOLDEN if ncols == 1 else 0.8)
    else:
        h = w * float(aspect)
    with use_style():
        return plt.subplots(nrows, ncols, figsize=(w, min(h, 9.0)), **subplots_kw)


CAPTION_SUFFIX = ".caption.txt"


def _metadata(fmt: str, title: str, caption: str, keywords: str) -> dict | None:
    creator = f"linkd {_linkd_version()}"
    if fmt == "pdf":
        return {"Creator": creator, "Producer": None, "CreationDate": None, "Title": title or None,
                "Subject": caption or None, "Keywords": keywords or None}
    if fmt == "png":
        meta = {"Software": creator, "Title": title, "Description": caption, "Comment": keywords}
        return {k: v for k, v in meta.items() if v}
    if fmt == "svg":
        meta = {"Creator": creator, "Title": title, "Description": caption}
        return {"Date": None, **{k: v for k, v in meta.items() if v}}
    return {"Creator": creator} if fmt == "eps" else None


def _linkd_version() -> str:
    import linkd

    return getattr(linkd, "__version__", "?")


def save_figure(fig: Figure, directory: str | Path, stem: str, formats: Sequence[str] = ("pdf", "png"),
                dpi: int = 300, *, caption: str = "", title: str = "", keywords: str = "") -> list[Path]:
    """Write ``directory/stem.<fmt>`` for each format, atomically; PDF is vector, PNG at ``dpi``.

    ``title``, ``caption`` (the figure's parameters and provenance) and ``keywords`` go into the
    file metadata (PDF Title/Subject/Keywords, PNG text chunks, SVG title/description); a
    non-empty ``caption`` is also written to ``stem.caption.txt``. Files of the same stem in other
    figure formats are removed, so the directory never holds a stale rendering. Metadata dates
    are dropped: re-saving an unchanged figure gives identical bytes.
    """
    directory = Path(directory)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError("format", ",".join(bad), ", ".join(FORMATS), "unknown figure format")
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    with use_style():
        for fmt in formats:
            out.append(atomic_savefig(fig, directory / f"{stem}.{fmt}", format=fmt, dpi=dpi,
                                      metadata=_metadata(fmt, title, caption, keywords)))
    if caption:
        out.append(atomic_write_text(directory / f"{stem}{CAPTION_SUFFIX}", caption))
    for fmt in set(FORMATS) - set(formats):
        (directory / f"{stem}.{fmt}").unlink(missing_ok=True)
    return out


def _series(ax) -> list:
    arts = [a for a in list(ax.lines) + list(ax.collections) if a.get_visible()]
    return [a for a in arts if a.get_label() != "_nolegend_"]


def check_figure(fig: Figure, widths: Sequence[float] = (SINGLE_COLUMN, DOUBLE_COLUMN)) -> list[str]:
    """Problems that would embarrass a figure in a paper (empty list = fine).

    - width is not one of ``widths`` (inches);
    - a visible axes has no x or y label (colorbars excepted);
    - an axes with several series has no legend covering it: its own, a figure legend, or a
      legend elsewhere that names all its labelled series. Reference lines that need no legend
      entry should get ``label="_nolegend_"``.
    """
    problems: list[str] = []
    w = fig.get_size_inches()[0]
    if not any(abs(w - x) < 1e-6 for x in widths):
        problems.append(f"figure width {w:.3g} in is not one of {', '.join(map(str, widths))} in")
    legend_texts: set[str] = set()
    for ax in fig.axes:
        if (legend := ax.get_legend()) is not None:
            legend_texts |= {t.get_text() for t in legend.get_texts()}
    for leg in fig.legends:
        legend_texts |= {t.get_text() for t in leg.get_texts()}
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison or ax.get_label() == "<colorbar>":
            continue
        name = f"axes {i}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        if not ax.get_xlabel().strip():
            problems.append(f"{name}: no x label")
        if not ax.get_ylabel().strip():
            problems.append(f"{name}: no y label")
        series = _series(ax)
        if len(series) >= 2 and ax.get_legend() is None and not fig.legends:
            labels = {a.get_label() for a in series if not a.get_label().startswith("_")}
            if not labels or not labels <= legend_texts:
                problems.append(f"{name}: {len(series)} series but no legend")
    return problems


def _data_points(ax) -> np.ndarray:
    """Display coordinates of the data an axes draws: line vertices (and points along each
    segment), marker and scatter positions, error-bar and band outlines."""
    pts = []
    for line in ax.lines:
        if not line.get_visible():
            continue
        xy = np.asarray(line.get_xydata(), dtype=float)
        xy = xy[np.all(np.isfinite(xy), axis=1)] if xy.size else xy
        if len(xy) == 0:
            continue
        d = line.get_transform().transform(xy)
        if line.get_linestyle() not in ("None", "none", "", " ") and len(d) > 1:
            t = np.linspace(0.0, 1.0, 9)[:, None, None]
            d = np.concatenate([d, (d[:-1][None] * (1 - t) + d[1:][None] * t).reshape(-1, 2)])
        pts.append(d)
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        offs = np.asarray(coll.get_offsets(), dtype=float)
        if offs.size and len(coll.get_paths()) <= 1:  # scatter: markers at the offsets
            pts.append(coll.get_offset_transform().transform(offs))
        for path in coll.get_paths():  # error bars, bands
            v = np.asarray(path.vertices, dtype=float)
            if v.size:
                pts.append(coll.get_transform().transform(v))
    pts = [p[np.all(np.isfinite(p), axis=1)] for p in pts]
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def legend_overlaps(fig: Figure) -> list[str]:
    """Legends that cover data: for every legend (of an axes or of the figure), each axes whose
    drawn data (lines, markers, error bars, bands) has a point inside the legend's box."""
    fig.canvas.draw()
    legends: list[tuple[str, Any]] = [(f"axes {i} legend", leg) for i, ax in enumerate(fig.axes)
                                      if (leg := ax.get_legend()) is not None]
    legends += [(f"figure legend {i}", leg) for i, leg in enumerate(fig.legends)]
    problems = []
    for name, leg in legends:
        box = leg.get_window_extent()
        for i, ax in enumerate(fig.axes):
            pts = _data_points(ax)
            clip = ax.get_window_extent()  # data outside the axes is not drawn
            inside = ((pts[:, 0] >= max(box.x0, clip.x0)) & (pts[:, 0] <= min(box.x1, clip.x1))
                      & (pts[:, 1] >= max(box.y0, clip.y0)) & (pts[:, 1] <= min(box.y1, clip.y1)))
            if inside.any():
                problems.append(f"{name} covers {int(inside.sum())} data points of axes {i}")
    return problems
