"""Notebook 10's sentences, asserted over the computation the notebook runs (the same calls, the same cache)."""
import pytest

import pruneviz
from pruneviz.overparam import DEFAULT_CACHE, best_lrs, choose_finetune_lr, gaps, pruned_vs_scratch, summary


@pytest.fixture(scope="module")
def results(digits):
    wide = pruneviz.zoo.load("digits-mlp", device="cpu")
    lrs = best_lrs(choose_finetune_lr(wide, digits.train, digits.val, cache=DEFAULT_CACHE))
    return pruned_vs_scratch(wide, digits.train, digits.test, finetune_lr=lrs, cache=DEFAULT_CACHE)


def test_five_seeds_and_the_two_budgets(results):
    table = summary(results)
    for method in ("pruned + fine-tuned", "scratch-E", "scratch-B"):
        assert (table.xs(method, level="method").seeds == 5).all()
    epochs = results.groupby("method").epochs.unique()
    assert list(epochs["scratch-E"]) == [100]
    assert list(epochs["scratch-B"]) == list(epochs["pruned + fine-tuned"]) == [120]  # the same budget


def test_pruning_without_fine_tuning_is_no_competitor(results):
    table = summary(results)["mean"].unstack("method")
    assert (table["pruned"] < table["pruned + fine-tuned"] - 4).all()
    assert table["pruned"].max() == pytest.approx(91.7, abs=0.05)
    assert table["pruned"].min() == pytest.approx(27.8, abs=0.05)


def test_level_with_scratch_b_at_the_two_larger_sizes(results):
    large = gaps(results).set_index("parameters").loc[[17226, 6570]]
    assert (large.gap.abs() < large.seed_std).all()  # within one standard deviation of the seeds
    assert large.gap_images.round().tolist() == [2, 0]  # "two images ahead", "level"


def test_scratch_e_is_behind_by_about_a_point_at_the_larger_sizes(results):
    table = summary(results)["mean"].unstack("method").loc[[17226, 6570]]
    behind = table["pruned + fine-tuned"] - table["scratch-E"]
    assert ((behind > 0.5) & (behind < 1.5)).all()


def test_scratch_is_ahead_at_the_two_smallest_sizes(results):
    small = gaps(results).set_index("parameters").loc[[2778, 1266]]
    assert small.gap.round(1).tolist() == [-1.3, -1.8]
    assert small.gap_images.round().tolist() == [-5, -7]
    ratio = -small.gap / small.seed_std
    assert ((ratio >= 1.0) & (ratio <= 1.6)).all()  # "one to one and a half standard deviations"


def test_the_lectures_learning_rate_rule_fits_the_largest_size_only(digits):
    """'0.01 is a tenth of the zoo's 0.1, and the smaller models choose 0.03 and 0.1' (chosen on val, cached)."""
    from pruneviz.zoo.recipe import PEAK_LR

    wide = pruneviz.zoo.load("digits-mlp", device="cpu")
    lrs = best_lrs(choose_finetune_lr(wide, digits.train, digits.val, cache=DEFAULT_CACHE))
    assert lrs == {0.5: 0.01, 0.75: 0.03, 0.875: 0.03, 0.9375: 0.1}
    assert lrs[0.5] == pytest.approx(PEAK_LR / 10)
    assert all(lr > PEAK_LR / 10 for s, lr in lrs.items() if s > 0.5)  # above the next lecture's 1/10 to 1/100
