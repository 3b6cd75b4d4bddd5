"""What layers see and emit on calibration data, through forward hooks: the data criteria's common ground.

APoZ counts zeros in a ReLU's output, regression pruning samples a layer's inputs and outputs; both run the
model over calibration batches in eval mode (BatchNorm uses its running statistics and is not updated) with
hooks that read what passes, and leave the model exactly as it was.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from .data import Data, batches
from .device import input_cast, model_device
from .errors import unknown_choice

Hook = Callable[[nn.Module, tuple, torch.Tensor], None]
WHAT = ("input", "output")


def calibration_batches(model: nn.Module, data: Data, limit: int | None = None
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets) from ``data`` on the model's device and dtype, at most ``limit`` samples in all."""
    if data is None:
        raise ValueError("calibration data is needed: a DataLoader, a Dataset or an (inputs, targets) pair")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of samples or None (all), got {limit!r}")
    device, cast = model_device(model), input_cast(model)
    seen = 0
    for x, y in batches(data, device=device):
        if limit is not None:
            x, y = x[:limit - seen], y[:limit - seen]
        if len(x) == 0:
            break
        yield cast(x), y
        seen += len(x)
        if limit is not None and seen >= limit:
            break


@contextmanager
def forward_hooks(model: nn.Module, hooks: Mapping[str, Hook]):
    """Forward hooks on the named modules for the duration of the block, removed however it ends."""
    modules = dict(model.named_modules())
    missing = [name for name in hooks if name not in modules]
    if missing:
        raise unknown_choice("module", missing[0], [n for n in modules if n])
    handles = [modules[name].register_forward_hook(fn) for name, fn in hooks.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def evaluating(model: nn.Module):
    """Eval mode and no autograd for the block; every module's train/eval mode is given back after (a BatchNorm
    the user froze with ``eval()`` inside a model in train mode stays frozen)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, mode in modes:
            module.training = mode


def run(model: nn.Module, data: Data, hooks: Mapping[str, Hook], limit: int | None = None) -> int:
    """Run the model over calibration data with ``hooks`` attached; returns the number of samples seen."""
    count = 0
    with evaluating(model), forward_hooks(model, hooks):
        for x, _ in calibration_batches(model, data, limit):
            model(x)
            count += len(x)
    return count


def record(model: nn.Module, names: list[str], data: Data, what: str = "output",
           limit: int | None = None) -> dict[str, torch.Tensor]:
    """Each named module's input (its first positional argument) or output over the calibration data,
    concatenated along the batch dimension."""
    if what not in WHAT:
        raise unknown_choice("what", what, WHAT)
    store: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def hook_for(name: str) -> Hook:
        def hook(module, inputs, output):
            store[name].append((inputs[0] if what == "input" else output).detach().clone())
        return hook

    run(model, data, {name: hook_for(name) for name in names}, limit)
    return {name: torch.cat(parts) for name, parts in store.items()}


def record_io(model: nn.Module, name: str, data: Data, limit: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """One module's (input, output) over the calibration data, from a single pass."""
    inputs, outputs = [], []

    def hook(module, args, output):
        inputs.append(args[0].detach().clone())
        outputs.append(output.detach().clone())

    run(model, data, {name: hook}, limit)
    return torch.cat(inputs), torch.cat(outputs)


def unit_removal_cost(model: nn.Module, data: Data, layer: str, activation: str, *, limit: int | None = None
                      ) -> torch.Tensor:
    """Per unit (output channel or neuron) of ``layer``: the increase of the mean cross-entropy on ``data``
    when that unit alone is silenced, its output zeroed after ``activation`` (the module that follows the
    layer, e.g. its ReLU) by a forward hook. A unit that is always zero there (APoZ = 1) costs exactly 0.

    What a criterion of single units should predict; the model is not changed (the hook is removed).
    """
    from .criteria.obd import mean_loss

    modules = dict(model.named_modules())
    for name in (layer, activation):
        if name not in modules:
            raise unknown_choice("module", name, [n for n in modules if n])
    units = modules[layer].weight.shape[0]
    base = mean_loss(model, data, limit)
    costs = torch.zeros(units, dtype=torch.float64)
    for unit in range(units):
        def silence(module, inputs, output, unit=unit):
            output = output.clone()
            output[:, unit] = 0.0
            return output
        with forward_hooks(model, {activation: silence}):
            costs[unit] = mean_loss(model, data, limit) - base
    return costs
