import os

import pytest
import torch

import pruneviz

# a result that needs training must come from a shipped artefact here: a stale one is an error, not a live
# run whose last digits depend on this CPU (pruneviz/artefacts.py)
os.environ.setdefault("PRUNEVIZ_ARTEFACTS", "require")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The kit's tensors are small: one thread is as fast, and far faster when other processes share the
    cores (two threads on two busy cores made convolutions ten times slower here)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits():
    return pruneviz.data.digits()


@pytest.fixture
def cnn():
    return pruneviz.zoo.load("digits-cnn", device="cpu")


@pytest.fixture
def mlp():
    return pruneviz.zoo.load("digits-mlp", device="cpu")


@pytest.fixture
def resnet():
    return pruneviz.zoo.load("digits-resnet", device="cpu")


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A deep copy of every parameter and buffer, to compare bit for bit."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
