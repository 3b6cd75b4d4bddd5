"""Notebook 03's comparative sentences, asserted over the computations the notebook runs."""
import pytest
import torch

import pruneviz
from pruneviz import evaluate, plot
from pruneviz.baselines import above_band, accuracy_sweep, band_table, random_band
from pruneviz.criteria.scaling import slimming_network, train_slimming

RATIOS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
SLIM_RATIOS = [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8]
STRENGTH = 3e-2
IMAGE = 1 / 360  # one test image


@pytest.fixture(scope="module")
def zoo_curves(digits):
    from pruneviz.zoo import load

    model = load("digits-cnn", device="cpu")
    curves = {c: accuracy_sweep(model, digits.test, RATIOS, criterion=c, granularity="channel").set_index(
        "sparsity")["accuracy"] for c in ("scaling", "magnitude")}
    band = random_band(model, digits.test, RATIOS, granularity="channel").set_index("sparsity")
    return curves, band


def test_weight_decay_alone_spreads_gamma(cnn):
    gammas = plot.batchnorm_gammas(cnn)
    assert float(gammas["bn2"].min()) < 0.05 and float(gammas["bn3"].min()) < 0.05
    assert float(gammas["bn4"].median()) > 3 * float(gammas["bn3"].median())  # layers on different scales


def test_scaling_and_magnitude_against_the_random_band(zoo_curves):
    (curves, band) = zoo_curves
    scaling, magnitude = curves["scaling"], curves["magnitude"]
    for r in RATIOS[1:]:
        assert scaling[r] > band.loc[r, "mean"] and magnitude[r] > band.loc[r, "mean"]
    for r in (0.1, 0.2):  # "within three test images of each other"
        assert abs(scaling[r] - magnitude[r]) <= 3 * IMAGE + 1e-6
    for r in (0.3, 0.4):  # "magnitude is ahead at 30-40 %"
        assert magnitude[r] > scaling[r] + 3 * IMAGE
    for r in (0.5, 0.6, 0.7):  # "scaling at 50-70 %"
        assert scaling[r] > magnitude[r] + 3 * IMAGE
    # "at 50 % magnitude is back inside the random band while scaling keeps ..."
    assert band.loc[0.5, "min"] <= magnitude[0.5] <= band.loc[0.5, "max"]
    assert scaling[0.5] > band.loc[0.5, "max"] + 0.2


def test_network_slimming_with_one_global_threshold(digits, cnn):
    """The sentences on the shipped networks (cell 7 reads them; their training reproduces bit for bit with the
    recorded kernels: tests/test_artefacts.py)."""
    plain, slim = slimming_network(digits.train, 0.0), slimming_network(digits.train, STRENGTH)
    # the strength: dense validation accuracy within a point of no penalty
    assert evaluate(slim, digits.val) >= evaluate(plain, digits.val) - 0.01
    share = {name: float((torch.cat(list(plot.batchnorm_gammas(n).values())) < 0.05).float().mean())
             for name, n in (("plain", plain), ("slim", slim))}
    assert share["plain"] == 0.0 and share["slim"] > 0.5
    # "on `plain` every |gamma| lies between 0.44 and 0.78" (cell 7 prints the range at two decimals)
    plain_gammas = torch.cat(list(plot.batchnorm_gammas(plain).values()))
    assert round(float(plain_gammas.min()), 2) >= 0.44 and round(float(plain_gammas.max()), 2) <= 0.78
    curves = {name: accuracy_sweep(net, digits.test, SLIM_RATIOS, criterion="scaling", granularity="channel",
                                   scope="global").set_index("sparsity")["accuracy"]
              for name, net in (("zoo", cnn), ("plain", plain), ("slim", slim))}
    for name in ("zoo", "plain"):  # "at chance (10 %) once 40 % of the channels are gone"
        assert all(curves[name][r] < 0.11 for r in SLIM_RATIOS if r >= 0.4)
    slimmed = curves["slim"]
    assert slimmed[0.0] >= curves["plain"][0.0] - 2 * IMAGE - 1e-6  # "two test images below"
    for r in (0.2, 0.4, 0.5, 0.6):  # "keeps its dense accuracy up to 60 %"
        assert slimmed[r] >= slimmed[0.0] - 1e-6
    assert slimmed[0.7] < slimmed[0.0] - 0.05  # "past that it cuts into channels it needs"


def test_what_the_text_says_of_every_run_holds_over_training_seeds(digits):
    """"At chance from 50 %" (without the penalty) and "keeps its dense accuracy up to 60 %" (slimmed) are said of
    any run: trained here, live, on this CPU's kernels, with two more seeds than the shipped one."""
    for seed in (1, 2):
        curves = {}
        for strength in (0.0, STRENGTH):
            net = train_slimming(digits.train, strength, seed=seed)
            curves[strength] = accuracy_sweep(net, digits.test, SLIM_RATIOS, criterion="scaling",
                                              granularity="channel", scope="global").set_index("sparsity")["accuracy"]
        assert all(curves[0.0][r] < 0.11 for r in SLIM_RATIOS if r >= 0.5), (seed, curves[0.0])
        slimmed = curves[STRENGTH]
        assert all(slimmed[r] >= slimmed[0.0] - IMAGE - 1e-6 for r in (0.2, 0.4, 0.5, 0.6)), (seed, slimmed)


# On MNIST-1D: scaling against magnitude and the random band on mnist1d-cnn (5,000 test signals: one point = 50)
RATIOS_1D = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


@pytest.fixture(scope="module")
def mnist1d_channels():
    cnn1d = pruneviz.zoo.load("mnist1d-cnn", device="cpu")
    _, _, test1d = pruneviz.zoo.data("mnist1d-cnn")
    curves = {criterion: accuracy_sweep(cnn1d, test1d, RATIOS_1D, criterion=criterion, granularity="channel")
              for criterion in ("scaling", "magnitude")}
    return curves, random_band(cnn1d, test1d, RATIOS_1D, granularity="channel")


def test_mnist1d_scaling_ahead_of_magnitude_from_20_percent(mnist1d_channels):
    """'scaling is ahead of magnitude at every ratio from 20 % to 60 % (by about 235 signals at 20 %, 280 at 30 %,
    580 at 40 %: 35.0 against 23.4 %), and above the best random seed from 20 % to 50 %, where magnitude is inside
    the band from 40 % on. At 10 % ... the other way round by about 40 signals (88.9 against 89.7 %), and scaling
    is inside the band (the best seed 89.0 %); at 60 % both are inside it ... two channels per layer cost 8.6
    (scaling) and 7.8 points (magnitude), and at 30 % the better of the two has 55.0 %.'"""
    curves, band = mnist1d_channels
    table = band_table(curves, band)
    signals = {c: dict(zip(curve.sparsity, (5000 * curve.accuracy).round())) for c, curve in curves.items()}
    ahead = {s: signals["scaling"][s] - signals["magnitude"][s] for s in RATIOS_1D}
    assert all(ahead[s] > 0 for s in (0.2, 0.3, 0.4, 0.5, 0.6))
    assert abs(ahead[0.2] - 235) <= 10 and abs(ahead[0.3] - 280) <= 10 and abs(ahead[0.4] - 580) <= 10
    assert (round(table.scaling[0.4], 1), round(table.magnitude[0.4], 1)) == (35.0, 23.4)
    assert abs(ahead[0.1] + 40) <= 5 and (round(table.scaling[0.1], 1), round(table.magnitude[0.1], 1)) == (88.9, 89.7)
    scaling_beats, magnitude_beats = above_band(curves["scaling"], band), above_band(curves["magnitude"], band)
    assert scaling_beats[[0.2, 0.3, 0.4, 0.5]].all() and not scaling_beats[[0.1, 0.6]].any()
    assert round(table["random max"][0.1], 1) == 89.0
    assert not magnitude_beats[[0.4, 0.5, 0.6]].any()
    assert ((table["random min"] <= table.magnitude) & (table["random min"] <= table.scaling))[0.6]
    assert [round(100 * (curves[c].accuracy[0] - curves[c].accuracy[1]), 1) for c in curves] == [8.6, 7.8]
    assert round(max(table.scaling[0.3], table.magnitude[0.3]), 1) == 55.0
