"""Small pretrained models that ship inside the package: no download, loaded with weights_only=True.

>>> model = pruneviz.zoo.load("digits-cnn")
>>> train, val, test = pruneviz.zoo.data("mnist1d-cnn")   # the splits of the model's own task

Two tasks: the digits (8x8 images, ``digits-*``) and MNIST-1D (signals of length 40, ``mnist1d-*``).
``python -m pruneviz.zoo train`` trains them again (into another directory; see ``--help``) and says how close
the result is to the shipped weights; ``python -m pruneviz.zoo stats`` measures the shipped ones.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..device import default_device
from ..errors import unknown_choice
from .models import ARCHITECTURES, TASKS

WEIGHTS = Path(__file__).parent / "weights"
NAMES = tuple(ARCHITECTURES)


def _check_name(name: str) -> None:
    if name not in ARCHITECTURES:
        raise unknown_choice("zoo model", name, NAMES)


def build(name: str) -> nn.Module:
    """The architecture, freshly initialised (seed it yourself for repeatable weights)."""
    _check_name(name)
    return ARCHITECTURES[name]()


def task(name: str) -> str:
    """The task zoo model ``name`` was trained on: 'digits' or 'mnist1d' (a function of pruneviz.data)."""
    _check_name(name)
    return TASKS[name]


def data(name: str):
    """The (train, val, test) splits of zoo model ``name``'s task: ``pruneviz.data.digits()`` or ``mnist1d()``."""
    from .recipe import TASK_DATA

    return TASK_DATA[task(name)]()


def load(name: str, device: str | torch.device | None = None, pretrained: bool = True,
         weights: str | Path | None = None) -> nn.Module:
    """A zoo model with its shipped weights (or those in the directory ``weights``, e.g. written by
    ``python -m pruneviz.zoo train --out DIR``), in eval mode, on ``device`` (default: the best available)."""
    model = build(name)
    if pretrained:
        path = Path(weights or WEIGHTS) / f"{name}.pt"
        if not path.exists():
            raise FileNotFoundError(f"no weights for {name!r} at {path}; train them: python -m pruneviz.zoo train")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device or default_device()).eval()


def _read_json(filename: str, what: str) -> dict:
    # a missing file is an error, not an empty dict: an install without it is broken, and {} would hide that
    path = WEIGHTS / filename
    if not path.exists():
        raise FileNotFoundError(f"no recorded {what} at {path}; train the zoo: python -m pruneviz.zoo train")
    return json.loads(path.read_text())


def accuracies() -> dict[str, float]:
    """Test accuracy of each shipped model on its own task's test split (``data(name).test``), as the training
    script measured it."""
    return _read_json("accuracy.json", "accuracies")


def provenance() -> dict[str, dict]:
    """How each shipped model was made: the CPU kernels forced by environment variables (``kernels``: set them
    to reproduce the weights bit for bit), the torch version and the thread count."""
    return _read_json("provenance.json", "provenance")
