"""Accuracy of a model on a data set, on the model's own device."""
from __future__ import annotations

import torch
from torch import nn

from .data import Data, batches, check_class_targets, check_data
from .device import input_cast, model_device
from .errors import check_count, check_model, check_weights


@torch.no_grad()
def predict(model: nn.Module, data: Data, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) over all of ``data``, in eval mode; every module's train/eval mode is left as it was."""
    check_model(model)
    check_count(batch_size, "batch_size", minimum=1)
    check_weights(model, "evaluating")
    check_data(data, model)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    device, cast = model_device(model), input_cast(model)
    try:
        logits, targets = [], []
        for x, y in batches(data, batch_size, device):
            logits.append(logits_of(model, cast(x)))
            targets.append(y)
    finally:
        for module, mode in modes:
            module.training = mode
    if not logits:
        raise ValueError(f"data is empty (0 samples): nothing to evaluate on ({type(data).__name__})")
    return torch.cat(logits), torch.cat(targets)


def run_model(model: nn.Module, x: torch.Tensor) -> object:
    """``model(x)``, with inputs the model cannot take said in the caller's terms: torch's own message names the
    layer's shapes, not the data that reached it."""
    try:
        return model(x)
    except RuntimeError as error:
        if type(error) is not RuntimeError:  # the kit's own refusals (ModelChangedError, ...) say it already
            raise
        raise RuntimeError(f"the model could not run on a batch of inputs shaped {tuple(x.shape)} "
                           f"({str(x.dtype).replace('torch.', '')}): {error}") from error


def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """:func:`run_model`, and an output that is not one tensor of logits (an LSTM's tuple, a detection model's
    dict) said so."""
    out = run_model(model, x)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model returned a {type(out).__name__}, not a tensor of [N, classes] logits; wrap it "
                        "in a module whose forward returns the logits (e.g. an LSTM's last output through a Linear)")
    return out


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1] of ``logits`` [N, classes] against class indices ``targets`` [N]: the one
    reduction every accuracy of the kit uses (evaluate, the scans, the widgets), with the targets checked, so
    labels the model cannot output are an error rather than an accuracy of 0."""
    if logits.dim() != 2:
        raise ValueError(f"accuracy needs the model to output [N, classes] logits, got shape {tuple(logits.shape)}")
    check_class_targets(targets, logits.shape[1])
    return float((logits.argmax(1) == targets.to(logits.device)).float().mean())


def evaluate(model: nn.Module, data: Data, batch_size: int = 1024) -> float:
    """Top-1 accuracy in [0, 1]."""
    return accuracy(*predict(model, data, batch_size))
