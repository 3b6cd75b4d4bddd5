"""Data: the offline digits split, MNIST-1D generated offline, and the torchvision loaders on small files
written in the datasets' own formats (never a download)."""
import gzip
import hashlib
import json
import os
import struct
import subprocess
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


# -- MNIST-1D --------------------------------------------------------------------------------------------

# sha256 of the float32 signals then the int64 labels of train, val, test and the standard test set, in order
MNIST1D_SHA256 = "8ff09ccf6968c532a95e72e4c0c8bb6f5afdf04ef5758a4f555030de4610d9f4"
CHECKSUM = """
import hashlib, json
from pruneviz import data
h = hashlib.sha256()
for split in (*data.mnist1d(), data.mnist1d_standard_test()):
    for tensor in split.tensors:
        h.update(tensor.numpy().tobytes())
print(json.dumps(h.hexdigest()))
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """MNIST-1D generated once for these tests (no in-process cache, an empty disk cache of their own):
    (splits, standard test, the cache folder)."""
    folder = tmp_path_factory.mktemp("mnist1d") / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRUNEVIZ_CACHE_DIR", str(folder))
        data._mnist1d_arrays.cache_clear()
        state = np.random.get_state()
        splits, standard = data.mnist1d(), data.mnist1d_standard_test()
        assert np.array_equal(np.random.get_state()[1], state[1]), "the generator's global seeding leaked out"
    data._mnist1d_arrays.cache_clear()
    return splits, standard, folder


def _checksum(splits) -> str:
    h = hashlib.sha256()
    for split in splits:
        for tensor in split.tensors:
            h.update(tensor.numpy().tobytes())
    return h.hexdigest()


def test_mnist1d_contract_and_checksum(generated):
    splits, standard, _ = generated
    assert tuple(map(len, splits)) == (4000, 5000, 5000) and len(standard) == 1000
    for split in (*splits, standard):
        x, y = split.tensors
        assert x.shape[1:] == (1, 40) and x.dtype == torch.float32 and y.dtype == torch.long
        assert set(y.unique().tolist()) == set(range(10))
    for split in (splits.val, splits.test):  # 500 signals per class
        assert torch.bincount(split.tensors[1]).tolist() == [500] * 10
    assert _checksum((*splits, standard)) == MNIST1D_SHA256


def test_mnist1d_train_and_standard_test_are_the_papers(generated):
    from mnist1d.data import get_dataset_args, make_dataset

    paper = make_dataset(get_dataset_args())
    (train, _, _), standard, _ = generated
    assert np.array_equal(train.tensors[0][:, 0].numpy(), paper["x"].astype(np.float32))
    assert np.array_equal(train.tensors[1].numpy(), paper["y"])
    assert np.array_equal(standard.tensors[0][:, 0].numpy(), paper["x_test"].astype(np.float32))
    assert np.array_equal(standard.tensors[1].numpy(), paper["y_test"])


def test_mnist1d_splits_share_no_signal(generated):
    splits, standard, _ = generated
    seen = [set(map(bytes, split.tensors[0].numpy())) for split in (*splits, standard)]
    for i in range(len(seen)):
        for j in range(i + 1, len(seen)):
            assert not seen[i] & seen[j], (i, j)


def test_mnist1d_checksum_holds_on_another_numpy_simd_path(tmp_path):
    """The generator's float64 output differs in the last bits when numpy takes another SIMD path (measured:
    31 % of the values, by <= 8.9e-16, without AVX-512 and AVX2); the float32 cast must hide that."""
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": "AVX512_ICL X86_V4 X86_V3", "PRUNEVIZ_CACHE_DIR": "",
           "PYTHONPATH": str(Path(pruneviz.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", CHECKSUM], env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == MNIST1D_SHA256


def test_mnist1d_disk_cache_is_read_back_and_a_damaged_file_is_made_again(generated, tmp_path, monkeypatch):
    first, standard, folder = generated
    files = sorted(folder.iterdir())
    assert len(files) == 3 and all(f.name.startswith("mnist1d-") for f in files)  # the standard draw, val, test
    monkeypatch.setenv("PRUNEVIZ_CACHE_DIR", str(tmp_path))
    for file in files:
        (tmp_path / file.name).write_bytes(file.read_bytes())
    files = sorted(tmp_path.iterdir())
    data._mnist1d_arrays.cache_clear()
    with monkeypatch.context() as patch:
        patch.setattr(data, "_generate_mnist1d", lambda *a: pytest.fail("generated although cached"))
        again = data.mnist1d()
    assert all(torch.equal(a, b) for s, t in zip(first, again) for a, b in zip(s.tensors, t.tensors))
    files[0].write_bytes(files[0].read_bytes()[:1000])  # a truncated file
    with np.load(files[1], allow_pickle=False) as stored:  # a file whose numbers changed
        x, y, digest = stored["x"].copy(), stored["y"], stored["sha256"]
    x[0, 0] += 1
    np.savez(files[1], x=x, y=y, sha256=digest)
    data._mnist1d_arrays.cache_clear()
    try:
        assert _checksum((*data.mnist1d(), data.mnist1d_standard_test())) == MNIST1D_SHA256
    finally:
        data._mnist1d_arrays.cache_clear()


def test_mnist1d_without_a_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_CACHE_DIR", "")
    data._mnist1d_arrays.cache_clear()
    try:
        signals = data.mnist1d_signals(7, 20)
    finally:
        data._mnist1d_arrays.cache_clear()
    assert signals.tensors[0].shape == (20, 1, 40) and torch.bincount(signals.tensors[1]).tolist() == [2] * 10
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("PRUNEVIZ_CACHE_DIR", str(not_a_folder / "sub"))
    try:
        again = data.mnist1d_signals(7, 20)  # cannot write the cache (as in a read-only home): generates, goes on
    finally:
        data._mnist1d_arrays.cache_clear()
    assert torch.equal(again.tensors[0], signals.tensors[0])


def test_mnist1d_returns_fresh_tensors():
    first = data.mnist1d_standard_test()
    first.tensors[0].zero_()
    assert data.mnist1d_standard_test().tensors[0].abs().sum() > 0


@pytest.mark.parametrize("seed, n", [(-1, 100), (1.5, 100), (True, 100), (1, 15), (1, 0), (1, "10")])
def test_mnist1d_signals_refuses_bad_arguments(seed, n):
    with pytest.raises(ValueError, match="seed|num_samples"):
        data.mnist1d_signals(seed, n)


# -- torchvision loaders ---------------------------------------------------------------------------------

def test_loaders_say_how_to_get_torchvision_when_it_is_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now raises ImportError
    for loader in (data.mnist, data.fashion_mnist):  # CIFAR-10 is read without torchvision: test_cifar10.py
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
