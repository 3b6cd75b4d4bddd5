"""Over-parameterization: is a wide model pruned to a small size better than the small model trained directly?

The experiment of Liu et al. 2019 ("Rethinking the value of network pruning") on the kit's own data: prune the
neurons or channels of a trained wide model, compact it to a narrow dense model, fine-tune it; train the very same
narrow architecture from a fresh random initialisation; compare test accuracy at each size.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

import pandas as pd
import torch
from torch import nn

from .data import Data
from .errors import check_ratio
from .evaluation import evaluate
from .metrics import count_parameters
from .pruner import Pruner
from .surgery import channel_prunable_layers, compact
from .training import train


def reinitialized(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with fresh random weights (each layer's own ``reset_parameters``, so the init scale
    fits the copy's own widths); the global random state is left as it was."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh


def pruned_vs_scratch(model: nn.Module, train_data: Data, test_data: Data,
                      sparsities: Iterable[float] = (0.5, 0.75, 0.875), *, criterion: str = "magnitude",
                      finetune_epochs: int = 30, scratch_epochs: int = 30, seeds: Iterable[int] = (0, 1, 2),
                      lr: float = 1e-3) -> pd.DataFrame:
    """Test accuracy of the trained wide ``model`` pruned to each channel sparsity (right after pruning, then
    after ``finetune_epochs``) and of the same narrow architecture trained from scratch for ``scratch_epochs``
    (by default both narrow models train for as many epochs as the zoo trained the wide one).

    Every layer whose channels can go alone loses ``sparsity`` of them by ``criterion``. One row per
    (sparsity, method, seed): columns sparsity, parameters, method ('pruned', 'pruned + fine-tuned',
    'from scratch'), seed, accuracy. ``model`` is left unchanged.
    """
    sparsities = [check_ratio(s, "channel sparsity") for s in sparsities]
    seeds = list(seeds)
    pruner = Pruner(model, criterion, "channel", layers=channel_prunable_layers(model))
    rows = []
    try:
        for sparsity in sparsities:
            narrow = compact(model, pruner.prune(sparsity).masks)
            size = count_parameters(narrow)
            rows.append({"sparsity": sparsity, "parameters": size, "method": "pruned", "seed": seeds[0],
                         "accuracy": evaluate(narrow, test_data)})
            for seed in seeds:
                tuned = copy.deepcopy(narrow)
                train(tuned, train_data, epochs=finetune_epochs, lr=lr, seed=seed, progress=False)
                rows.append({"sparsity": sparsity, "parameters": size, "method": "pruned + fine-tuned",
                             "seed": seed, "accuracy": evaluate(tuned, test_data)})
                scratch = reinitialized(narrow, seed)
                train(scratch, train_data, epochs=scratch_epochs, lr=lr, seed=seed, progress=False)
                rows.append({"sparsity": sparsity, "parameters": size, "method": "from scratch", "seed": seed,
                             "accuracy": evaluate(scratch, test_data)})
    finally:
        pruner.restore()
    return pd.DataFrame(rows)
