"""The widgets take either task: a zoo name brings its own test set (issue 18), a model of one's own needs data."""
import pytest
import torch

import pruneviz
from pruneviz.widgets import compare, explore

GRID = (0.0, 0.5)


def test_a_zoo_name_brings_its_own_task_test_set_and_names_it():
    explorer = explore("mnist1d-cnn", figure="agg", grid=GRID)
    x, y = pruneviz.data.as_tensors(explorer.session.data)
    assert x.shape[1:] == (1, 40) and len(y) == 5000  # MNIST-1D's test signals, not the digits
    assert explorer.data_name == "the MNIST-1D test set"
    explorer.sparsity.value = 0.5
    model = explorer.session.model
    assert 0.4 < pruneviz.sparsity(model) < 0.6
    assert pruneviz.evaluate(model, explorer.session.data) < pruneviz.evaluate(pruneviz.zoo.load("mnist1d-cnn"),
                                                                                explorer.session.data)
    assert explore(figure="agg", grid=GRID).data_name == "the digits test set"  # no arguments: as before


def test_compare_takes_a_zoo_name_of_either_task():
    view = compare("mnist1d-mlp", criteria=["magnitude", "random"], figure="agg", grid=GRID, sparsity=0.5)
    assert "magnitude" in view.readout_text() and "random" in view.readout_text()


def test_a_model_of_ones_own_without_data_is_a_clear_error_and_a_bad_name_lists_the_zoo():
    with pytest.raises(ValueError, match="needs its data: pass data=.*Sequential"):
        explore(torch.nn.Sequential(torch.nn.Linear(40, 10)), figure="agg")
    with pytest.raises(ValueError, match="mnist1d-cnn"):
        compare("mnist1d-cnnn", figure="agg")
