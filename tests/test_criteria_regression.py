"""Regression-based channel pruning (He et al. 2017): LASSO selection, least-squares reconstruction."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import pruneviz
from pruneviz.activations import record
from pruneviz.criteria import regression
from pruneviz.criteria.regression import (Features, lasso_order, layer_features, least_squares, next_layers,
                                          reconstruct, reconstruction_sweep, top_k)

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


# -- the fast paths against the straightforward ones ------------------------------------------------------------

def _unfold_features(module, inputs, outputs, channels, positions, seed=0):
    """Every patch by F.unfold, then the rows sampled: the straightforward way to the features."""
    inputs, outputs = inputs.double(), outputs.double()
    if module.bias is not None:
        outputs = outputs - module.bias.detach().double().reshape(1, -1, 1, 1)
    cols = F.unfold(inputs, module.kernel_size, module.dilation, module.padding, module.stride)  # [B, C*m, P]
    x = cols.transpose(1, 2).reshape(-1, channels, cols.shape[1] // channels)
    y = outputs.flatten(2).transpose(1, 2).reshape(-1, outputs.shape[1])
    if len(x) > positions:
        rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:positions]
        x, y = x[rows], y[rows]
    return x, y


@pytest.mark.parametrize("conv", [dict(kernel_size=3, padding=1), dict(kernel_size=(3, 2), stride=2, padding=(1, 0)),
                                  dict(kernel_size=3, dilation=2, padding=2, bias=False), dict(kernel_size=1)])
@pytest.mark.parametrize("positions", [50, 10_000])
def test_gathered_patches_are_the_unfolded_ones(conv, positions):
    gen = torch.Generator().manual_seed(0)
    module = nn.Conv2d(5, 4, **conv)
    inputs = torch.randn(6, 5, 7, 9, generator=gen)
    outputs = module(inputs).detach()
    x, y = _unfold_features(module, inputs, outputs, 5, positions)
    feats = regression._features(module, inputs, outputs, 5, positions, 0)
    assert torch.equal(feats.x, x) and torch.equal(feats.y, y)  # the same numbers, bit for bit
    keep = torch.tensor([True, False, True, True, False])
    kept = regression._features(module, inputs, outputs, 5, positions, 0, keep=keep)
    assert torch.equal(kept.x, x[:, keep]) and torch.equal(kept.weight, feats.weight[:, keep])
    none = regression._features(module, inputs, outputs, 5, positions, 0, keep=torch.zeros(5, dtype=torch.bool))
    assert none.x.shape == (len(x), 0, x.shape[2]) and least_squares(none, torch.ones(0, dtype=torch.bool))[1] == 1


@pytest.mark.parametrize("conv", [dict(kernel_size=2, padding="same"), dict(kernel_size=(3, 4), padding="same",
                                                                              dilation=(1, 2)),
                                  dict(kernel_size=3, padding="valid")])
def test_patches_with_padding_by_name_reproduce_the_conv(conv):
    gen = torch.Generator().manual_seed(0)
    module = nn.Conv2d(3, 4, **conv)
    inputs = torch.randn(2, 3, 6, 7, generator=gen)
    feats = regression._features(module, inputs, module(inputs).detach(), 3, 10_000, 0)
    assert torch.allclose(torch.einsum("ncm,ocm->no", feats.x, feats.weight), feats.y, atol=1e-5)


def test_least_squares_from_the_normal_equations_is_the_svd_solution():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, 4, generator=gen, dtype=torch.float64).relu()
    x[:, 2] = 0.0  # a dead channel: its weights are undetermined, the minimum-norm answer is 0
    weight = torch.randn(5, 6, 4, generator=gen, dtype=torch.float64)
    y = torch.einsum("ncm,ocm->no", x, weight) + 0.1 * torch.randn(300, 5, generator=gen, dtype=torch.float64)
    feats = Features(x, weight, y)
    for keep in (torch.ones(6, dtype=torch.bool), torch.tensor([True, False, True, False, True, True]),
                 torch.tensor([False, True, False, False, False, False])):
        fitted, error = least_squares(feats, keep)
        xk = x[:, keep].reshape(300, -1)
        svd = torch.linalg.lstsq(xk, y, driver="gelsd").solution
        assert torch.allclose(fitted[:, keep], svd.T.reshape(5, -1, 4), rtol=1e-10, atol=1e-12)
        assert error == pytest.approx(float((y - xk @ svd).square().sum() / y.square().sum()), rel=1e-10)
    # nearly duplicated channels: the normal equations would lose half the digits, so the SVD answers
    twins = x.clone()
    twins[:, 1] = twins[:, 0] * (1 + 1e-9)
    feats = Features(twins, weight, y)
    fitted, _ = least_squares(feats, torch.ones(6, dtype=torch.bool))
    svd = torch.linalg.lstsq(twins.reshape(300, -1), y, driver="gelsd").solution
    assert torch.allclose(fitted, svd.T.reshape(5, 6, 4), rtol=1e-6, atol=1e-9)


def _reconstruct_layer_by_layer(pruner, data, positions, limit):
    """The straightforward algorithm: per next layer a forward pass recording its input, every patch by
    F.unfold, the SVD least squares on the kept channels."""
    model = pruner.model
    pairs = [(layer, consumer) for layer, (consumer, _) in next_layers(model).items() if layer in pruner.layers]
    for _, consumer in pairs:
        pruner.track(f"{consumer}.weight")
    masks, ratios = pruner.masks, pruner.ratios
    pruner.restore()
    targets = record(model, [consumer for _, consumer in pairs], data, "output", limit)
    pruner.masks, pruner.ratios = masks, ratios
    pruner.apply_masks()
    errors = {}
    for layer, consumer in pairs:
        module = model.get_submodule(consumer)
        keep = masks[layer].flatten(1).any(1)
        inputs = record(model, [consumer], data, "input", limit)[consumer]
        if isinstance(module, nn.Linear):
            x = inputs.double().reshape(len(inputs), len(keep), -1)
            y = targets[consumer].double() - module.bias.detach().double()
        else:
            x, y = _unfold_features(module, inputs, targets[consumer], len(keep), positions)
        xk = x[:, keep].reshape(len(x), -1)
        solution = torch.linalg.lstsq(xk, y, driver="gelsd").solution
        fitted = torch.zeros(module.weight.shape[0], *x.shape[1:], dtype=torch.float64)
        fitted[:, keep] = solution.T.reshape(len(fitted), -1, x.shape[2])
        new = fitted.reshape(module.weight.shape).float()
        with torch.no_grad():
            module.weight.copy_(torch.where(masks[consumer], new, 0.0) if consumer in masks else new)
        errors[consumer] = float((y - xk @ solution).square().sum() / y.square().sum())
    return errors


@pytest.mark.parametrize("criterion", ["magnitude", "random"])
def test_one_pass_reconstruction_equals_a_pass_per_layer(cnn, digits, criterion):
    pruner = pruneviz.Pruner(cnn, criterion, "channel")
    pruner.prune(0.5)
    expected = _reconstruct_layer_by_layer(pruner, digits.val, positions=1000, limit=128)
    slow = state_of(cnn)
    pruner.prune(0.5)
    errors = reconstruct(pruner, digits.val, positions=1000, limit=128)
    assert errors.keys() == expected.keys()
    assert all(errors[k] == pytest.approx(expected[k], rel=1e-8) for k in errors)
    fast = state_of(cnn)
    assert all(torch.allclose(fast[k], slow[k], rtol=1e-5, atol=1e-7) for k in fast)
    # calibration data in batches (a DataLoader): the refit pass takes them as one batch, the same fit
    loader = torch.utils.data.DataLoader(digits.val, batch_size=50)
    pruner.prune(0.5)
    batched = reconstruct(pruner, loader, positions=1000, limit=128)
    assert all(batched[k] == pytest.approx(expected[k], rel=1e-5) for k in errors)
    pruner.restore()


def test_a_sweep_reuses_the_dense_outputs_and_equals_prune_then_reconstruct(cnn, digits):
    sweep = reconstruction_sweep(cnn, digits.test, [0.0, 0.3, 0.6], calibration=digits.val, criterion="magnitude")
    pruner = pruneviz.Pruner(cnn, "magnitude", "channel")
    for row in sweep.itertuples():
        pruner.prune(row.sparsity)
        assert row.accuracy == pruneviz.evaluate(cnn, digits.test)
        if row.sparsity > 0:
            reconstruct(pruner, digits.val)
        assert row.reconstructed == pruneviz.evaluate(cnn, digits.test)
    pruner.restore()
