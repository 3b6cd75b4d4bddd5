"""Accuracy against sparsity, and the random baseline as a band over seeds rather than one lucky draw.

One seed of random pruning can land anywhere in a wide spread (on the MLP, the best of ten seeds sat above
magnitude pruning); a claim "X beats random" is only a claim against the band: the mean over several seeds
with its spread.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from torch import nn

from .data import Data
from .evaluation import evaluate
from .pruner import Pruner
from .snapshot import analysis

RANDOM_SEEDS = tuple(range(5))


@analysis
def accuracy_sweep(model: nn.Module, data: Data, sparsities: Sequence[float], /, *, criterion: str = "magnitude",
                   granularity: str = "element", scope: str = "local", **pruner_options) -> pd.DataFrame:
    """Accuracy of ``model`` on ``data`` pruned at each sparsity (no fine-tuning); the model is restored after.

    Returns a DataFrame with columns ``sparsity``, ``accuracy`` and ``achieved`` (the sparsity the Pruner
    reached over the layers it prunes). ``data`` is what the accuracy is measured on; a data-driven criterion's
    calibration data goes to the Pruner as ``data=`` among ``pruner_options`` (hence ``data`` positional-only).
    """
    pruner = Pruner(model, criterion, granularity, scope=scope, **pruner_options)
    rows = []
    for sparsity in sparsities:
        pruner.prune(sparsity)
        rows.append({"sparsity": float(sparsity), "accuracy": evaluate(model, data), "achieved": pruner.sparsity()})
    return pd.DataFrame(rows)


@analysis
def random_band(model: nn.Module, data: Data, sparsities: Sequence[float], *, granularity: str = "element",
                scope: str = "local", seeds: Iterable[int] = RANDOM_SEEDS, **pruner_options) -> pd.DataFrame:
    """Random pruning at each sparsity, once per seed: columns ``sparsity``, ``mean``, ``std``, ``min``,
    ``max`` and ``seeds`` (how many), the accuracies as fractions."""
    seeds = list(seeds)
    if len(seeds) < 2:
        raise ValueError(f"a band needs at least two seeds, got {seeds!r}")
    runs = pd.concat([accuracy_sweep(model, data, sparsities, criterion="random", granularity=granularity,
                                     scope=scope, seed=seed, **pruner_options).assign(seed=seed)
                      for seed in seeds])
    band = runs.groupby("sparsity", sort=True)["accuracy"].agg(["mean", "std", "min", "max"]).reset_index()
    return band.assign(seeds=len(seeds))


def band_table(curves: dict[str, pd.DataFrame], band: pd.DataFrame) -> pd.DataFrame:
    """Criteria's accuracies beside the random band, in %, one row per sparsity: what a notebook prints."""
    table = pd.DataFrame({"sparsity": band["sparsity"]})
    for label, curve in curves.items():
        table[label] = 100 * curve.set_index("sparsity").loc[band["sparsity"], "accuracy"].to_numpy()
    table["random mean"] = 100 * band["mean"].to_numpy()
    table["random std"] = 100 * band["std"].to_numpy()
    table["random min"] = 100 * band["min"].to_numpy()
    table["random max"] = 100 * band["max"].to_numpy()
    return table.set_index("sparsity")


def above_band(curve: pd.DataFrame, band: pd.DataFrame) -> pd.Series:
    """Per sparsity: is the curve above the best random seed? (True where it beats every draw.)"""
    merged = curve.merge(band, on="sparsity")
    return pd.Series(merged["accuracy"].to_numpy() > merged["max"].to_numpy(), index=merged["sparsity"])
