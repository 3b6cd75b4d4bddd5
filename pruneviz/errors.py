"""Input checks shared by the pipeline: each says what was given and what is allowed."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from torch import nn


class ModelChangedError(ValueError):
    """The model no longer holds what the Pruner last wrote into it (weights edited or trained outside the
    Pruner, a layer replaced, the model converted to another dtype or device, a hook added), so writing the
    Pruner's copies into it would silently overwrite something. A ValueError: the widgets show it as a refusal."""


class AlreadySparseWarning(UserWarning):
    """A Pruner was built on weights that are already pruned (many exact zeros) and that the kit holds no
    dense copy of: a deep copy or a torch.save/torch.load round trip of a pruned model. Its ``restore()``
    gives those zeros back; the dense weights are in the first Pruner's ``state_dict()`` (or take
    ``pruneviz.dense.dense_copy(original)`` instead of ``copy.deepcopy``)."""


def unknown_choice(kind: str, given: object, valid: Iterable[str]) -> ValueError:
    """The error for a name that is not one of the valid choices, listing them."""
    choices = ", ".join(repr(v) for v in valid)
    return ValueError(f"unknown {kind} {given!r}; valid choices: {choices}")


def check_ratio(ratio: object, what: str = "sparsity") -> float:
    """A pruning ratio is a real number in [0, 1]; anything else (a string, NaN, bool, 1.5) is refused."""
    if isinstance(ratio, (bool, str, bytes)):
        raise ValueError(f"{what} must be a number in [0, 1], got {ratio!r} ({type(ratio).__name__})")
    if not isinstance(ratio, (int, float)):
        try:  # numpy and 0-d torch scalars
            ratio = float(ratio)  # type: ignore[arg-type]
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{what} must be a number in [0, 1], got {ratio!r}") from None
    value = float(ratio)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {ratio!r}")
    return value


def check_count(value: object, what: str, minimum: int = 0) -> int:
    """A whole number >= ``minimum`` (a bool or a float is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return value


def check_model(model: object, what: str = "model", *, parameters: bool = True) -> nn.Module:
    """A model is a torch.nn.Module with parameters (``parameters=False``: or without, for counting)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what} must be a torch.nn.Module, got {type(model).__name__}")
    if parameters and next(model.parameters(), None) is None:
        raise ValueError(f"{what} has no parameters ({type(model).__name__}): nothing to prune or evaluate")
    return model


def check_weights(model: nn.Module, doing: str) -> None:
    """Refuse a model whose weights hold no values: parameters on the 'meta' device (shapes only, as
    ``torch.device("meta")`` or a lazy initialisation makes them) give no zeros, scores or accuracies to read."""
    meta = [name for name, param in model.named_parameters() if param.is_meta]
    if meta:
        more = f" (and {len(meta) - 1} more)" if len(meta) > 1 else ""
        raise ValueError(f"{doing} needs the model's weights, but {meta[0]}{more} is on the 'meta' device (a shape "
                         "without values); materialize and load them first, e.g. model.to_empty(device='cpu') "
                         "then model.load_state_dict(state)")


def check_prunable(model: object) -> nn.Module:
    """A model the Pruner can write into: an nn.Module (not TorchScript, whose layers are compiled away) with
    real weights."""
    import torch

    check_model(model)
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(f"model is a TorchScript module ({type(model).__name__}, from torch.jit.script or "
                        "torch.jit.trace): its layers are compiled, so a Pruner cannot find or write them; prune "
                        "the original nn.Module, then script it")
    check_weights(model, "pruning")
    return model


def check_masks(masks: object, model: nn.Module, caller: str, *, per_channel: bool = False) -> dict:
    """``masks`` as {layer: bool tensor shaped like the layer's weight} (``per_channel``: or one bool per output
    channel), every name a Linear or Conv layer of ``model``; else an error saying what was given. A mask of 0/1
    floats or ints is refused rather than multiplied in (a mask of 3.0 would scale the weights)."""
    import torch

    from .graph import prunable_layers

    if not isinstance(masks, Mapping):
        if isinstance(getattr(masks, "masks", None), Mapping):
            raise TypeError(f"{caller} takes a Pruner's masks, not the {type(masks).__name__} itself: "
                            f"{caller}(model, pruner.masks)")
        raise TypeError(f"masks must be a dict {{layer: bool mask}} such as Pruner.masks, got {type(masks).__name__}")
    layers = prunable_layers(model)
    checked = {}
    for name, mask in masks.items():
        if name not in layers:
            raise unknown_choice("layer", name, layers)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"the mask of {name!r} must be bool (True = kept), got {got}; "
                             "from 0/1 values: mask.bool()")
        shape = layers[name].weight.shape
        if mask.shape != shape and not (per_channel and mask.shape == shape[:1]):
            also = f" or one bool per output channel ({shape[0]},)" if per_channel else ""
            raise ValueError(f"the mask of {name!r} has shape {tuple(mask.shape)}; expected the weight's shape "
                             f"{tuple(shape)}{also}")
        checked[name] = mask
    return checked
