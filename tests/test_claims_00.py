"""Notebook 00's sentences, asserted over the computations the notebook runs (same calls, same arguments)."""
import pytest
import torch

import pruneviz
from pruneviz.baselines import accuracy_sweep

def lost(dense: float, accuracy: float) -> int:
    """Test images lost (accuracies are float32 fractions of 360 images)."""
    return round(360 * dense) - round(360 * accuracy)


@pytest.fixture
def dense_accuracy(cnn, digits):
    return pruneviz.evaluate(cnn, digits.test)


def test_nine_weights_in_ten_go_for_at_most_two_images_then_it_breaks(cnn, digits, dense_accuracy):
    """'With one global threshold, nine weights in ten go for at most two test images (0.6 %); between 90 % and
    95 % the network breaks.'"""
    sweep = accuracy_sweep(cnn, digits.test, [0.5, 0.7, 0.8, 0.9, 0.95], scope="global").set_index("sparsity")
    for ratio in (0.5, 0.7, 0.8, 0.9):
        assert lost(dense_accuracy, sweep.accuracy[ratio]) <= 2, ratio
    assert sweep.accuracy[0.95] < dense_accuracy - 0.2


def test_local_scope_hurts_because_of_the_small_first_layer(cnn, digits, dense_accuracy):
    """'Local scope takes 80 % of [conv1's 144 weights], and that alone drops the accuracy to about a third, while
    the other four layers at 80 % together cost six points. The global threshold takes about 10 % from conv1 and
    94 % from conv4.' And the explorer's curve at local scope falls between 50 % and 80 %."""
    accuracy, per_layer = {}, {}
    for scope in ("global", "local"):
        pruner = pruneviz.Pruner(cnn, "magnitude", "element", scope=scope)
        pruner.prune(0.8)
        per_layer[scope] = pruneviz.layer_sparsity(cnn)
        accuracy[scope] = pruneviz.evaluate(cnn, digits.test)
        pruner.restore()
    assert cnn.conv1.weight.numel() == 144
    assert per_layer["global"]["conv1"] == pytest.approx(0.10, abs=0.02)
    assert per_layer["global"]["conv4"] == pytest.approx(0.94, abs=0.01)
    assert lost(dense_accuracy, accuracy["global"]) <= 2
    assert accuracy["local"] < 0.5
    conv1 = accuracy_sweep(cnn, digits.test, [0.8], layers=["conv1"]).accuracy[0]
    rest = accuracy_sweep(cnn, digits.test, [0.8], layers=["conv2", "conv3", "conv4", "fc"]).accuracy[0]
    assert 0.25 <= conv1 <= 0.42  # "about a third"
    assert 0.04 <= dense_accuracy - rest <= 0.08  # "six points"
    local = accuracy_sweep(cnn, digits.test, [0.5, 0.8], scope="local").set_index("sparsity").accuracy
    assert lost(dense_accuracy, local[0.5]) <= 2 and local[0.8] < 0.5


def test_synapses_keep_the_shape_neurons_make_a_smaller_dense_network():
    """The 4-6-6-3 picture: 39 of 78 weights kept in the same matrices; a 4-3-3-3 network of 30 weights."""
    torch.manual_seed(0)
    tiny = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6), torch.nn.ReLU(),
                               torch.nn.Linear(6, 3))
    synapses = pruneviz.Pruner(tiny, "magnitude", "element", scope="global")
    synapses.prune(0.5)
    assert sum(int(m.weight.count_nonzero()) for m in tiny[::2]) == 39
    assert [tuple(m.weight.shape) for m in tiny[::2]] == [(6, 4), (6, 6), (3, 6)]
    synapses.restore()
    neurons = pruneviz.Pruner(tiny, "magnitude", "channel")
    neurons.prune(0.5)
    smaller = pruneviz.compact(tiny, neurons.masks)
    x = torch.randn(5, 4)
    torch.testing.assert_close(smaller(x), tiny(x))  # the same function, without the removed neurons
    neurons.restore()
    assert [tuple(m.weight.shape) for m in smaller[::2]] == [(3, 4), (3, 3), (3, 3)]
    assert sum(m.weight.numel() for m in smaller[::2]) == 30


def test_the_digits_leave_no_room_mnist1d_leaves_headroom(cnn, digits):
    """'digits-cnn misses one of its 360 test images ... one image is 0.28 %. ... mnist1d-cnn misses about 130 of
    its 5,000 test signals, and with 5,000 one point of accuracy is 50 signals.' (and the cell's 97.4 %)"""
    assert len(digits.test) == 360
    assert 360 - round(360 * pruneviz.evaluate(cnn, digits.test)) == 1
    _, _, signals = pruneviz.data.mnist1d()
    accuracy = pruneviz.evaluate(pruneviz.zoo.load("mnist1d-cnn", device="cpu"), signals)
    assert len(signals) == 5000
    assert f"{100 * accuracy:.1f}" == "97.4"
    assert 120 <= 5000 - round(5000 * accuracy) <= 140  # "about 130"
