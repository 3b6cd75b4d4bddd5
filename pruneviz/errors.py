"""Input checks shared by the pipeline: each says what was given and what is allowed."""
from __future__ import annotations

import math
from collections.abc import Iterable

from torch import nn


class ModelChangedError(ValueError):
    """The model no longer holds what the Pruner last wrote into it (weights edited or trained outside the
    Pruner, a layer replaced, the model converted to another dtype or device, a hook added), so writing the
    Pruner's copies into it would silently overwrite something. A ValueError: the widgets show it as a refusal."""


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


def check_model(model: object, what: str = "model") -> nn.Module:
    """A model is a torch.nn.Module with parameters."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what} must be a torch.nn.Module, got {type(model).__name__}")
    if next(model.parameters(), None) is None:
        raise ValueError(f"{what} has no parameters ({type(model).__name__}): nothing to prune or evaluate")
    return model
