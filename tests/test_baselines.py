"""The random baseline as a band over seeds, and the sweep it is built from."""
import pytest
import torch

from pruneviz.baselines import above_band, accuracy_sweep, band_table, random_band


def test_sweep_restores_the_model_and_reaches_each_sparsity(mlp, digits):
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    sweep = accuracy_sweep(mlp, digits.val, [0.0, 0.5, 0.9], scope="global")
    assert sweep["achieved"].tolist() == pytest.approx([0.0, 0.5, 0.9], abs=1e-3)
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())


def test_band_spans_its_seeds_and_says_how_many(mlp, digits):
    sparsities = [0.0, 0.5, 0.8]
    band = random_band(mlp, digits.val, sparsities, seeds=range(3))
    draws = [accuracy_sweep(mlp, digits.val, sparsities, criterion="random", seed=s)["accuracy"] for s in range(3)]
    assert band["min"].tolist() == pytest.approx([min(d[i] for d in draws) for i in range(3)])
    assert band["max"].tolist() == pytest.approx([max(d[i] for d in draws) for i in range(3)])
    assert (band["min"] <= band["mean"]).all() and (band["mean"] <= band["max"]).all()
    assert set(band["seeds"]) == {3}
    table = band_table({"magnitude": accuracy_sweep(mlp, digits.val, sparsities)}, band)
    assert list(table.columns) == ["magnitude", "random mean", "random std", "random min", "random max"]
    assert above_band(accuracy_sweep(mlp, digits.val, sparsities), band).loc[0.8]


def test_one_seed_is_no_band(mlp, digits):
    with pytest.raises(ValueError, match="at least two seeds"):
        random_band(mlp, digits.val, [0.5], seeds=[0])
