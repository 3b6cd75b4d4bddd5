"""Issue 13, unclear errors: each names what was given and what is valid, and leaves the model as it was."""
import numpy as np
import pytest
import torch

import pruneviz
from pruneviz import Pruner, evaluate, finetune, prune_tensor

from .conftest import same_state, state_of
from .practitioner_models import build, calibration


@pytest.fixture
def model():
    return build("conv_bn")


def _refused(model, call, error, match):
    before = state_of(model)
    with pytest.raises(error, match=match):
        call()
    assert same_state(before, state_of(model))


def test_layers_given_as_one_string(model):
    _refused(model, lambda: Pruner(model, layers="0"), ValueError, r"the string '0' \(for one layer: layers=\['0'\]\)")


def test_layers_empty(model):
    _refused(model, lambda: Pruner(model, layers=[]), ValueError, r"layers=\[\] names no layer; give some of: '0'")


def test_layers_unknown(model):
    _refused(model, lambda: Pruner(model, layers=["conv9"]), ValueError, r"unknown layer 'conv9'; valid choices: '0'")


@pytest.mark.parametrize("bad", [None, "digits-cnn", torch.zeros(3)])
def test_not_a_model(bad):
    for call in (lambda: Pruner(bad), lambda: evaluate(bad, calibration()),
                 lambda: finetune(bad, calibration(), pruner=None)):
        with pytest.raises(TypeError, match=f"must be a torch.nn.Module, got {type(bad).__name__}"):
            call()


def test_empty_data(model):
    x, y = calibration()
    empty = (x[:0], y[:0])
    pruner = Pruner(model)
    _refused(model, lambda: evaluate(model, empty), ValueError, r"empty \(0 samples\)")
    _refused(model, lambda: finetune(model, empty, pruner=pruner, progress=False), ValueError, "empty")
    _refused(model, lambda: Pruner(model, "obd", data=empty), ValueError, "calibration data is empty")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*empty), batch_size=8)
    _refused(model, lambda: evaluate(model, loader), ValueError, r"empty \(0 samples\): DataLoader")


def test_nan_in_calibration_data(model):
    x, y = calibration()
    x[3, 0, 1, 1] = float("nan")
    for criterion in ("obd", "apoz", "regression"):  # the criteria that read calibration data
        _refused(model, lambda: Pruner(model, criterion, "channel", data=(x, y)), ValueError,
                 "calibration data has 1 NaN or infinite input values")


def test_data_on_another_device(model):
    x, y = calibration()
    elsewhere = (x.to("meta"), y.to("meta"))  # a device the CPU model cannot read from, on any machine
    _refused(model, lambda: evaluate(model, elsewhere), ValueError, "is on meta and the model on cpu")
    _refused(model, lambda: Pruner(model, "obd", data=elsewhere), ValueError, "is on meta and the model on cpu")


def test_prune_tensor_given_what_is_not_a_weight_tensor():
    with pytest.raises(TypeError, match=r"got ndarray \(convert it with torch.as_tensor"):
        prune_tensor(np.ones((2, 2)), 0.5)
    with pytest.raises(TypeError, match="a bool tensor is already a mask"):
        prune_tensor(torch.ones(2, 2, dtype=torch.bool), 0.5)
    with pytest.raises(ValueError, match="'apoz' needs a model and calibration data.*'magnitude', 'l2', 'random'"):
        prune_tensor(torch.ones(2, 2), 0.5, criterion="apoz")


def test_from_state_dict_given_a_models_own_state_dict(model):
    _refused(model, lambda: Pruner.from_state_dict(model, model.state_dict()), ValueError,
             r"needs a Pruner.state_dict\(\).*looks like a model's state_dict: load it with model.load_state_dict")


def test_compact_given_the_pruner(model):
    pruner = Pruner(model, granularity="channel").prune(0.5)
    with pytest.raises(TypeError, match=r"compact\(model, pruner.masks\)"):
        pruneviz.compact(model, pruner)


@pytest.mark.parametrize("ratio", ["0.5", b"0.5", True, None, [0.5], float("nan"), 1.01])
def test_a_ratio_is_a_number(model, ratio):
    pruner = Pruner(model)
    _refused(model, lambda: pruner.prune(ratio), ValueError, r"must be a number in \[0, 1\], got")
    _refused(model, lambda: pruner.prune({"0": ratio}), ValueError, r"sparsity of 0 must be a number in \[0, 1\]")


def test_model_converted_to_float64_after_the_pruner(model):
    pruner = Pruner(model).prune(0.3)
    model.double()
    _refused(model, lambda: pruner.prune(0.5), ValueError,
             r"converted from torch.float32 to torch.float64 after this Pruner was built; build a new Pruner")


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": float("nan")}, r"lr must be a finite number > 0, got nan"),
    ({"lr": float("inf")}, r"lr must be a finite number > 0, got inf"),
    ({"batch_size": 0}, r"batch_size must be a whole number >= 1, got 0"),
    ({"optimizer": lambda params: torch.optim.LBFGS(params)}, "LBFGS needs a closure"),
])
def test_finetune_arguments_checked_before_the_model_is_touched(model, kwargs, match):
    pruner = Pruner(model).prune(0.5)
    model.train()
    _refused(model, lambda: finetune(model, calibration(), pruner=pruner, steps=3, progress=False, **kwargs),
             ValueError, match)
    assert model.training


@pytest.mark.parametrize("targets, match", [
    (lambda y: y + 4, r"targets run from 4 to 7, but the model outputs 4 classes \(valid targets: 0 to 3\)"),
    (lambda y: y.float(), r"class indices as targets \(an integer tensor\), got torch.float32"),
])
def test_finetune_targets_checked_before_the_model_is_touched(model, targets, match):
    pruner = Pruner(model).prune(0.5)
    x, y = calibration()
    _refused(model, lambda: finetune(model, (x, targets(y)), pruner=pruner, steps=3, progress=False), ValueError,
             match)


def test_widgets_name_a_model_or_data_they_cannot_use():
    import matplotlib

    matplotlib.use("Agg")
    from pruneviz.widgets import explore

    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got int"):
        explore(42, calibration(), figure="agg")
    with pytest.raises(ValueError, match="digits-cnnn.*digits-cnn"):  # a string is a zoo name: an unknown one is said
        explore("digits-cnnn", calibration(), figure="agg")
    x, y = calibration()
    with pytest.raises(ValueError, match=r"evaluation data is empty \(0 samples\)"):
        explore(build("conv_bn"), (x[:0], y[:0]), figure="agg")
