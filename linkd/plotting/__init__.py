"""Paper figures: one style (``paper.mplstyle``) and helpers; figure functions for specific
experiments live with the experiments and draw from recorded arrays only."""
from linkd.plotting.style import (  # noqa: F401
    DOUBLE_COLUMN,
    LINESTYLES,
    MARKERS,
    OKABE_ITO,
    PALETTE,
    SINGLE_COLUMN,
    STYLE_PATH,
    check_figure,
    legend_overlaps,
    new_figure,
    save_figure,
    styled,
    use_style,
)

__all__ = [
    "SINGLE_COLUMN", "DOUBLE_COLUMN", "OKABE_ITO", "PALETTE", "MARKERS", "LINESTYLES", "STYLE_PATH",
    "use_style", "styled", "new_figure", "save_figure", "check_figure", "legend_overlaps",
]
