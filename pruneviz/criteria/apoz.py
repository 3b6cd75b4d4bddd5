"""APoZ, the Average Percentage of Zeros after the ReLU that follows a layer (Hu et al. 2016, network trimming).

For output channel (or neuron) c of a layer, over a calibration set of N samples:

    APoZ_c = (number of zero activations of channel c) / (N x spatial positions)

A channel that is zero most of the time passes little to the next layer: high APoZ = less important, so the
score is 1 - APoZ (a dead channel, always zero, scores 0 and goes first).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..activations import run
from ..data import Data
from ..errors import unknown_choice
from ..graph import LayerInfo, build_graph
from .base import Criterion, register


def _channels_first(output: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """[C, everything else]: conv channels are dim 1, a Linear's neurons are its last dim."""
    if isinstance(layer, nn.Linear):
        return output.reshape(-1, output.shape[-1]).T
    return output.transpose(0, 1).reshape(output.shape[1], -1)


def _sources(model: nn.Module, infos: dict[str, LayerInfo]) -> dict[str, tuple[str, bool]]:
    """Per layer, the module whose output to count zeros in, and whether that output is before the ReLU.

    Always the BatchNorm or layer the ReLU reads at the call site that follows the layer, where ``relu(x) == 0``
    exactly when ``x <= 0`` (ReLU6 too): a ReLU module may run more than once in a forward (torchvision's
    BasicBlock calls its one ``relu`` after bn1 and again after the add), and a hook on it would mix the zeros
    of every call, or crash when the calls differ in channels.
    """
    return {name: (info.activation_input or name, True) for name, info in infos.items()}


def apoz(model: nn.Module, data: Data, layers: Iterable[str] | None = None, limit: int | None = None
         ) -> dict[str, torch.Tensor]:
    """Per-channel APoZ (fraction in [0, 1]) of each layer followed by a ReLU, over ``data``.

    ``layers`` defaults to every Linear/Conv layer with a ReLU after it; ``limit`` caps the calibration samples.
    """
    infos = build_graph(model).layers
    with_relu = {name: info for name, info in infos.items() if info.activation is not None}
    if layers is not None:
        layers = list(layers)
        for name in layers:
            if name not in infos:
                raise unknown_choice("layer", name, infos)
            if name not in with_relu:
                raise ValueError(f"layer {name!r} has no ReLU right after it, so APoZ means nothing for it; "
                                 f"layers with one: {', '.join(with_relu) or 'none'}")
        with_relu = {name: with_relu[name] for name in layers}
    return _count_zeros(model, with_relu, data, limit)


def _count_zeros(model: nn.Module, infos: dict[str, LayerInfo], data: Data, limit: int | None
                 ) -> dict[str, torch.Tensor]:
    sources = _sources(model, infos)
    zeros = {name: None for name in infos}
    totals = dict.fromkeys(infos, 0)

    def hook_for(name: str, before_relu: bool):
        layer = infos[name].module

        def hook(module, inputs, output):
            flat = _channels_first(output.detach(), layer)
            hit = (flat <= 0) if before_relu else (flat == 0)
            count = hit.sum(dim=1, dtype=torch.float64)
            zeros[name] = count if zeros[name] is None else zeros[name] + count
            totals[name] += flat.shape[1]
        return hook

    by_source: dict[str, list] = {}
    for name, (source, before) in sources.items():
        by_source.setdefault(source, []).append(hook_for(name, before))

    def fan_out(fns):
        def hook(module, inputs, output):  # returns None: a hook's return value would replace the output
            for fn in fns:
                fn(module, inputs, output)
        return hook

    hooks = {source: fan_out(fns) for source, fns in by_source.items()}
    if run(model, data, hooks, limit) == 0:
        raise ValueError("the calibration data is empty")
    return {name: (zeros[name] / totals[name]).to(infos[name].module.weight.dtype) for name in infos}


def dead_units(model: nn.Module, data: Data, layers: Iterable[str] | None = None, limit: int | None = None
               ) -> dict[str, torch.Tensor]:
    """{layer: bool per channel}: the units whose ReLU output is zero on every sample of ``data`` (APoZ = 1).

    Removing them changes nothing on ``data``: their output is always zero. Whether they stay dead on other
    inputs is a question for held-out data."""
    return {name: value == 1.0 for name, value in apoz(model, data, layers, limit).items()}


def prune_dead(model: nn.Module, data: Data, limit: int | None = None):
    """A channel-granularity APoZ Pruner that has pruned exactly the dead units of every layer (see
    :func:`dead_units`, counted on ``data``); ``pruner.restore()`` gives the dense model back."""
    from ..pruner import Pruner

    dead = dead_units(model, data, limit=limit)
    pruner = Pruner(model, "apoz", "channel", data=data, layers=list(dead), limit=limit)
    ratios = {name: float(mask.sum()) / mask.numel() for name, mask in dead.items() if name in pruner.layers}
    return pruner.prune(ratios)


@dataclass
class APoZ(Criterion):
    """1 - APoZ per channel: channels that are zero after the ReLU most of the time go first."""

    name = "apoz"
    needs_data = True
    granularities = ("channel",)
    description = "1 - average percentage of zeros after the ReLU, per channel (Hu et al. 2016)"
    limit: int | None = 1024  # calibration samples at most

    def covers(self, info: LayerInfo) -> str | None:
        if info.activation is None:
            return "no ReLU right after it, so it has no zeros to count"
        return None

    def scores(self, model, layers, granularity, data=None):
        return {name: 1.0 - value for name, value in _count_zeros(model, layers, data, self.limit).items()}


register(APoZ)
