"""Depth pruning: which blocks can go, removing them, ranking them, and the depth-vs-width comparison."""
import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.depth import block_importance, depth_vs_width, remove_blocks, removable_blocks
from pruneviz.zoo.models import BasicBlock

from .conftest import same_state, state_of

X = pruneviz.data.digits().test.tensors[0][:64]


def outputs(model):
    with torch.no_grad():
        return model.eval()(X)


def test_removable_blocks_are_the_blocks_without_downsample(resnet):
    expected = [n for n, m in resnet.named_modules() if isinstance(m, BasicBlock) and m.downsample is None]
    assert removable_blocks(resnet) == expected
    assert removable_blocks(pruneviz.zoo.load("digits-cnn", device="cpu")) == []


def test_remove_nothing_gives_the_same_outputs(resnet):
    copy = remove_blocks(resnet, [])
    assert copy is not resnet
    torch.testing.assert_close(outputs(copy), outputs(resnet), rtol=0, atol=0)


def test_removed_block_is_gone(resnet):
    before = state_of(resnet)
    small = remove_blocks(resnet, ["layer2.1", "layer1.0"])
    assert isinstance(small.layer2[1], nn.Identity) and isinstance(small.layer1[0], nn.Identity)
    assert not any(k.startswith(("layer2.1.", "layer1.0.")) for k in small.state_dict())
    dropped = sum(p.numel() for p in resnet.layer2[1].parameters()) + sum(
        p.numel() for p in resnet.layer1[0].parameters())
    assert pruneviz.count_parameters(small) == pruneviz.count_parameters(resnet) - dropped
    assert pruneviz.macs(small, X[:1]) < pruneviz.macs(resnet, X[:1])
    assert small(X).shape == resnet(X).shape
    assert same_state(before, state_of(resnet))


def test_removing_a_block_equals_skipping_it(resnet):
    """Identity in place of relu(x + f(x)) is exactly what running the rest of the net on x gives."""
    small = remove_blocks(resnet, "layer3.1")
    with torch.no_grad():
        expected = resnet.fc(resnet.flatten(resnet.pool(resnet.layer3[0](resnet.layer2(resnet.layer1(
            resnet.stem(X)))))))
    torch.testing.assert_close(outputs(small), expected)


@pytest.mark.parametrize("names, match", [
    (["layer9.0"], "no such module"),
    (["layer2.0"], "not a residual block"),
    (["layer1.1", "fc"], "not a residual block"),
])
def test_bad_names_raise_naming_the_removable_blocks(resnet, names, match):
    before = state_of(resnet)
    with pytest.raises(ValueError, match=match) as err:
        remove_blocks(resnet, names)
    for block in removable_blocks(resnet):
        assert repr(block) in str(err.value)
    assert same_state(before, state_of(resnet))


def test_block_importance_ranks_by_skipping_each_block(resnet, digits):
    train = digits.train
    data = pruneviz.data.as_tensors(train, limit=300)
    table = block_importance(resnet, data)
    assert sorted(table.block) == sorted(removable_blocks(resnet))
    assert list(table.accuracy_drop) == sorted(table.accuracy_drop)
    dense = pruneviz.evaluate(resnet, data)
    first = table.iloc[0]
    assert first.accuracy_drop == pytest.approx(dense - pruneviz.evaluate(remove_blocks(resnet, first.block), data))
    by_output = block_importance(resnet, data, metric="output")
    assert list(by_output.output_change) == sorted(by_output.output_change)
    with pytest.raises(ValueError, match="'accuracy', 'output'"):
        block_importance(resnet, data, metric="loss")


def test_depth_vs_width_meets_the_same_mac_budget(resnet, digits):
    train, test = digits.train, digits.test
    small_train = pruneviz.data.as_tensors(train, limit=256)
    before = state_of(resnet)
    table = depth_vs_width(resnet, small_train, test, blocks=1, epochs=1, measure_latency=False)
    assert list(table.method) == ["dense", "depth", "width"]
    dense, depth, width = (table.iloc[i] for i in range(3))
    assert depth.macs < dense.macs and width.macs < dense.macs
    assert abs(width.macs - depth.macs) / dense.macs < 0.05
    assert same_state(before, state_of(resnet))
    with pytest.raises(ValueError, match="4 removable"):
        depth_vs_width(resnet, small_train, test, blocks=5)


def test_over_seeds_one_row_per_method_and_seed_and_the_model_unchanged():
    """Conv1d (MNIST-1D's residual net): the tables' shape, fine-tuning per seed, the models it is given intact."""
    from pruneviz.depth import depth_vs_width_seeds, inblock_vs_groups

    resnet = pruneviz.zoo.load("mnist1d-resnet", device="cpu")
    train, val, test = pruneviz.zoo.data("mnist1d-resnet")
    small_train, small_test = (pruneviz.data.as_tensors(d, limit=128) for d in (train, test))
    before = state_of(resnet)
    depth = depth_vs_width_seeds(resnet, small_train, small_test, seeds=[0, 1], blocks=1, epochs=1,
                                 calibration=pruneviz.data.as_tensors(val, limit=256))
    groups = inblock_vs_groups(resnet, small_train, small_test, ratio=0.5, seeds=[0, 1], epochs=1)
    assert same_state(before, state_of(resnet))
    group_methods = ["dense", "in-block", "groups", "groups, same MACs"]
    for table, methods in ((depth, ["dense", "depth", "width"]), (groups, group_methods)):
        assert list(table.method) == [m for m in methods for _ in (0, 1)] and list(table.seed) == [0, 1] * len(methods)
        dense = table[table.method == "dense"]
        assert (dense.accuracy_finetuned == dense.accuracy).all()  # the dense model is not fine-tuned
        for method in methods[1:]:
            rows = table[table.method == method]
            assert rows.parameters.nunique() == 1 and (rows.macs < dense.macs.iloc[0]).all()
    assert abs(depth.macs[2] - depth.macs[4]) / depth.macs[0] < 0.05  # depth and width: the same MACs
    # groups prune the stream the adds tie, so they remove more at the same ratio
    assert groups.macs[4] < groups.macs[2] and groups.parameters[4] < groups.parameters[2]
    with pytest.raises(ValueError, match="seeds is empty"):
        inblock_vs_groups(resnet, small_train, small_test, seeds=[])
    same = groups[groups.method == "groups, same MACs"].iloc[0]
    assert abs(same.macs - groups.macs[2]) / groups.macs[0] < 0.05  # groups at the in-block model's MACs
