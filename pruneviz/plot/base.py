"""What every plot function shares: the Axes to draw on, the inputs they accept, the handles they keep."""
from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from torch import nn

# Axes -> the object holding its artists, so a widget updates them in place instead of drawing again.
_UPDATERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

WeightsLike = torch.Tensor | np.ndarray | nn.Module | Mapping[str, torch.Tensor] | Iterable[torch.Tensor]


def axes(ax: Axes | None) -> Axes:
    """The given Axes, or pyplot's current one (seaborn's convention)."""
    return plt.gca() if ax is None else ax


def register(ax: Axes, updater: object) -> None:
    _UPDATERS[ax] = updater


def artists(ax: Axes):
    """The updater a plot function left on ``ax`` (e.g. a :class:`~pruneviz.plot.WeightHistogram`).

    >>> ax = weight_histogram(layer.weight)
    >>> artists(ax).set_kept(mask)     # moves the bars in place; then fig.canvas.draw_idle()
    """
    try:
        return _UPDATERS[ax]
    except KeyError:
        raise ValueError("this Axes holds no pruneviz plot; draw one on it first (e.g. weight_histogram(..., ax=ax))"
                         ) from None


def to_numpy(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(tensor, torch.Tensor):
        return tensor.detach().to("cpu", torch.float64 if tensor.is_floating_point() else tensor.dtype).numpy()
    return np.asarray(tensor)


def weight_tensors(weights: WeightsLike) -> list[torch.Tensor | np.ndarray]:
    """A list of weight tensors from one tensor, a model (its Linear and Conv weights), a dict or a list."""
    from ..graph import prunable_layers

    if isinstance(weights, (torch.Tensor, np.ndarray)):
        return [weights]
    if isinstance(weights, nn.Module):
        return [m.weight for m in prunable_layers(weights).values()]
    if isinstance(weights, Mapping):
        return list(weights.values())
    if isinstance(weights, Iterable):
        return list(weights)
    raise TypeError(f"weights must be a tensor, a model, a dict or a list of tensors, got {type(weights).__name__}")


def flat(weights: WeightsLike) -> np.ndarray:
    """Every value of ``weights`` in one flat float array."""
    parts = [to_numpy(t).astype(np.float64, copy=False).ravel() for t in weight_tensors(weights)]
    if not parts:
        raise ValueError("no weights to plot")
    return np.concatenate(parts)


def percent_axis(ax: Axes, which: str = "x") -> None:
    """Ticks as percentages for an axis whose data are already in percent."""
    from matplotlib.ticker import PercentFormatter

    (ax.xaxis if which == "x" else ax.yaxis).set_major_formatter(PercentFormatter(100, decimals=0))
