"""Small pretrained models that ship inside the package: no download, loaded with weights_only=True.

>>> model = pruneviz.zoo.load("digits-cnn")
>>> train, val, test = pruneviz.zoo.data("mnist1d-cnn")   # the splits of the model's own task

Two tasks: the digits (8x8 images, ``digits-*``) and MNIST-1D (signals of length 40, ``mnist1d-*``).
At the lecture lab's scale, two CIFAR-10 architectures without weights (``UNTRAINED_NAMES``: the lab's VGG,
``cifar10-vgg``, and a ResNet-18, ``cifar10-resnet18``): ``build`` them, train them on
``pruneviz.data.cifar10(download=True)``.
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
from .models import ARCHITECTURES, TASKS, UNTRAINED

WEIGHTS = Path(__file__).parent / "weights"
NAMES = tuple(ARCHITECTURES)  # the models shipped with weights
UNTRAINED_NAMES = tuple(UNTRAINED)  # architectures only: build() them


def _check_name(name: str) -> None:
    if name not in ARCHITECTURES and name not in UNTRAINED:
        raise unknown_choice("zoo model", name, NAMES + UNTRAINED_NAMES)


def build(name: str) -> nn.Module:
    """The architecture, freshly initialised (seed it yourself for repeatable weights)."""
    _check_name(name)
    return {**ARCHITECTURES, **UNTRAINED}[name]()


def task(name: str) -> str:
    """The task zoo model ``name`` was (or is to be) trained on: 'digits', 'mnist1d' or 'cifar10' (a function
    of pruneviz.data)."""
    _check_name(name)
    return TASKS[name]


def data(name: str, download: bool = False, root: str | Path | None = None):
    """The (train, val, test) splits of zoo model ``name``'s task: ``pruneviz.data.digits()``, ``mnist1d()`` or
    ``cifar10(download, root=root)`` (``download`` and ``root`` matter only there: the others are offline)."""
    from ..data import cifar10
    from .recipe import TASK_DATA

    if task(name) == "cifar10":
        return cifar10(download, root=root)
    return TASK_DATA[task(name)]()


def load(name: str, device: str | torch.device | None = None, pretrained: bool = True,
         weights: str | Path | None = None) -> nn.Module:
    """A zoo model with its shipped weights (or those in the directory ``weights``, e.g. written by
    ``python -m pruneviz.zoo train --out DIR``), in eval mode, on ``device`` (default: the best available)."""
    model = build(name)
    if pretrained and name in UNTRAINED and weights is None:
        raise FileNotFoundError(
            f"{name!r} ships untrained: the kit has no weights for it (CIFAR-10 cannot be fetched where the kit is "
            f"built). Build it with pruneviz.zoo.build({name!r}) and train it on your own data, e.g. "
            f"pruneviz.data.cifar10(download=True) (about 163 MB), then explore(model, test); or load weights "
            f"you trained: pruneviz.zoo.load({name!r}, weights=DIR) reads DIR/{name}.pt")
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
