"""Every criterion that scores channels scores coupled groups: the sum of its members' channel scores (scaling:
the gammas of every BatchNorm the group passes); regression only where one next-layer reconstruction defines it."""
import pytest
import torch
from torch import nn

import pruneviz
from benchmarks.coupled_models import BasicBlock, DenseBlock, InvertedResidual, randomized
from pruneviz.granularity import CHANNEL


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.blocks = nn.Sequential(BasicBlock(8, 8), InvertedResidual(8, 8, 1, 2, se=True), DenseBlock(2, 8, 4))
        self.norm = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = torch.relu(self.norm(self.blocks(torch.relu(self.bn(self.stem(x))))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def net():
    torch.manual_seed(0)
    return randomized(Net()).double()


DATA = (torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64),
        torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(2)))
CRITERIA = ("magnitude", "l2", "random", "scaling", "apoz", "obd", "regression")


@pytest.mark.parametrize("criterion", CRITERIA)
def test_criterion_prunes_groups_exactly(criterion):
    model = net()
    pruner = pruneviz.Pruner(model, criterion, "group", data=DATA)
    pruner.prune(0.5)
    small = pruneviz.compact(model, pruner.masks)
    with torch.no_grad():
        torch.testing.assert_close(small(DATA[0]), model(DATA[0]), rtol=1e-9, atol=1e-9)
    assert pruneviz.macs(small, DATA[0][:1]) < pruneviz.macs(model, DATA[0][:1])


@pytest.mark.parametrize("criterion", ["magnitude", "l2", "random", "apoz", "obd"])
def test_group_score_is_the_sum_of_member_scores(criterion):
    model = net()
    pruner = pruneviz.Pruner(model, criterion, "group", data=DATA)
    members = pruner.criterion.scores(model, pruner._members, CHANNEL, DATA)
    for name, group in pruner._plan.groups.items():
        scored = [members[p] for p in group.producers if p in members]
        torch.testing.assert_close(pruner.scores[name], sum(scored))
    stem = pruner._plan.groups["stem"]
    assert stem.producers == ["stem", "blocks.0.conv2", "blocks.1.block.3.0"]  # two residual adds
    if criterion == "magnitude":
        expected = sum(model.get_submodule(p).weight.detach().abs().flatten(1).sum(1) for p in stem.producers)
        torch.testing.assert_close(pruner.scores["stem"], expected)
    if criterion == "apoz":  # only the members with a ReLU after them: the stem (the blocks' adds come first)
        assert [p for p in stem.producers if p in members] == ["stem"]


def test_scaling_reads_every_batchnorm_of_the_group():
    model = net()
    pruner = pruneviz.Pruner(model, "scaling", "group")
    dense = pruner._plan.groups["blocks.2.denselayer1.conv2"]  # 4 channels after the 8 of the input
    assert dense.norms == {"blocks.2.denselayer2.norm1": 8, "norm": 8}
    expected = (model.blocks[2].denselayer2.norm1.weight[8:12].abs() + model.norm.weight[8:12].abs()).detach()
    torch.testing.assert_close(pruner.scores["blocks.2.denselayer1.conv2"], expected)
    gate = "blocks.1.block.2.fc1"  # the squeeze conv of the SE gate: no BatchNorm after it
    assert "no BatchNorm scales its channels" in pruner.skipped[gate]


def test_regression_leaves_coupled_groups_out_and_says_why():
    pruner = pruneviz.Pruner(net(), "regression", "group", data=DATA)
    assert all(not g.coupled for g in pruner._plan.groups.values())
    assert "LASSO reconstruction is defined for one layer feeding one next layer" in pruner.skipped["stem"]
    assert "blocks.0.conv1" in pruner.scores
