"""From a sensitivity scan to a per-layer ratio dict: prune the robust layers more, the sensitive ones less.

Both functions read only the scan's own numbers (layer, sparsity, accuracy, with the dense row at sparsity 0)
and return ``{layer: ratio}`` for ``Pruner.prune``. They treat each layer's drop as if it were alone, which is
what a scan measures; drops of several layers together add up roughly, not exactly, so evaluate the result.
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from torch import nn

from .errors import check_ratio
from .graph import prunable_layers
from .snapshot import analysis


def _curves(scan: pd.DataFrame) -> dict[str, pd.Series]:
    """Accuracy drop per layer, indexed by ratio ascending, relative to the layer's sparsity-0 row."""
    missing = [c for c in ("layer", "sparsity", "accuracy") if c not in scan.columns]
    if missing:
        raise ValueError(f"a scan needs the columns layer, sparsity, accuracy; missing: {', '.join(missing)}")
    repeated = scan[scan.duplicated(["layer", "sparsity"], keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise ValueError(f"the scan holds layer {first.layer!r} at sparsity {first.sparsity:g} more than once "
                         f"({len(repeated)} repeated rows: several scans in one frame?); pass one scan, or average "
                         "them first: scan.groupby(['layer', 'sparsity'], sort=False, as_index=False)"
                         "['accuracy'].mean()")
    curves = {}
    for layer, rows in scan.groupby("layer", sort=False):
        acc = rows.set_index("sparsity")["accuracy"].sort_index()
        if 0.0 not in acc.index:
            raise ValueError(f"layer {layer!r} has no row at sparsity 0 (its dense accuracy) in the scan")
        curves[layer] = acc[0.0] - acc
    if not curves:
        raise ValueError("the scan is empty")
    return curves


def ratios_for_drop(scan: pd.DataFrame, max_drop: float) -> dict[str, float]:
    """The largest scanned ratio per layer whose accuracy drop, and the drop at every smaller ratio, is at most
    ``max_drop`` (a fraction: 0.01 = one point of accuracy).

    Requiring the smaller ratios too keeps a noisy bump upwards at a high ratio from being taken.
    """
    max_drop = check_ratio(max_drop, "max_drop")
    ratios = {}
    for layer, drop in _curves(scan).items():
        within = (drop <= max_drop + 1e-12).cummin()  # True up to the first ratio that drops too much
        ratios[layer] = float(drop.index[within.values][-1])
    return ratios


def layer_weights(model: nn.Module | Mapping[str, int], layers) -> dict[str, int]:
    """Weights per layer: counted on a model, or taken from a {layer: count} mapping."""
    if isinstance(model, nn.Module):
        counts = {name: m.weight.numel() for name, m in prunable_layers(model).items()}
    else:
        counts = {name: int(n) for name, n in model.items()}
    unknown = [name for name in layers if name not in counts]
    if unknown:
        raise ValueError(f"no weight count for scanned layer(s) {', '.join(map(repr, unknown))}; "
                         f"layers known: {', '.join(map(repr, counts))}")
    return {name: counts[name] for name in layers}


def kept_fraction(ratios: Mapping[str, float], weights: Mapping[str, int]) -> float:
    """Fraction of the layers' weights a ratio dict keeps (layers it does not name stay dense)."""
    total = sum(weights.values())
    return sum(n * (1.0 - ratios.get(name, 0.0)) for name, n in weights.items()) / total


def ratios_for_size(scan: pd.DataFrame, model: nn.Module | Mapping[str, int], target_fraction: float,
                    floor: float | None = None) -> dict[str, float]:
    """Ratios that keep at most ``target_fraction`` of the scanned layers' weights, with the least predicted drop.

    The predicted drop of a dict is the sum of each layer's drop in the scan. A greedy minimises it: starting
    dense, it repeatedly moves the one layer whose step to a higher scanned ratio costs the least drop per weight
    removed (looking at every higher ratio, not only the next, so a flat stretch after a dip is still found),
    until the size target is met. ``floor`` (an accuracy in [0, 1]) excludes ratios whose scanned accuracy is
    below it. ``model`` gives the weights per layer (or pass {layer: count}).

    Raises ValueError when even the largest allowed ratios cannot reach the target.
    """
    target_fraction = check_ratio(target_fraction, "target_fraction")
    curves = _curves(scan)
    weights = layer_weights(model, curves)
    if floor is not None:
        floor = check_ratio(floor, "floor")
        dense = {layer: float(scan[(scan.layer == layer) & (scan.sparsity == 0.0)].accuracy.iloc[0])
                 for layer in curves}
        curves = {layer: drop[dense[layer] - drop >= floor - 1e-12] for layer, drop in curves.items()}
        below = [layer for layer, drop in curves.items() if drop.empty]
        if below:
            raise ValueError(f"floor {floor:.3f} is above the dense accuracy of the scan for {', '.join(below)}")
    best = {layer: float(drop.index.max()) for layer, drop in curves.items()}
    if kept_fraction(best, weights) > target_fraction + 1e-12:
        raise ValueError(f"target_fraction {target_fraction:.3f} is out of reach: the largest scanned ratios"
                         f"{' above the floor' if floor is not None else ''} keep "
                         f"{kept_fraction(best, weights):.3f} of the weights; scan higher ratios or relax it")
    ratios = {layer: 0.0 for layer in curves}
    while kept_fraction(ratios, weights) > target_fraction + 1e-12:
        moves = []
        for layer, drop in curves.items():
            now = ratios[layer]
            for ratio, d in drop[drop.index > now].items():
                cost = (d - drop.get(now, 0.0)) / (weights[layer] * (ratio - now))
                moves.append((cost, -ratio, layer, float(ratio)))
        _, _, layer, ratio = min(moves)
        ratios[layer] = ratio
    return _trim(ratios, curves, weights, target_fraction)


def _trim(ratios: dict[str, float], curves: dict[str, pd.Series], weights: dict[str, int],
          target_fraction: float) -> dict[str, float]:
    """Undo what the greedy's last, large steps overshot: lower a layer's ratio while the target still holds
    and the predicted drop does not grow (the largest saving first; at equal drop, the larger step back)."""
    while True:
        moves = []
        for layer, drop in curves.items():
            now = ratios[layer]
            for ratio, d in drop[drop.index < now].items():
                trial = {**ratios, layer: float(ratio)}
                saving = drop[now] - d
                if saving >= 0 and kept_fraction(trial, weights) <= target_fraction + 1e-12:
                    moves.append((saving, now - ratio, layer, float(ratio)))
        if not moves:
            return ratios
        _, _, layer, ratio = max(moves)
        ratios[layer] = ratio


@analysis
def compare_allocations(model: nn.Module, ratio_dicts: Mapping[str, Mapping[str, float]], data, *,
                        criterion: str = "magnitude", granularity: str = "element") -> pd.DataFrame:
    """Each ratio dict against the two allocations that need no scan, at the same overall sparsity: one uniform
    ratio for every layer (local scope), and one global threshold (global scope, the layers' shares left to the
    criterion's scores). The overall sparsity is what the dict reaches over the layers it is pruned on.

    Returns one row per dict: ``allocation``, ``sparsity``, ``guided``, ``uniform``, ``global`` (accuracies on
    ``data`` as fractions); every allocation prunes the model as you hold it, which is left as it was.
    """
    from .evaluation import evaluate
    from .pruner import Pruner

    rows = []
    for label, ratios in ratio_dicts.items():
        local = Pruner(model, criterion, granularity, layers=list(ratios))
        local.prune(dict(ratios))
        guided, overall = evaluate(model, data), local.sparsity()
        local.prune(overall)
        uniform = evaluate(model, data)
        local.restore()
        threshold = Pruner(model, criterion, granularity, scope="global", layers=list(ratios))
        threshold.prune(overall)
        global_ = evaluate(model, data)
        threshold.restore()
        rows.append({"allocation": label, "sparsity": overall, "guided": guided, "uniform": uniform,
                     "global": global_})
    return pd.DataFrame(rows, columns=["allocation", "sparsity", "guided", "uniform", "global"])
