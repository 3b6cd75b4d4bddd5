"""Promise 5: bad input raises a clear ValueError naming the valid choices, and changes nothing."""
import pytest
import torch

from pruneviz import Pruner, prune_tensor
from pruneviz.zoo.models import digits_cnn

from .conftest import same_state, state_of


@pytest.fixture
def model():
    torch.manual_seed(0)
    return digits_cnn().eval()


@pytest.mark.parametrize("ratio", [-0.1, 1.01, float("nan"), float("inf"), "half", None, True])
def test_bad_ratio(model, ratio):
    pruner = Pruner(model).prune(0.3)
    before = state_of(model)
    masks = {n: m.clone() for n, m in pruner.masks.items()}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pruner.prune(ratio)
    assert same_state(before, state_of(model))
    assert all(torch.equal(masks[n], m) for n, m in pruner.masks.items())


def test_bad_ratio_in_dict_changes_nothing(model):
    pruner = Pruner(model).prune(0.3)
    before = state_of(model)
    with pytest.raises(ValueError, match="conv2"):
        pruner.prune({"conv1": 0.5, "conv2": 2.0})
    assert same_state(before, state_of(model))


def test_unknown_layer_in_dict(model):
    pruner = Pruner(model)
    before = state_of(model)
    with pytest.raises(ValueError, match=r"unknown layer 'conv9'.*'conv1'"):
        pruner.prune({"conv9": 0.5})
    assert same_state(before, state_of(model))


def test_unknown_layer_at_construction(model):
    with pytest.raises(ValueError, match=r"unknown layer 'nope'.*'conv1'"):
        Pruner(model, layers=["nope"])


@pytest.mark.parametrize("kwargs,message", [
    ({"criterion": "biggest"}, r"unknown criterion 'biggest'.*'magnitude'.*'random'"),
    ({"granularity": "blocks"}, r"unknown granularity 'blocks'.*'element'.*'N:M'.*'channel'"),
    ({"scope": "everywhere"}, r"unknown scope 'everywhere'.*'local'.*'global'"),
    ({"granularity": "3:2"}, r"0 < N <= M"),
])
def test_unknown_names_when_built(model, kwargs, message):
    before = state_of(model)
    with pytest.raises(ValueError, match=message):
        Pruner(model, **kwargs)
    assert same_state(before, state_of(model))


def test_nm_on_indivisible_dimension():
    with pytest.raises(ValueError, match="multiple of 4"):
        prune_tensor(torch.randn(4, 6), 0.5, granularity="2:4")


def test_nm_layer_out_of_scope_named_in_dict(model):
    pruner = Pruner(model, granularity="2:4")
    assert "conv1" in pruner.skipped  # one input channel: M = 4 does not divide it
    with pytest.raises(ValueError, match="conv1.*multiple of 4"):
        pruner.prune({"conv1": 0.5})


def test_no_layer_in_scope_says_why():
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with pytest.raises(ValueError, match="vector granularity needs a conv weight"):
        Pruner(mlp, granularity="vector")


def test_dict_with_global_scope(model):
    with pytest.raises(ValueError, match="scope='local'"):
        Pruner(model, scope="global").prune({"conv1": 0.5})


def test_granularity_on_a_1d_tensor():
    with pytest.raises(ValueError, match="2 or more dims"):
        prune_tensor(torch.randn(8), 0.5, granularity="channel")
