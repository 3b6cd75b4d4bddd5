"""pruneviz.data.cifar10 on small archives written here in the official layout: nothing is downloaded."""
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

import pruneviz
from pruneviz import data, zoo

PER_BATCH = 20  # five training batches: 100 images, 10 per class
TEST_SIZE = 10


def _batch_pickle(pixels: np.ndarray, labels: list[int], name: str) -> bytes:
    """A batch as the official files hold it: a dict pickled by Python 2 with protocol 2, whose array names
    numpy.core (numpy 2 writes numpy._core; the old name must still load)."""
    payload = pickle.dumps({"batch_label": f"{name} of 5", "data": pixels, "labels": labels,
                            "filenames": [f"img_{i}.png" for i in range(len(labels))]}, protocol=2)
    return payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def _archive(batches: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _fake_cifar10() -> tuple[bytes, dict[str, tuple[np.ndarray, list[int]]]]:
    rng = np.random.default_rng(0)
    written, batches = {}, {}
    for name, n in [(f"data_batch_{i}", PER_BATCH) for i in range(1, 6)] + [("test_batch", TEST_SIZE)]:
        pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)  # rows: 1024 R, 1024 G, 1024 B
        labels = rng.permutation(np.arange(n) % 10).tolist()
        written[name] = (pixels, labels)
        batches[name] = _batch_pickle(pixels, labels, name)
    return _archive(batches), written


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A root holding a small archive in the official layout, accepted as official (its own MD5)."""
    archive, written = _fake_cifar10()
    (tmp_path / data.CIFAR10_ARCHIVE).write_bytes(archive)
    monkeypatch.setattr(data, "CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    return tmp_path, written


def _rows(dataset) -> set[bytes]:
    return {bytes((x * 255).round().to(torch.uint8).flatten().numpy()) for x in dataset.tensors[0]}


def test_reads_the_pickled_batches_into_train_val_test(fake):
    root, written = fake
    train, val, test = data.cifar10(root=root)
    assert (len(train), len(val), len(test)) == (90, 10, 10)  # a tenth of training held out for choices
    for split in (train, val, test):
        x, y = split.tensors
        assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0  # the lab's ToTensor(): pixels / 255
    pixels, labels = written["test_batch"]
    x, y = test[3]
    assert torch.equal(x, torch.from_numpy(pixels[3].reshape(3, 32, 32)).float() / 255)  # R, G, B planes
    assert torch.equal(test.tensors[1], torch.tensor(labels))  # the official test set, in its order
    every_train_image = {bytes(row) for name in written if name != "test_batch" for row in written[name][0]}
    assert _rows(train) | _rows(val) == every_train_image and not _rows(train) & _rows(val)
    assert sorted(val.tensors[1].tolist()) == list(range(10))  # stratified: one of each class here
    again = data.cifar10(root=root)
    assert all(torch.equal(a.tensors[0], b.tensors[0]) for a, b in zip((train, val, test), again))  # fixed seed


def test_zoo_data_of_a_cifar10_model_is_cifar10(fake):
    root, _ = fake
    splits = zoo.data("cifar10-vgg", root=root)
    direct = data.cifar10(root=root)
    assert all(torch.equal(a.tensors[0], b.tensors[0]) for a, b in zip(splits, direct))
    model = zoo.build("cifar10-resnet18").eval()
    assert 0.0 <= pruneviz.evaluate(model, splits.test) <= 1.0  # the splits plug into the kit as they are


def test_without_the_archive_the_error_names_root_the_switch_and_the_size(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        data.cifar10(root=tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and "download=True" in message and "163 MB" in message
    assert not (tmp_path / "nowhere").exists()  # nothing fetched, nothing made
    with pytest.raises(FileNotFoundError, match="download=True"):
        zoo.data("cifar10-resnet18", root=tmp_path)


def test_the_default_root_is_the_kit_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cifar10")):
        data.cifar10()
    monkeypatch.setenv("PRUNEVIZ_CACHE_DIR", "")
    with pytest.raises(ValueError, match="pass root="):
        data.cifar10()


def test_the_old_positional_root_is_refused_with_the_new_spelling(tmp_path):
    with pytest.raises(TypeError, match=r"download must be True or False.*root="):
        data.cifar10(str(tmp_path))


def _serve(monkeypatch, payload: bytes) -> list[str]:
    """urllib.request.urlopen answering with ``payload``: what a download would receive, without a network."""
    asked = []

    def urlopen(url, timeout=None):
        asked.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    return asked


def test_download_keeps_the_archive_only_when_its_md5_is_the_official_one(tmp_path, monkeypatch):
    archive, written = _fake_cifar10()
    asked = _serve(monkeypatch, archive)
    with pytest.raises(ValueError) as error:  # the real checksum: this archive is not CIFAR-10
        data.cifar10(download=True, root=tmp_path)
    assert data.CIFAR10_MD5 in str(error.value) and hashlib.md5(archive).hexdigest() in str(error.value)
    assert asked == [data.CIFAR10_URL] and list(tmp_path.iterdir()) == []  # no partial or altered file left

    monkeypatch.setattr(data, "CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    train, val, test = data.cifar10(download=True, root=tmp_path)
    assert (tmp_path / data.CIFAR10_ARCHIVE).read_bytes() == archive and len(asked) == 2
    assert torch.equal(test.tensors[1], torch.tensor(written["test_batch"][1]))
    data.cifar10(download=True, root=tmp_path)
    assert len(asked) == 2  # there already: not fetched again


def test_an_altered_archive_on_disk_is_refused(fake):
    root, _ = fake
    archive = root / data.CIFAR10_ARCHIVE
    archive.write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(ValueError, match="not the official file.*download=True"):
        data.cifar10(root=root)


class _Call:
    def __reduce__(self):
        return (os.getpid, ())


@pytest.mark.parametrize("batches, match", [
    ({"data_batch_1": pickle.dumps({"data": _Call()})}, "does not call posix.getpid|does not call nt.getpid"),
    ({f"data_batch_{i}": pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0]})
      for i in range(1, 6)}, "no cifar-10-batches-py/test_batch"),
    ({name: pickle.dumps({"data": np.zeros((1, 100), np.uint8), "labels": [0]})
      for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}, r"expected \[N, 3072\]"),
])
def test_archives_that_are_not_cifar10_are_refused(tmp_path, monkeypatch, batches, match):
    archive = _archive(batches)
    (tmp_path / data.CIFAR10_ARCHIVE).write_bytes(archive)
    monkeypatch.setattr(data, "CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    with pytest.raises((ValueError, pickle.UnpicklingError), match=match):
        data.cifar10(root=tmp_path)
