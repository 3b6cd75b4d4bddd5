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


def threshold_edges(bound: float, bins: int, threshold: float | None = None) -> np.ndarray:
    """About ``bins`` equal bins over [-bound, bound]; with ``threshold``, +/- threshold are bin edges, so the
    pruned band shows as empty bins instead of hiding in bins that straddle it. The width becomes
    threshold / k (k whole, the nearest to the plain width); a threshold far narrower than a plain bin would need
    more than three times the bins, and then the plain bins stay."""
    plain = np.linspace(-bound, bound, bins + 1)
    if not threshold or threshold <= 0 or threshold >= bound:
        return plain
    k = max(1, round(threshold * bins / (2 * bound)))
    width = threshold / k
    half = int(np.ceil(bound / width - 1e-9))
    if 2 * half > 3 * bins:
        return plain
    return np.arange(-half, half + 1) * width


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

    def set_dense(self, weights: WeightsLike, *, align: float | None = None,
                  span: float | None = None) -> WeightHistogram:
        """New dense weights (another layer): new bins, symmetric around 0, and new limits. ``align``: a
        magnitude threshold that should fall on bin edges (see :func:`threshold_edges`). ``span``: the bins
        cover the ``span`` quantile of |w| (e.g. 0.995) instead of the largest |w|, so a few far weights do not
        leave most of the panel empty; the weights beyond count in the two end bins (``self.beyond`` of them,
        said in the legend)."""
        values = flat(weights)
        self._dense = values
        if span is not None and not 0 < span <= 1:
            raise ValueError(f"span is a quantile of |w| in (0, 1], got {span!r}")
        magnitude = np.abs(values)
        bound = float(magnitude.max()) if values.size else 1.0
        if span is not None and values.size:
            bound = float(np.quantile(magnitude, span)) or bound
        bound = bound if bound > 0 else 1.0
        self.edges = threshold_edges(bound, self.bins, align)
        self._clip = (float(self.edges[0]), float(self.edges[-1]))
        self.beyond = int(((values < self._clip[0]) | (values > self._clip[1])).sum())
        self._bins = self._bin_of(self._clipped(values))
        self.dense_counts = np.bincount(self._bins, minlength=len(self.edges) - 1)
        self._kept = self.dense_counts.copy()
        self.full_counts = 0  # kept counts made from a whole mask (set_kept without ``changed``)
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
        self._fit_thresholds(top)
        return self

    def _fit_thresholds(self, top: int) -> None:
        """End the threshold lines at the tallest bar: the headroom above it is the legend's, and a line
        through the legend hides its entries (the lines span axes fractions in y, so compute that fraction)."""
        low, high = self.ax.get_ylim()
        if self.log:
            fraction = (np.log(top) - np.log(low)) / (np.log(high) - np.log(low))
        else:
            fraction = (top - low) / (high - low)
        for line in self.thresholds:
            line.set_ydata([0.0, float(fraction)])

    def _bin_of(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value, as ``np.histogram(values, self.edges)`` counts it (a bin holds its left edge,
        the last bin its right edge too): found once per layer, so a move only counts the kept weights' bins."""
        bins = np.searchsorted(self.edges, values, side="right") - 1
        bins[values == self.edges[-1]] = len(self.edges) - 2
        return bins.astype(np.int32 if len(self.edges) < 2**31 else np.int64)

    def set_kept(self, mask: WeightsLike | None = None, threshold: float | None = None, *,
                 changed: torch.Tensor | np.ndarray | None = None) -> WeightHistogram:
        """Which dense weights are kept (bool, same layout as the dense weights; None: all), and the
        magnitude threshold to mark (None hides it). ``changed``: the flat indices of the weights whose mask
        flipped since the last ``set_kept`` (a pruner's ``changed``): only they move between bins."""
        n = len(self.edges) - 1
        if changed is not None and mask is not None:
            index = to_numpy(changed).astype(np.int64, copy=False).ravel()
            if index.size:
                now = to_numpy(mask.reshape(-1)[changed] if isinstance(mask, torch.Tensor)
                               else np.asarray(mask).reshape(-1)[index]).astype(bool)
                step = np.where(now, 1, -1)
                self._kept = self._kept + np.bincount(self._bins[index], weights=step, minlength=n).astype(np.int64)
        else:
            keep = None if mask is None else flat(mask).astype(bool)
            self._kept = (self.dense_counts.copy() if keep is None
                          else np.bincount(self._bins[keep], minlength=n))
            self.full_counts += 1
        self.after.set_data(self._kept, self.edges)
        for line, x in zip(self.thresholds, (-threshold if threshold else 0.0, threshold or 0.0)):
            line.set_xdata([x, x])
            line.set_visible(threshold is not None)
        return self

    def _clipped(self, values: np.ndarray) -> np.ndarray:
        """Values beyond the bins moved into the end bins (a span narrower than the largest |w|)."""
        low, high = self._clip
        inner = np.nextafter(high, low), np.nextafter(low, high)
        return np.clip(values, inner[1], inner[0])

    @property
    def kept_counts(self) -> np.ndarray:
        return np.asarray(self.after.get_data().values)


def weight_histogram(weights: WeightsLike, pruned: WeightsLike | None = None, *, mask: WeightsLike | None = None,
                     threshold: float | None = None, bins: int = 60, log: bool = False, span: float | None = None,
                     title: str | None = None, ax: Axes | None = None) -> Axes:
    """Histogram of a layer's (or a whole model's) weights, before and after pruning.

    Args:
        weights: the dense weights: a tensor, a model (all its Linear and Conv weights), a dict or list of tensors.
        pruned: the same weights after pruning; its nonzero entries are the kept ones. Or give ``mask`` instead
            (bool, True = kept, same layout as ``weights``).
        threshold: a magnitude threshold to mark at +/- threshold; the bins are aligned to it, so everything
            pruned between -threshold and +threshold leaves empty bins.
        log: count axis in log scale, so the few large weights stay visible.
        span: the bins cover this quantile of |w| (e.g. 0.995), the few weights beyond counted in the end bins
            and said in the legend: the panel is spent on where the weights are, not on a long empty tail.
    """
    ax = axes(ax)
    hist = WeightHistogram(ax, bins=bins, log=log).set_dense(weights, align=threshold, span=span)
    if hist.beyond:
        handles, labels = ax.get_legend_handles_labels()
        legend = ax.get_legend()
        from matplotlib.patches import Patch

        extra = Patch(color="none", label=f"{hist.beyond} beyond ±{hist.edges[-1]:.3g} (in the end bins)")
        ax.legend(handles=[*legend.legend_handles, extra], loc="upper right", fontsize="small", frameon=True,
                  framealpha=0.9)
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
                max_in: int | None = None, blocks: int | None = None) -> np.ndarray:
    """A weight (or mask) laid out as a 2-D image: a linear weight as it is ([out, in]); a conv weight as a
    grid of kh x kw kernels, one row of kernels per output channel, one column per input channel, with a NaN
    gap between kernels. So vectors (kernel rows), kernels and channels show as patterns.

    ``blocks=m`` lays the input dimension along x instead, cut into blocks of ``m`` consecutive input channels
    with a NaN gap between blocks: one row per (output channel, kernel position), the kernel positions of one
    output channel together. That is where an N:M pattern lives (N kept in every block of M along the input),
    and in the kernel grid those M weights sit in M different kernels, far apart."""
    array = to_numpy(tensor).astype(np.float64)
    if array.ndim < 2:
        raise ValueError(f"a weight to draw needs 2 or more dims ([out, in, ...]), got shape {array.shape}")
    array = array[:max_out, :max_in]
    if blocks is not None:
        return _block_grid(array, blocks)
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


def _block_grid(array: np.ndarray, m: int) -> np.ndarray:
    """``kernel_grid(..., blocks=m)``: rows (output, position), columns input channels in blocks of ``m``."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"blocks must be a whole number >= 1 (the M of N:M), got {m!r}")
    out, cin = array.shape[:2]
    if cin < m:
        raise ValueError(f"blocks={m} needs at least {m} input channels, the weight shown has {cin}")
    n_blocks = cin // m  # a ragged last block is left out: it is no block of the pattern
    positions = array.reshape(out, cin, -1)[:, :n_blocks * m].transpose(0, 2, 1)  # [out, positions, in]
    n_pos = positions.shape[1]
    padded = np.full((out, n_pos, n_blocks, m + 1), np.nan)
    padded[..., :m] = positions.reshape(out, n_pos, n_blocks, m)
    rows = padded.reshape(out, n_pos, n_blocks * (m + 1))[:, :, :-1]
    if n_pos == 1:  # a linear weight: one row per output
        return rows[:, 0, :]
    gapped = np.full((out, n_pos + 1, rows.shape[2]), np.nan)  # a gap row between output channels
    gapped[:, :n_pos] = rows
    return gapped.reshape(out * (n_pos + 1), rows.shape[2])[:-1]


def nm_blocks(granularity, shape: tuple[int, ...] | None = None) -> int | None:
    """M for an N:M granularity (its masks are drawn in blocks of M: ``kernel_grid(..., blocks=M)``), else None;
    also None for a weight ``shape`` the pattern does not apply to (inputs not a multiple of M: left dense)."""
    from ..granularity import NMGranularity, get_granularity

    if granularity is None:
        return None
    gran = get_granularity(granularity)
    if not isinstance(gran, NMGranularity):
        return None
    if shape is not None and (len(shape) < 2 or shape[1] % gran.m):
        return None
    return gran.m


def mask_pattern(mask: torch.Tensor | np.ndarray, m: int | None) -> str:
    """What an N:M-style mask holds, read from the mask itself: "2:4" when every block of ``m`` consecutive
    inputs keeps the same N, "1 or 2 of every 4" when blocks differ (a balanced ratio between two patterns);
    "" for ``m=None``. A label says what is drawn, not what the granularity was called."""
    if m is None:
        return ""
    keep = to_numpy(mask).astype(bool)
    cin = keep.shape[1]
    if cin < m:
        return ""
    blocks = np.moveaxis(keep.reshape(*keep.shape[:2], -1)[:, :cin // m * m], 1, -1).reshape(-1, m)
    counts = np.unique(blocks.sum(axis=1))
    if counts.size == 1:
        return f"{counts[0]}:{m}"
    return f"{' or '.join(str(c) for c in counts)} of every {m}"


MASK_CMAP = ListedColormap([MUTED, PRUNED], name="pruneviz_mask").with_extremes(bad="white")
# pruned (0) light grey; kept from a pale to the full blue by |w|, so even a tiny kept weight differs from a pruned one
MAGNITUDE_CMAP = LinearSegmentedColormap.from_list(
    "pruneviz_magnitude", [(0.0, MUTED), (0.019, MUTED), (0.02, (0.75, 0.85, 0.95)), (1.0, PRUNED)]
).with_extremes(bad="white")


class MaskImage:
    """The artist of a mask heatmap: one pixel per weight, kept (dark) or pruned (light)."""

    def __init__(self, ax: Axes, *, show: str = "mask", max_out: int | None = 64, max_in: int | None = 64,
                 blocks: int | None = None):
        if show not in ("mask", "magnitude"):
            raise ValueError(f"show must be 'mask' or 'magnitude', got {show!r}")
        self.ax, self.show, self.max_out, self.max_in, self.blocks = ax, show, max_out, max_in, blocks
        self.image = ax.imshow(np.zeros((1, 1)), cmap=MASK_CMAP if show == "mask" else MAGNITUDE_CMAP,
                               vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
        ax.grid(False)
        ax.set_xticks([])
        ax.set_yticks([])
        self._weight: np.ndarray | None = None
        self.shape: tuple[int, ...] | None = None
        self.cropped = False
        register(ax, self)

    def _crops(self, shape: tuple[int, ...]) -> bool:
        """Whether a weight of ``shape`` shows only its first max_out x max_in channels."""
        return (self.max_out is not None and shape[0] > self.max_out) or \
            (self.max_in is not None and len(shape) > 1 and shape[1] > self.max_in)

    def set_weight(self, weight: torch.Tensor | np.ndarray) -> MaskImage:
        """The layer's dense weight: its shape sets the layout, its magnitudes the shading (show='magnitude')."""
        self.shape = tuple(weight.shape)
        if len(self.shape) < 2:
            raise ValueError(f"a weight to draw needs 2 or more dims ([out, in, ...]), got shape {self.shape}")
        self.cropped = self._crops(self.shape)
        if self.show == "magnitude":  # shading by |w| relative to the layer's largest
            array = to_numpy(weight)
            magnitude = np.abs(array)
            top = magnitude.max() if magnitude.size and magnitude.max() > 0 else 1.0
            self._weight = (0.02 + 0.98 * magnitude / top)[:self.max_out, :self.max_in]
        else:
            self._weight = np.empty(0)
        conv = len(self.shape) > 2
        if self.blocks is not None:
            self.ax.set_xlabel(f"input channel, in blocks of {self.blocks}")
            self.ax.set_ylabel("output channel x kernel position" if conv else "output neuron (row)")
        else:
            self.ax.set_xlabel("input channel (one kernel per cell)" if conv else "input (column)")
            self.ax.set_ylabel("output channel" if conv else "output neuron (row)")
        self.ax.set_aspect("equal" if conv else "auto")
        return self

    def set_mask(self, mask: torch.Tensor | np.ndarray | None = None) -> MaskImage:
        """Which weights are kept (bool, shaped like the weight; None: all)."""
        if self._weight is None:
            raise ValueError("call set_weight(weight) before set_mask(mask)")
        if mask is not None and tuple(mask.shape) != self.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match the weight's {self.shape}")
        # only the region drawn is read: a move costs the crop, not the layer
        shown = (self.max_out if self.max_out is not None else self.shape[0],
                 self.max_in if self.max_in is not None else self.shape[1])
        if mask is None:
            keep = np.ones((min(shown[0], self.shape[0]), min(shown[1], self.shape[1]), *self.shape[2:]), bool)
        else:
            keep = to_numpy(mask[:shown[0], :shown[1]]).astype(bool)
        values = keep.astype(np.float64) if self.show == "mask" else np.where(keep, self._weight, 0.0)
        data = np.ma.masked_invalid(kernel_grid(values, blocks=self.blocks))
        old = self.image.get_array()
        self.image.set_data(data)
        if old is None or old.shape != data.shape:
            rows, cols = data.shape
            self.image.set_extent((-0.5, cols - 0.5, rows - 0.5, -0.5))
            self.ax.set_xlim(-0.5, cols - 0.5)
            self.ax.set_ylim(rows - 0.5, -0.5)
        return self


def mask_heatmap(mask: torch.Tensor | np.ndarray | None = None, *, weight: torch.Tensor | np.ndarray | None = None,
                 show: str = "mask", max_out: int | None = 64, max_in: int | None = 64, blocks: int | None = None,
                 title: str | None = None, ax: Axes | None = None) -> Axes:
    """A layer's mask as an image: kept weights dark, pruned light.

    A linear weight is drawn as it is (rows = neurons); a conv weight as a grid of its kh x kw kernels (rows =
    output channels, columns = input channels), so channel, kernel, vector and N:M patterns are visible.
    ``show="magnitude"`` shades kept weights by |w| (needs ``weight``). Layers larger than
    ``max_out`` x ``max_in`` channels show their first channels. ``blocks=m`` draws the input dimension along x
    in blocks of ``m`` (see :func:`kernel_grid`), where an N:M mask shows its N kept of every M.
    """
    if mask is None and weight is None:
        raise ValueError("give a mask, a weight, or both")
    if show == "magnitude" and weight is None:
        raise ValueError("show='magnitude' needs the weight")
    ax = axes(ax)
    image = MaskImage(ax, show=show, max_out=max_out, max_in=max_in, blocks=blocks)
    image.set_weight(weight if weight is not None else np.ones(to_numpy(mask).shape))
    image.set_mask(mask)
    if title:
        ax.set_title(title)
    return ax


def _kept(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    array = to_numpy(weight)
    return array.astype(bool) if array.dtype == bool else array != 0


def network_graph(weights, *, title: str | None = None, ax: Axes | None = None) -> Axes:
    """A small fully connected network as a graph: a column of neurons per layer, a line per kept weight.

    The lecture's picture of what pruning removes: pruning *synapses* (weights) deletes lines; pruning *neurons*
    (whole rows of a weight: channels) deletes a neuron with every line into it, and the lines out of it carry
    nothing any more. Args: ``weights``, the weights or bool masks of consecutive Linear layers ([out, in] each,
    e.g. ``list(pruner.masks.values())``); an entry is kept when nonzero. A neuron whose incoming weights are all
    pruned is drawn hollow; pruned weights are faint dotted lines.
    """
    from matplotlib.collections import LineCollection

    kept = [_kept(w) for w in (weights.values() if isinstance(weights, dict) else weights)]
    if not kept or any(k.ndim != 2 for k in kept):
        raise ValueError("network_graph takes a list of 2-D weights or masks [out, in], one per Linear layer; got "
                         f"shapes {[k.shape for k in kept]}")
    for i, (a, b) in enumerate(zip(kept, kept[1:])):
        if b.shape[1] != a.shape[0]:
            raise ValueError(f"layer {i + 1} takes {b.shape[1]} inputs but layer {i} has {a.shape[0]} outputs")
    ax = axes(ax)
    sizes = [kept[0].shape[1]] + [k.shape[0] for k in kept]
    ys = [np.arange(n) - (n - 1) / 2 for n in sizes]
    alive = [np.ones(sizes[0], dtype=bool)]
    for k in kept:
        alive.append((k & alive[-1][None, :]).any(axis=1))
    on, off = [], []
    for layer, k in enumerate(kept):
        for j, i in np.ndindex(*k.shape):
            segment = [(layer, ys[layer][i]), (layer + 1, ys[layer + 1][j])]
            (on if k[j, i] and alive[layer][i] else off).append(segment)
    artists_ = {
        "pruned": ax.add_collection(LineCollection(off, colors=[DENSE], linewidths=0.6, linestyles=":",
                                                   alpha=0.6, label="pruned weight" if off else "_none")),
        "kept": ax.add_collection(LineCollection(on, colors=[PRUNED], linewidths=1.1, alpha=0.8,
                                                 label="kept weight")),
    }
    x = np.concatenate([np.full(n, layer) for layer, n in enumerate(sizes)])
    y, live = np.concatenate(ys), np.concatenate(alive)
    artists_["neurons"] = ax.scatter(x[live], y[live], s=150, color=PRUNED, edgecolor="white", zorder=3,
                                     label="neuron")
    if (~live).any():
        artists_["removed"] = ax.scatter(x[~live], y[~live], s=150, facecolor="white", edgecolor=ACCENT,
                                         linewidth=1.6, zorder=3, label="removed neuron")
    ax.set_xlim(-0.3, len(sizes) - 0.7)
    ax.set_ylim(-max(sizes) / 2 - 0.8, max(sizes) / 2 + 0.3)
    ax.set_axis_off()
    ax.legend(loc="lower center", ncol=2, fontsize="x-small", frameon=False, bbox_to_anchor=(0.5, -0.02))
    if title:
        ax.set_title(title)
    register(ax, artists_)
    return ax
