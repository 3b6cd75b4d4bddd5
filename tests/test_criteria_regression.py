"""Regression-based channel pruning (He et al. 2017): LASSO selection, least-squares reconstruction."""
import pytest
import torch

import pruneviz
from pruneviz.criteria.regression import Features, lasso_order, layer_features, least_squares, reconstruct, top_k

from .conftest import same_state, state_of


@pytest.mark.parametrize("layer", ["conv2", "conv3", "conv4"])
def test_lasso_beats_first_k_and_max_response(cnn, digits, layer):
    """The paper's single-layer comparison, every selection followed by the same least-squares fit.

    Max response as the paper defines it: the channels whose filters (in ``layer``) have the largest sum |w|.
    Measured at k = C/2: conv2 0.061 vs 0.064 / 0.070, conv3 0.078 vs 0.087 / 0.086, conv4 0.0038 vs
    0.0046 / 0.0044.
    """
    feats = layer_features(cnn, layer, digits.train, limit=512)
    channels = feats.x.shape[1]
    k = channels // 2
    filters = cnn.get_submodule(layer).weight.detach().abs().flatten(1).sum(1)
    lasso = least_squares(feats, top_k(lasso_order(feats), k))[1]
    first = least_squares(feats, torch.arange(channels) < k)[1]
    response = least_squares(feats, top_k(filters, k))[1]
    print(f"{layer}, keep {k} of {channels}: relative error LASSO {lasso:.4f}, first k {first:.4f}, "
          f"max response {response:.4f}")
    assert lasso < first and lasso < response


def test_least_squares_is_exact_with_every_channel(cnn, digits):
    feats = layer_features(cnn, "conv3", digits.test, limit=64, positions=2000)
    fitted, error = least_squares(feats, torch.ones(64, dtype=torch.bool))
    assert error < 1e-10
    # a channel whose inputs are all zero (the retrained zoo's conv3 has a dead channel) leaves its weights
    # undetermined: least squares gives them the minimum norm, 0; every other weight is recovered
    seen = feats.x.abs().sum(dim=(0, 2)) > 0
    assert torch.allclose(fitted[:, seen], feats.weight[:, seen], atol=1e-6)
    assert bool((fitted[:, ~seen].abs() < 1e-12).all())
    assert least_squares(feats, torch.zeros(64, dtype=torch.bool))[1] == pytest.approx(1.0)


def test_reconstruct_recovers_accuracy_and_restore_is_exact(cnn, digits):
    val, test = digits.val, digits.test  # calibration on val, accuracy on test
    before = state_of(cnn)
    pruner = pruneviz.Pruner(cnn, "regression", "channel", data=val, limit=256)
    assert set(pruner.layers) == {"conv1", "conv2", "conv3", "conv4"}
    pruner.prune(0.5)
    masks = {name: m.clone() for name, m in pruner.masks.items()}
    masked = pruneviz.evaluate(cnn, test)
    fc_dense = cnn.fc.weight.detach().clone()
    errors = reconstruct(pruner, val, limit=256)
    rebuilt = pruneviz.evaluate(cnn, test)
    print(f"50 % of channels: accuracy {masked:.3f} masked, {rebuilt:.3f} after reconstruction; errors {errors}")
    assert set(errors) == {"conv2", "conv3", "conv4", "fc"}
    assert rebuilt > masked + 0.1 and rebuilt > 0.97  # retrained zoo: 0.836 -> 0.986 masked -> rebuilt
    assert not torch.equal(cnn.fc.weight, fc_dense)
    # pruned channels stay pruned: reconstruction only rewrites the kept inputs of the next layer
    assert all(torch.equal(pruner.masks[name], masks[name]) for name in masks)
    assert (cnn.conv3.weight[~masks["conv3"]] == 0).all()
    assert (cnn.conv3.weight[:, ~masks["conv2"].flatten(1).any(1)] == 0).all()
    pruner.prune(0.5)  # a new prune starts from the dense weights, the next layer too
    assert torch.equal(cnn.fc.weight, fc_dense)
    pruner.restore()
    assert same_state(state_of(cnn), before)


def test_constant_and_zero_inputs_do_not_break_the_lasso():
    gen = torch.Generator().manual_seed(0)
    n = 200
    x = torch.zeros(n, 3, 2, dtype=torch.float64)
    x[:, 0] = torch.randn(n, 2, generator=gen, dtype=torch.float64)  # informative
    x[:, 1] = 1.0  # constant: acts like a bias
    weight = torch.randn(4, 3, 2, generator=gen, dtype=torch.float64)
    feats = Features(x, weight, torch.einsum("ncm,ocm->no", x, weight))
    scores = lasso_order(feats)
    assert scores.argmin() == 2  # the all-zero channel goes first
    assert least_squares(feats, top_k(scores, 2))[1] < 1e-12

    zero = Features(torch.zeros(n, 3, 2, dtype=torch.float64), weight, torch.zeros(n, 4, dtype=torch.float64))
    assert torch.equal(lasso_order(zero), torch.zeros(3, dtype=torch.float64))
    assert least_squares(zero, torch.tensor([True, False, False]))[1] == 0.0

    same = Features(torch.ones(n, 3, 2, dtype=torch.float64), weight,
                    torch.einsum("ncm,ocm->no", torch.ones(n, 3, 2, dtype=torch.float64), weight))
    scores = lasso_order(same)
    assert torch.isfinite(scores).all()
    assert least_squares(same, top_k(scores, 1))[1] < 1e-12  # identical channels: any one reconstructs all


def test_scope_on_a_resnet_and_errors(digits):
    resnet = pruneviz.zoo.load("digits-resnet", device="cpu")
    pruner = pruneviz.Pruner(resnet, "regression", "channel", data=digits.test, limit=16, positions=512)
    assert all(name.endswith("conv1") for name in pruner.layers)  # inside the blocks, not across a skip
    assert "next" in pruner.skipped["layer1.0.conv2"]
    with pytest.raises(ValueError, match="'channel'"):
        pruneviz.Pruner(resnet, "regression", "element", data=digits.test)
    with pytest.raises(ValueError, match="channel-granularity"):
        reconstruct(pruneviz.Pruner(resnet, "magnitude", "element"), digits.test)
    with pytest.raises(ValueError, match="layers with one"):
        layer_features(resnet, "fc", digits.test)
