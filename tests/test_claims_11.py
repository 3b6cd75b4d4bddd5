"""Notebook 11's sentences (the intro, the reference's comments and the model answers to the written questions),
asserted over the computations the notebook runs: the shipped mnist1d-cnn, its BatchNorm scales, the channel
sensitivity scan on val, MACs counted before and after compaction. Inference on shipped weights only; the
fine-tuned accuracy is the grader's business (tests/test_project.py)."""
import copy

import pytest
import torch

import pruneviz
from pruneviz import zoo

SPARSITIES = [i / 8 for i in range(1, 8)]
HALF = {"conv1": 0.5, "conv2": 0.5, "conv3": 0.5}


@pytest.fixture(scope="module")
def dense():
    return zoo.load("mnist1d-cnn", device="cpu")


@pytest.fixture(scope="module")
def splits():
    return zoo.data("mnist1d-cnn")


@pytest.fixture(scope="module")
def scan(dense, splits):
    return pruneviz.sensitivity_scan(dense, splits.val, "magnitude", "channel", sparsities=SPARSITIES,
                                     progress=False)


def at(scan, layer, ratio):
    return round(100 * float(scan[(scan.layer == layer) & (scan.sparsity == ratio)].accuracy.iloc[0]), 1)


def gammas(dense, name):
    return getattr(dense, name).weight.detach().abs()


def test_intro_dense_test_accuracy(dense, splits):
    """'97.4 % on the 5,000 test signals'"""
    assert len(splits.test) == 5000
    assert round(100 * pruneviz.evaluate(dense, splits.test), 1) == 97.4


def test_answer_1_the_histogram(dense):
    """'One channel, in bn1, has |γ| < 0.01 ... the other γs of bn1 and bn2 start at 0.13 and spread up to 0.47,
    those of bn3 lie between 0.71 and 1.53.'"""
    assert [int((gammas(dense, n) < 0.01).sum()) for n in ("bn1", "bn2", "bn3")] == [1, 0, 0]
    rest = torch.cat([gammas(dense, "bn1")[gammas(dense, "bn1") >= 0.01], gammas(dense, "bn2")])
    assert round(float(rest.min()), 2) == 0.13 and round(float(rest.max()), 2) == 0.47
    bn3 = gammas(dense, "bn3")
    assert round(float(bn3.min()), 2) == 0.71 and round(float(bn3.max()), 2) == 1.53


def test_answer_1_the_switched_off_channel_costs_nothing(dense, splits):
    """'One channel, in bn1, has |γ| < 0.01: the network switched it off, so removing it costs nothing.'"""
    channel = int(gammas(dense, "bn1").argmin())
    assert abs(float(dense.bn1.bias.detach()[channel])) < 0.01  # its output is a constant near 0 before the ReLU, too
    pruned = copy.deepcopy(dense)
    pruner = pruneviz.Pruner(pruned, "magnitude", "channel").prune({"conv1": 1 / 24})
    assert not pruner.masks["conv1"][channel].any()  # magnitude takes it first as well
    small = pruneviz.compact(pruned, pruner.masks)
    assert round(5000 * pruneviz.evaluate(small, splits.val)) == round(5000 * pruneviz.evaluate(dense, splits.val))


def test_answer_2_the_sensitivity_curves(scan):
    """'conv2 is the most sensitive: with a quarter of its channels gone val accuracy falls to 73.7 %, against
    92.9 % for conv1 and 95.1 % for conv3, the most robust (dense: 97.6 %).'"""
    assert round(100 * scan.attrs["dense_accuracy"], 1) == 97.6
    assert (at(scan, "conv1", 0.25), at(scan, "conv2", 0.25), at(scan, "conv3", 0.25)) == (92.9, 73.7, 95.1)
    for ratio in SPARSITIES:  # the ranking holds at every ratio scanned, not only at a quarter
        assert at(scan, "conv2", ratio) <= min(at(scan, "conv1", ratio), at(scan, "conv3", ratio)) or ratio > 0.75
        assert at(scan, "conv3", ratio) >= max(at(scan, "conv1", ratio), at(scan, "conv2", ratio))


def test_answer_2_an_eighth_and_half(scan):
    """'With an eighth of their channels pruned, conv1 and conv3 lose 1.1 and 0.6 points (53 and 30 of the 5,000
    signals) while conv2 loses 8.3 (416); at half of any layer's channels the network is below 78 %.'"""
    dense = scan.attrs["dense_accuracy"]

    def lost(layer):
        return round(5000 * (dense - float(scan[(scan.layer == layer) & (scan.sparsity == 0.125)].accuracy.iloc[0])))

    assert (lost("conv1"), lost("conv3"), lost("conv2")) == (53, 30, 416)
    assert [round(n / 50, 1) for n in (lost("conv1"), lost("conv3"), lost("conv2"))] == [1.1, 0.6, 8.3]
    assert all(at(scan, layer, r) < 78 for layer in ("conv1", "conv2", "conv3") for r in SPARSITIES if r >= 0.5)


def test_conv2_holds_most_of_the_macs(dense):
    """'conv2 is also the layer with most MACs (17,280 of 29,400)', '59 % of the MACs'"""
    example = torch.zeros(1, 1, 40)
    per_layer, total = pruneviz.layer_macs(dense, example), pruneviz.macs(dense, example)
    assert (per_layer["conv2"], total) == (17280, 29400) and max(per_layer, key=per_layer.get) == "conv2"
    assert round(100 * per_layer["conv2"] / total) == 59


def test_half_of_every_layer_leaves_28_percent_of_the_macs(dense, splits):
    """The reference's comment: 'half of every layer's channels leaves 28 % of the MACs'; and pruned without
    fine-tuning, it is lost (the notebook prints its val accuracy)."""
    example = torch.zeros(1, 1, 40)
    pruned = copy.deepcopy(dense)
    pruner = pruneviz.Pruner(pruned, "magnitude", "channel").prune(HALF)
    small = pruneviz.compact(pruned, pruner.masks)
    assert round(pruneviz.macs(small, example) / pruneviz.macs(dense, example), 3) == 0.280
    assert pruneviz.evaluate(pruned, splits.val) < 0.5
