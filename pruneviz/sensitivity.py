"""Sensitivity scan: how much accuracy each layer loses when it alone is pruned (the lecture's lab).

For every layer in scope and every ratio, the layer is pruned with all the others as the user holds them (dense,
or pruned already) and the model is evaluated. The result is a tidy table (pandas DataFrame: layer, sparsity, accuracy) that the plots read and
:mod:`pruneviz.ratios` turns into a per-layer ratio dict.

Why it is fast: pruning one layer changes nothing upstream of it, so the values that cross into the changed part
of the network are computed once per layer and only the part downstream of the layer runs for each ratio. The
cut is found on the model's torch.fx graph, so it is right for residual nets too: for a layer inside a residual
block the cached values include the skip connection's input, which the block still adds after the pruned layer.
A model fx cannot trace (data-dependent control flow) is scanned with full forward passes instead, which give the
same numbers, only slower. The cache holds those values for all of ``data``: scan on an evaluation subset when
the data set is large.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import torch
from torch import fx, nn
from tqdm.auto import tqdm

from .data import Data, batches
from .device import input_cast, model_device
from .errors import check_ratio
from .evaluation import accuracy, evaluate
from .criteria import Criterion
from .granularity import CHANNEL, Granularity
from .pruner import Pruner
from .snapshot import analysis

DEFAULT_SPARSITIES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
COLUMNS = ("layer", "sparsity", "accuracy")


def check_sparsities(sparsities: Iterable[float]) -> list[float]:
    """Sorted distinct ratios in [0, 1], at least one; 0 is the dense point every scan has anyway."""
    try:
        values = list(sparsities)
    except TypeError:
        raise ValueError(f"sparsities must be a sequence of numbers in [0, 1], got {sparsities!r}") from None
    if not values:
        raise ValueError("sparsities is empty; give at least one ratio in [0, 1], e.g. (0.1, 0.2, ..., 0.9)")
    return sorted({check_ratio(v, "each of sparsities") for v in values} - {0.0})


class _Downstream:
    """The part of a traced model that a change to some modules can reach, split from the part it cannot.

    ``capture`` runs the unchanged (upstream) part once and returns the values the changed part reads;
    ``run`` computes the model's output from them. Both are fx GraphModules built from the model's own graph,
    so they run the same operations as the model (and free intermediate values as its generated code does).
    """

    def __init__(self, traced: fx.GraphModule, changed_modules: set[str]):
        nodes = list(traced.graph.nodes)
        changed: set[fx.Node] = set()
        for node in nodes:  # nodes are in topological order: one pass marks everything downstream
            touches = node.op in ("call_module", "get_attr") and any(  # the module, a part of it, or a module
                _nested(node.target, m) or _nested(m, node.target) for m in changed_modules)  # fx keeps whole
            if touches or any(arg in changed for arg in node.all_input_nodes):
                changed.add(node)
        placeholder = next(n for n in nodes if n.op == "placeholder")
        upstream = [n for n in nodes if n not in changed and n is not placeholder]
        frontier = [n for n in nodes if n not in changed and any(user in changed for user in n.users)]
        self.capture_module = _subgraph(traced, [placeholder], upstream, frontier)
        self.run_module = _subgraph(traced, frontier, [n for n in nodes if n in changed], None)

    def capture(self, x: torch.Tensor) -> tuple:
        return self.capture_module(x)

    def run(self, cached: tuple) -> torch.Tensor:
        return self.run_module(*cached)


def _nested(inner: str, outer: str) -> bool:
    """Is module path ``inner`` the module ``outer`` or inside it?"""
    return inner == outer or inner.startswith(outer + ".")


def _subgraph(traced: fx.GraphModule, inputs: list[fx.Node], nodes: list[fx.Node],
              outputs: list[fx.Node] | None) -> fx.GraphModule:
    """A GraphModule computing ``nodes`` from ``inputs``; it returns ``outputs`` as a tuple, or (when None)
    what the copied output node returns."""
    graph = fx.Graph()
    env = {node: graph.placeholder(node.name) for node in inputs}
    for node in nodes:
        if node.op == "output" and outputs is not None:
            continue
        env[node] = graph.node_copy(node, lambda arg: env[arg])
    if outputs is not None:
        graph.output(tuple(env[node] for node in outputs))
    return fx.GraphModule(traced, graph)


def _trace(model: nn.Module) -> fx.GraphModule | None:
    try:
        traced = fx.symbolic_trace(model)
    except Exception:  # fx cannot trace every model: the scan then runs full forwards
        return None
    if sum(n.op == "placeholder" for n in traced.graph.nodes) != 1:
        return None
    return traced


def _changed_modules(pruner: Pruner, layer: str) -> set[str]:
    """The modules a prune of ``layer`` writes: its weight, and with channels its BatchNorm."""
    norm = pruner.graph.layers[layer].norm
    return {layer} | ({norm} if pruner.granularity is CHANNEL and norm else set())


@torch.no_grad()
def _cached_accuracies(model: nn.Module, pruner: Pruner, split: _Downstream, layer: str,
                       ratios: Sequence[float], data: Data, batch_size: int, step) -> list[float]:
    device, cast = model_device(model), input_cast(model)
    cache, targets = [], []
    for x, y in batches(data, batch_size, device):
        cache.append(split.capture(cast(x)))
        targets.append(y)
    targets = torch.cat(targets)
    accuracies = []
    for ratio in ratios:
        pruner.prune({layer: ratio})
        accuracies.append(accuracy(torch.cat([split.run(c) for c in cache]), targets))  # as evaluate() computes it
        step()
    return accuracies


def _naive_accuracies(model: nn.Module, pruner: Pruner, layer: str, ratios: Sequence[float], data: Data,
                      batch_size: int, step) -> list[float]:
    accuracies = []
    for ratio in ratios:
        pruner.prune({layer: ratio})
        accuracies.append(evaluate(model, data, batch_size))
        step()
    return accuracies


@analysis  # the scan prunes the model as the user holds it (pruned or not), then puts it back
def sensitivity_scan(model: nn.Module, data: Data, criterion: str | Criterion = "magnitude",
                     granularity: str | Granularity = "element",
                     sparsities: Iterable[float] = DEFAULT_SPARSITIES, layers: Iterable[str] | None = None,
                     data_for_criterion: Data | None = None, progress: bool = True, cached: bool = True,
                     batch_size: int = 1024) -> pd.DataFrame:
    """Accuracy on ``data`` with one layer at a time pruned to each ratio, every other layer dense.

    Args:
        criterion, granularity: as for :class:`Pruner` (any registered criterion, any granularity); layers the
            combination does not cover are left out, as the Pruner leaves them out.
        sparsities: ratios to scan (fractions of each layer's groups); a row at sparsity 0 (the dense accuracy)
            is always added for every layer.
        layers: layer names to scan (default: every layer in scope).
        data_for_criterion: calibration data for criteria that need it (default: ``data`` itself).
        cached: run only the part of the network after the pruned layer (same numbers, faster).

    Returns:
        DataFrame with columns layer, sparsity, accuracy (in [0, 1]), layers in model order, ratios ascending.
        The scan prunes the model as you hold it: on a pruned model, each layer's weights as they are now are
        what is pruned further, and the sparsity-0 rows are that model's accuracy. The model is left as it was,
        bit for bit (masks, your Pruners' dense copies and every module's train/eval mode included).
    """
    ratios = check_sparsities(sparsities)
    bar, rows = None, []
    model.eval()  # scores such as APoZ and every evaluation see the model as it is used (as_found puts modes back)
    try:
        pruner = Pruner(model, criterion, granularity, layers=layers,
                        data=data_for_criterion if data_for_criterion is not None else data)
        # granularity "group": one row per channel group (named by its first layer); a group spans several
        # layers, so it is scanned by full evaluations rather than from the cache of one layer's inputs
        units = pruner._units
        traced = _trace(model) if cached and units == list(pruner.layers) else None
        bar = tqdm(total=len(units) * len(ratios), desc="sensitivity scan", disable=not progress,
                   leave=False)
        dense = evaluate(model, data, batch_size)
        for layer in units:
            bar.set_postfix_str(layer)
            pruner.restore()  # the layer scanned before is as the user held it again before anything is cached
            if traced is not None:
                split = _Downstream(traced, _changed_modules(pruner, layer))
                accs = _cached_accuracies(model, pruner, split, layer, ratios, data, batch_size, bar.update)
            else:
                accs = _naive_accuracies(model, pruner, layer, ratios, data, batch_size, bar.update)
            rows.append((layer, 0.0, dense))
            rows.extend((layer, r, a) for r, a in zip(ratios, accs))
    finally:
        if bar is not None:
            bar.close()
    scan = pd.DataFrame(rows, columns=list(COLUMNS))
    scan.attrs.update(criterion=pruner.criterion.name, granularity=pruner.granularity.name, dense_accuracy=dense)
    return scan
