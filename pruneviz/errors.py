"""Input checks shared by the pipeline: each says what was given and what is allowed."""
from __future__ import annotations

import math
from collections.abc import Iterable


def unknown_choice(kind: str, given: object, valid: Iterable[str]) -> ValueError:
    """The error for a name that is not one of the valid choices, listing them."""
    choices = ", ".join(repr(v) for v in valid)
    return ValueError(f"unknown {kind} {given!r}; valid choices: {choices}")


def check_ratio(ratio: object, what: str = "sparsity") -> float:
    """A pruning ratio is a real number in [0, 1]; anything else (NaN, bool, 1.5) is refused."""
    if isinstance(ratio, bool):
        raise ValueError(f"{what} must be a number in [0, 1], got {ratio!r}")
    if not isinstance(ratio, (int, float)):
        try:  # numpy and 0-d torch scalars
            ratio = float(ratio)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be a number in [0, 1], got {ratio!r}") from None
    value = float(ratio)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {ratio!r}")
    return value
