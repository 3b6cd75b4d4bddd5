"""What shows that training shaped the zoo's weights: ``python -m pruneviz.zoo stats``.

Per layer: the correlation of the trained weights with their initialisation (near 1: training barely moved
them), their kurtosis (1.8 for the Kaiming-uniform start, 3 for a normal distribution, well above 3 for the
peaked, long-tailed weights of a trained network) and the spread of the BatchNorm gamma that follows. Per model:
accuracy on its own task's validation and test splits (and, for MNIST-1D, the paper's standard 1,000-signal test
set) with a binomial 95 % interval, so a gap of a test image or two reads as one.
"""
from __future__ import annotations

import pandas as pd
import torch
from scipy import stats as scipy_stats
from torch import nn

from ..data import mnist1d_standard_test
from ..evaluation import evaluate
from ..graph import build_graph
from . import NAMES, data, load, task
from .recipe import initial


def kurtosis(weight: torch.Tensor) -> float:
    """Pearson's kurtosis (a normal distribution has 3)."""
    return float(scipy_stats.kurtosis(weight.detach().double().flatten().cpu().numpy(), fisher=False))


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    pair = torch.stack([a.detach().double().flatten().cpu(), b.detach().double().flatten().cpu()])
    return float(torch.corrcoef(pair)[0, 1])


def accuracy_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a measured accuracy (scipy's binomtest)."""
    ci = scipy_stats.binomtest(correct, total).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def layer_stats(name: str, model: nn.Module | None = None) -> pd.DataFrame:
    """One row per conv and linear layer of zoo model ``name`` (its shipped weights, or ``model``, e.g. one
    trained again): weights, kurtosis, init correlation, gamma."""
    trained, start = model if model is not None else load(name, device="cpu"), initial(name)
    start_modules, modules = dict(start.named_modules()), dict(trained.named_modules())
    rows = []
    for layer, info in build_graph(trained).layers.items():
        module = info.module
        row = {"model": name, "layer": layer, "weights": module.weight.numel(),
               "kurtosis": kurtosis(module.weight),
               "init_correlation": correlation(module.weight, start_modules[layer].weight)}
        if info.norm is not None:
            gamma = modules[info.norm].weight.detach()
            row.update(gamma_min=float(gamma.min()), gamma_max=float(gamma.max()),
                       gamma_cv=float(gamma.abs().std() / gamma.abs().mean()))
        rows.append(row)
    return pd.DataFrame(rows)


def evaluation_splits(name: str) -> dict:
    """The splits zoo model ``name`` is measured on: its task's val and test, and for MNIST-1D the paper's
    standard test set (``standard_test``, for its Table 1)."""
    splits = data(name)
    named = {"val": splits.val, "test": splits.test}
    if task(name) == "mnist1d":
        named["standard_test"] = mnist1d_standard_test()
    return named


def accuracy_stats(name: str, model: nn.Module | None = None) -> pd.DataFrame:
    """Accuracy of zoo model ``name`` (shipped, or ``model``) on each of its :func:`evaluation_splits`, with
    Wilson 95 % intervals. ``examples`` counts images or signals."""
    model = model if model is not None else load(name, device="cpu")
    rows = []
    for split, examples in evaluation_splits(name).items():
        total = len(examples)
        correct = round(evaluate(model, examples) * total)
        low, high = accuracy_interval(correct, total)
        rows.append({"model": name, "split": split, "examples": total, "correct": correct,
                     "accuracy": correct / total, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def print_stats(names: list[str] | tuple[str, ...] = NAMES) -> None:
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        for name in names:
            print(f"\n{name} ({task(name)})")
            print(layer_stats(name).drop(columns="model").to_string(index=False))
            acc = accuracy_stats(name)
            for row in acc.itertuples():
                print(f"  {row.split} accuracy {row.accuracy:.1%} ({row.correct}/{row.examples}), "
                      f"95 % interval {row.ci_low:.1%} - {row.ci_high:.1%}")
