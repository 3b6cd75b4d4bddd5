"""Grouped and depthwise convs (weight [out, in / groups, k, k]): every granularity means what it means on a plain
conv, or leaves the layer out and says why. Checked by what the pruned layer computes, not by mask shapes alone."""
import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.granularity import get_granularity

from .conftest import same_state, state_of

GRANULARITIES = ["element", "2:4", "vector", "kernel", "channel", "input_channel"]
X = torch.randn(4, 16, 6, 6, generator=torch.Generator().manual_seed(0))


def grouped_net() -> nn.Module:
    """A stem, a grouped conv (groups=2, 8 inputs per group), a depthwise conv, a pointwise conv and a head."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=2), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 8, 1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 10)).eval()


GROUPED, DEPTHWISE = "3", "6"


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("criterion", ["magnitude", "random"])
def test_every_granularity_prunes_or_says_why_and_restores(granularity, criterion):
    model = grouped_net()
    before = state_of(model)
    pruner = pruneviz.Pruner(model, criterion, granularity).prune(0.5)
    for layer in (GROUPED, DEPTHWISE):
        assert layer in pruner.layers or pruner.skipped[layer], layer
    for name, mask in pruner.masks.items():
        groups = pruner.scores[name].numel()
        assert abs(int((~mask).sum()) - 0.5 * mask.numel()) <= mask.numel() / groups / 2 + 1e-9, name
    model(torch.randn(2, 1, 6, 6))
    pruner.restore()
    assert same_state(before, state_of(model))


def test_input_channel_leaves_grouped_convs_out_and_says_why():
    pruner = pruneviz.Pruner(grouped_net(), "magnitude", "input_channel")
    assert GROUPED not in pruner.layers and DEPTHWISE not in pruner.layers
    assert "grouped conv (groups=2" in pruner.skipped[GROUPED]
    assert "one input channel of each of the 16 groups" in pruner.skipped[DEPTHWISE]
    assert "9" in pruner.layers  # the pointwise conv is a plain conv: its input channels are its own
    with pytest.raises(ValueError, match=r"'3' is not prunable here: input_channel granularity on a grouped"):
        pruner.prune({GROUPED: 0.5})


def test_nm_on_a_grouped_conv_is_within_each_output_and_refused_on_a_depthwise_one():
    pruner = pruneviz.Pruner(grouped_net(), "magnitude", "2:4").prune(0.5)
    mask = pruner.masks[GROUPED]  # [16, 8, 3, 3]: each output reads the 8 input channels of its group
    assert bool((mask.movedim(1, -1).reshape(-1, 4).sum(1) == 2).all())
    assert "1 input channels per group of a grouped conv with groups=16" in pruner.skipped[DEPTHWISE]


def conv_of(model: nn.Module, layer: str) -> nn.Conv2d:
    return model.get_submodule(layer)


def test_a_pruned_kernel_of_a_grouped_conv_cuts_one_output_from_one_input_channel():
    """kernel (o, j) of a conv with groups g connects output o to input channel (o // (out/g)) * (in/g) + j."""
    model = grouped_net()
    pruner = pruneviz.Pruner(model, "magnitude", "kernel", layers=[GROUPED]).prune(0.6)
    layer = conv_of(model, GROUPED)
    per_group_out, per_group_in = layer.out_channels // layer.groups, layer.in_channels // layer.groups
    kept = pruner.group_masks()[GROUPED]
    out, j = [int(i) for i in (~kept).nonzero()[0]]
    group = out // per_group_out
    moved = X.clone()
    moved[:, group * per_group_in + j] += 10.0
    with torch.no_grad():
        change = (layer(moved) - layer(X)).abs().amax(dim=(0, 2, 3))
    assert float(change[out]) < 1e-6  # the one kernel between them is gone
    for o in range(layer.out_channels):
        if o // per_group_out != group:
            assert float(change[o]) == 0.0  # another group never read that channel
        elif bool(kept[o, j]):
            assert float(change[o]) > 1e-3  # its group's kept kernels still read it


def test_a_pruned_kernel_of_a_depthwise_conv_silences_its_channel():
    model = grouped_net()
    pruner = pruneviz.Pruner(model, "magnitude", "kernel", layers=[DEPTHWISE]).prune(0.5)
    layer = conv_of(model, DEPTHWISE)
    dead = ~pruner.group_masks()[DEPTHWISE][:, 0]
    moved = X + 10.0
    with torch.no_grad():
        change = (layer(moved) - layer(X)).abs().amax(dim=(0, 2, 3))
    assert bool((change[dead] == 0).all()) and bool((change[~dead] > 0).all())


@pytest.mark.parametrize("layer", [GROUPED, DEPTHWISE])
def test_channel_granularity_silences_whole_output_channels(layer):
    model = grouped_net()
    pruner = pruneviz.Pruner(model, "magnitude", "channel", layers=[layer]).prune(0.5)
    dead = ~pruner.group_masks()[layer]
    norm = model.get_submodule(pruner.graph.layers[layer].norm)
    with torch.no_grad():
        out = norm(conv_of(model, layer)(X))
    assert int(dead.sum()) == 8 and bool((out[:, dead] == 0).all()) and bool((out[:, ~dead] != 0).any())


def test_tensor_mask_on_a_lone_weight_is_the_plain_conv_meaning():
    """A bare tensor carries no groups: prune_tensor treats it as the weight of a plain conv."""
    weight = torch.randn(16, 8, 3, 3)
    assert get_granularity("input_channel").unsupported_reason(weight.shape) is None
    assert "groups=2" in get_granularity("input_channel").unsupported_reason(weight.shape, groups=2)
    assert pruneviz.tensor_mask(weight, 0.5, granularity="input_channel").shape == weight.shape
