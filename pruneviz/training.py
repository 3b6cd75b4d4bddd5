"""A plain training loop: the zoo trains with it, fine-tuning builds on it.

Given a Pruner, it keeps pruned weights exactly zero: gradients are masked before the step (so momentum never
builds on them) and the masks are written again after it (so weight decay and Adam's update cannot revive them).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .data import Data, as_tensors
from .device import model_device
from .errors import unknown_choice

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
}


def make_optimizer(optimizer: str | Callable[..., torch.optim.Optimizer], params, lr: float
                   ) -> torch.optim.Optimizer:
    """An optimizer from a name ('sgd' with momentum 0.9, 'adam', 'adamw') or a factory ``f(params)``."""
    if callable(optimizer):
        return optimizer(params)
    if optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    return OPTIMIZERS[optimizer](params, lr)


def shuffled(data: Data, batch_size: int, generator: torch.Generator, device: torch.device):
    """Mini-batches in a seeded random order (the kit's data sets fit in memory: index one tensor pair)."""
    x, y = as_tensors(data)
    order = torch.randperm(len(x), generator=generator)
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield x[idx].to(device), y[idx].to(device)


def train(model: nn.Module, data: Data, epochs: int = 30, *, optimizer: str | Callable = "adam",
          lr: float = 1e-3, batch_size: int = 64, seed: int = 0, pruner=None, progress: bool = True,
          loss_fn: Callable | None = None, on_step: Callable[[], None] | None = None,
          steps: int | None = None) -> list[float]:
    """Train ``model`` in place on its device; returns the mean loss of each epoch.

    ``loss_fn(model, logits, targets)`` replaces cross-entropy (e.g. to add network slimming's L1 on gamma).
    ``on_step()`` runs after every optimizer step (e.g. to move an AGP schedule).
    ``steps`` stops after that many optimizer steps instead (epochs then only bounds it; the last epoch's loss
    is the mean over the steps it ran).
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise ValueError(f"steps must be a whole number >= 0 or None, got {steps!r}")
    device = model_device(model)
    dtype = next(model.parameters()).dtype
    opt = make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad], lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    done = 0
    if steps is not None:
        per_epoch = max(1, math.ceil(len(as_tensors(data)[1]) / batch_size))
        epochs = math.ceil(steps / per_epoch)
    model.train()
    for _ in tqdm(range(epochs), desc="training", disable=not progress, leave=False):
        total, count = 0.0, 0
        for x, y in shuffled(data, batch_size, gen, device):
            if steps is not None and done == steps:
                break
            logits = model(x.to(dtype))
            loss = loss_fn(model, logits, y) if loss_fn else nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if pruner is not None:
                pruner.mask_gradients()
            opt.step()
            if pruner is not None:
                pruner.apply_masks()
            done += 1
            if on_step is not None:
                on_step()
            total += float(loss.detach()) * len(x)
            count += len(x)
        if count:
            losses.append(total / count)
    model.eval()
    return losses
