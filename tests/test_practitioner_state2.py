"""Promise 10, for every analysis: the user's model as they left it, bit for bit, masks and modes included.

Each analysis runs on a model the user holds pruned (a Pruner of their own at 50 %), in train mode with one
BatchNorm frozen by ``eval()``. Afterwards: every parameter and buffer equal, every module's mode equal, the
user's Pruner still prunes and still restores the true dense weights. A new public analysis joins CASES (a test
below checks that every function decorated with :func:`pruneviz.snapshot.analysis` is in it).
"""
import copy
import pickle
import warnings

import pytest
import torch

import pruneviz
from pruneviz import Pruner
from pruneviz.baselines import accuracy_sweep, random_band
from pruneviz.criteria.apoz import apoz, dead_units
from pruneviz.criteria.obd import hessian_diagonal, mean_loss, single_weight_test, taylor_terms
from pruneviz.criteria.regression import random_bands, reconstruct, reconstruction_sweep
from pruneviz.data import as_tensors
from pruneviz.depth import (block_importance, depth_and_width_models, depth_vs_width, depth_vs_width_seeds,
                            inblock_and_group_models, inblock_vs_groups)
from pruneviz.errors import AlreadySparseWarning, ModelChangedError
from pruneviz.masked_loop import revival
from pruneviz.metrics import latency, layer_macs, macs, summary
from pruneviz.overparam import narrow_models
from pruneviz.ratios import compare_allocations
from pruneviz.schedules import AGP, Iterative, OneShot, compare_schedules, run_schedule, schedule_sweep
from pruneviz.sensitivity import sensitivity_scan
from pruneviz.snapshot import ANALYSES
from pruneviz.timing import compare_latency, masked_and_compacted

from .conftest import same_state, state_of


def _small(data, n):
    x, y = as_tensors(data)
    return x[:n], y[:n]


@pytest.fixture(scope="module")
def sets():
    digits = pruneviz.data.digits()
    return {"train": _small(digits.train, 192), "test": _small(digits.test, 160), "calib": _small(digits.val, 64)}


def _x(sets):
    return sets["test"][0][:4]


CASES = {  # name -> (zoo model, call(model, sets))
    "sensitivity_scan": ("digits-cnn", lambda m, s: sensitivity_scan(m, s["test"], sparsities=(0.5,), progress=False)),
    "sensitivity_scan_apoz": ("digits-cnn", lambda m, s: sensitivity_scan(
        m, s["test"], "apoz", "channel", sparsities=(0.5,), data_for_criterion=s["calib"], progress=False)),
    "accuracy_sweep": ("digits-cnn", lambda m, s: accuracy_sweep(m, s["test"], [0.3, 0.7])),
    "random_band": ("digits-cnn", lambda m, s: random_band(m, s["test"], [0.5], seeds=(0, 1))),
    "compare_allocations": ("digits-cnn", lambda m, s: compare_allocations(m, {"a": {"conv2": 0.5}}, s["test"])),
    "compare_schedules": ("digits-cnn", lambda m, s: compare_schedules(
        m, {"one": OneShot(0.5, 3), "agp": AGP(0.5, prunes=2, every=1, finetune_steps=1)}, s["train"], s["test"],
        progress=False)),
    "schedule_sweep": ("digits-cnn", lambda m, s: schedule_sweep(m, [0.5], s["train"], s["test"], budget=30,
                                                               include=["one-shot + fine-tune"], progress=False)),
    "revival": ("digits-cnn", lambda m, s: revival(m, s["train"], s["test"], dense_steps=2, steps=2)),
    "reconstruction_sweep": ("digits-cnn", lambda m, s: reconstruction_sweep(m, s["test"], [0.5],
                                                                             calibration=s["calib"])),
    "random_bands": ("digits-cnn", lambda m, s: random_bands(m, s["test"], [0.5], calibration=s["calib"],
                                                             seeds=(0, 1))),
    "narrow_models": ("digits-cnn", lambda m, s: narrow_models(m, [0.5])),
    "masked_and_compacted": ("digits-cnn", lambda m, s: masked_and_compacted(m)),
    "block_importance": ("digits-resnet", lambda m, s: block_importance(m, s["calib"])),
    "depth_vs_width": ("digits-resnet", lambda m, s: depth_vs_width(m, s["train"], s["test"], blocks=1, epochs=0,
                                                                    measure_latency=False)),
    "depth_and_width_models": ("digits-resnet", lambda m, s: depth_and_width_models(
        m, _x(s), block_importance(m, s["calib"]), blocks=1)),
    "depth_vs_width_seeds": ("digits-resnet", lambda m, s: depth_vs_width_seeds(m, s["train"], s["test"], seeds=[0],
                                                                                blocks=1, epochs=1)),
    "inblock_and_group_models": ("digits-resnet", lambda m, s: inblock_and_group_models(m, _x(s))),
    "inblock_vs_groups": ("digits-resnet", lambda m, s: inblock_vs_groups(m, s["train"], s["test"], seeds=[0],
                                                                          epochs=1)),
    "macs": ("digits-cnn", lambda m, s: macs(m, _x(s))),
    "layer_macs": ("digits-cnn", lambda m, s: layer_macs(m, _x(s))),
    "summary": ("digits-cnn", lambda m, s: summary(m, _x(s))),
    "latency": ("digits-cnn", lambda m, s: latency(m, _x(s), warmup=0, runs=1)),
    "compare_latency": ("digits-cnn", lambda m, s: compare_latency({"m": m}, _x(s), rounds=1, runs=1, warmup=0)),
    "evaluate": ("digits-cnn", lambda m, s: pruneviz.evaluate(m, s["test"])),
    "hessian_diagonal": ("digits-cnn", lambda m, s: hessian_diagonal(m, s["calib"], ["fc"], limit=8)),
    "hessian_diagonal_exact": ("digits-mlp", lambda m, s: hessian_diagonal(m, s["calib"], ["fc3"] if hasattr(
        m, "fc3") else None, mode="exact", limit=4)),
    "single_weight_test": ("digits-cnn", lambda m, s: single_weight_test(m, s["calib"], ["fc"], per_layer=3)),
    "mean_loss": ("digits-cnn", lambda m, s: mean_loss(m, s["calib"])),
    "taylor_terms": ("digits-cnn", lambda m, s: taylor_terms(m, s["calib"], {"fc": torch.rand(10, 256) > 0.5},
                                                             limit=8)),
    "apoz": ("digits-cnn", lambda m, s: apoz(m, s["calib"])),
    "dead_units": ("digits-cnn", lambda m, s: dead_units(m, s["calib"])),
    "Pruner_apoz": ("digits-cnn", lambda m, s: Pruner(m, "apoz", "channel", data=s["calib"])),
}


def _user_state(kind):
    """The model as a user holds it: pruned by their Pruner, in train mode, one BatchNorm frozen by eval()."""
    model = pruneviz.zoo.load(kind, device="cpu")
    dense = state_of(model)
    pruner = Pruner(model, "magnitude", "element").prune(0.5)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if norms:
        norms[0].eval()
    return model, pruner, dense


@pytest.mark.parametrize("name", list(CASES))
def test_an_analysis_leaves_the_model_bit_for_bit_masks_and_modes_included(name, sets):
    kind, call = CASES[name]
    model, pruner, dense = _user_state(kind)
    before, modes, masks = state_of(model), [m.training for m in model.modules()], copy.deepcopy(pruner.masks)
    call(model, sets)
    assert same_state(before, state_of(model)), "weights or buffers changed"
    assert [m.training for m in model.modules()] == modes, "a module's train/eval mode changed"
    assert pruner.sparsity() == pytest.approx(0.5, abs=0.01)
    assert all(torch.equal(masks[n], m) for n, m in pruner.masks.items())
    pruner.prune(0.3)  # the user's Pruner still prunes (no ModelChangedError) ...
    pruner.restore()  # ... and restores the true dense weights
    assert same_state(dense, {k: v for k, v in state_of(model).items()})


def test_every_decorated_analysis_is_in_the_list():
    covered = {name.split("_apoz")[0].split("_exact")[0] for name in CASES}
    missing = [fn.__name__ for fn in ANALYSES if fn.__name__ not in covered]
    assert not missing, f"add these analyses to CASES: {missing}"


def test_a_scan_of_a_pruned_model_reads_drops_from_the_pruned_baseline(sets):
    model, pruner, _ = _user_state("digits-cnn")
    model.eval()
    pruned_accuracy = pruneviz.evaluate(model, sets["test"])
    scan = sensitivity_scan(model, sets["test"], sparsities=(0.0001,), progress=False)
    # a ratio that prunes no further group gives back the pruned model's accuracy, not the dense one's
    assert (scan.accuracy == pruned_accuracy).all()
    assert scan.attrs["dense_accuracy"] == pruned_accuracy


def test_a_dense_users_pruner_still_prunes_after_a_schedule_sweep(sets):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    pruner = Pruner(model)
    schedule_sweep(model, [0.5], sets["train"], sets["test"], budget=30, include=["one-shot + fine-tune"],
                   progress=False)
    assert pruner.prune(0.5).sparsity() == pytest.approx(0.5, abs=0.01)


def test_a_failed_schedule_leaves_model_pruner_and_dense_copy_as_they_were(sets):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    dense = state_of(model)
    pruner = Pruner(model)
    steps = {"n": 0}

    class Failing(torch.optim.SGD):
        def step(self, closure=None):
            steps["n"] += 1
            if steps["n"] == 4:
                raise RuntimeError("the optimizer fails on its 4th step")
            return super().step(closure)

    with pytest.raises(RuntimeError, match="4th step"):
        run_schedule(Iterative(0.8, 3, 2), pruner, sets["train"], optimizer=lambda p: Failing(p, lr=0.1),
                     progress=False)
    assert same_state(dense, state_of(model))
    assert pruner.sparsity() == 0.0
    pruner.prune(0.5)
    pruner.restore()
    assert same_state(dense, state_of(model))


def test_ctrl_c_in_training_puts_the_model_back(sets):
    model, pruner, _ = _user_state("digits-cnn")
    model.eval()
    before = state_of(model)

    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pruneviz.train(model, sets["train"], epochs=1, pruner=pruner, on_step=interrupt, progress=False)
    assert same_state(before, state_of(model))
    assert not any(m.training for m in model.modules())


def test_train_refuses_another_models_pruner(sets):
    model, other = (pruneviz.zoo.load("digits-cnn", device="cpu") for _ in range(2))
    pruner = Pruner(other).prune(0.9)
    before, other_before = state_of(model), state_of(other)
    with pytest.raises(ValueError, match="another model"):
        pruneviz.train(model, sets["train"], epochs=1, pruner=pruner, progress=False)
    assert same_state(before, state_of(model)) and same_state(other_before, state_of(other))


def test_finetune_keeps_a_frozen_batchnorm_frozen(sets):
    model = pruneviz.zoo.load("digits-cnn", device="cpu").eval()
    for p in model.bn1.parameters():
        p.requires_grad_(False)
    stats = model.bn1.running_mean.clone(), model.bn1.running_var.clone()
    pruner = Pruner(model).prune(0.5)
    pruneviz.finetune(model, sets["train"], pruner=pruner, steps=3, progress=False)
    assert torch.equal(stats[0], model.bn1.running_mean) and torch.equal(stats[1], model.bn1.running_var)
    assert not torch.equal(model.bn2.running_mean, pruneviz.zoo.load("digits-cnn", device="cpu").bn2.running_mean)


def test_training_keeps_a_module_the_user_put_in_eval_mode(sets):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    model.train()
    model.bn1.eval()
    stats = model.bn1.running_mean.clone()
    pruneviz.train(model, sets["train"], steps=2, progress=False)
    assert torch.equal(stats, model.bn1.running_mean)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_pruner_that_went_through_pickle_still_prunes_and_restores(how):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    dense = state_of(model)
    pruner = Pruner(model, granularity="channel").prune(0.5)
    twin = pickle.loads(pickle.dumps(pruner)) if how == "pickle" else copy.deepcopy(pruner)
    twin.prune(0.3)
    assert twin.sparsity() == pytest.approx(0.3, abs=0.02)
    twin.restore()
    assert same_state(dense, state_of(twin.model))


@pytest.mark.parametrize("how", ["deepcopy", "save_load"])
def test_a_pruner_on_a_copy_of_a_pruned_model_says_restore_gives_zeros(how, tmp_path):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    Pruner(model).prune(0.5)
    if how == "deepcopy":
        copied = copy.deepcopy(model)
    else:
        torch.save(model, tmp_path / "m.pt")
        copied = torch.load(tmp_path / "m.pt", weights_only=False)
    with pytest.warns(AlreadySparseWarning, match="copy of weights the kit pruned.*state_dict"):
        Pruner(copied)


def test_a_dense_copy_builds_a_pruner_without_the_warning(recwarn):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    Pruner(model).prune(0.5)
    Pruner(pruneviz.dense.dense_copy(model))
    assert not [w for w in recwarn if issubclass(w.category, AlreadySparseWarning)]


def test_from_state_dict_into_another_models_weights_says_it_replaces_them():
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    saved = Pruner(model, granularity="channel").prune(0.4).state_dict()
    other = pruneviz.zoo.build("digits-cnn")
    with pytest.warns(UserWarning, match="replaces the weights of conv1"):
        Pruner.from_state_dict(other, saved)
    same = pruneviz.zoo.load("digits-cnn", device="cpu")  # the saved model's own weights: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Pruner.from_state_dict(same, saved)


def test_a_refused_user_pruner_is_still_refused_after_an_analysis(sets):
    """A snapshot puts back a stale stamp as stale: edits the user made behind the Pruner stay detected."""
    model, pruner, _ = _user_state("digits-cnn")
    with torch.no_grad():
        model.conv1.weight.add_(1.0)
    accuracy_sweep(model, sets["test"], [0.5])
    with pytest.raises(ModelChangedError):
        pruner.prune(0.3)


def test_reconstruct_keeps_every_modules_mode(sets):
    model = pruneviz.zoo.load("digits-cnn", device="cpu").train()
    model.bn1.eval()
    modes = [m.training for m in model.modules()]
    pruner = Pruner(model, "magnitude", "channel", layers=["conv1", "conv2"]).prune(0.5)
    reconstruct(pruner, sets["calib"])
    assert [m.training for m in model.modules()] == modes


def test_a_pruner_after_an_analysis_of_a_dense_model_does_not_warn(sets, recwarn):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    sensitivity_scan(model, sets["test"], sparsities=(0.5,), progress=False)
    Pruner(model)
    assert not [w for w in recwarn if issubclass(w.category, AlreadySparseWarning)]
