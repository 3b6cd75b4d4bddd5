"""Scaling criterion (BatchNorm |gamma|) and network slimming's L1 penalty."""
from collections import OrderedDict

import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.criteria import slimming_loss, slimming_penalty

from .conftest import same_state, state_of


def test_scores_are_abs_gamma_of_the_following_batchnorm(cnn, digits):
    with torch.no_grad():
        cnn.bn2.weight[5] = -2.0  # a negative gamma scales as strongly as a positive one
    pruner = pruneviz.Pruner(cnn, "scaling", "channel")
    for conv, bn in [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("conv4", "bn4")]:
        assert torch.equal(pruner.scores[conv], getattr(cnn, bn).weight.detach().abs())
    assert pruner.scores["conv2"][5] == 2.0
    assert set(pruner.skipped) == {"fc"}


def test_layer_without_batchnorm_is_left_out_and_named():
    model = nn.Sequential(OrderedDict([("a", nn.Conv2d(1, 4, 3)), ("bn", nn.BatchNorm2d(4)), ("r1", nn.ReLU()),
                                       ("b", nn.Conv2d(4, 4, 3)), ("r2", nn.ReLU()), ("f", nn.Flatten()),
                                       ("fc", nn.Linear(4 * 4 * 4, 3))]))
    pruner = pruneviz.Pruner(model, "scaling", "channel")
    assert list(pruner.layers) == ["a"]
    assert "BatchNorm" in pruner.skipped["b"]
    with pytest.raises(ValueError, match="BatchNorm"):
        pruner.prune({"b": 0.5})


def test_gamma_exactly_zero_goes_first_and_restore_is_exact(cnn):
    with torch.no_grad():
        cnn.bn3.weight[[7, 40]] = 0.0
    before = state_of(cnn)
    pruner = pruneviz.Pruner(cnn, "scaling", "channel").prune({"conv3": 2 / 64})
    assert pruner.group_masks()["conv3"].nonzero().numel() == 62
    assert not pruner.group_masks()["conv3"][[7, 40]].any()
    pruner.restore()
    assert same_state(state_of(cnn), before)


def test_layer_with_one_channel():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.BatchNorm2d(1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(64, 2))
    pruner = pruneviz.Pruner(model, "scaling", "channel")
    assert pruner.scores["0"].shape == (1,)
    assert pruner.prune(0.4).group_masks()["0"].all()  # round(0.4 x 1) = 0 channels go
    assert not pruner.prune(1.0).group_masks()["0"].any()


def test_only_channel_granularity():
    with pytest.raises(ValueError, match="'channel'"):
        pruneviz.Pruner(pruneviz.zoo.load("digits-cnn", device="cpu"), "scaling", "element")


def test_penalty_value_and_gradient(cnn):
    gammas = [m.weight for m in cnn.modules() if isinstance(m, nn.BatchNorm2d)]
    penalty = slimming_penalty(cnn, 0.01)
    assert torch.isclose(penalty, 0.01 * torch.cat([g.detach().abs() for g in gammas]).sum())
    penalty.backward()
    for g in gammas:
        assert torch.allclose(g.grad, 0.01 * g.detach().sign())
    assert float(slimming_penalty(cnn, 0).detach()) == 0.0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "0.1", True])
def test_penalty_refuses_bad_strength(cnn, bad):
    with pytest.raises(ValueError, match="strength"):
        slimming_penalty(cnn, bad)
    with pytest.raises(ValueError, match="strength"):
        slimming_loss(bad)


def test_penalty_needs_batchnorm(mlp):
    with pytest.raises(ValueError, match="BatchNorm"):
        slimming_penalty(mlp, 1e-3)


def test_penalty_drives_gammas_toward_zero(digits):
    """Same init, data order and optimizer; only the L1 term differs."""
    train = digits.train
    subset = (train.tensors[0][:512], train.tensors[1][:512])

    def mean_abs_gamma(strength):
        torch.manual_seed(0)
        model = pruneviz.zoo.models.digits_cnn()
        pruneviz.train(model, subset, epochs=4, optimizer="sgd", lr=0.05, progress=False,
                       loss_fn=slimming_loss(strength))
        return float(torch.cat([m.weight.detach().abs() for m in model.modules()
                                if isinstance(m, nn.BatchNorm2d)]).mean())

    plain, weak, strong = mean_abs_gamma(0.0), mean_abs_gamma(1e-3), mean_abs_gamma(3e-3)
    print(f"mean |gamma| after 4 epochs: no penalty {plain:.4f}, 1e-3 {weak:.4f}, 3e-3 {strong:.4f}")
    assert strong < weak < plain
    assert plain - strong > 0.02  # measured 0.035
