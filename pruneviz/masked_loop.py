"""Keeping the zeros in your own training loop: ``pruner.mask_gradients()`` before ``optimizer.step()`` and
``pruner.apply_masks()`` after it.

An optimizer that carries state from dense training moves a pruned weight even when its gradient is zero: SGD's
momentum buffer v <- mu v + g still holds the dense gradients, Adam's moments too, and weight decay acts on the
weight itself. Masking the gradients alone therefore lets the weights come back; writing the masks again after the
step is what keeps them at zero. :func:`revival` counts it, one row per way of writing the loop.
"""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from .data import Data, as_tensors
from .device import model_device
from .evaluation import evaluate
from .metrics import sparsity as sparsity_of
from .pruner import Pruner
from .snapshot import analysis, as_found
from .training import torch_threads

LOOPS = {"mask_gradients() only": (True, False), "apply_masks() only": (False, True), "both": (True, True)}


def own_loop(model: nn.Module, data: Data, optimizer: torch.optim.Optimizer, steps: int, *,
             pruner: Pruner | None = None, mask_gradients: bool = True, apply_masks: bool = True,
             batch_size: int = 64, seed: int = 0) -> None:
    """A plain training loop of ``steps`` steps on random batches, written as a user would write one."""
    x, y = (t.to(model_device(model)) for t in as_tensors(data))
    batches = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(y), (batch_size,), generator=batches).to(y.device)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        if pruner is not None and mask_gradients:
            pruner.mask_gradients()  # no gradient on a pruned weight...
        optimizer.step()
        if pruner is not None and apply_masks:
            pruner.apply_masks()  # ...and whatever the optimizer's state did to it, undone
    model.eval()


def revived_weights(pruner: Pruner) -> int:
    """How many weights the pruner pruned are not zero in the model now."""
    return sum(int(torch.count_nonzero(layer.weight.detach()[~pruner.masks[name]]))
               for name, layer in pruner.layers.items())


@analysis
def revival(model: nn.Module, data: Data, eval_data: Data, *, sparsity: float = 0.9, dense_steps: int = 20,
            steps: int = 20, make_optimizer: Callable[..., torch.optim.Optimizer] | None = None,
            seed: int = 0) -> pd.DataFrame:
    """Train ``dense_steps`` dense (the optimizer builds its state), prune to ``sparsity`` by global magnitude,
    train ``steps`` more with each loop of :data:`LOOPS`. One row per loop: pruned weights, revived weights,
    sparsity and accuracy on ``eval_data`` at the end. The model is left as it was.

    ``make_optimizer(params)``: default SGD, lr 0.01, momentum 0.9.
    """
    make_optimizer = make_optimizer or (lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9))
    rows = []
    with torch_threads(1):  # the same numbers on any core count
        for name, (grads, weights) in LOOPS.items():
            with as_found(model):  # every loop starts from the model as you hold it, which is left as it was
                optimizer = make_optimizer(model.parameters())
                own_loop(model, data, optimizer, dense_steps, seed=seed)
                pruner = Pruner(model, "magnitude", "element", scope="global").prune(sparsity)
                own_loop(model, data, optimizer, steps, pruner=pruner, mask_gradients=grads, apply_masks=weights,
                         seed=seed + 1)
                pruned = sum(int((~m).sum()) for m in pruner.masks.values())
                rows.append({"loop": name, "pruned": pruned, "revived": revived_weights(pruner),
                             "sparsity": sparsity_of(model), "accuracy": evaluate(model, eval_data)})
    return pd.DataFrame(rows)
