"""Notebook 09's sentences, asserted over the computations the notebook runs (the same calls and arguments).

Latency claims are asserted when the measurement says it can be trusted (``pruneviz.timing.reliable``: the
per-round speed-ups agree); on a machine too busy for that, the test measures once more, then skips, saying
why, rather than assert on noise.
"""
import pytest

import pruneviz
from pruneviz.depth import depth_vs_width
from pruneviz.timing import latency_table, masked_and_compacted, reliable, verdict

IMAGE = 100 / 360  # one test image, in points of %


@pytest.fixture(scope="module")
def resnet_runs(digits):
    resnet = pruneviz.zoo.load("digits-resnet", device="cpu")
    ranking = pruneviz.block_importance(resnet, digits.val)
    table, models = depth_vs_width(resnet, digits.train, digits.test, blocks=2, epochs=2, calibration=digits.val,
                                   ranking=ranking, measure_latency=False, return_models=True)
    return ranking, table.set_index("method"), models


def measured(models, x1):
    for _ in range(2):
        table = latency_table(models, x1, batches=(1, 64), rounds=7, runs={1: 15, 64: 3})
        if reliable(table, max_spread=0.15):  # the asserts below compare quartile intervals, not medians
            return table.set_index(["model", "batch"])
    pytest.skip(f"the machine is too busy to time on: {verdict(table)}")


def test_the_last_block_goes_for_free_and_the_first_is_missed_most(resnet_runs):
    ranking, _, _ = resnet_runs
    assert ranking.block.iloc[0] == "layer3.1" and ranking.accuracy_drop.iloc[0] == 0
    assert ranking.block.iloc[-1] == "layer1.0"


def test_same_macs_and_width_keeps_more_before_fine_tuning(resnet_runs):
    _, table, _ = resnet_runs
    dense, depth, width = (table.loc[m] for m in ("dense", "depth", "width"))
    assert abs(depth.macs - width.macs) / dense.macs < 0.01
    assert (round(100 * width.accuracy, 1), round(100 * depth.accuracy, 1)) == (98.1, 95.6)


def test_fine_tuning_brings_both_back_one_image_apart(resnet_runs):
    _, table, _ = resnet_runs
    dense, depth, width = (100 * table.loc[m].accuracy_finetuned for m in ("dense", "depth", "width"))
    assert (round(depth, 1), round(width, 1), round(dense, 1)) == (99.4, 99.2, 99.7)
    assert round((depth - width) / IMAGE) == 1
    assert (round((dense - depth) / IMAGE), round((dense - width) / IMAGE)) == (1, 2)


def test_depth_turns_its_macs_into_speed_and_width_does_not(resnet_runs, digits):
    _, table, models = resnet_runs
    speed = measured(models, digits.test.tensors[0][:1])
    for batch in (1, 64):
        depth, width = speed.loc[("depth", batch)], speed.loc[("width", batch)]
        # each claim on the quartile interval of the per-round speed-ups, so noise within it cannot break it
        assert depth.speedup_high > 1.2, f"depth at batch {batch}: {depth.speedup:.2f}x"
        assert width.speedup_low < 1.25, f"width at batch {batch}: {width.speedup:.2f}x"
        assert depth.speedup_low > width.speedup_high, f"batch {batch}: depth not clearly ahead"
        assert depth.speedup_low <= depth.mac_reduction  # "most of its MAC reduction", not more


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
