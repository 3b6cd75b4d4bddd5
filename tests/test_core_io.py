"""Promise 6 (checkpoints), interop with torch.nn.utils.prune, metrics, data and the zoo."""
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

import pruneviz
from pruneviz import Pruner, from_torch_prune, to_torch_prune
from pruneviz.zoo.models import digits_cnn

from .conftest import same_state, state_of


def test_save_and_load_keeps_masks(tmp_path, cnn, digits):
    pruner = Pruner(cnn, granularity="channel").prune(0.4)
    torch.save({"model": cnn.state_dict(), "pruner": pruner.state_dict()}, tmp_path / "pruned.pt")
    checkpoint = torch.load(tmp_path / "pruned.pt", weights_only=True)
    fresh = pruneviz.zoo.build("digits-cnn")
    fresh.load_state_dict(checkpoint["model"])
    loaded = Pruner.from_state_dict(fresh.eval(), checkpoint["pruner"])
    assert all(torch.equal(loaded.masks[n], m) for n, m in pruner.masks.items())
    assert same_state(state_of(cnn), state_of(fresh))
    loaded.prune(0.6)  # scores came along: re-pruning needs no data
    assert loaded.sparsity() == pytest.approx(Pruner(pruneviz.zoo.load("digits-cnn", "cpu"),
                                                     granularity="channel").prune(0.6).sparsity())
    loaded.restore()
    assert same_state(state_of(pruneviz.zoo.load("digits-cnn", "cpu")), state_of(fresh))


def test_export_to_torch_prune_and_back(cnn, digits):
    test = digits.test
    pruner = Pruner(cnn, granularity="kernel").prune(0.5)
    accuracy = pruneviz.evaluate(cnn, test)
    masks = {n: m.clone() for n, m in pruner.masks.items()}
    pruner.restore()
    to_torch_prune(cnn, masks)
    assert pruneviz.evaluate(cnn, test) == accuracy  # torch's hook computes the same masked weights
    read = from_torch_prune(cnn, remove=True)
    assert read.keys() == masks.keys() and all(torch.equal(read[n], masks[n]) for n in masks)
    assert not any(torch_prune.is_pruned(m) for m in cnn.modules())


def test_read_masks_from_torch_pruned_model():
    torch.manual_seed(0)
    model = digits_cnn()
    torch_prune.l1_unstructured(model.conv2, "weight", amount=0.3)
    masks = from_torch_prune(model)
    assert list(masks) == ["conv2"] and int((~masks["conv2"]).sum()) == round(0.3 * model.conv2.weight.numel())


def test_export_unknown_layer(cnn):
    with pytest.raises(ValueError, match=r"unknown layer 'conv9'; valid choices: 'conv1'"):
        to_torch_prune(cnn, {"conv9": torch.ones(1, dtype=torch.bool)})


def test_metrics_follow_pruning(cnn, digits):
    x = digits.test.tensors[0][:1]
    dense_macs = pruneviz.macs(cnn, x)
    # by hand: conv1 1*16*9*64 + conv2 16*32*9*64 + conv3 32*64*9*16 + conv4 64*64*9*16 + fc 256*10
    assert dense_macs == 9216 + 294912 + 294912 + 589824 + 2560
    Pruner(cnn, scope="global").prune(0.5)
    assert pruneviz.sparsity(cnn) == pytest.approx(0.5, abs=1e-4)
    assert pruneviz.macs(cnn, x) == dense_macs  # zeros in dense tensors save no MACs
    assert pruneviz.macs(cnn, x, sparse=True) < dense_macs
    assert pruneviz.size_bytes(cnn, sparse=True) < pruneviz.size_bytes(cnn) == 4 * pruneviz.count_parameters(cnn)
    assert pruneviz.latency(cnn, x, warmup=1, runs=3) > 0


def test_digits_and_zoo_accuracies(digits):
    train, test = digits.train, digits.test
    assert len(train) == 1077 and len(digits.val) == 360 and len(test) == 360
    recorded = pruneviz.zoo.accuracies()
    for name in pruneviz.zoo.NAMES:
        model = pruneviz.zoo.load(name, "cpu")
        assert pruneviz.evaluate(model, pruneviz.zoo.data(name).test) == pytest.approx(recorded[name], abs=0.006)
    assert recorded["digits-cnn"] >= 0.98


def test_zoo_unknown_name():
    with pytest.raises(ValueError, match="'digits-cnn'"):
        pruneviz.zoo.load("resnet50")


def test_evaluate_accepts_loader_dataset_and_pair(cnn, digits):
    test = digits.test
    loader = torch.utils.data.DataLoader(test, batch_size=50)
    assert pruneviz.evaluate(cnn, loader) == pruneviz.evaluate(cnn, test) == pruneviz.evaluate(cnn, test.tensors)
    with pytest.raises(TypeError, match="DataLoader"):
        pruneviz.evaluate(cnn, [1, 2, 3])


def test_default_device_is_usable():
    device = pruneviz.default_device()
    assert torch.zeros(1, device=device).device.type == device.type


def test_model_without_trace_falls_back_to_order():
    class Branchy(nn.Module):  # data-dependent control flow: torch.fx cannot trace it
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3)
            self.bn = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x)))
            if x.sum() > 0:
                x = x * 2
            return self.fc(x.mean((2, 3)))

    model = Branchy().eval()
    pruner = Pruner(model, granularity="channel")
    assert not pruner.graph.traced and pruner.graph.layers["conv"].norm == "bn" and "fc" in pruner.skipped
    pruner.prune(0.5)
    assert int((model.bn.weight == 0).sum()) == 4
