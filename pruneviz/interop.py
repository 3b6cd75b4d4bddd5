"""Interop with torch.nn.utils.prune: hand our masks to it, read its masks back."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from .errors import check_masks


def to_torch_prune(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Attach ``masks`` ({layer: bool mask}) to ``model`` with torch's ``custom_from_mask``.

    The model then has ``weight_orig`` and ``weight_mask`` as torch.nn.utils.prune makes them; call
    ``torch.nn.utils.prune.remove`` to make it permanent.
    """
    modules = dict(model.named_modules())
    for name, mask in check_masks(masks, model, "to_torch_prune").items():
        torch_prune.custom_from_mask(modules[name], "weight", mask.to(modules[name].weight.device))
    return model


def from_torch_prune(model: nn.Module, remove: bool = False) -> dict[str, torch.Tensor]:
    """The weight masks of a model pruned with torch.nn.utils.prune, as {layer: bool mask}.

    ``remove=True`` also makes the pruning permanent (torch's ``prune.remove``), leaving plain weights.
    """
    masks = {}
    for name, module in model.named_modules():
        mask = getattr(module, "weight_mask", None)
        if isinstance(mask, torch.Tensor) and torch_prune.is_pruned(module):
            masks[name] = mask.detach().bool().clone()
            if remove:
                torch_prune.remove(module, "weight")
    return masks
