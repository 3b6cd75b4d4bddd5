"""Data sets: an offline default (scikit-learn's handwritten digits) and torchvision's for users with a network.

The digits ship inside scikit-learn, so every notebook and test runs with no download.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

DIGITS_TEST_SIZE = 360
DIGITS_VAL_SIZE = 360
DIGITS_SPLIT_SEED = 0


class DigitsSplits(NamedTuple):
    """The three fixed splits: fit on ``train``, choose (ratios, thresholds, epochs) on ``val``, report ``test``."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset


def digits(dtype: torch.dtype = torch.float32) -> DigitsSplits:
    """scikit-learn's 1797 handwritten digits (8x8, 10 classes) as fixed stratified (train, val, test) splits
    of 1077 / 360 / 360 images, pixels scaled to [0, 1], shaped [N, 1, 8, 8].

    ``train, val, test = pruneviz.data.digits()``. Choices made on the test set flatter the result they
    report, so everything that chooses in the kit (scans, ratio dicts, criterion options) takes ``val``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=dtype).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.long)
    rest_idx, test_idx = train_test_split(np.arange(len(y)), test_size=DIGITS_TEST_SIZE,
                                          stratify=bunch.target, random_state=DIGITS_SPLIT_SEED)
    train_idx, val_idx = train_test_split(rest_idx, test_size=DIGITS_VAL_SIZE, stratify=bunch.target[rest_idx],
                                          random_state=DIGITS_SPLIT_SEED)
    return DigitsSplits(*(TensorDataset(x[idx], y[idx]) for idx in (train_idx, val_idx, test_idx)))


def augment_digits(x: torch.Tensor, generator: torch.Generator, max_shift: int = 1, max_degrees: float = 10.0,
                   noise: float = 0.05) -> torch.Tensor:
    """A random small rotation, a shift of up to ``max_shift`` whole pixels and Gaussian pixel noise, per image.

    For training only: the 1077 training images are too few (and the digits too easy) for the weights to move far
    from their initialisation without it. One affine resampling per batch (``affine_grid`` + ``grid_sample``),
    drawn from ``generator`` so a seeded run repeats.
    """
    n, _, h, w = x.shape
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(max_degrees)
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).to(x.dtype)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    # grid coordinates run over [-1, 1], so one pixel is 2 / size
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0] * 2 / w], 1),
                         torch.stack([sin, cos, shift[:, 1] * 2 / h], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    moved = torch.nn.functional.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    return (moved + noise * torch.randn(moved.shape, generator=generator, dtype=x.dtype)).clamp(0, 1)


Data = Dataset | DataLoader | tuple[torch.Tensor, torch.Tensor]


def batches(data: Data, batch_size: int = 1024, device: torch.device | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets) batches from a DataLoader, a Dataset or an (x, y) pair, moved to ``device``.

    A TensorDataset or an (x, y) pair is sliced directly: no per-sample collation, which is most of the time
    a DataLoader spends on small images.
    """
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        tensors = data
    elif isinstance(data, TensorDataset) and len(data.tensors) == 2:
        tensors = data.tensors
    elif isinstance(data, DataLoader):
        for x, y in data:
            y = _as_indices(y)
            yield x.to(device) if device else x, y.to(device) if device else y
        return
    elif isinstance(data, Dataset):
        yield from batches(DataLoader(data, batch_size=batch_size), batch_size, device)
        return
    else:
        raise TypeError(f"data must be a DataLoader, a Dataset or an (inputs, targets) pair of tensors, "
                        f"got {type(data).__name__}")
    x, y = tensors[0], _as_indices(tensors[1])
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        yield (xb.to(device), yb.to(device)) if device else (xb, yb)


def _as_indices(targets: torch.Tensor) -> torch.Tensor:
    """Integer class indices as int64, the one integer type torch's losses take (int32 and int16 targets come
    from numpy and pandas): one conversion for every entry point that reads data. Other targets unchanged."""
    if isinstance(targets, torch.Tensor) and targets.dtype in (torch.int8, torch.int16, torch.int32, torch.uint8):
        return targets.long()
    return targets


def as_tensors(data: Data, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All of ``data`` (or its first ``limit`` samples) as one (inputs, targets) pair."""
    xs, ys, n = [], [], 0
    for x, y in batches(data):
        xs.append(x)
        ys.append(y)
        n += len(x)
        if limit is not None and n >= limit:
            break
    if not xs:
        raise ValueError(f"data is empty (0 samples): {_describe(data)}")
    x, y = torch.cat(xs), torch.cat(ys)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


def _describe(data: Data) -> str:
    return f"a pair of tensors shaped {tuple(data[0].shape)}" if isinstance(data, tuple) else type(data).__name__


def first_batch(data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    """All inputs of an in-memory pair or TensorDataset (cheap to check whole), else the first batch."""
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return data
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return data.tensors
    for x, y in batches(data):
        return x, y
    raise ValueError(f"data is empty (0 samples): {_describe(data)}")


def check_data(data: Data, model: torch.nn.Module | None = None, what: str = "data") -> None:
    """Refuse data that cannot give a meaningful answer, before anything runs: no samples, inputs and targets of
    different lengths, NaN or infinite inputs, inputs that cannot reach the model's device.

    In-memory data (an (x, y) pair, a TensorDataset) is checked whole; a DataLoader by its first batch."""
    x, y = first_batch(data)
    if len(x) == 0:
        raise ValueError(f"{what} is empty (0 samples): {_describe(data)}")
    if len(x) != len(y):
        raise ValueError(f"{what} has {len(x)} inputs but {len(y)} targets")
    if model is not None:
        from .device import model_device

        device = model_device(model)
        if x.device != device:
            try:
                x[:1].to(device)
            except (RuntimeError, NotImplementedError) as err:
                raise ValueError(f"{what} is on {x.device} and the model on {device}, and it cannot be moved "
                                 f"there ({err}); move one to the other's device") from None
    if (x.is_floating_point() or x.is_complex()) and x.device.type != "meta":
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"{what} has {bad} NaN or infinite input values (of {x.numel()}); clean or drop those "
                             "samples first")


def check_class_targets(targets: torch.Tensor, classes: int | None, what: str = "accuracy", hint: str = "") -> None:
    """Targets an accuracy or a cross-entropy can use: class indices (an integer tensor), and, given the number
    of ``classes`` the model outputs, one per sample (shape [N]) in 0 .. classes - 1. Float, bool or one-hot
    targets, and indices the model cannot output, would give a number that means nothing (an accuracy of 0, a
    comparison of floats), so they are refused."""
    if targets.dtype == torch.bool or targets.is_floating_point() or targets.is_complex():
        raise ValueError(f"{what} needs class indices as targets (an integer tensor), got {targets.dtype} targets; "
                         f"convert them with y.long() (one-hot targets: y.argmax(1)){hint}")
    if classes is None:
        return
    if targets.dim() != 1:
        raise ValueError(f"{what} needs one class index per sample as targets (shape [N]), got targets shaped "
                         f"{tuple(targets.shape)}{' (one-hot? use y.argmax(1))' if targets.dim() == 2 else ''}")
    if targets.numel() and targets.device.type != "meta":
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= classes:
            raise ValueError(f"targets run from {low} to {high}, but the model outputs {classes} classes "
                             f"(valid targets: 0 to {classes - 1})")


# -- torchvision data sets (extra "vision"), for users with a network ------------------------------------

def _torchvision():
    try:
        import torchvision  # noqa: F401
        from torchvision import datasets, transforms
    except ImportError as err:  # an optional extra: say how to get it
        raise ImportError("MNIST, Fashion-MNIST and CIFAR-10 need torchvision: pip install 'pruneviz[vision]'") \
            from err
    return datasets, transforms


def _vision(name: str, root: str | Path, download: bool) -> tuple[Dataset, Dataset]:
    datasets, transforms = _torchvision()
    cls = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}[name]
    tf = transforms.ToTensor()
    return (cls(str(root), train=True, download=download, transform=tf),
            cls(str(root), train=False, download=download, transform=tf))


def mnist(root: str | Path = "data", download: bool = False) -> tuple[Dataset, Dataset]:
    """MNIST (train, test) via torchvision; ``download=True`` fetches it into ``root`` first."""
    return _vision("mnist", root, download)


def fashion_mnist(root: str | Path = "data", download: bool = False) -> tuple[Dataset, Dataset]:
    """Fashion-MNIST (train, test) via torchvision; ``download=True`` fetches it into ``root`` first."""
    return _vision("fashion_mnist", root, download)


def cifar10(root: str | Path = "data", download: bool = False) -> tuple[Dataset, Dataset]:
    """CIFAR-10 (train, test) via torchvision; ``download=True`` fetches it into ``root`` first."""
    return _vision("cifar10", root, download)
