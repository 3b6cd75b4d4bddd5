"""What a 1-D task looks like: a few signals of each class, one row per class, on one Axes."""
from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from ..data import Data, as_tensors
from .base import axes, to_numpy
from .theme import series_style


def signals(data: Data, *, per_class: int = 3, ax: Axes | None = None, title: str | None = None) -> Axes:
    """The first ``per_class`` signals of each class, drawn as curves, one row per class (class 0 at the top).

    One Axes rather than a grid of small ones, so the rows share one scale and the classes can be compared by
    eye (MNIST-1D's digits differ in shape, not in amplitude). Rows are 0.7 times the median peak-to-peak
    range of the drawn signals apart: noise spikes reach into the next row, the shapes get room to show;
    the y ticks name the classes.

    Args:
        data: 1-D signals with integer labels: a Dataset, DataLoader or (x, y) pair, x shaped [N, L] or
            [N, 1, L] (``pruneviz.data.mnist1d()``'s splits).
        per_class: how many signals of each class to draw (fewer if a class has fewer).
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive int (signals drawn per class), got {per_class!r}")
    x, y = as_tensors(data)
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"signals draws 1-D signals shaped [N, L] or [N, 1, L], got inputs of shape "
                         f"{tuple(x.shape)}; for images use plt.imshow")
    x, y = to_numpy(x), to_numpy(y)
    classes = np.unique(y)
    chosen = {c: x[y == c][:per_class] for c in classes}
    spacing = 0.7 * float(np.median(np.concatenate([np.ptp(rows, axis=1) for rows in chosen.values()]))) or 1.0
    ax = axes(ax)
    positions = np.arange(x.shape[1])
    for row, (c, rows) in enumerate(chosen.items()):
        offset = -row * spacing  # class 0 on top, as a reader counts
        style = series_style(row)  # the kit's series colours; from the ninth class on, another line style too
        for signal in rows:
            ax.plot(positions, offset + signal - signal.mean(), color=style["color"], linestyle=style["linestyle"],
                    linewidth=1.2, alpha=0.85)
    ax.set_yticks([-row * spacing for row in range(len(classes))], [str(int(c)) for c in classes])
    ax.set_ylabel("class (signals shifted apart)")
    ax.set_xlabel("position in the signal")
    ax.set_xlim(positions[0], positions[-1])
    ax.set_title(title if title is not None else f"{per_class} signals per class")
    return ax
