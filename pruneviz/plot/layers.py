"""Per-channel and per-layer views: APoZ per channel, BatchNorm gamma, parameters / MACs / sparsity per layer."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from torch import nn

from ..graph import NORMS, prunable_layers
from ..metrics import layer_macs
from .base import axes, percent_axis, register, to_numpy
from .theme import ACCENT, DENSE, LINESTYLES, PALETTE, PRUNED

PRUNED_HATCH = "////"
# activation maps: zero white (the cell then holds its "0"), positive values from pale to the kit's blue
MAGNITUDE_CMAP_FOR_MAPS = LinearSegmentedColormap.from_list("pruneviz_activation", [(1, 1, 1), PRUNED]
                                                            ).with_extremes(bad="white")


def _per_layer(values, what: str) -> dict[str, np.ndarray]:
    if isinstance(values, Mapping):
        return {str(k): to_numpy(v).astype(float).ravel() for k, v in values.items()}
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return {"": to_numpy(values).astype(float).ravel()}
    raise TypeError(f"{what} must be a tensor (one value per channel) or a dict {{layer: tensor}}, "
                    f"got {type(values).__name__}")


def apoz_bars(apoz, *, pruned=None, title: str | None = None, ax: Axes | None = None) -> Axes:
    """Average percentage of zeros (APoZ) of each channel's ReLU output, one bar per channel.

    Args:
        apoz: per-channel APoZ in [0, 1]: a tensor for one layer or ``{layer: tensor}`` (layers side by side).
        pruned: the channels to show as pruned (bool, same structure); high APoZ = pruned first. Pruned bars are
            hatched outlines in their layer's colour, kept bars solid.
    """
    ax = axes(ax)
    layers = _per_layer(apoz, "apoz")
    marks = _per_layer(pruned, "pruned") if pruned is not None else {}
    start, bars, centers = 0, {}, []
    for i, (name, values) in enumerate(layers.items()):
        x = np.arange(start, start + len(values))
        color = PALETTE[i % len(PALETTE)]
        bars[name] = ax.bar(x, 100 * values, width=0.85, color=color)
        if name in marks:  # pruned: hatched outlines in the layer's colour, visible on white even at 100 %
            for bar, cut in zip(bars[name], marks[name].astype(bool)):
                if cut:
                    bar.set(facecolor="white", edgecolor=color, hatch=PRUNED_HATCH, linewidth=0.8)
        centers.append((x.mean() if len(x) else start, name))
        start += len(values) + 2
    ax.set_xlabel("channel" + (" (grouped by layer)" if len(layers) > 1 else ""))
    ax.set_ylabel("APoZ (% zero activations)")
    ax.set_ylim(0, 100)
    percent_axis(ax, "y")
    handles = [Patch(color=PALETTE[i % len(PALETTE)], label=name) for i, name in enumerate(layers) if name]
    if marks:
        handles.append(Patch(facecolor="white", edgecolor=DENSE, hatch=PRUNED_HATCH, label="pruned (hatched)"))
    if handles:
        ax.legend(handles=handles, fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0)  # beside the bars, not over them
    if title:
        ax.set_title(title)
    register(ax, bars)
    return ax


def apoz_maps(activations=None, *, title: str | None = None, ax: Axes | None = None) -> Axes:
    """The lecture's APoZ picture: every activation map of a small batch, images in rows and channels in
    columns, each zero written in its cell, and under each channel its APoZ as counted zeros (11/32 = 34 %).

    ``activations``: a ReLU output [N, C, H, W] (a few images, a few channels, small maps); default the lecture's
    example, 2 images x 3 channels of 4x4 (:func:`pruneviz.coursework.criteria.lecture_activations`).
    """
    if activations is None:
        from ..coursework.criteria import lecture_activations

        activations = lecture_activations()
    acts = to_numpy(activations).astype(float)
    if acts.ndim != 4:
        raise ValueError(f"apoz_maps draws activations [N, C, H, W], got shape {acts.shape}")
    n, c, h, w = acts.shape
    if n * h > 40 or c * w > 60:
        raise ValueError(f"apoz_maps writes every zero in its cell: give a few small maps (e.g. 2 images x 3 "
                         f"channels of 4x4), got shape {acts.shape}")
    ax = axes(ax)
    grid = np.full((n * (h + 1) - 1, c * (w + 1) - 1), np.nan)
    for i in range(n):
        for j in range(c):
            grid[i * (h + 1):i * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = acts[i, j]
    top = float(np.nanmax(grid)) or 1.0
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=MAGNITUDE_CMAP_FOR_MAPS, vmin=0.0, vmax=top,
                      interpolation="nearest")
    texts = []
    for (r, q), value in np.ndenumerate(grid):
        if value == 0.0:  # a zero activation: what APoZ counts
            texts.append(ax.text(q, r, "0", ha="center", va="center", fontsize=8, color=ACCENT, weight="bold"))
    zeros = (acts == 0).sum(axis=(0, 2, 3))
    total = n * h * w
    ax.set_xticks([j * (w + 1) + (w - 1) / 2 for j in range(c)],
                  [f"channel {j}\nAPoZ {z}/{total} = {100 * z / total:.0f} %" for j, z in enumerate(zeros)])
    ax.set_yticks([i * (h + 1) + (h - 1) / 2 for i in range(n)], [f"image {i + 1}" for i in range(n)])
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    register(ax, {"image": image, "zeros": texts, "apoz": zeros / total})
    return ax


def batchnorm_gammas(model: nn.Module) -> dict[str, torch.Tensor]:
    """|gamma| of every BatchNorm layer of a model: the scaling criterion's channel importance."""
    return {name: m.weight.detach().abs() for name, m in model.named_modules()
            if isinstance(m, NORMS) and m.weight is not None}


def gamma_distribution(source, *, threshold: float | None = None, bins: int = 40, log: bool = False,
                       title: str | None = None, ax: Axes | None = None) -> Axes:
    """Distribution of BatchNorm scale factors |gamma| (network slimming pushes many toward 0), one step outline
    per layer, each in its own colour and line style.

    Args:
        source: a model (all its BatchNorm layers) or ``{layer: gamma tensor}``.
        threshold: the |gamma| below which channels are pruned, marked as a line.
        log: a log count axis, for a slimmed network whose channels pile into the first bin (the other bins,
            a few channels each, stay readable beside it).
    """
    ax = axes(ax)
    gammas = batchnorm_gammas(source) if isinstance(source, nn.Module) else source
    layers = _per_layer({k: np.abs(to_numpy(v)) for k, v in gammas.items()}, "gammas")
    if not layers:
        raise ValueError("no BatchNorm layer to plot")
    top = max(float(v.max()) for v in layers.values() if v.size) or 1.0
    edges = np.linspace(0.0, top * 1.0001, bins + 1)
    handles = {}
    for i, (name, values) in enumerate(layers.items()):
        # outlines, not see-through fills: overlapping layers stay apart, and each has its own line style
        counts = np.histogram(values, edges)[0]
        handles[name] = ax.stairs(counts, edges, fill=False, linewidth=1.6, color=PALETTE[i % len(PALETTE)],
                                  linestyle=LINESTYLES[i % len(LINESTYLES)], label=name)
    if threshold is not None:
        handles["threshold"] = ax.axvline(threshold, color=ACCENT, linestyle="--", linewidth=1.2, label="threshold")
    ax.set_xlabel("|γ| (BatchNorm scale factor)")
    ax.set_ylabel("number of channels" + (" (log)" if log else ""))
    if log:
        ax.set_yscale("log")
        most = max(int(np.histogram(v, edges)[0].max()) for v in layers.values())
        ax.set_ylim(0.7, most * 2.0)
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # beside the axes, not over them: a histogram has bars wherever a legend inside could go
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title)
    register(ax, handles)
    return ax


def layer_table(model: nn.Module, example: torch.Tensor, dense: nn.Module | None = None) -> pd.DataFrame:
    """Per Linear/Conv layer: parameters (weight + bias), nonzero ones, MACs dense and sparse, sparsity.

    ``example`` is one input batch for counting MACs (torch.utils.flop_counter). Zeros in ``model`` are what
    pruning removed; ``dense`` (optional) is the unpruned model, for a physically smaller pruned model whose
    layers have fewer parameters than the original: then dense columns come from it. Each reduction is counted
    once: a compacted layer's MACs are counted on its own (smaller) shapes, and only zeros *inside* it reduce
    them further (``sparse_macs``). The frame's ``attrs["compacted"]`` says whether any layer is smaller than its
    dense counterpart (then the pruned model is physically smaller, not just masked).
    """
    rows = []
    pruned_macs = layer_macs(model, example)
    dense_layers = prunable_layers(dense) if dense is not None else None
    dense_macs = layer_macs(dense, example) if dense is not None else pruned_macs
    compacted = False
    for name, module in prunable_layers(model).items():
        params = [p for p in (module.weight, getattr(module, "bias", None)) if p is not None]
        nonzero = sum(int(torch.count_nonzero(p)) for p in params)
        ref = dense_layers[name] if dense_layers is not None and name in dense_layers else module
        total = sum(p.numel() for p in (ref.weight, getattr(ref, "bias", None)) if p is not None)
        compacted = compacted or module.weight.numel() < ref.weight.numel()
        nonzero_weights = float(torch.count_nonzero(module.weight))
        # the model's MACs already shrink with its shapes: only its own zeros reduce them further
        own_density = nonzero_weights / module.weight.numel() if module.weight.numel() else 0.0
        rows.append({"layer": name, "parameters": total, "nonzero_parameters": nonzero,
                     "macs": dense_macs.get(name, 0), "sparse_macs": round(pruned_macs.get(name, 0) * own_density),
                     "sparsity": 1.0 - nonzero_weights / ref.weight.numel()})
    table = pd.DataFrame(rows, columns=["layer", "parameters", "nonzero_parameters", "macs", "sparse_macs",
                                        "sparsity"])
    table.attrs["compacted"] = compacted
    return table


_MEASURES = {"parameters": ("parameters", "nonzero_parameters", "parameters"),
             "macs": ("macs", "sparse_macs", "multiply-accumulates per image")}


def layer_bars(table: pd.DataFrame, *, measure: str = "parameters", log: bool | None = None, title: str | None = None,
               ax: Axes | None = None) -> Axes:
    """Dense vs pruned bars per layer, for parameters or MACs (from :func:`layer_table`).

    ``log=None`` (default) picks a log axis when the largest bar is over 30 times the smallest nonzero one, so
    small layers (a first conv, a classifier) stay visible. The pruned bars are called "compacted" when the
    table comes from a physically smaller model (``table.attrs["compacted"]``), "nonzero" when from a masked one.
    """
    if measure not in _MEASURES:
        raise ValueError(f"unknown measure {measure!r}; valid choices: {', '.join(map(repr, _MEASURES))}")
    dense_col, pruned_col, unit = _MEASURES[measure]
    ax = axes(ax)
    x = np.arange(len(table))
    if log is None:
        values = np.concatenate([table[dense_col].to_numpy(float), table[pruned_col].to_numpy(float)])
        positive = values[values > 0]
        log = bool(positive.size) and positive.max() > 30 * positive.min()
    pruned_label = "pruned (compacted)" if table.attrs.get("compacted") else "pruned (nonzero)"
    bars = {"dense": ax.bar(x - 0.2, table[dense_col], width=0.4, color=DENSE, label="dense"),
            "pruned": ax.bar(x + 0.2, table[pruned_col], width=0.4, color=PRUNED, label=pruned_label)}
    ax.set_xticks(x, table["layer"], rotation=30, ha="right")
    ax.set_xlabel("layer")
    ax.set_ylabel(f"{unit}" + (" (log)" if log else ""))
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    register(ax, bars)
    return ax


def sparsity_bars(sparsities, *, title: str | None = None, ax: Axes | None = None) -> Axes:
    """Sparsity of each layer: a ``{layer: fraction}`` dict (e.g. ``pruner.layer_sparsity()``) or a
    :func:`layer_table`; or ``{label: {layer: fraction}}`` for several prunings side by side (e.g. two criteria
    under one global threshold), one bar per label in each layer's group."""
    if hasattr(sparsities, "columns"):
        sparsities = dict(zip(sparsities["layer"], sparsities["sparsity"]))
    grouped = bool(sparsities) and all(isinstance(v, Mapping) for v in sparsities.values())
    series = dict(sparsities) if grouped else {"": sparsities}
    ax = axes(ax)
    names = list(dict.fromkeys(layer for values in series.values() for layer in values))
    x = np.arange(len(names))
    width = 0.8 / len(series)
    bars = {}
    for i, (label, values) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        heights = [100 * float(values.get(n, np.nan)) for n in names]
        color = PALETTE[i % len(PALETTE)] if grouped else PRUNED
        bars[label or "sparsity"] = ax.bar(x + offset, heights, width=width * 0.95, color=color,
                                           label=label or None)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_xlabel("layer")
    ax.set_ylabel("sparsity (% of weights pruned)")
    ax.set_ylim(0, 100)
    percent_axis(ax, "y")
    if grouped:
        ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title)
    register(ax, bars if grouped else bars["sparsity"])
    return ax
