"""Prune a single tensor: the lecture's worked examples, and the building block students write first."""
from __future__ import annotations

import torch
from torch import nn

from .criteria import get_criterion
from .errors import check_ratio
from .granularity import get_granularity
from .graph import LayerInfo
from .selection import LocalSelector


def prune_tensor(tensor: torch.Tensor, sparsity: float, criterion: str = "magnitude",
                 granularity: str = "element") -> torch.Tensor:
    """A pruned copy of ``tensor``: the ``round(sparsity x groups)`` least important groups set to zero.

    >>> prune_tensor(torch.tensor([-2., 3., -5., 1.]), 0.5)
    tensor([ 0.,  3., -5.,  0.])
    >>> prune_tensor(torch.tensor([[3., -2.], [1., -5.]]), 0.5, granularity="channel")  # row-wise sum |w|
    tensor([[ 0.,  0.],
            [ 1., -5.]])
    """
    keep = tensor_mask(tensor, sparsity, criterion, granularity)
    return torch.where(keep, tensor, torch.zeros((), dtype=tensor.dtype, device=tensor.device))  # keeps the dtype


def tensor_mask(tensor: torch.Tensor, sparsity: float, criterion: str = "magnitude",
                granularity: str = "element") -> torch.Tensor:
    """The bool keep-mask that :func:`prune_tensor` applies."""
    if not isinstance(tensor, torch.Tensor):
        hint = " (convert it with torch.as_tensor(array))" if hasattr(tensor, "__array__") else ""
        raise TypeError(f"prune_tensor takes a torch.Tensor, got {type(tensor).__name__}{hint}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"prune_tensor takes a tensor of real weights, got a {tensor.dtype} tensor"
                        f"{' (a bool tensor is already a mask)' if tensor.dtype == torch.bool else ''}; "
                        "convert it with tensor.float()")
    ratio = check_ratio(sparsity)
    gran = get_granularity(granularity)
    crit = get_criterion(criterion)
    if crit.needs_data:
        raise ValueError(f"criterion {crit.name!r} needs a model and calibration data; use "
                         f"Pruner(model, criterion={crit.name!r}, data=...). For a lone tensor: "
                         "'magnitude', 'l2', 'random'")
    if crit.granularities is not None and gran.name not in crit.granularities:
        raise ValueError(f"criterion {crit.name!r} has no meaning at {gran.name!r} granularity; "
                         f"valid granularities for it: {', '.join(repr(g) for g in crit.granularities)}")
    reason = gran.unsupported_reason(tensor.shape)
    if reason:
        raise ValueError(reason)
    holder = nn.Module()  # criteria read a layer's ``weight``; a bare holder lets them read this tensor
    holder.weight = nn.Parameter(tensor.detach(), requires_grad=False)
    info = LayerInfo("tensor", holder)
    uncovered = crit.covers(info)  # e.g. scaling reads the BatchNorm after a layer: a lone tensor has none
    if uncovered:
        raise ValueError(f"criterion {crit.name!r} cannot score a lone tensor ({uncovered}); use it through "
                         f"Pruner(model, criterion={crit.name!r}, ...), or for a lone tensor: 'magnitude', 'l2', "
                         "'random'")
    scores = crit.scores(holder, {"tensor": info}, gran)
    group_mask = LocalSelector(scores, gran).group_masks({"tensor": ratio})["tensor"]
    return gran.expand(group_mask, tensor.shape)
