"""Notebook 10's sentences, asserted over the computation the notebook runs (the same calls, the same cache)."""
import pandas as pd
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


# ---- MNIST-1D: the same question on a task with headroom (the notebook's second part) ----
SIZES_1D = (0.5, 0.75, 0.875)


@pytest.fixture(scope="module")
def mnist1d():
    return pruneviz.data.mnist1d()


@pytest.fixture(scope="module")
def cnn():
    return pruneviz.zoo.load("mnist1d-cnn", device="cpu")


@pytest.fixture(scope="module")
def pilot(mnist1d):
    """The choice of model on val: one seed at 75 %, pruned + fine-tuned minus Scratch-B in val signals."""
    gaps_ = {}
    for name in ("mnist1d-mlp", "mnist1d-cnn"):
        model = pruneviz.zoo.load(name, device="cpu")
        rows = pruned_vs_scratch(model, mnist1d.train, mnist1d.val, [0.75], seeds=[0], finetune_lr=0.03,
                                 recipe=name, cache=DEFAULT_CACHE).set_index("method").accuracy
        gaps_[name] = round((rows["pruned + fine-tuned"] - rows["scratch-B"]) * len(mnist1d.val))
    return gaps_


@pytest.fixture(scope="module")
def lrs1d(cnn, mnist1d):
    return best_lrs(choose_finetune_lr(cnn, mnist1d.train, mnist1d.val, SIZES_1D, recipe="mnist1d-cnn",
                                       cache=DEFAULT_CACHE))


@pytest.fixture(scope="module")
def results1d(cnn, mnist1d, lrs1d):
    return pruned_vs_scratch(cnn, mnist1d.train, mnist1d.test, SIZES_1D, seeds=range(3), finetune_lr=lrs1d,
                             recipe="mnist1d-cnn", cache=DEFAULT_CACHE)


@pytest.fixture(scope="module")
def fits(cnn, mnist1d):
    from pruneviz.overparam import fitting

    return fitting(cnn, mnist1d.train, mnist1d.test, (0.0, *SIZES_1D), seeds=range(5), recipe="mnist1d-cnn",
                   cache=DEFAULT_CACHE)


def test_the_cnn_shows_the_effect_on_val_and_the_mlp_barely(pilot):
    """'192 signals ahead (3.8 points) for the CNN, 20 (0.4 points) for the MLP' (val, one seed)."""
    assert pilot == {"mnist1d-mlp": 20, "mnist1d-cnn": 192}


def test_wider_cnns_reach_lower_training_loss_at_every_epoch_from_the_third_in_every_seed(fits):
    """'from epoch 3 to 40 the five curves of each width lie below all five of the next narrower one'."""
    from pruneviz.overparam import loss_curves

    curves = list(loss_curves(fits).items())
    assert [size for size, _ in curves] == [4930, 1606, 592, 247]
    for (_, wider), (_, narrower) in zip(curves, curves[1:]):
        assert wider.shape == narrower.shape == (40, 5)
        assert (wider.max(axis=1) < narrower.min(axis=1)).loc[3:].all()


def test_the_wide_cnn_passes_the_narrow_ones_final_loss_within_a_few_epochs(fits):
    """'by epoch 7 of 40 in every seed (6 at the median)' (592 parameters); 'by epoch 4' (247)."""
    from pruneviz.overparam import loss_curves

    curves = loss_curves(fits)
    wide = curves[4930]

    def first_below(curve, level):
        return int((curve <= level).idxmax())

    assert first_below(wide.max(axis=1), curves[592].loc[40].min()) == 7
    assert first_below(wide.median(axis=1), curves[592].loc[40].median()) == 6
    assert first_below(wide.max(axis=1), curves[247].loc[40].min()) == 4


def test_no_wide_cnn_fails_to_fit_and_every_narrow_one_does(fits):
    """'It misclassifies 4 training signals on average and 6 at most, while the narrow CNNs leave 70, 538 and
    1,632'; '0 of 5 wide nets fail to fit, 5 of 5 at each narrow size (any threshold between 98.7 % and 99.8 % counts
    the same)'; final losses and misclassified training signals as printed."""
    from pruneviz.overparam import fit_summary

    for below in (0.987, 0.99, 0.998):
        table = fit_summary(fits, train_size=4000, below=below)
        assert table.failed.tolist() == [0, 5, 5, 5] and (table.seeds == 5).all()
    table = fit_summary(fits, train_size=4000, below=0.99).set_index("parameters")
    assert table.loss_median.round(3).tolist() == [0.036, 0.104, 0.433, 1.094]
    assert table.misfit.round().tolist() == [4, 70, 538, 1632]
    assert round((100 - table.loc[4930, "train_min"]) * 4000 / 100) == 6  # "and 6 at most"
    assert (table.train_mean.iloc[1:] < 99).all()


def test_the_narrow_failure_is_systematic_not_a_seed_lottery(fits):
    """'the seeds' spread of the final loss (0.033-0.036 wide, 0.365-0.437 at 592 parameters) is small beside
    the gaps between widths': the worst seed of each width is below the best seed of the next narrower one."""
    from pruneviz.overparam import fit_summary

    table = fit_summary(fits, train_size=4000, below=0.99).set_index("parameters")
    assert table.loc[4930, ["loss_min", "loss_max"]].round(3).tolist() == [0.033, 0.036]
    assert table.loc[592, ["loss_min", "loss_max"]].round(3).tolist() == [0.365, 0.437]
    assert (table.loss_max.iloc[:-1].to_numpy() < table.loss_min.iloc[1:].to_numpy()).all()


def test_mnist1d_three_seeds_and_liu_et_al_budgets(results1d, lrs1d):
    """Scratch-E: the wide CNN's 40 epochs; Scratch-B and pruned + fine-tuned: 40 + 20; rates chosen on val."""
    table = summary(results1d)
    for method in ("pruned + fine-tuned", "scratch-E", "scratch-B"):
        assert (table.xs(method, level="method").seeds == 3).all()
    epochs = results1d.groupby("method").epochs.unique()
    assert list(epochs["scratch-E"]) == [40]
    assert list(epochs["scratch-B"]) == list(epochs["pruned + fine-tuned"]) == [60]
    assert set(lrs1d.values()) <= {0.01, 0.03, 0.1}


def test_mnist1d_pruning_without_fine_tuning_is_near_chance(results1d):
    """'19.5 % to 10.8 %, near chance (ten classes)'."""
    pruned = summary(results1d)["mean"].unstack("method")["pruned"]
    assert pruned.sort_index(ascending=False).round(1).tolist() == [19.5, 13.0, 10.8]


def _seeds(results, size, method):
    return 100 * results[(results.parameters == size) & (results.method == method)].accuracy


def test_mnist1d_pruned_and_fine_tuned_is_ahead_of_scratch_b_at_the_moderate_sizes(results1d):
    """'by 0.6 points (28 signals) at 1,606 parameters and by 3.0 points (148 signals) at 592, and at both sizes
    every seed of pruned + fine-tuned is above every seed of Scratch-B'."""
    table = gaps(results1d, "scratch-B", test_size=5000).set_index("parameters")
    assert table.loc[[1606, 592], "gap"].round(1).tolist() == [0.6, 3.0]
    assert table.loc[[1606, 592], "gap_images"].round().tolist() == [28, 148]
    for size in (1606, 592):
        assert _seeds(results1d, size, "pruned + fine-tuned").min() > _seeds(results1d, size, "scratch-B").max()


def test_mnist1d_pruned_and_fine_tuned_is_steadier_at_592(results1d):
    """'its three seeds span 0.6 points, Scratch-B's 4.0 (the gap is 1.4 of Scratch-B's standard deviations)'."""
    tuned, scratch = _seeds(results1d, 592, "pruned + fine-tuned"), _seeds(results1d, 592, "scratch-B")
    assert round(tuned.max() - tuned.min(), 1) == 0.6 and round(scratch.max() - scratch.min(), 1) == 4.0
    row = gaps(results1d, "scratch-B", test_size=5000).set_index("parameters").loc[592]
    assert row.seed_std == pytest.approx(scratch.std(ddof=1))
    assert round(row.gap / row.seed_std, 1) == 1.4


def test_mnist1d_scratch_e_is_further_behind(results1d):
    """'Scratch-E, 20 epochs shorter, is further behind (0.9 and 4.2 points)'."""
    to_e = gaps(results1d, "scratch-E", test_size=5000).set_index("parameters").loc[[1606, 592], "gap"]
    to_b = gaps(results1d, "scratch-B", test_size=5000).set_index("parameters").loc[[1606, 592], "gap"]
    assert to_e.round(1).tolist() == [0.9, 4.2]
    assert (to_e > to_b).all()


def test_mnist1d_scratch_wins_at_247_parameters(results1d):
    """'Scratch-B is ahead by 11.4 points (571 signals), in every seed; ... fine-tuning reach 45.9 to 49.3 %, while
    training from scratch reaches 56.0 to 61.4 %'."""
    row = gaps(results1d, "scratch-B", test_size=5000).set_index("parameters").loc[247]
    assert round(row.gap, 1) == -11.4 and round(row.gap_images) == -571
    tuned = _seeds(results1d, 247, "pruned + fine-tuned")
    scratch = _seeds(results1d, 247, "scratch-B")
    assert tuned.max() < scratch.min()
    assert [round(tuned.min(), 1), round(tuned.max(), 1)] == [45.9, 49.3]
    both = pd.concat([scratch, _seeds(results1d, 247, "scratch-E")])
    assert [round(both.min(), 1), round(both.max(), 1)] == [56.0, 61.4]


def test_fitting_narrow_rows_are_the_scratch_e_models(fits, results1d):
    """'the narrow rows are the very Scratch-E models above, plus two seeds'."""
    for size in (1606, 592, 247):
        scratch_e = results1d[(results1d.parameters == size) & (results1d.method == "scratch-E")]
        fit = fits[(fits.parameters == size) & fits.seed.isin(scratch_e.seed)]
        assert fit.test_accuracy.tolist() == scratch_e.accuracy.tolist()


def test_the_zoo_models_headroom_on_mnist1d(mnist1d, cnn):
    """'the zoo's MLP reaches 68.6 % and its CNN 97.4 % on 5,000 test signals'."""
    mlp = pruneviz.zoo.load("mnist1d-mlp", device="cpu")
    assert len(mnist1d.test) == 5000
    assert round(100 * pruneviz.evaluate(mlp, mnist1d.test), 1) == 68.6
    assert round(100 * pruneviz.evaluate(cnn, mnist1d.test), 1) == 97.4
