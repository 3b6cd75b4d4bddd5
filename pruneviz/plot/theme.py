"""One look for every figure of the kit: seaborn's whitegrid theme and its colour-blind-safe palette.

The plot functions never change global state: they take their colours from :data:`PALETTE` and leave rcParams
alone. Call :func:`set_theme` once (a notebook's first cell) for the rest of matplotlib, or wrap figure creation
in :func:`theme` to apply it only there.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

import matplotlib.pyplot as plt
import seaborn as sns

PALETTE: list[tuple[float, float, float]] = sns.color_palette("colorblind")
DENSE, PRUNED, ACCENT, MUTED = PALETTE[7], PALETTE[0], PALETTE[3], (0.92, 0.92, 0.92)


def _rc() -> dict:
    return {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85),
            "axes.prop_cycle": plt.cycler(color=PALETTE)}


def set_theme() -> None:
    """Set the kit's theme for every later figure (changes matplotlib's rcParams: call it once, up front)."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind", font_scale=0.85)


def theme() -> AbstractContextManager:
    """The kit's theme inside a ``with`` block only, rcParams restored afterwards."""
    return plt.rc_context(_rc())
