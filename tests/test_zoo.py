"""The shipped zoo: trained the way real networks are (issue: pictures that show what the lecture says), and
reproduced bit for bit by its training script."""
import json

import pytest
import torch

import pruneviz
from pruneviz.zoo import NAMES, WEIGHTS, accuracies
from pruneviz.zoo.recipe import train_recipe
from pruneviz.zoo.stats import accuracy_interval, accuracy_stats, kurtosis, layer_stats

BIG_LAYER = 1000  # weights; smaller layers (a 1x16x3x3 first conv) have too few weights for a stable shape
MIN_TEST_ACCURACY = {"digits-mlp": 0.96, "digits-cnn": 0.98, "digits-resnet": 0.98}


@pytest.mark.parametrize("name", NAMES)
def test_trained_weights_are_peaked_and_far_from_their_initialisation(name):
    table = layer_stats(name)
    big = table[table["weights"] > BIG_LAYER]
    assert len(big) >= 3
    assert (big["kurtosis"] >= 3.5).all(), big[["layer", "kurtosis"]]
    assert (big["init_correlation"] <= 0.6).all(), big[["layer", "init_correlation"]]


@pytest.mark.parametrize("name", ["digits-cnn", "digits-resnet"])
def test_batchnorm_gammas_carry_information(name):
    """Gamma spread over channels (coefficient of variation) well above the untrained 0.02-0.05."""
    table = layer_stats(name).dropna(subset=["gamma_cv"])
    assert (table["gamma_cv"] >= 0.15).all(), table[["layer", "gamma_cv"]]
    assert (table["gamma_max"] < 0.9).all()  # no longer the initial 1.0


@pytest.mark.parametrize("name", NAMES)
def test_accuracy_targets_and_interval(name):
    acc = accuracy_stats(name).set_index("split")
    test = acc.loc["test"]
    assert test["accuracy"] >= MIN_TEST_ACCURACY[name]
    assert test["ci_low"] < test["accuracy"] < test["ci_high"] or test["accuracy"] == 1.0
    assert accuracies()[name] == pytest.approx(test["accuracy"], abs=1e-4)


def test_histogram_is_peaked_at_zero():
    """The explorer's histogram: far more weights near zero than at the edges (the uniform start is flat)."""
    weight = pruneviz.zoo.load("digits-cnn", "cpu").conv4.weight.detach().abs().flatten()
    scale = weight.max()
    near_zero = (weight < 0.1 * scale).float().mean()
    assert near_zero > 0.5, float(near_zero)


def test_kurtosis_and_interval_helpers():
    assert kurtosis(torch.randn(200_000, generator=torch.Generator().manual_seed(0))) == pytest.approx(3, abs=0.05)
    assert kurtosis(torch.rand(200_000, generator=torch.Generator().manual_seed(0))) == pytest.approx(1.8, abs=0.05)
    low, high = accuracy_interval(359, 360)
    assert 0.98 < low < 359 / 360 < high <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_training_script_reproduces_the_shipped_weights_bit_for_bit(name):
    model, result = train_recipe(name, progress=False)
    shipped = torch.load(WEIGHTS / f"{name}.pt", map_location="cpu", weights_only=True)
    trained = model.state_dict()
    assert trained.keys() == shipped.keys()
    different = [k for k in shipped if not torch.equal(trained[k], shipped[k])]
    assert not different, f"{name}: retrained weights differ from the shipped ones in {different}"
    assert json.loads((WEIGHTS / "accuracy.json").read_text())[name] == round(result["test"], 4)


def test_stats_command_prints_every_model(capsys):
    from pruneviz.zoo.__main__ import main

    main(["stats", "digits-mlp"])
    out = capsys.readouterr().out
    assert "fc2" in out and "kurtosis" in out and "95 % interval" in out
