"""Data: the offline digits split, and the torchvision loaders on small files written in the datasets' own
formats (never a download)."""
import gzip
import pickle
import struct
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import pruneviz
from pruneviz import data

# -- digits ----------------------------------------------------------------------------------------------

def test_digits_split_sizes_and_shapes(digits):
    assert tuple(map(len, digits)) == (1077, 360, 360)
    for split in digits:
        x, y = split.tensors
        assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32
        assert y.dtype == torch.long and set(y.unique().tolist()) == set(range(10))
        assert x.min() >= 0 and x.max() <= 1


def test_digits_is_all_of_sklearn_digits_scaled_to_unit_range(digits):
    bunch = load_digits()
    x = torch.cat([split.tensors[0] for split in digits])
    y = torch.cat([split.tensors[1] for split in digits])
    assert Counter(y.tolist()) == Counter(bunch.target.tolist())
    # every image once: compare the sorted flattened images with sklearn's, scaled by 1/16
    ours = sorted(map(tuple, (x.flatten(1) * 16).round().long().tolist()))
    theirs = sorted(map(tuple, bunch.data.astype(int).tolist()))
    assert ours == theirs


def test_digits_split_is_stratified(digits):
    counts = Counter(load_digits().target.tolist())
    for split in (digits.val, digits.test):  # each class in proportion 360 / 1797, within one
        split_counts = Counter(split.tensors[1].tolist())
        for label, total in counts.items():
            assert abs(split_counts[label] - total * 360 / 1797) <= 1, (label, split_counts[label], total)


def test_digits_test_split_is_the_one_reported_before_the_validation_split():
    """The 360 test images are those of the earlier two-way split: numbers stay comparable across versions."""
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    _, test_idx = train_test_split(range(len(bunch.target)), test_size=360, stratify=bunch.target, random_state=0)
    expected = torch.tensor(bunch.images[test_idx] / 16.0, dtype=torch.float32).unsqueeze(1)
    assert torch.equal(data.digits().test.tensors[0], expected)


def test_digits_split_is_fixed(digits):
    again = data.digits()
    for ours, theirs in zip(digits, again):
        assert all(torch.equal(a, b) for a, b in zip(ours.tensors, theirs.tensors))


def test_digits_dtype_option():
    train = data.digits(dtype=torch.float64).train
    assert train.tensors[0].dtype == torch.float64


# -- torchvision loaders ---------------------------------------------------------------------------------

def test_loaders_say_how_to_get_torchvision_when_it_is_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now raises ImportError
    for loader in (data.mnist, data.fashion_mnist, data.cifar10):
        with pytest.raises(ImportError, match=r"pip install 'pruneviz\[vision\]'"):
            loader(tmp_path)
    assert not any(tmp_path.iterdir()), "nothing written"


def _torchvision():
    """torchvision, or a skip that says why (PyPI's wheels do not import beside the CPU torch 2.13 used here)."""
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # ImportError, or the RuntimeError of a wheel built for another torch
        pytest.skip(f"torchvision is not usable here ({type(err).__name__}: {err}); "
                    "install the 'vision' extra to run the loader tests")
    return torchvision


def _idx(array: np.ndarray) -> bytes:
    """An array in the idx format of MNIST: 0, 0, type 0x08 (uint8), ndim, big-endian int32 dims, data."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def _write_mnist(root: Path, folder: str, n_train: int, n_test: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Files as torchvision leaves them after a download: the .gz archives and their extracted copies in
    <root>/<folder>/raw/."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    splits = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            payload = _idx(array)
            (raw / name).write_bytes(payload)
            (raw / f"{name}.gz").write_bytes(gzip.compress(payload))
        splits[prefix] = (images, labels)
    return splits


@pytest.mark.parametrize("loader, folder", [(data.mnist, "MNIST"), (data.fashion_mnist, "FashionMNIST")])
def test_mnist_style_loaders_read_idx_files(loader, folder, tmp_path):
    _torchvision()
    written = _write_mnist(tmp_path, folder, n_train=12, n_test=5)
    train, test = loader(tmp_path)
    assert (len(train), len(test)) == (12, 5)
    for split, key in ((train, "train"), (test, "t10k")):
        images, labels = written[key]
        x, y = split[3]
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32
        assert torch.allclose(x[0], torch.from_numpy(images[3]).float() / 255)
        assert y == int(labels[3])
    loaded = pruneviz.evaluate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)), test)
    assert 0.0 <= loaded <= 1.0  # the datasets plug into the kit's evaluate


def test_cifar10_loader_reads_python_pickle_batches(tmp_path, monkeypatch):
    torchvision = _torchvision()
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        pixels = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)  # rows: R plane, G plane, B plane
        labels = rng.integers(0, 10, size=3).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": pixels, "labels": labels}, f)
        batches[name] = (pixels, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                     "ship", "truck"], "num_cases_per_batch": 3, "num_vis": 3072}, f)
    # torchvision checks each file's md5 against the real CIFAR-10; these small files only need to exist
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())

    train, test = data.cifar10(tmp_path)
    assert (len(train), len(test)) == (15, 3)
    x, y = test[1]
    pixels, labels = batches["test_batch"]
    assert x.shape == (3, 32, 32) and y == labels[1]
    assert torch.allclose(x, torch.from_numpy(pixels[1].reshape(3, 32, 32)).float() / 255)
