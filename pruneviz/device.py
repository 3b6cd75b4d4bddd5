"""Where tensors live: the best device present, the device a model is already on, and the dtype its inputs take."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def default_device() -> torch.device:
    """cuda if present, else Apple's mps, else cpu: what a notebook should use without being told."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (or buffer); cpu for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def input_cast(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """How the kit hands inputs to ``model``: in its parameters' dtype (a float64 model reads float64 images,
    integer pixels become floats), except the integer inputs of a model that reads indices (an nn.Embedding or
    nn.EmbeddingBag), which stay token ids: cast to floats, the embedding refuses them."""
    dtype = next(model.parameters()).dtype
    if any(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in model.modules()):
        return lambda x: x.to(dtype) if x.is_floating_point() else x
    return lambda x: x.to(dtype)
