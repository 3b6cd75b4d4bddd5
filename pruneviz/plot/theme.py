"""One look for every figure of the kit: seaborn's whitegrid theme and its colour-blind-safe palette.

The plot functions never change global state: they take their colours from :data:`PALETTE` (and their markers
and line styles from :func:`series_style`) and leave rcParams alone. Call :func:`set_theme` once (a notebook's
first cell) for the rest of matplotlib, or wrap figure creation in :func:`theme` to apply it only there.

Colour is never the only cue: series also differ by marker (and line style, past eight series), and the accent
of thresholds, floors and the current point is a colour no series uses.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

import matplotlib.pyplot as plt
import seaborn as sns

_COLORBLIND: list[tuple[float, float, float]] = sns.color_palette("colorblind")
ACCENT = _COLORBLIND[3]  # vermilion: thresholds, floors, the current point
DENSE = _COLORBLIND[7]   # grey: the dense model, baselines
MUTED = (0.92, 0.92, 0.92)
# the colours of series (curves, layers, criteria): the colour-blind palette without the accent and the grey
PALETTE: list[tuple[float, float, float]] = [c for i, c in enumerate(_COLORBLIND) if i not in (3, 7)]
PRUNED = PALETTE[0]
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def series_style(i: int, *, overlapping: bool = False) -> dict:
    """Colour, marker and line style of the ``i``-th series: each of the first eight has its own colour and its
    own marker, so no two differ by colour alone; from the ninth on, the cycle repeats with another line style.

    ``overlapping=True`` is for curves that lie on top of each other: series ``i`` then also gets line style
    ``i`` (of four) and a marker that shrinks and opens up with ``i``, so a curve drawn later does not hide the one
    beneath it."""
    if overlapping:
        return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
                "linestyle": LINESTYLES[i % len(LINESTYLES)], "markersize": max(3.0, 7.0 - 1.2 * i),
                "markerfacecolor": PALETTE[i % len(PALETTE)] if i % 2 == 0 else "none"}
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]}


def _rc() -> dict:
    return {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85),
            "axes.prop_cycle": plt.cycler(color=PALETTE)}


def set_theme() -> None:
    """Set the kit's theme for every later figure (changes matplotlib's rcParams: call it once, up front)."""
    sns.set_theme(style="whitegrid", context="notebook", palette=PALETTE, font_scale=0.85)


def theme() -> AbstractContextManager:
    """The kit's theme inside a ``with`` block only, rcParams restored afterwards."""
    return plt.rc_context(_rc())
