import pytest
import torch

import pruneviz


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
