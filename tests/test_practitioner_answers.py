"""Silent wrong answers and errors a user can act on (issue 20, items 5, 10-13, 15-17, 21): each a class."""
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import pruneviz
from pruneviz import Pruner
from pruneviz.criteria import obd
from pruneviz.criteria.regression import reconstruct
from pruneviz.data import as_tensors
from pruneviz.metrics import latency
from pruneviz.ratios import ratios_for_drop
from pruneviz.schedules import Iterative, OneShot, run_schedule, schedule_sweep
from pruneviz.timing import compare_latency

from .conftest import same_state, state_of


@pytest.fixture(scope="module")
def calib():
    x, y = as_tensors(pruneviz.data.digits().val)
    return x[:48], y[:48]


# -- 10: a cache never answers for another function ------------------------------------------------------------------
class Tempered(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 10)
        self.temperature = 1.0

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1)))) / self.temperature


def _fresh(model, data):
    obd._DIAGONALS.clear()
    return obd.hessian_diagonal(model, data)


def test_hessian_cache_sees_a_changed_plain_attribute(calib):
    model = Tempered()
    cached_first = obd.hessian_diagonal(model, calib)
    model.temperature = 0.1
    got = obd.hessian_diagonal(model, calib)
    expected = _fresh(model, calib)
    assert all(torch.equal(got[n], expected[n]) for n in got)
    assert not torch.equal(got["fc1"], cached_first["fc1"])


def test_hessian_cache_sees_a_class_redefined_with_the_same_seed(calib):
    first = obd.hessian_diagonal(Tempered(), calib)

    class Tempered2(Tempered):  # as a notebook cell redefining the class: same names, same seed, other forward
        def forward(self, x):
            return self.fc2(torch.tanh(self.fc1(x.flatten(1)))) * 10

    Tempered2.__name__ = Tempered2.__qualname__ = "Tempered"
    model = Tempered2()
    got = obd.hessian_diagonal(model, calib)
    assert all(torch.equal(got[n], _fresh(model, calib)[n]) for n in got)
    assert not torch.equal(got["fc1"], first["fc1"])


# -- 11: reconstruct with NaN calibration data -----------------------------------------------------------------------
def test_reconstruct_refuses_nan_calibration_data_and_changes_nothing(calib):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    pruner = Pruner(model, "magnitude", "channel", layers=["conv1", "conv2"]).prune(0.5)
    before = state_of(model)
    x = calib[0].clone()
    x[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        reconstruct(pruner, (x, calib[1]))
    assert same_state(before, state_of(model))
    reconstruct(pruner, calib)  # the same call on clean data works
    assert torch.isfinite(model.conv2.weight).all()


# -- 12: every round of a schedule is reached, fine-tuned between rounds or not ----------------------------------
@pytest.mark.parametrize("schedule", [Iterative(0.9, 3, 0), Iterative(0.9, 3, 0, spacing="linear"), OneShot(0.9, 0)])
def test_a_schedule_without_fine_tuning_reaches_its_final_sparsity(schedule, calib):
    model = pruneviz.zoo.load("digits-mlp", device="cpu")
    pruner = Pruner(model)
    history = run_schedule(schedule, pruner, calib, progress=False)
    assert pruner.sparsity() == pytest.approx(0.9, abs=0.01)
    rounds = history[history.event == "prune"].sparsity.tolist()
    expected = schedule.round_targets() if isinstance(schedule, Iterative) else [0.9]
    assert rounds == pytest.approx(expected, abs=0.01)


# -- 13: two scans in one frame --------------------------------------------------------------------------------------
def test_ratios_for_drop_refuses_a_frame_holding_two_scans():
    scan = pd.DataFrame({"layer": ["a"] * 3, "sparsity": [0.0, 0.5, 0.9], "accuracy": [0.9, 0.89, 0.5]})
    assert ratios_for_drop(scan, 0.02) == {"a": 0.5}
    with pytest.raises(ValueError, match="more than once.*groupby"):
        ratios_for_drop(pd.concat([scan, scan]), 0.02)
    averaged = pd.concat([scan, scan]).groupby(["layer", "sparsity"], sort=False, as_index=False)["accuracy"].mean()
    assert ratios_for_drop(averaged, 0.02) == {"a": 0.5}


# -- 21: global channel pruning never empties a layer by default ---------------------------------------------------
class Scales(nn.Module):
    """Three layers on very different weight scales: one global threshold would empty the small ones."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2, self.c3 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Linear(512, 10)
        with torch.no_grad():
            self.c2.weight.mul_(1e-3)

    def forward(self, x):
        return self.c3(torch.relu(self.c2(torch.relu(self.c1(x)))).flatten(1))


def test_global_channel_pruning_keeps_a_channel_per_layer_and_says_so():
    model = Scales()
    with pytest.warns(UserWarning, match="kept one channel in c2"):
        pruner = Pruner(model, "magnitude", "channel", "global").prune(0.9)
    assert int(pruner.group_masks()["c2"].sum()) == 1 and "c2" in pruner.guarded
    kept = pruner.group_masks()["c2"]
    assert model.c2.weight[kept].abs().sum() > 0  # the most important channel, with its weights
    strict = Pruner(model, "magnitude", "channel", "global", max_layer_sparsity=0.5).prune(0.5)
    assert all(int(m.sum()) >= 4 for m in strict.group_masks().values())


def test_the_guard_is_quiet_where_no_layer_would_empty(calib, recwarn):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    pruner = Pruner(model, "magnitude", "channel", "global", layers=["conv2", "conv3", "conv4"]).prune(0.5)
    assert pruner.guarded == {} and not [w for w in recwarn if "kept one" in str(w.message)]


# -- 15: integer class indices of any width --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_narrow_integer_targets_work_everywhere(dtype, calib):
    x, y = calib
    data = (x, y.to(dtype))
    model = pruneviz.zoo.load("digits-mlp", device="cpu")
    pruner = Pruner(model).prune(0.5)
    pruneviz.finetune(model, data, pruner=pruner, steps=2, progress=False)
    pruneviz.train(pruneviz.zoo.load("digits-mlp", device="cpu"), data, steps=2, progress=False)
    layer = next(iter(pruner.layers))
    obd.hessian_diagonal(model, data, [layer], mode="exact", limit=4, max_exact=10**6)
    obd.single_weight_test(model, data, [layer], per_layer=2, limit=8)
    masks = {layer: torch.rand(pruner.layers[layer].weight.shape, generator=torch.Generator().manual_seed(0)) > 0.5}
    obd.taylor_terms(model, data, masks, limit=8)
    assert pruneviz.evaluate(model, data) == pruneviz.evaluate(model, (x, y))


# -- 16: errors, not crashes ---------------------------------------------------------------------------------------
def test_scaling_on_a_lone_tensor_says_why():
    with pytest.raises(ValueError, match="cannot score a lone tensor.*BatchNorm"):
        pruneviz.prune_tensor(torch.randn(4, 4), 0.5, criterion="scaling", granularity="channel")


def test_compare_latency_with_zero_runs_is_refused():
    model = pruneviz.zoo.load("digits-mlp", device="cpu")
    with pytest.raises(ValueError, match="runs must be a whole number >= 1"):
        compare_latency({"m": model}, torch.zeros(1, 1, 8, 8), runs=0)


def test_schedule_sweep_with_no_sparsities_is_refused(calib):
    with pytest.raises(ValueError, match="sparsities is empty"):
        schedule_sweep(pruneviz.zoo.load("digits-mlp", device="cpu"), [], calib, calib)


def test_latency_of_a_numpy_array_is_refused_and_leaves_the_mode():
    model = pruneviz.zoo.load("digits-mlp", device="cpu").train()
    with pytest.raises(TypeError, match="torch.as_tensor"):
        latency(model, np.zeros((1, 1, 8, 8), dtype=np.float32))
    assert all(m.training for m in model.modules())


# -- 17: the CLIs say what went wrong -------------------------------------------------------------------------------
def test_notebooks_copy_into_the_kits_own_folder_is_an_error(capsys):
    from pruneviz.notebooks import folder
    from pruneviz.notebooks.__main__ import main

    assert main(["copy", str(folder() / "student"), "--student", "--force"]) == 1
    assert "where the kit's own notebooks are" in capsys.readouterr().err  # said, not a SameFileError


def test_notebooks_copy_into_a_folder_it_cannot_write_is_an_error(capsys, tmp_path):
    from pruneviz.notebooks.__main__ import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["copy", str(blocker / "sub")]) == 1  # a path under a file: the OS refuses (as /sys/x does)
    assert capsys.readouterr().err.startswith("error:")


def test_lecture_of_a_broken_notebook_is_an_error(tmp_path, capsys):
    from pruneviz.lecture import main

    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    with pytest.raises(SystemExit) as stop:
        main([str(broken), "--no-browser"])
    assert stop.value.code == 2 and "not a readable notebook" in capsys.readouterr().err
