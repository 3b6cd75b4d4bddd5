"""What a practitioner's own model and data meet at the edges: a layer with no weights, an empty or integer tensor,
data of the wrong kind, inputs the model cannot take, a model whose output is not logits. Each either works or
fails with a message that names what was given, never an error from deep inside the kit."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import pruneviz


def test_a_layer_with_no_weights_is_pruned_and_restored_with_the_others():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(0, 4), nn.Linear(4, 3))
    dense = copy.deepcopy(model.state_dict())
    pruner = pruneviz.Pruner(model, "magnitude", "element")
    pruner.prune(0.5)
    assert int(torch.count_nonzero(model[1].weight)) == 6
    assert pruner.nonzero_counts()["1.weight"] == 6
    pruner.restore()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in dense.items())


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float16, torch.float64])
def test_prune_tensor_keeps_the_dtype(dtype):
    tensor = torch.tensor([[-2, 3, -5, 1], [4, -1, 0, 6]]).to(dtype)
    pruned = pruneviz.prune_tensor(tensor, 0.5)
    assert pruned.dtype == dtype
    assert torch.equal(pruned, torch.tensor([[0, 3, -5, 0], [4, 0, 0, 6]]).to(dtype))


def test_prune_tensor_of_an_empty_tensor_is_empty():
    assert pruneviz.prune_tensor(torch.randn(0, 4), 0.5).shape == (0, 4)


def test_numpy_arrays_as_data_are_named_with_the_conversion():
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(TypeError, match=r"a tuple of 2: \(ndarray, ndarray\).*torch\.as_tensor"):
        pruneviz.evaluate(model, (np.zeros((5, 4), np.float32), np.zeros(5, np.int64)))


def test_inputs_the_model_cannot_take_name_their_shape_and_leave_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(16, 3)).train()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(RuntimeError, match=r"could not run on a batch of inputs shaped \(4, 3, 4, 4\) \(float32\)"):
        pruneviz.evaluate(model, (torch.randn(4, 3, 4, 4), torch.zeros(4, dtype=torch.long)))
    assert model.training and all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize("model", [nn.LSTM(4, 3, batch_first=True), nn.Linear(4, 3)], ids=["tuple", "3-d"])
def test_a_model_that_does_not_output_logits_is_told_so(model):
    x, y = torch.randn(5, 2, 4), torch.zeros(5, dtype=torch.long)
    with pytest.raises((TypeError, ValueError), match=r"returned a tuple|\[N, classes\]"):
        pruneviz.evaluate(model, (x, y))


def test_training_on_inputs_the_model_cannot_take_says_so_and_changes_nothing():
    model = nn.Sequential(nn.Linear(4, 3))
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(RuntimeError, match=r"could not run on a batch of inputs shaped \(1, 7\)"):
        pruneviz.train(model, (torch.randn(5, 7), torch.zeros(5, dtype=torch.long)), epochs=1)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_a_custom_loss_takes_whatever_the_model_returns():
    """Only cross-entropy needs logits: a loss_fn of its own may read a tuple."""
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x), x.sum()

    losses = pruneviz.train(Pair(), (torch.randn(8, 4), torch.zeros(8, dtype=torch.long)), epochs=2, progress=False,
                            loss_fn=lambda model, out, y: nn.functional.cross_entropy(out[0], y))
    assert len(losses) == 2 and all(np.isfinite(losses))
