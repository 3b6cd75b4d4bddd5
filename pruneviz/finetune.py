"""Masked fine-tuning: train a pruned model to win its accuracy back while pruned weights stay exactly zero.

Built on :func:`pruneviz.train`, which masks the gradients before each step (momentum never builds on a pruned
weight) and writes the masks again after it (Adam's update and weight decay cannot revive one). With channel
granularity the bias and the BatchNorm gamma and beta of a pruned channel stay zero too.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from .data import Data
from .errors import check_model, unknown_choice
from .pruner import Pruner
from .training import OPTIMIZERS, check_count, check_pruner_of, check_training, rolled_back_on_error, train

# the learning rates fine-tuning usually takes: the lab's SGD 0.01 (momentum 0.9); Adam's default
DEFAULT_LR = {"sgd": 1e-2, "adam": 1e-3, "adamw": 1e-3}

OptimizerChoice = str | Callable[..., torch.optim.Optimizer]


def check_optimizer(optimizer: OptimizerChoice) -> None:
    """A name from ``OPTIMIZERS`` or a factory ``f(params) -> Optimizer``; anything else is a ValueError."""
    if not callable(optimizer) and optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)


def finetune(model: nn.Module, data: Data, *, pruner: Pruner, epochs: int = 5, optimizer: OptimizerChoice = "sgd",
             lr: float | None = None, batch_size: int = 64, seed: int = 0, steps: int | None = None,
             progress: bool = True) -> list[float]:
    """Fine-tune the pruned ``model`` in place on its device, pruned weights held at zero; mean loss per epoch.

    Args:
        pruner: the Pruner whose masks to keep (built on this model).
        optimizer: "sgd" (momentum 0.9), "adam", "adamw" (weight decay 0.01), or a factory ``f(params)``.
        lr: learning rate for a named optimizer (default: 0.01 for SGD, 0.001 for Adam and AdamW).
        steps: stop after this many optimizer steps instead of ``epochs`` epochs.
    """
    check_model(model)
    check_optimizer(optimizer)
    check_pruner_of(model, pruner)
    if lr is None:
        lr = DEFAULT_LR.get(optimizer, 1e-3) if isinstance(optimizer, str) else 1e-3
    # everything checked before the first write; train() puts the model back if training itself fails
    check_training(model, data, epochs=epochs, lr=lr, batch_size=batch_size, steps=steps)
    with rolled_back_on_error(model, [pruner]):
        pruner.apply_masks()  # a model whose weights moved since the prune starts from its masks
        return train(model, data, epochs, optimizer=optimizer, lr=lr, batch_size=batch_size, seed=seed,
                     pruner=pruner, progress=progress, steps=steps)


def finetuned(model: nn.Module, data: Data, sparsity: float, *, masked: bool = True, live: bool = False,
              **options) -> tuple[nn.Module, Pruner]:
    """A copy of ``model`` pruned to ``sparsity`` (global magnitude) and trained by :func:`finetune`
    (``masked=False``: by :func:`pruneviz.train` with no pruner, the pitfall), with the Pruner of its masks.

    Read from the shipped artefact when there is one (keyed on the model's weights, the data and the options):
    the trained weights are the same on every CPU. ``live=True`` trains it here. ``model`` is not changed.
    """
    from . import artefacts

    copied = copy.deepcopy(model).cpu()
    pruner = Pruner(copied, "magnitude", "element", scope="global").prune(sparsity)  # from stored weights: exact
    options = {"optimizer": "sgd", "seed": 0, **options, "progress": False}

    def train_it() -> nn.Module:
        net = copy.deepcopy(copied)
        if masked:
            finetune(net, data, pruner=Pruner(net, "magnitude", "element", scope="global").prune(sparsity),
                     **options)
        else:
            train(net, data, **{"epochs": 1, **options})
        return net

    trained = artefacts.model("finetuned", lambda: copy.deepcopy(copied), train_it, inputs=(model, data),
                              options={"sparsity": sparsity, "masked": masked, **options}, live=live)
    with torch.no_grad():
        for name, value in trained.state_dict().items():
            copied.state_dict()[name].copy_(value)
    return copied.eval(), pruner
