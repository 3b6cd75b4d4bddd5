"""compact(): the smaller model computes what the masked one does, is smaller, and refuses what it cannot do."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import pruneviz
from pruneviz.graph import build_graph
from pruneviz.surgery import channel_groups, channel_prunable_layers, compact
from pruneviz.zoo.models import BasicBlock

from .conftest import same_state, state_of

X = pruneviz.data.digits().test.tensors[0][:96]


def outputs(model, x=X):
    with torch.no_grad():
        return model.eval()(x.to(next(model.parameters()).dtype))


def zero_channels(model: nn.Module, keeps: dict[str, torch.Tensor]) -> None:
    """What a channel Pruner writes: a pruned channel's weights, bias and BatchNorm gamma/beta set to zero."""
    graph = build_graph(model)
    with torch.no_grad():
        for name, keep in keeps.items():
            info = graph.layers[name]
            tensors = [info.module.weight, info.module.bias]
            if info.norm is not None:
                norm = model.get_submodule(info.norm)
                tensors += [norm.weight, norm.bias]
            for t in tensors:
                if t is not None:
                    t[~keep] = 0


def assert_same_function_and_smaller(masked, small, x=X, count_macs=True):
    torch.testing.assert_close(outputs(small, x), outputs(masked, x), rtol=1e-5, atol=1e-5)
    assert pruneviz.count_parameters(small) < pruneviz.count_parameters(masked)
    if count_macs:  # torch's flop counter takes a second on a busy 2-core machine: count where it matters
        assert pruneviz.macs(small, x[:1]) < pruneviz.macs(masked, x[:1])


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn", "digits-resnet"])
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.9])
def test_compact_equals_masked_pruner(name, ratio):
    model = pruneviz.zoo.load(name, device="cpu")
    pruner = pruneviz.Pruner(model, "magnitude", "channel", layers=channel_prunable_layers(model)).prune(ratio)
    before = state_of(model)
    small = compact(model, pruner.masks)
    assert same_state(before, state_of(model)), "compact changed the input model"
    assert_same_function_and_smaller(model, small, count_macs=ratio == 0.5)
    for layer, mask in pruner.masks.items():
        assert small.get_submodule(layer).weight.shape[0] == int(mask.flatten(1).any(1).sum())


def test_resnet_prunable_layers_are_the_first_conv_of_each_block(resnet):
    blocks = [n for n, m in resnet.named_modules() if isinstance(m, BasicBlock)]
    assert channel_prunable_layers(resnet) == [f"{b}.conv1" for b in blocks]


def test_residual_groups_tie_the_layers_that_meet_at_an_add(resnet):
    coupled = [set(g.producers) for g in channel_groups(resnet) if g.coupled]
    assert {"stem.0", "layer1.0.conv2", "layer1.1.conv2"} in coupled
    assert {"layer2.0.downsample.0", "layer2.0.conv2", "layer2.1.conv2"} in coupled


@pytest.mark.parametrize("index", [0, 1, 2])
def test_coupled_group_pruned_together(resnet, index):
    group = [g for g in channel_groups(resnet) if g.coupled][index]
    width = resnet.get_submodule(group.producers[0]).out_channels
    keep = torch.rand(width, generator=torch.Generator().manual_seed(index)) > 0.5
    keeps = {name: keep for name in group.producers}
    zero_channels(resnet, keeps)
    small = compact(resnet, keeps)
    assert_same_function_and_smaller(resnet, small, count_macs=index == 0)
    for name in group.norms:
        assert small.get_submodule(name).num_features == int(keep.sum())


def test_coupled_masks_that_disagree_name_the_layer(resnet):
    keep = torch.ones(16, dtype=torch.bool)
    keep[3] = False
    before = state_of(resnet)
    with pytest.raises(ValueError, match=r"'stem.0'.*skip connection.*layer1.0.conv2.*layer1.0.conv1"):
        compact(resnet, {"stem.0": keep})
    other = keep.clone()
    other[4] = False
    with pytest.raises(ValueError, match="skip connection"):
        compact(resnet, {"stem.0": keep, "layer1.0.conv2": other, "layer1.1.conv2": keep})
    assert same_state(before, state_of(resnet))


def test_default_channel_pruner_on_resnet_is_refused_with_the_way_out(resnet):
    pruner = pruneviz.Pruner(resnet, "magnitude", "channel").prune(0.5)
    with pytest.raises(ValueError, match="layer1.0.conv1"):
        compact(resnet, pruner.masks)


@st.composite
def random_keeps(draw, model):
    keeps = {}
    for name in channel_prunable_layers(model):
        width = model.get_submodule(name).weight.shape[0]
        bits = draw(st.lists(st.booleans(), min_size=width, max_size=width))
        bits[draw(st.integers(0, width - 1))] = True  # at least one channel stays
        keeps[name] = torch.tensor(bits)
    return keeps


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn", "digits-resnet"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_channel_masks(name, data):
    model = pruneviz.zoo.load(name, device="cpu")
    keeps = data.draw(random_keeps(model))
    zero_channels(model, keeps)
    small = compact(model, keeps)
    torch.testing.assert_close(outputs(small, X[:32]), outputs(model, X[:32]), rtol=1e-5, atol=1e-5)
    for layer, keep in keeps.items():
        assert small.get_submodule(layer).weight.shape[0] == int(keep.sum())


def test_float64(cnn):
    cnn = cnn.double()
    pruner = pruneviz.Pruner(cnn, "magnitude", "channel").prune(0.5)
    small = compact(cnn, pruner.masks)
    assert next(small.parameters()).dtype == torch.float64
    torch.testing.assert_close(outputs(small), outputs(cnn), rtol=1e-10, atol=1e-10)


def test_layer_left_whole_and_layer_pruned_to_one_channel(cnn):
    keeps = {"conv2": torch.ones(32, dtype=torch.bool), "conv4": torch.arange(64) == 7}
    zero_channels(cnn, keeps)
    small = compact(cnn, keeps)
    assert small.conv2.weight.shape == cnn.conv2.weight.shape
    assert small.conv4.out_channels == 1 and small.bn4.num_features == 1
    assert small.fc.in_features == 4  # the 2x2 positions of the one channel left after the flatten
    torch.testing.assert_close(small.fc.weight, cnn.fc.weight[:, 28:32])
    torch.testing.assert_close(outputs(small), outputs(cnn), rtol=1e-5, atol=1e-5)


def test_per_channel_vectors_and_weight_masks_agree(mlp):
    pruner = pruneviz.Pruner(mlp, "magnitude", "channel").prune(0.4)
    vectors = {n: m.any(1) for n, m in pruner.masks.items()}
    assert same_state(state_of(compact(mlp, pruner.masks)), state_of(compact(mlp, vectors)))


def test_compact_keeps_training_mode_and_trains(mlp):
    mlp.train()
    small = compact(mlp, {"fc1": torch.arange(256) < 100})
    assert small.training and small.fc2.in_features == 100
    loss = small(X[:8]).sum()
    loss.backward()
    assert small.fc1.weight.grad.shape == (100, 64)


@pytest.mark.parametrize("masks, match", [
    ({"nope": torch.ones(3, dtype=torch.bool)}, r"unknown layer 'nope'.*'fc1'"),
    ({"fc1": torch.ones(5, dtype=torch.bool)}, r"shape \(5,\).*\(256,\)"),
    ({"fc1": torch.ones(256)}, "must be bool"),
    ({"fc1": torch.zeros(256, dtype=torch.bool)}, "removes every channel"),
    ({"fc3": torch.arange(10) < 5}, r"'fc3'.*model's output"),
])
def test_bad_masks_raise_and_change_nothing(mlp, masks, match):
    before = state_of(mlp)
    with pytest.raises(ValueError, match=match):
        compact(mlp, masks)
    assert same_state(before, state_of(mlp))


def test_element_mask_is_refused(mlp):
    pruner = pruneviz.Pruner(mlp, "magnitude", "element").prune(0.5)
    with pytest.raises(ValueError, match="granularity='channel'"):
        compact(mlp, pruner.masks)


class ViewNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


class MeanNet(nn.Module):
    """The lecture's lab VGG head: a mean over the spatial dims, then a Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean([2, 3]))


class BranchyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent: fx cannot trace it
            return self.conv(x)
        return x


def test_view_it_cannot_follow_names_layer_and_op():
    model = ViewNet()
    with pytest.raises(ValueError, match=r"'conv'.*'view'"):
        compact(model, {"conv": torch.arange(4) < 2})
    assert channel_prunable_layers(model) == []


def test_spatial_mean_is_followed():
    model = MeanNet()
    keeps = {"conv": torch.tensor([True, False, True, True, False, True])}
    zero_channels(model, keeps)
    small = compact(model, keeps)
    assert small.fc.in_features == 4
    torch.testing.assert_close(outputs(small), outputs(model), rtol=1e-5, atol=1e-6)


def test_untraceable_model_is_a_clear_error():
    with pytest.raises(ValueError, match="torch.fx can trace"):
        compact(BranchyNet(), {"conv": torch.arange(4) < 2})
