"""Data sets: an offline default (scikit-learn's handwritten digits) and torchvision's for users with a network.

The digits ship inside scikit-learn, so every notebook and test runs with no download.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

DIGITS_TEST_SIZE = 360
DIGITS_SPLIT_SEED = 0


def digits(dtype: torch.dtype = torch.float32) -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's 1797 handwritten digits (8x8, 10 classes) as (train, test): a fixed stratified split
    of 1437 / 360 images, pixels scaled to [0, 1], shaped [N, 1, 8, 8]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=dtype).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(torch.arange(len(y)).numpy(), test_size=DIGITS_TEST_SIZE,
                                           stratify=bunch.target, random_state=DIGITS_SPLIT_SEED)
    return (TensorDataset(x[train_idx], y[train_idx]), TensorDataset(x[test_idx], y[test_idx]))


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
            yield x.to(device) if device else x, y.to(device) if device else y
        return
    elif isinstance(data, Dataset):
        yield from batches(DataLoader(data, batch_size=batch_size), batch_size, device)
        return
    else:
        raise TypeError(f"data must be a DataLoader, a Dataset or an (inputs, targets) pair of tensors, "
                        f"got {type(data).__name__}")
    x, y = tensors
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        yield (xb.to(device), yb.to(device)) if device else (xb, yb)


def as_tensors(data: Data, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All of ``data`` (or its first ``limit`` samples) as one (inputs, targets) pair."""
    xs, ys, n = [], [], 0
    for x, y in batches(data):
        xs.append(x)
        ys.append(y)
        n += len(x)
        if limit is not None and n >= limit:
            break
    x, y = torch.cat(xs), torch.cat(ys)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


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
