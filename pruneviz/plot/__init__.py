"""Plots of the kit, in the seaborn manner: each function takes ``ax=None``, draws on that Axes only, returns it.

Each keeps handles to its artists (``artists(ax)``) so a widget moves them in place on a slider move.
Call :func:`set_theme` once for the kit's look (seaborn whitegrid, colour-blind-safe palette).
"""
from .base import artists
from .curves import AccuracyCurves, accuracy_curve, schedule_curve, sensitivity_curves
from .groups import group_spans
from .layers import apoz_bars, apoz_maps, batchnorm_gammas, gamma_distribution, layer_bars, layer_table, sparsity_bars
from .signals import signals
from .theme import PALETTE, set_theme, theme
from .weights import MaskImage, WeightHistogram, kernel_grid, mask_heatmap, network_graph, weight_histogram

__all__ = [
    "AccuracyCurves", "MaskImage", "PALETTE", "WeightHistogram", "accuracy_curve", "apoz_bars", "apoz_maps", "artists",
    "batchnorm_gammas", "gamma_distribution", "group_spans", "kernel_grid", "layer_bars", "layer_table",
    "mask_heatmap",
    "network_graph",
    "schedule_curve", "sensitivity_curves", "set_theme", "signals", "sparsity_bars", "theme", "weight_histogram",
]
