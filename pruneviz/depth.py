"""Depth pruning: remove whole residual blocks, ranked by how much the model misses each one.

A residual block computes ``relu(x + f(x))``; replaced by the identity it passes ``x`` on unchanged (``x`` is
already the output of a ReLU), so the rest of the network still fits. Only blocks whose skip connection is the
identity (no downsample conv) keep their input's shape, so only those are removable. A removed layer saves its
launch, its pass over memory and the framework's overhead, which a thinner layer still pays: at the same MACs,
depth pruning turns more of its saving into speed than width pruning does (notebook 09 measures both).

Width pruning of a residual net comes in two kinds here as well: only inside the blocks (the channels that go
alone) or by coupled groups (the channels a residual add ties, pruned together); :func:`inblock_vs_groups`
compares them. The comparisons that fine-tune repeat it over seeds and are read from shipped artefacts
(``artefacts.table``) in the notebook and its claims tests.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import pandas as pd
import torch
from torch import fx, nn

from .data import Data, as_tensors
from .errors import unknown_choice
from .evaluation import accuracy, predict
from .metrics import count_parameters, latency, layer_macs, macs
from .graph import passes_through
from .surgery import _ADDS, channel_prunable_layers, compact
from .snapshot import analysis
from .training import train

METRICS = ("accuracy", "output")


def _is_identity_residual(module: nn.Module) -> bool:
    """Does the module return ``x + f(x)`` (maybe through a ReLU) for its one input ``x``?"""
    if type(module).__module__.startswith("torch.nn"):
        return False  # torch's own containers and layers are not blocks with a skip
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception:  # a block fx cannot trace is not offered for removal
        return False
    inputs = [n for n in graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        return False
    node = next(n for n in graph.nodes if n.op == "output").args[0]
    while isinstance(node, fx.Node) and ((node.op != "call_module" and passes_through(node, None))
                                         or (node.op == "call_module" and isinstance(
                                             module.get_submodule(node.target), (nn.ReLU, nn.Identity)))):
        node = node.args[0]
    return (isinstance(node, fx.Node) and (node.target in _ADDS or node.target in ("add", "add_"))
            and inputs[0] in node.args)


def removable_blocks(model: nn.Module) -> list[str]:
    """Names of the residual blocks with an identity skip: replacing one by ``nn.Identity`` keeps every shape."""
    return [name for name, module in model.named_modules() if name and _is_identity_residual(module)]


def remove_blocks(model: nn.Module, names: str | Iterable[str]) -> nn.Module:
    """A copy of ``model`` with the named residual blocks replaced by ``nn.Identity``; ``model`` is unchanged."""
    names = [names] if isinstance(names, str) else list(names)
    valid = removable_blocks(model)
    for name in names:
        if name not in valid:
            known = dict(model.named_modules())
            why = ("it is not a residual block that keeps its input's shape (a block with a downsample, or no "
                   "skip connection)" if name in known else "there is no such module")
            raise ValueError(f"cannot remove block {name!r}: {why}; removable blocks: "
                             f"{', '.join(repr(v) for v in valid) or 'none'}")
    small = copy.deepcopy(model)
    for name in names:
        parent, _, child = name.rpartition(".")
        setattr(small.get_submodule(parent) if parent else small, child, nn.Identity())
    return small


@analysis
def block_importance(model: nn.Module, data: Data, blocks: Iterable[str] | None = None,
                     metric: str = "accuracy") -> pd.DataFrame:
    """How much the model misses each removable block, on calibration ``data``; least important first.

    Each block is skipped in turn (replaced by the identity). Columns: block, accuracy_drop (dense accuracy
    minus accuracy without the block), output_change (||logits - logits without it|| / ||logits||). ``metric``
    picks the column to rank by; the other breaks ties.
    """
    if metric not in METRICS:
        raise unknown_choice("metric", metric, METRICS)
    blocks = removable_blocks(model) if blocks is None else list(blocks)
    x, y = as_tensors(data)
    logits, _ = predict(model, (x, y))
    dense_acc = accuracy(logits, y)
    rows = []
    for block in blocks:
        skipped, _ = predict(remove_blocks(model, [block]), (x, y))
        acc = accuracy(skipped, y)
        change = float((skipped - logits).norm() / logits.norm())
        rows.append({"block": block, "accuracy_drop": dense_acc - acc, "output_change": change})
    table = pd.DataFrame(rows, columns=["block", "accuracy_drop", "output_change"])
    order = ["accuracy_drop", "output_change"] if metric == "accuracy" else ["output_change", "accuracy_drop"]
    return table.sort_values(order, kind="stable").reset_index(drop=True)


def _width_pruned(model: nn.Module, target_macs: int, example: torch.Tensor, criterion: str,
                  granularity: str = "channel") -> tuple[nn.Module, float]:
    """The channel-pruned, compacted model whose MACs come closest to ``target_macs`` (bisection on the ratio):
    by the layers whose channels go alone (``granularity`` "channel") or by coupled groups ("group")."""
    from .pruner import Pruner

    dense_macs = layer_macs(model, example)
    other = macs(model, example) - sum(dense_macs.values())

    def cost(small: nn.Module) -> int:
        # a Conv's or Linear's MACs are its weight count times the output positions, which compact keeps
        return other + sum(round(m * small.get_submodule(n).weight.numel() / model.get_submodule(n).weight.numel())
                           for n, m in dense_macs.items())

    pruner = (Pruner(model, criterion, "group") if granularity == "group"
              else Pruner(model, criterion, "channel", layers=channel_prunable_layers(model)))
    lo, hi, best = 0.0, 0.95, None
    for _ in range(8):  # its callers are analyses (as_found): the model is put back after
        ratio = (lo + hi) / 2
        small = compact(model, pruner.prune(ratio).masks)
        macs_now = cost(small)
        if best is None or abs(macs_now - target_macs) < abs(best[2] - target_macs):
            best = (small, ratio, macs_now)
        lo, hi = (ratio, hi) if macs_now > target_macs else (lo, ratio)
    return best[0], best[1]


@analysis
def depth_and_width_models(model: nn.Module, example: torch.Tensor, ranking: pd.DataFrame, blocks: int = 2,
                           criterion: str = "magnitude") -> list[tuple[str, str, nn.Module]]:
    """(method, what was removed, model) for the dense ``model``, its ``blocks`` least important blocks removed
    (by ``ranking``, a :func:`block_importance` table) and its channels pruned inside the blocks to about the
    same MACs (compacted). Not fine-tuned: what latency is measured on (it does not depend on the weights)."""
    if blocks > len(ranking):
        raise ValueError(f"cannot remove {blocks} blocks: the model has {len(ranking)} removable "
                         f"({', '.join(ranking.block)})")
    gone = list(ranking.block[:blocks])
    depth = remove_blocks(model, gone)
    width, ratio = _width_pruned(model, macs(depth, example), example, criterion)
    layers = channel_prunable_layers(model)
    return [("dense", "nothing", model),
            ("depth", ", ".join(gone), depth),
            ("width", f"{ratio:.0%} of the channels of {len(layers)} layers", width)]


@analysis
def depth_vs_width(model: nn.Module, train_data: Data, test_data: Data, blocks: int = 2, epochs: int = 2,
                   criterion: str = "magnitude", calibration: Data | None = None, batch_size: int = 64,
                   seed: int = 0, measure_latency: bool = True, return_models: bool = False,
                   ranking: pd.DataFrame | None = None
                   ) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, nn.Module]]:
    """Depth pruning vs width pruning of a residual ``model`` at about the same MACs, before and after fine-tuning.

    Depth: the ``blocks`` least important removable blocks (by :func:`block_importance` on ``calibration``,
    default the training data) go. Width: every channel-prunable layer loses the same fraction of channels by
    ``criterion``, the fraction chosen so the compacted model's MACs come closest to the depth-pruned one's.
    Both are fine-tuned for ``epochs`` (plain training: they are physically smaller models). ``model`` is left
    unchanged. One row per model: method, removed, parameters, macs, accuracy, accuracy_finetuned and, with
    ``measure_latency``, latency_ms (median forward time at ``batch_size`` after warm-up). With
    ``return_models``, also {method: fine-tuned model}, to measure or plot further. ``ranking``: a
    :func:`block_importance` table already computed on the calibration data (saves computing it again).
    """
    x_train, _ = as_tensors(train_data)
    example = x_train[:1]
    if ranking is None:
        ranking = block_importance(model, calibration if calibration is not None else train_data)
    models = depth_and_width_models(model, example, ranking, blocks, criterion)
    rows = []
    for method, removed, net in models:
        row = {"method": method, "removed": removed, "parameters": count_parameters(net),
               "macs": macs(net, example), "accuracy": _accuracy(net, test_data)}
        if method == "dense":
            row["accuracy_finetuned"] = row["accuracy"]
        else:
            train(net, train_data, epochs=epochs, seed=seed, progress=False)
            row["accuracy_finetuned"] = _accuracy(net, test_data)
        if measure_latency:
            row["latency_ms"] = latency(net, x_train[:batch_size])
        rows.append(row)
    table = pd.DataFrame(rows)
    return (table, {method: net for method, _, net in models}) if return_models else table


@analysis
def depth_vs_width_seeds(model: nn.Module, train_data: Data, test_data: Data, seeds: Sequence[int] = (0, 1, 2),
                         blocks: int = 2, epochs: int = 2, criterion: str = "magnitude",
                         calibration: Data | None = None) -> pd.DataFrame:
    """:func:`depth_vs_width` with its fine-tuning repeated over ``seeds`` (the batch order): one gap between
    two fine-tuned models is one draw, and only a gap larger than the spread over seeds says which is better.
    The pruned models are built once (ranking and channel choice are deterministic); each seed fine-tunes fresh
    copies. One row per (method, seed): method, seed, removed, parameters, macs, accuracy, accuracy_finetuned.
    Trains, so a notebook reads it through ``artefacts.table``."""
    seeds = _check_seeds(seeds)
    example = as_tensors(train_data)[0][:1]
    ranking = block_importance(model, calibration if calibration is not None else train_data)
    return _finetuned_over_seeds(depth_and_width_models(model, example, ranking, blocks, criterion), train_data,
                                 test_data, seeds, epochs, example)


@analysis
def inblock_and_group_models(model: nn.Module, example: torch.Tensor, ratio: float = 0.5,
                             criterion: str = "magnitude", same_macs: bool = True) -> list[tuple[str, str, nn.Module]]:
    """(method, what was removed, compacted model) for the dense ``model`` (MACs counted on ``example``, one
    input) and the ways of width-pruning a
    residual net at ``ratio``: "in-block", only the layers whose channels go alone
    (:func:`channel_prunable_layers`, the first conv of each block), and "groups", every coupled channel group
    (the convs a residual add ties, pruned together: ``Pruner(model, criterion, "group")``). With ``same_macs``
    also "groups, same MACs": groups at the ratio whose compacted model has about the in-block model's MACs (the
    fair comparison of accuracy: at one ratio groups remove far more)."""
    from .pruner import Pruner

    out = [("dense", "nothing", model)]
    for method, pruner in (("in-block", Pruner(model, criterion, "channel", layers=channel_prunable_layers(model))),
                           ("groups", Pruner(model, criterion, "group"))):
        try:
            out.append((method, f"{ratio:.0%} of the channels", compact(model, pruner.prune(ratio).masks)))
        finally:
            pruner.restore()
    if same_macs:
        grouped, found = _width_pruned(model, macs(out[1][2], example), example, criterion, "group")
        out.append(("groups, same MACs", f"{found:.0%} of the channels", grouped))
    return out


@analysis
def inblock_vs_groups(model: nn.Module, train_data: Data, test_data: Data, ratio: float = 0.5,
                      criterion: str = "magnitude", seeds: Sequence[int] = (0, 1, 2), epochs: int = 2
                      ) -> pd.DataFrame:
    """Width pruning of a residual ``model`` at ``ratio``, in-block only vs coupled groups
    (:func:`inblock_and_group_models`), each compacted model fine-tuned for ``epochs`` once per seed. One row
    per (method, seed): method, seed, removed, parameters, macs, accuracy, accuracy_finetuned. Trains, so a
    notebook reads it through ``artefacts.table``."""
    seeds = _check_seeds(seeds)
    example = as_tensors(train_data)[0][:1]
    return _finetuned_over_seeds(inblock_and_group_models(model, example, ratio, criterion), train_data,
                                 test_data, seeds, epochs, example)


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed to fine-tune with, e.g. seeds=(0, 1, 2)")
    return seeds


def _finetuned_over_seeds(models, train_data, test_data, seeds, epochs, example) -> pd.DataFrame:
    rows = []
    for method, removed, net in models:
        base = {"method": method, "removed": removed, "parameters": count_parameters(net),
                "macs": macs(net, example), "accuracy": _accuracy(net, test_data)}
        for seed in seeds:
            tuned = net
            if method != "dense":
                tuned = copy.deepcopy(net)
                train(tuned, train_data, epochs=epochs, seed=seed, progress=False)
            rows.append({**base, "seed": seed, "accuracy_finetuned": _accuracy(tuned, test_data)})
    return pd.DataFrame(rows, columns=["method", "seed", "removed", "parameters", "macs", "accuracy",
                                       "accuracy_finetuned"])


def _accuracy(model: nn.Module, data: Data) -> float:
    return accuracy(*predict(model, data))
