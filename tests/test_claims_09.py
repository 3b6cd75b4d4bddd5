"""Notebook 09's sentences, asserted over the computations the notebook runs (the same calls and arguments).

Latency claims are asserted when the measurement says it can be trusted (``pruneviz.timing.reliable``: the
per-round speed-ups agree); on a machine too busy for that, the test measures once more, then skips, saying
why, rather than assert on noise.
"""
import pytest

import pruneviz
from pruneviz import artefacts
from pruneviz.depth import (depth_and_width_models, depth_vs_width_seeds, inblock_and_group_models,
                             inblock_vs_groups)
from pruneviz.timing import latency_table, masked_and_compacted, reliable, verdict

SIGNAL = 100 / 5000  # one MNIST-1D test signal, in points of %
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def signals():
    return pruneviz.zoo.data("mnist1d-resnet")


@pytest.fixture(scope="module")
def m1d_resnet():
    return pruneviz.zoo.load("mnist1d-resnet", device="cpu")


@pytest.fixture(scope="module")
def ranking(m1d_resnet, signals):
    return pruneviz.block_importance(m1d_resnet, signals.val)


@pytest.fixture(scope="module")
def depth_runs(m1d_resnet, signals):
    """The notebook's call, read from the shipped artefact."""
    return artefacts.table(depth_vs_width_seeds, m1d_resnet, signals.train, signals.test, seeds=SEEDS, blocks=2,
                           epochs=5, calibration=signals.val)


@pytest.fixture(scope="module")
def width_runs(m1d_resnet, signals):
    return artefacts.table(inblock_vs_groups, m1d_resnet, signals.train, signals.test, ratio=0.5, seeds=SEEDS,
                           epochs=5)


def over_seeds(runs):
    """{method: (accuracy before fine-tuning, mean, min, max fine-tuned)} in points of %, and the rows."""
    out = {}
    for method, rows in runs.groupby("method", sort=False):
        tuned = 100 * rows.accuracy_finetuned
        out[method] = (100 * rows.accuracy.iloc[0], tuned.mean(), tuned.min(), tuned.max())
    return out


def measured(models, x1):
    for _ in range(2):
        table = latency_table(models, x1, batches=(1, 64), rounds=7, runs={1: 15, 64: 3})
        if reliable(table, max_spread=0.15):  # the asserts below compare quartile intervals, not medians
            return table.set_index(["model", "batch"])
    pytest.skip(f"the machine is too busy to time on: {verdict(table)}")


def test_the_last_block_goes_for_free_and_the_first_is_missed_most(ranking):
    assert list(ranking.block) == ["layer3.1", "layer2.1", "layer1.1", "layer1.0"]
    assert round(5000 * ranking.accuracy_drop.iloc[0]) == -4  # 4 more validation signals right without it
    assert round(5000 * ranking.accuracy_drop.iloc[1]) == 117 and round(100 * ranking.accuracy_drop.iloc[1], 1) == 2.3
    assert round(100 * ranking.accuracy_drop.iloc[-1], 1) == 52.8


def test_same_macs_and_depth_keeps_more_before_fine_tuning(depth_runs):
    result = over_seeds(depth_runs)
    macs = depth_runs.groupby("method", sort=False).macs.first()
    assert abs(macs["depth"] - macs["width"]) / macs["dense"] < 0.01
    assert list(depth_runs[depth_runs.method == "depth"].removed.unique()) == ["layer3.1, layer2.1"]
    depth, width = result["depth"][0], result["width"][0]
    assert (round(depth, 1), round(width, 1)) == (96.2, 79.4)
    assert round((depth - width) / SIGNAL) == 842


def test_fine_tuned_depth_beats_width_by_more_than_the_seed_spread(depth_runs):
    result = over_seeds(depth_runs)
    dense = result["dense"][0]
    _, depth, depth_min, depth_max = result["depth"]
    _, width, width_min, width_max = result["width"]
    assert (round(depth, 1), round(depth_min, 1), round(depth_max, 1)) == (98.2, 97.9, 98.3)
    assert (round(width, 1), round(width_min, 1), round(width_max, 1)) == (97.5, 97.5, 97.5)
    assert round((depth - width) / SIGNAL) == 32 and round(depth - width, 1) == 0.6
    assert depth_min > width_max and round((depth_min - width_max) / SIGNAL) == 18  # every seed, by 18 or more
    assert round(dense, 1) == 98.3
    assert (round((dense - depth) / SIGNAL), round((dense - width) / SIGNAL)) == (9, 42)


def test_depth_turns_its_macs_into_speed_and_width_less(m1d_resnet, ranking, signals):
    x1 = signals.test.tensors[0][:1]
    speed = measured({m: net for m, _, net in depth_and_width_models(m1d_resnet, x1, ranking, blocks=2)}, x1)
    for batch in (1, 64):
        depth, width = speed.loc[("depth", batch)], speed.loc[("width", batch)]
        assert round(depth.mac_reduction, 2) == 1.85
        # each claim on the quartile interval of the per-round speed-ups, so noise within it cannot break it
        assert depth.speedup_high > 1.2, f"depth at batch {batch}: {depth.speedup:.2f}x"
        assert depth.speedup > width.speedup and depth.speedup_low > width.speedup_low, f"batch {batch}"
        assert depth.speedup_low <= depth.mac_reduction  # "part of its MAC reduction", not more
        assert width.speedup_low < 0.75 * width.mac_reduction, f"width at batch {batch}: {width.speedup:.2f}x"


def test_groups_reach_further_at_one_ratio(width_runs):
    result = over_seeds(width_runs)
    first = width_runs.groupby("method", sort=False)[["parameters", "macs"]].first()
    kept = first.macs / first.macs["dense"]
    assert (round(kept["groups"], 3), round(kept["in-block"], 3)) == (0.251, 0.522)
    assert (first.parameters["groups"], first.parameters["in-block"]) == (15778, 32602)
    assert (round(result["groups"][0], 1), round(result["in-block"][0], 1)) == (10.4, 72.0)


def test_fine_tuned_groups_below_in_block_at_one_ratio_and_level_at_the_same_macs(width_runs):
    result = over_seeds(width_runs)
    _, groups, groups_min, groups_max = result["groups"]
    _, inblock, inblock_min, inblock_max = result["in-block"]
    _, same, same_min, same_max = result["groups, same MACs"]
    assert (round(groups, 1), round(groups_min, 1), round(groups_max, 1)) == (94.5, 94.1, 95.3)
    assert (round(inblock, 1), round(inblock_min, 1), round(inblock_max, 1)) == (97.4, 97.2, 97.7)
    assert (round(same, 1), round(same_min, 1), round(same_max, 1)) == (97.5, 97.3, 97.7)
    assert round((inblock - groups) / SIGNAL) == 145 and round(inblock - groups, 1) == 2.9
    assert groups_max < inblock_min  # below in-block on every seed
    first = width_runs.groupby("method", sort=False).first()
    assert round(first.macs["groups"] / first.macs["in-block"], 1) == 0.5  # "with half its MACs"
    assert abs(first.macs["groups, same MACs"] - first.macs["in-block"]) / first.macs["dense"] < 0.01
    assert first.removed["groups, same MACs"] == "27% of the channels"
    # "3 signals apart, inside the spread over seeds"
    assert round((same - inblock) / SIGNAL) == 3
    assert abs(same - inblock) < min(inblock_max - inblock_min, same_max - same_min)


def test_groups_turn_their_reach_into_speed(m1d_resnet, signals):
    x1 = signals.test.tensors[0][:1]
    speed = measured({m: net for m, _, net in inblock_and_group_models(m1d_resnet, x1, ratio=0.5)}, x1)
    for batch in (1, 64):
        groups, inblock = speed.loc[("groups", batch)], speed.loc[("in-block", batch)]
        assert round(groups.mac_reduction) == 4 and round(inblock.mac_reduction, 1) == 1.9
        assert groups.speedup_high > 1.1, f"groups at batch {batch}: {groups.speedup:.2f}x"  # a real speed-up
        assert groups.speedup > inblock.speedup and groups.speedup_high > inblock.speedup_high, f"batch {batch}"
        assert groups.speedup_high < 0.5 * groups.mac_reduction  # "far below its MAC reduction"
        assert inblock.speedup_high < 0.85 * inblock.mac_reduction


def test_zeros_run_at_dense_speed_and_removed_channels_faster(digits):
    cnn = pruneviz.zoo.load("digits-cnn", device="cpu")
    speed = measured(masked_and_compacted(cnn), digits.test.tensors[0][:1])
    for batch in (1, 64):
        for case in ("element 50 % (zeros)", "element 90 % (zeros)", "2:4 (zeros)", "channel 50 % (zeros)"):
            row = speed.loc[(case, batch)]  # "within 10 % of the dense speed", up to the rounds' quartiles
            assert row.speedup_low <= 1.1 and row.speedup_high >= 0.9, f"{case} at batch {batch}"
    compacted = speed.xs("channel 50 % (compacted)", level="model")
    assert compacted.speedup_low[1] > 1.15 and compacted.speedup_low[64] > 1.6
    assert compacted.speedup_low[64] > compacted.speedup_high[1]  # overhead takes its share at batch 1


@pytest.mark.parametrize("removed, accuracy", [(0.25, 98.1), (0.5, 40.6), (0.75, 13.3)])
def test_width_without_fine_tuning_falls_fast(digits, cnn, removed, accuracy):
    """The widget's readout: every conv of digits-cnn loses ``removed`` of its channels, compacted, no fine-tuning."""
    pruner = pruneviz.Pruner(cnn, "magnitude", "channel")
    compacted = pruneviz.compact(cnn, pruner.prune(removed).masks)
    pruner.restore()
    assert round(100 * pruneviz.evaluate(compacted, digits.test), 1) == accuracy
