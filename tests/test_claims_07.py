"""Notebook 07's sentences, asserted over the computations the notebook runs (same calls, same arguments):
scans and ratio dicts on the validation split, the allocations judged on test."""
import pytest

import pruneviz
from pruneviz.ratios import compare_allocations

RATIOS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
TARGETS = (0.5, 0.4, 0.3, 0.2, 0.1)
IMAGE = 1 / 360


@pytest.fixture(scope="module")
def model():
    return pruneviz.zoo.load("digits-cnn", device="cpu")


@pytest.fixture(scope="module")
def scan(model, digits):
    return pruneviz.sensitivity_scan(model, digits.val, criterion="magnitude", granularity="element",
                                     sparsities=RATIOS, progress=False)


def images(accuracy: float) -> int:
    return round(360 * accuracy)


def at(scan, layer, ratio):
    return float(scan[(scan.layer == layer) & (scan.sparsity == ratio)].accuracy.iloc[0])


def test_conv1_collapses_first_and_conv4_and_fc_barely_notice(scan):
    """'conv1 loses 9 validation images at 60 % and collapses at 80 % (34.7 %); conv2 and conv3 hold to 70 % ...
    conv4 and fc lose at most one validation image at any ratio up to 95 %.'"""
    dense = at(scan, "conv1", 0.0)
    assert images(dense) - images(at(scan, "conv1", 0.6)) == 9
    assert at(scan, "conv1", 0.8) < 0.4
    for layer in ("conv2", "conv3"):
        assert all(at(scan, layer, r) >= dense - 0.01 for r in RATIOS if r <= 0.7), layer
    assert at(scan, "conv2", 0.8) < dense - 0.05 and at(scan, "conv3", 0.9) < dense - 0.2
    for layer in ("conv4", "fc"):
        assert all(images(dense) - images(at(scan, layer, r)) <= 1 for r in RATIOS), layer


def test_drop_threshold_beats_uniform_but_not_the_global_threshold(model, digits, scan):
    """'95.3 % against 10.0 % ... the global threshold keeps 98.9 % at the same sparsity, 13 test images more ...
    five layers each within one point lose 4.4 points together.'"""
    by_drop = pruneviz.ratios_for_drop(scan, max_drop=0.01)
    row = compare_allocations(model, {"drop <= 1 point": by_drop}, digits.test).iloc[0]
    assert row.guided > row.uniform + 0.5
    assert images(row["global"]) - images(row.guided) == 13
    assert pruneviz.evaluate(model, digits.test) - row.guided > 0.04


@pytest.fixture(scope="module")
def allocations(model, digits, scan):
    dicts = {f"{t:.1f}": pruneviz.ratios_for_size(scan, model, t) for t in TARGETS}
    return compare_allocations(model, dicts, digits.test).set_index("allocation"), dicts


def test_guided_beats_uniform_from_66_percent(allocations):
    """'the sensitivity-guided dicts win from 66 % sparsity on ...; at 54.5 % the two are 2 test images apart.'"""
    table, _ = allocations
    assert table.sparsity["0.4"] == pytest.approx(0.663, abs=1e-3)
    assert images(table.guided["0.5"]) - images(table.uniform["0.5"]) == 2
    for target in ("0.4", "0.3", "0.2", "0.1"):
        assert table.guided[target] > table.uniform[target] + 0.04, target


def test_guided_is_no_better_than_the_global_threshold(allocations):
    """'up to 80 % the two are within one test image, and at 90 % the global threshold is 5 images ahead.'"""
    table, dicts = allocations
    for target in ("0.5", "0.4", "0.3", "0.2"):
        assert abs(images(table.guided[target]) - images(table["global"][target])) <= 1, target
    assert images(table["global"]["0.1"]) - images(table.guided["0.1"]) == 5
    ratios = dicts["0.2"]  # 'leaves conv1 light (20 %), prunes conv2, conv3 and fc to 50-60 %, conv4 to 95 %'
    assert {layer: round(r, 3) for layer, r in ratios.items()} == {  # as the notebook prints it beside the bars
        "conv1": 0.2, "conv2": 0.6, "conv3": 0.6, "conv4": 0.95, "fc": 0.5}
    assert all(0.5 <= ratios[name] <= 0.6 for name in ("conv2", "conv3", "fc"))


def test_channel_pruning_allows_a_lower_ratio_in_every_layer(model, digits, scan):
    """'a one-point drop allows a lower ratio in every layer' at channel granularity."""
    channel_scan = pruneviz.sensitivity_scan(model, digits.val, granularity="channel", sparsities=RATIOS,
                                             progress=False)
    channel = pruneviz.ratios_for_drop(channel_scan, 0.01)
    element = pruneviz.ratios_for_drop(scan, 0.01)
    assert set(channel) == {"conv1", "conv2", "conv3", "conv4"}
    assert all(channel[layer] < element[layer] for layer in channel)


def test_the_explorer_on_one_layer_reads_the_scan(model, digits, scan):
    """'the accuracy (readout and curve) is the scan's A_l(r)' and the cell leaves it at conv1, 0, dense."""
    import pruneviz.widgets

    explorer = pruneviz.widgets.explore(model, digits.val, calibration=digits.train, layer="conv1")
    explorer.only_layer.value = True
    for layer, value in [("conv1", 0.8), ("conv4", 0.8), ("conv4", 0.95)]:
        explorer.layer.value = layer
        explorer.sparsity.value = value
        assert f"accuracy {100 * at(scan, layer, value):.1f} %" in explorer.readout_text()
    explorer.layer.value = "conv1"
    explorer.sparsity.value = 0.0
    assert pruneviz.sparsity(model) == 0.0


# -- the same question on MNIST-1D: mnist1d-cnn, scan on 5,000 validation signals, judged on 5,000 test signals --

SIGNAL_LAYERS = ["conv1", "conv2", "conv3", "fc"]


def signals(accuracy: float) -> int:
    """Correct signals (accuracies are float32 fractions of 5,000)."""
    return round(5000 * accuracy)


@pytest.fixture(scope="module")
def signal_model():
    return pruneviz.zoo.load("mnist1d-cnn", device="cpu")


@pytest.fixture(scope="module")
def signal_scan(signal_model):
    _, val, _ = pruneviz.zoo.data("mnist1d-cnn")
    return pruneviz.sensitivity_scan(signal_model, val, criterion="magnitude", granularity="element",
                                     sparsities=RATIOS, progress=False)


@pytest.fixture(scope="module")
def signal_allocations(signal_model, signal_scan):
    """The notebook's table: the drop-threshold dict and the size-target dicts, compared on test."""
    _, _, test = pruneviz.zoo.data("mnist1d-cnn")
    dicts = {"drop <= 1 point": pruneviz.ratios_for_drop(signal_scan, max_drop=0.01)}
    dicts.update({f"size {t:.1f}": pruneviz.ratios_for_size(signal_scan, signal_model, t) for t in TARGETS})
    table = compare_allocations(signal_model, dicts, test).set_index("allocation")
    return table, dicts, pruneviz.evaluate(signal_model, test)


def test_mnist1d_scan_ranks_conv1_first_and_fc_last(signal_model, signal_scan):
    """'conv1 (120 weights) loses more than a point of validation accuracy from 40 %, conv2 from 50 %, conv3 from
    60 % and fc only from 80 %.'"""
    assert pruneviz.ratios.layer_weights(signal_model, SIGNAL_LAYERS) == {
        "conv1": 120, "conv2": 1728, "conv3": 1728, "fc": 1200}
    dense = at(signal_scan, "conv1", 0.0)
    first_over_a_point = {layer: min(r for r in RATIOS if at(signal_scan, layer, r) < dense - 0.01)
                          for layer in SIGNAL_LAYERS}
    assert first_over_a_point == {"conv1": 0.4, "conv2": 0.5, "conv3": 0.6, "fc": 0.8}


def test_mnist1d_guided_beats_uniform_and_the_global_threshold(signal_allocations):
    """'Every sensitivity-guided dict beats one uniform ratio on test at the same sparsity, by 272 test signals
    (5.4 points) for the drop threshold and by 254 to 1,894 signals for the size targets (at 70.2 %: 90.4 %
    against 52.5 %). Here, unlike on the digits, they also beat the global threshold, by 74 to 1,439 signals (109
    for the drop threshold; at 70.2 %: 90.4 % against 62.5 %).'"""
    table, _, _ = signal_allocations
    n = {column: table[column].map(signals) for column in ("guided", "uniform", "global")}
    over_uniform, over_global = n["guided"] - n["uniform"], n["guided"] - n["global"]
    assert over_uniform["drop <= 1 point"] == 272 and over_global["drop <= 1 point"] == 109
    sizes = [f"size {t:.1f}" for t in TARGETS]
    assert (over_uniform[sizes].min(), over_uniform[sizes].max()) == (254, 1894)
    assert (over_global[sizes].min(), over_global[sizes].max()) == (74, 1439)
    row = table.loc["size 0.3"]
    assert f"{100 * row.sparsity:.1f}" == "70.2"
    assert [f"{100 * row[c]:.1f}" for c in ("guided", "uniform", "global")] == ["90.4", "52.5", "62.5"]


def test_mnist1d_a_threshold_per_layer_is_not_a_budget_and_90_percent_breaks_everything(signal_allocations):
    """'four layers that each stayed within a point alone on validation lose 89 test signals (1.8 points)
    together. And no allocation saves the network at 90 % without fine-tuning (the best keeps 20.5 %); ... at
    80 % ... models that have already lost more than 40 points.'"""
    table, dicts, dense = signal_allocations
    assert set(dicts["drop <= 1 point"]) == set(SIGNAL_LAYERS)
    assert signals(dense) - signals(table.guided["drop <= 1 point"]) == 89
    at_90 = table.loc["size 0.1"]
    assert f"{100 * at_90.sparsity:.0f}" == "90"
    assert f"{100 * max(at_90.guided, at_90.uniform, at_90['global']):.1f}" == "20.5"
    assert dense - table.guided["size 0.2"] > 0.40


def test_mnist1d_past_80_percent_the_global_threshold_falls_below_uniform(signal_allocations):
    """'past 80 % the global threshold falls below even the uniform ratio'."""
    table, _, _ = signal_allocations
    for target in ("size 0.2", "size 0.1"):
        assert table.sparsity[target] > 0.8 and table["global"][target] < table.uniform[target], target
    for target in ("size 0.5", "size 0.4", "size 0.3"):
        assert table["global"][target] > table.uniform[target], target
