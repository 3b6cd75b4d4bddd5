"""Notebook 06's comparative sentences, asserted over the computations the notebook runs."""
import torch

from pruneviz.criteria.regression import (lasso_coefficients, lasso_order, layer_features, least_squares,
                                          random_bands, reconstruction_sweep, top_k)

RATIOS = [0.0, 0.2, 0.4, 0.6, 0.7]
IMAGE = 1 / 360
EPS = 1e-6


def test_lasso_path_and_the_single_layer_comparison(cnn, digits):
    features = layer_features(cnn, "conv3", digits.val)
    alphas, coefs = lasso_coefficients(features)
    assert (alphas[:-1] > alphas[1:]).all() and not coefs[:, 0].any()  # every channel out at the largest penalty
    scores = lasso_order(features)
    filter_l1 = cnn.conv3.weight.detach().abs().flatten(1).sum(1)
    err = {k: {"lasso": least_squares(features, top_k(scores, k))[1],
               "first": least_squares(features, torch.arange(64) < k)[1],
               "max": least_squares(features, top_k(filter_l1, k))[1]} for k in (8, 16, 24, 32, 40, 48, 56)}
    for k in (24, 32, 40, 48, 56):  # "best from 24 kept channels on"
        assert err[k]["lasso"] < min(err[k]["first"], err[k]["max"])
    for k in (32, 40):  # "about 0.57 of first k's error at 32-40 kept"
        assert 0.5 < err[k]["lasso"] / err[k]["first"] < 0.6
    for k in (48, 56):  # "half or less at 48-56"
        assert err[k]["lasso"] <= 0.5 * err[k]["first"]
    assert err[8]["max"] < err[8]["lasso"]  # "slightly better at 8 kept"
    assert abs(err[16]["max"] - err[16]["lasso"]) < 0.01  # "about equal at 16"


def test_the_whole_network_selection_and_reconstruction(cnn, digits):
    sweeps = {c: reconstruction_sweep(cnn, digits.test, RATIOS, calibration=digits.val, criterion=c)
              .set_index("sparsity") for c in ("regression", "magnitude")}
    bands = {k: v.set_index("sparsity") for k, v in random_bands(cnn, digits.test, RATIOS,
                                                                  calibration=digits.val).items()}
    lasso, magnitude = sweeps["regression"], sweeps["magnitude"]
    random, random_ls = bands["random"], bands["random + LS"]
    for r in (0.2, 0.4, 0.6):  # selection alone above the random band up to 60 %
        assert lasso.loc[r, "accuracy"] > random.loc[r, "max"]
    assert lasso.loc[0.4, "accuracy"] > magnitude.loc[0.4, "accuracy"] + 10 * IMAGE
    assert all(sweeps[c].loc[r, "accuracy"] < 0.3 for c in sweeps for r in (0.6, 0.7))
    assert abs(lasso.loc[0.7, "accuracy"] - random.loc[0.7, "max"]) <= IMAGE + EPS
    # with the least-squares step every selection keeps over 91 %
    assert all(sweeps[c].loc[r, "reconstructed"] > 0.91 for c in sweeps for r in RATIOS)
    assert all(random_ls.loc[r, "min"] > 0.91 for r in RATIOS)
    # what the LASSO adds on top: a few images
    assert 2 * IMAGE - EPS <= lasso.loc[0.4, "reconstructed"] - random_ls.loc[0.4, "max"] <= 4 * IMAGE + EPS
    assert 1 * IMAGE - EPS <= lasso.loc[0.7, "reconstructed"] - random_ls.loc[0.7, "max"] <= 3 * IMAGE + EPS
    assert random_ls.loc[0.6, "min"] <= lasso.loc[0.6, "reconstructed"] <= random_ls.loc[0.6, "max"]
    for r in RATIOS:  # "within four images of it at every ratio"
        assert abs(lasso.loc[r, "reconstructed"] - magnitude.loc[r, "reconstructed"]) <= 4 * IMAGE + EPS
    # "four images ahead at 60 % (98.6 against 97.5 %)"
    assert abs(magnitude.loc[0.6, "reconstructed"] - lasso.loc[0.6, "reconstructed"] - 4 * IMAGE) < EPS
    assert round(100 * lasso.loc[0.6, "reconstructed"], 1) == 97.5
