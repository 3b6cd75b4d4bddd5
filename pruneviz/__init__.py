"""pruneviz: learn neural-network pruning by seeing it.

The pipeline of the lecture, one module per stage:
granularity (which weights go together) -> criteria (how important) -> selection (how many) -> Pruner (masks).
"""
from . import data, zoo
from .criteria import (Criterion, apoz, get_criterion, hessian_diagonal, reconstruct, register, slimming_loss,
                       slimming_penalty)
from .depth import block_importance, remove_blocks, removable_blocks
from .device import default_device
from .errors import ModelChangedError
from .evaluation import evaluate
from .finetune import finetune
from .granularity import get_granularity
from .interop import from_torch_prune, to_torch_prune
from .metrics import count_parameters, latency, layer_macs, layer_sparsity, macs, size_bytes, sparsity
from .pruner import Pruner
from .surgery import channel_prunable_layers, compact
from .ratios import ratios_for_drop, ratios_for_size
from .schedules import AGP, Iterative, OneShot, run_schedule
from .sensitivity import sensitivity_scan
from .tensor import prune_tensor, tensor_mask
from .training import train

__version__ = "0.1.0"


def __getattr__(name: str):
    # plot and widgets pull in matplotlib, seaborn and ipywidgets: imported on first use, not with pruneviz
    if name in ("plot", "widgets"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pruneviz' has no attribute {name!r}")

__all__ = [
    "apoz", "hessian_diagonal", "reconstruct", "slimming_loss", "slimming_penalty",
    "block_importance", "channel_prunable_layers", "compact", "removable_blocks", "remove_blocks",
    "AGP", "Criterion", "Iterative", "ModelChangedError", "OneShot", "Pruner", "count_parameters", "data", "default_device",
    "evaluate", "finetune", "from_torch_prune",
    "get_criterion", "get_granularity", "latency", "layer_macs", "layer_sparsity", "macs", "prune_tensor",
    "plot", "ratios_for_drop", "ratios_for_size", "register", "run_schedule", "sensitivity_scan", "size_bytes",
    "sparsity", "tensor_mask", "to_torch_prune", "train", "widgets", "zoo",
]
