"""Small pretrained models that ship inside the package: no download, loaded with weights_only=True.

>>> model = pruneviz.zoo.load("digits-cnn")

``python -m pruneviz.zoo train`` trains them again, deterministically, and prints their test accuracy.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..device import default_device
from ..errors import unknown_choice
from .models import ARCHITECTURES

WEIGHTS = Path(__file__).parent / "weights"
NAMES = tuple(ARCHITECTURES)


def build(name: str) -> nn.Module:
    """The architecture, freshly initialised (seed it yourself for repeatable weights)."""
    if name not in ARCHITECTURES:
        raise unknown_choice("zoo model", name, NAMES)
    return ARCHITECTURES[name]()


def load(name: str, device: str | torch.device | None = None, pretrained: bool = True) -> nn.Module:
    """A zoo model with its shipped weights, in eval mode, on ``device`` (default: the best available)."""
    model = build(name)
    if pretrained:
        path = WEIGHTS / f"{name}.pt"
        if not path.exists():
            raise FileNotFoundError(f"no weights for {name!r} at {path}; train them: python -m pruneviz.zoo train")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device or default_device()).eval()


def accuracies() -> dict[str, float]:
    """Test accuracy of each shipped model on the digits test split, as the training script measured it.

    A missing file is an error, not an empty dict: an install without it is broken, and {} would hide that."""
    path = WEIGHTS / "accuracy.json"
    if not path.exists():
        raise FileNotFoundError(f"no recorded accuracies at {path}; train the zoo: python -m pruneviz.zoo train")
    return json.loads(path.read_text())
