"""A coupled channel group as one unit: which layers it spans (writes, reads) and how much of it is kept."""
from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from torch import nn

from .base import axes
from .theme import DENSE, PALETTE

_ROLES = {"producer": ("s", "writes its channels"), "depthwise": ("D", "depthwise: reads and writes them"),
          "reader": ("o", "reads them")}


def group_spans(source, *, coupled_only: bool = False, title: str | None = None, ax: Axes | None = None) -> Axes:
    """One row per channel group, one column per layer: a marker where the group's channels are written (square),
    read and written by a depthwise conv (diamond) or read (circle). ``source``: a Pruner at granularity
    "group" (rows labelled with the channels it keeps, e.g. "conv1 8/16") or a model (its groups that can be
    pruned). ``coupled_only``: only groups of more than one layer."""
    from ..coupling import coupled_groups
    from ..graph import prunable_layers

    if isinstance(source, nn.Module):
        model, groups, keeps = source, [g for g in coupled_groups(source) if not g.blockers], {}
    elif getattr(source, "_plan", None) is not None:
        model, groups, keeps = source.model, list(source._plan.groups.values()), source.group_masks()
    else:
        raise ValueError(f"group_spans takes a model or a Pruner at granularity 'group', got "
                         f"{type(source).__name__}{' at ' + repr(source.granularity.name) if hasattr(source, 'granularity') else ''}")
    if coupled_only:
        groups = [g for g in groups if g.coupled]
    ax = axes(ax)
    layers = [name for name in prunable_layers(model)
              if any(name in g.producers or name in g.consumers for g in groups)]
    column = {name: i for i, name in enumerate(layers)}
    for role, (marker, label) in _ROLES.items():
        xs, ys = [], []
        for row, group in enumerate(groups):
            if role == "producer":
                names = [p for p in group.producers if p not in group.depthwise]
            elif role == "depthwise":
                names = group.depthwise
            else:
                names = list(group.consumers)
            xs += [column[n] for n in names]
            ys += [row] * len(names)
        filled = role != "reader"
        ax.scatter(xs, ys, marker=marker, s=36, label=label, zorder=3,
                   facecolors=PALETTE[0] if filled else "none", edgecolors=PALETTE[0] if filled else DENSE)
    for row, group in enumerate(groups):  # the unit: a line through every layer it spans
        span = [column[n] for n in group.producers + list(group.consumers)]
        ax.plot([min(span), max(span)], [row, row], color=DENSE, linewidth=0.8, zorder=1)
    labels = [f"{g.name} {int(keeps[g.name].sum())}/{g.size}" if g.name in keeps else f"{g.name} ({g.size})"
              for g in groups]
    ax.set_yticks(np.arange(len(groups)), labels)
    ax.set_xticks(np.arange(len(layers)), layers, rotation=60, ha="right", fontsize="small")
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.set_xlabel("layer")
    ax.set_ylabel("channel group (kept / channels)" if keeps else "channel group (channels)")
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title)
    return ax
