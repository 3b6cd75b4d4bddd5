"""The Pruner at granularity "group": the promises of design.md hold for coupled groups as for channels."""
import io

import pytest
import torch
from torch import nn

import pruneviz
from benchmarks.coupled_models import ARCHITECTURES, EncoderLayer, randomized

from . import practitioner_models
from .conftest import same_state, state_of

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def resnet():
    torch.manual_seed(0)
    return randomized(ARCHITECTURES["resnet18"](0.125))


def test_a_group_is_masked_everywhere_it_is_read():
    model = resnet()
    pruner = pruneviz.Pruner(model, "magnitude", "group").prune(0.5)
    keep = pruner.group_masks()["conv1"]  # the stem and every layer1 block's conv2: one residual group
    assert int((~keep).sum()) == round(0.5 * keep.numel())
    for layer in ("conv1", "layer1.0.conv2", "layer1.1.conv2"):
        assert torch.equal(pruner.masks[layer].flatten(1).any(1), keep)  # the same channels in every member
        assert not model.get_submodule(layer).weight[~keep].any()
    for norm in ("bn1", "layer1.0.bn2", "layer1.1.bn2"):
        bn = model.get_submodule(norm)
        assert not bn.weight[~keep].any() and not bn.bias[~keep].any()
    for reader in ("layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.0.downsample.0"):
        assert torch.equal(pruner.masks[reader].flatten(2).any(2).any(0), keep)  # the input columns too


def test_restore_is_exact_and_masks_nest():
    model = resnet()
    dense = state_of(model)
    pruner = pruneviz.Pruner(model, "l2", "group", "global")
    previous = None
    for ratio in (0.2, 0.5, 0.8):
        keeps = pruner.prune(ratio).group_masks()
        if previous is not None:
            assert all(bool((keeps[n] <= previous[n]).all()) for n in keeps)  # kept at 0.8 => kept at 0.5
        previous = keeps
    pruner.restore()
    assert same_state(state_of(model), dense)


@pytest.mark.parametrize("scope", ["local", "global"])
def test_ratio_is_a_share_of_channels(scope):
    pruner = pruneviz.Pruner(resnet(), "magnitude", "group", scope).prune(0.3)
    keeps = pruner.group_masks()
    if scope == "local":  # round(ratio x channels) in every group
        assert all(int((~k).sum()) == round(0.3 * k.numel()) for k in keeps.values())
    else:  # one order over every group's channels
        total = sum(k.numel() for k in keeps.values())
        assert sum(int((~k).sum()) for k in keeps.values()) == round(0.3 * total)


def test_ratio_dict_names_groups_and_bad_names_change_nothing():
    model = resnet()
    pruner = pruneviz.Pruner(model, "magnitude", "group")
    pruner.prune({"conv1": 0.5})
    assert int((~pruner.group_masks()["conv1"]).sum()) == 4
    assert all(bool(k.all()) for n, k in pruner.group_masks().items() if n != "conv1")
    before = state_of(model)
    with pytest.raises(ValueError, match="'fc' is not prunable here: they reach the model's output"):
        pruner.prune({"fc": 0.5})
    with pytest.raises(ValueError, match="layer1.0.conv2"):  # a member, not the group's name: the names listed
        pruner.prune({"layer1.0.conv2": 0.5})
    assert same_state(state_of(model), before)


def test_skipped_says_why():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(12, 16)
            self.layer = EncoderLayer(16, 4, 32)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.layer(self.embed(x)).mean(1))

    pruner = pruneviz.Pruner(Tokens(), "magnitude", "group")
    assert list(pruner.scores) == ["layer.attn", "layer.linear1"]  # the heads, the MLP's hidden channels
    assert pruner.skipped["embed"].startswith("mean over dims [1] (node 'mean') mixes them")
    assert pruner.skipped["layer.attn.out_proj"] == pruner.skipped["embed"]  # one group: the residual stream
    pruner = pruneviz.Pruner(Tokens(), "obd", "group", data=(torch.randn(4, 3, 12), torch.zeros(4).long()))
    assert "not the heads of an attention layer" in pruner.skipped["layer.attn"]
    assert pruner.skipped["layer.linear2"] == pruner.skipped["embed"]


def test_layers_restricts_to_whole_groups():
    model = resnet()
    pruner = pruneviz.Pruner(model, "magnitude", "group", layers=["conv1", "layer1.0.conv2", "layer1.0.conv1"])
    assert list(pruner.scores) == ["layer1.0.conv1"]
    assert "coupled with 'layer1.1.conv2', which layers= leaves out" in pruner.skipped["conv1"]


def test_state_dict_round_trip_and_fine_tuning_keeps_zeros():
    model, x = resnet().double(), X.double()
    pruner = pruneviz.Pruner(model, "magnitude", "group").prune(0.5)
    buffer = io.BytesIO()
    torch.save(pruner.state_dict(), buffer)
    twin = resnet().double()
    loaded = pruneviz.Pruner.from_state_dict(twin, torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert same_state(state_of(twin), state_of(model))
    assert all(torch.equal(loaded.group_masks()[n], k) for n, k in pruner.group_masks().items())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        model.train()
        nn.functional.cross_entropy(model(x), torch.tensor([1, 2])).backward()
        pruner.mask_gradients()
        optimizer.step()
        optimizer.zero_grad()
        pruner.apply_masks()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(pruneviz.compact(model, pruner.masks)(x), model(x), rtol=1e-9, atol=1e-9)


def test_channel_granularity_is_unchanged_by_groups():
    model = resnet()
    pruner = pruneviz.Pruner(model, "magnitude", "channel", layers=pruneviz.channel_prunable_layers(model))
    assert list(pruner.scores) == pruneviz.channel_prunable_layers(model)
    assert pruneviz.get_granularity("coupled").name == "group"


def test_sensitivity_scan_scans_groups():
    model = resnet().double()
    data = (X.double(), torch.tensor([1, 2]))
    before = state_of(model)
    scan = pruneviz.sensitivity_scan(model, data, "magnitude", "group", sparsities=(0.5,), progress=False)
    assert list(dict.fromkeys(scan.layer)) == list(pruneviz.Pruner(model, "magnitude", "group").scores)
    assert same_state(state_of(model), before)


def test_a_model_fx_cannot_trace_is_refused_and_left_as_it_was():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            h = self.conv(x)
            if h.sum() > 0:  # data-dependent control flow
                h = -h
            return self.fc(h.mean([2, 3]))

    model = Branchy()
    before = state_of(model)
    with pytest.raises(ValueError, match="torch.fx can trace.*data-dependent control flow"):
        pruneviz.Pruner(model, "magnitude", "group")
    assert same_state(state_of(model), before)


def test_grouped_conv_slices_lose_channels_evenly_and_nest():
    torch.manual_seed(0)
    model = randomized(ARCHITECTURES["regnet_y_400mf"](0.25))
    pruner = pruneviz.Pruner(model, "magnitude", "group")
    name = "trunk_output.0.a.0"
    group = pruner._plan.groups[name]
    previous = None
    for ratio in (0.2, 0.5, 0.7):
        keep = pruner.prune(ratio).group_masks()[name].reshape(group.slices, -1)
        assert len(set(keep.sum(1).tolist())) == 1  # every conv group as wide as the others
        if previous is not None:
            assert bool((keep <= previous).all())
        previous = keep
    small = pruneviz.compact(model, pruner.masks)
    assert small.trunk_output[0].b[0].groups == group.slices
    with torch.no_grad():
        torch.testing.assert_close(small(X), model(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", [k for k in practitioner_models.KINDS if k != "attention"])
def test_practitioner_models(kind):
    model = practitioner_models.build(kind, dtype=torch.float64)
    x, _ = practitioner_models.calibration(dtype=torch.float64)
    pruner = pruneviz.Pruner(model, "magnitude", "group").prune(0.5)
    with torch.no_grad():
        torch.testing.assert_close(pruneviz.compact(model, pruner.masks)(x), model(x), rtol=1e-9, atol=1e-9)
    assert all(reason == "they reach the model's output" for reason in pruner.skipped.values())


def test_a_transformer_encoder_layer_fx_keeps_whole_loses_heads_and_hidden_channels():
    model = practitioner_models.build("attention", dtype=torch.float64)
    x, _ = practitioner_models.calibration(dtype=torch.float64)
    pruner = pruneviz.Pruner(model, "magnitude", "group").prune(0.5)
    assert list(pruner.scores) == ["block.self_attn", "block.linear1"]
    small = pruneviz.compact(model, pruner.masks)
    assert (small.block.self_attn.num_heads, small.block.linear1.out_features) == (1, 8)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), rtol=1e-9, atol=1e-9)
    assert "LayerNorms" in pruner.skipped["embed"]
