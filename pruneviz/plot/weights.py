"""Weights and masks: a histogram before/after pruning, and the mask drawn as an image.

Each plot keeps its artists in a small updater object (``artists(ax)``): a widget calls ``set_kept`` or
``set_mask`` on a slider move, which moves the bars or swaps the image data without drawing anything anew.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, ListedColormap
from matplotlib.lines import Line2D

from .base import WeightsLike, axes, flat, register, to_numpy, weight_tensors
from .theme import ACCENT, DENSE, MUTED, PRUNED


class WeightHistogram:
    """The artists of a weight histogram: dense counts, kept counts, and the threshold at +/- t."""

    def __init__(self, ax: Axes, *, bins: int = 60, log: bool = False):
        self.ax, self.bins, self.log = ax, bins, log
        self.edges = np.linspace(-1.0, 1.0, bins + 1)
        self.dense_counts = np.zeros(bins)
        zeros = np.zeros(bins)
        self.before = ax.stairs(zeros, self.edges, fill=True, color=DENSE, alpha=0.45, label="dense")
        self.after = ax.stairs(zeros, self.edges, fill=True, color=PRUNED, alpha=0.85, label="kept after pruning")
        self.thresholds = [ax.axvline(0.0, color=ACCENT, linestyle="--", linewidth=1.2, label="threshold"),
                           ax.axvline(0.0, color=ACCENT, linestyle="--", linewidth=1.2)]
        for line in self.thresholds:
            line.set_visible(False)
        ax.set_xlabel("weight value")
        ax.set_ylabel("number of weights" + (" (log)" if log else ""))
        # a proxy for the threshold: the line itself starts hidden, and a hidden handle draws no sample
        threshold_key = Line2D([], [], color=ACCENT, linestyle="--", linewidth=1.2, label="threshold")
        ax.legend(handles=[self.before, self.after, threshold_key], loc="upper right", fontsize="small",
                  frameon=True, framealpha=0.9)
        register(ax, self)

    def set_dense(self, weights: WeightsLike) -> WeightHistogram:
        """New dense weights (another layer): new bins, symmetric around 0, and new limits."""
        values = flat(weights)
        self._dense = values
        bound = float(np.abs(values).max()) if values.size else 1.0
        bound = bound if bound > 0 else 1.0
        self.edges = np.linspace(-bound, bound, self.bins + 1)
        self.dense_counts = np.histogram(values, self.edges)[0]
        base = 0.8 if self.log else 0.0  # log counts: bars start just below 1
        self.before.set_data(self.dense_counts, self.edges, base)
        self.after.set_data(self.dense_counts, self.edges, base)
        self.ax.set_xlim(-bound * 1.02, bound * 1.02)
        top = max(1, int(self.dense_counts.max()))
        # headroom above the tallest bar, so the legend sits over empty space rather than the bars
        if self.log:
            self.ax.set_ylim(0.8, top * 30.0)
            self.ax.set_yscale("log")
        else:
            self.ax.set_ylim(0, top * 1.45)
        return self

    def set_kept(self, mask: WeightsLike | None = None, threshold: float | None = None) -> WeightHistogram:
        """Which dense weights are kept (bool, same layout as the dense weights; None: all), and the
        magnitude threshold to mark (None hides it)."""
        kept = self._dense if mask is None else self._dense[flat(mask).astype(bool)]
        self.after.set_data(np.histogram(kept, self.edges)[0], self.edges)
        for line, x in zip(self.thresholds, (-threshold if threshold else 0.0, threshold or 0.0)):
            line.set_xdata([x, x])
            line.set_visible(threshold is not None)
        return self

    @property
    def kept_counts(self) -> np.ndarray:
        return np.asarray(self.after.get_data().values)


def weight_histogram(weights: WeightsLike, pruned: WeightsLike | None = None, *, mask: WeightsLike | None = None,
                     threshold: float | None = None, bins: int = 60, log: bool = False, title: str | None = None,
                     ax: Axes | None = None) -> Axes:
    """Histogram of a layer's (or a whole model's) weights, before and after pruning.

    Args:
        weights: the dense weights: a tensor, a model (all its Linear and Conv weights), a dict or list of tensors.
        pruned: the same weights after pruning; its nonzero entries are the kept ones. Or give ``mask`` instead
            (bool, True = kept, same layout as ``weights``).
        threshold: a magnitude threshold to mark at +/- threshold.
        log: count axis in log scale, so the few large weights stay visible.
    """
    ax = axes(ax)
    hist = WeightHistogram(ax, bins=bins, log=log).set_dense(weights)
    if pruned is not None and mask is not None:
        raise ValueError("give either pruned weights or a mask, not both")
    if pruned is not None:
        mask = [to_numpy(t) != 0 for t in weight_tensors(pruned)]
    hist.set_kept(mask, threshold)
    if mask is None:
        hist.after.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def kernel_grid(tensor: torch.Tensor | np.ndarray, max_out: int | None = None,
                max_in: int | None = None) -> np.ndarray:
    """A weight (or mask) laid out as a 2-D image: a linear weight as it is ([out, in]); a conv weight as a
    grid of kh x kw kernels, one row of kernels per output channel, one column per input channel, with a NaN
    gap between kernels. So N:M blocks (along the input) and vectors (kernel rows) show as patterns."""
    array = to_numpy(tensor).astype(np.float64)
    if array.ndim < 2:
        raise ValueError(f"a weight to draw needs 2 or more dims ([out, in, ...]), got shape {array.shape}")
    array = array[:max_out, :max_in]
    if array.ndim == 2:
        return array
    if array.ndim == 3:  # conv1d: kernels of one row
        array = array[:, :, None, :]
    elif array.ndim > 4:  # conv3d: depth slices side by side
        array = array.reshape(*array.shape[:3], -1)
    out, cin, kh, kw = array.shape
    padded = np.full((out, kh + 1, cin, kw + 1), np.nan)
    padded[:, :kh, :, :kw] = array.transpose(0, 2, 1, 3)
    return padded.reshape(out * (kh + 1), cin * (kw + 1))[:-1, :-1]


MASK_CMAP = ListedColormap([MUTED, PRUNED], name="pruneviz_mask").with_extremes(bad="white")
# pruned (0) light grey; kept from a pale to the full blue by |w|, so even a tiny kept weight differs from a pruned one
MAGNITUDE_CMAP = LinearSegmentedColormap.from_list(
    "pruneviz_magnitude", [(0.0, MUTED), (0.019, MUTED), (0.02, (0.75, 0.85, 0.95)), (1.0, PRUNED)]
).with_extremes(bad="white")


class MaskImage:
    """The artist of a mask heatmap: one pixel per weight, kept (dark) or pruned (light)."""

    def __init__(self, ax: Axes, *, show: str = "mask", max_out: int | None = 64, max_in: int | None = 64):
        if show not in ("mask", "magnitude"):
            raise ValueError(f"show must be 'mask' or 'magnitude', got {show!r}")
        self.ax, self.show, self.max_out, self.max_in = ax, show, max_out, max_in
        self.image = ax.imshow(np.zeros((1, 1)), cmap=MASK_CMAP if show == "mask" else MAGNITUDE_CMAP,
                               vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
        ax.grid(False)
        ax.set_xticks([])
        ax.set_yticks([])
        self._weight: np.ndarray | None = None
        self.shape: tuple[int, ...] | None = None
        register(ax, self)

    def set_weight(self, weight: torch.Tensor | np.ndarray) -> MaskImage:
        """The layer's dense weight: its shape sets the layout, its magnitudes the shading (show='magnitude')."""
        array = to_numpy(weight)
        self.shape = array.shape
        magnitude = np.abs(array)
        top = magnitude.max() if magnitude.size and magnitude.max() > 0 else 1.0
        self._weight = 0.02 + 0.98 * magnitude / top
        conv = array.ndim > 2
        self.ax.set_xlabel("input channel (one kernel per cell)" if conv else "input (column)")
        self.ax.set_ylabel("output channel" if conv else "output neuron (row)")
        self.ax.set_aspect("equal" if conv else "auto")
        return self

    def set_mask(self, mask: torch.Tensor | np.ndarray | None = None) -> MaskImage:
        """Which weights are kept (bool, shaped like the weight; None: all)."""
        if self._weight is None:
            raise ValueError("call set_weight(weight) before set_mask(mask)")
        keep = np.ones(self.shape, dtype=bool) if mask is None else to_numpy(mask).astype(bool)
        if keep.shape != self.shape:
            raise ValueError(f"mask shape {keep.shape} does not match the weight's {self.shape}")
        values = keep.astype(np.float64) if self.show == "mask" else np.where(keep, self._weight, 0.0)
        data = np.ma.masked_invalid(kernel_grid(values, self.max_out, self.max_in))
        self.cropped = data.shape != kernel_grid(values).shape
        old = self.image.get_array()
        self.image.set_data(data)
        if old is None or old.shape != data.shape:
            rows, cols = data.shape
            self.image.set_extent((-0.5, cols - 0.5, rows - 0.5, -0.5))
            self.ax.set_xlim(-0.5, cols - 0.5)
            self.ax.set_ylim(rows - 0.5, -0.5)
        return self


def mask_heatmap(mask: torch.Tensor | np.ndarray | None = None, *, weight: torch.Tensor | np.ndarray | None = None,
                 show: str = "mask", max_out: int | None = 64, max_in: int | None = 64, title: str | None = None,
                 ax: Axes | None = None) -> Axes:
    """A layer's mask as an image: kept weights dark, pruned light.

    A linear weight is drawn as it is (rows = neurons); a conv weight as a grid of its kh x kw kernels (rows =
    output channels, columns = input channels), so channel, kernel, vector and N:M patterns are visible.
    ``show="magnitude"`` shades kept weights by |w| (needs ``weight``). Layers larger than
    ``max_out`` x ``max_in`` channels show their first channels.
    """
    if mask is None and weight is None:
        raise ValueError("give a mask, a weight, or both")
    if show == "magnitude" and weight is None:
        raise ValueError("show='magnitude' needs the weight")
    ax = axes(ax)
    image = MaskImage(ax, show=show, max_out=max_out, max_in=max_in)
    image.set_weight(weight if weight is not None else np.ones(to_numpy(mask).shape))
    image.set_mask(mask)
    if title:
        ax.set_title(title)
    return ax
