"""The random baseline at every granularity, and the criteria package's public names."""
import pytest
import torch
from scipy import stats

import pruneviz
import pruneviz.criteria as criteria

GRANULARITIES = ["element", "2:4", "vector", "kernel", "channel", "input_channel"]


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_random_is_seeded(cnn, granularity):
    a = pruneviz.Pruner(cnn, "random", granularity, seed=3).scores
    b = pruneviz.Pruner(cnn, "random", granularity, seed=3).scores
    c = pruneviz.Pruner(cnn, "random", granularity, seed=4).scores
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_random_is_uniform_and_prunes_the_requested_share(cnn, granularity):
    pruner = pruneviz.Pruner(cnn, "random", granularity)
    pooled = torch.cat([s.reshape(-1).double() for s in pruner.scores.values()])
    assert 0.0 <= float(pooled.min()) and float(pooled.max()) < 1.0
    if pooled.numel() >= 50:
        assert stats.kstest(pooled.numpy(), "uniform").pvalue > 1e-3  # a fixed seed: deterministic
    pruner.prune(0.5)
    for name, mask in pruner.group_masks().items():
        groups = mask.numel()
        assert int((~mask).sum()) == min(groups, round(0.5 * groups))


def test_random_choice_of_channels_is_spread_over_indices(cnn):
    """Over seeds, each channel of conv3 is pruned at 50 % about half of the time (no index bias)."""
    counts = torch.zeros(64)
    for seed in range(40):
        counts += ~pruneviz.Pruner(cnn, "random", "channel", seed=seed).prune(0.5).group_masks()["conv3"]
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    assert counts.min() > 0 and counts.max() < 40


def test_package_keeps_the_old_module_names():
    for name in ["Criterion", "ElementCriterion", "Magnitude", "L2Magnitude", "Random", "REGISTRY", "Scores",
                 "register", "get_criterion"]:
        assert hasattr(criteria, name), name
    assert {"magnitude", "l2", "random", "scaling", "obd", "apoz", "regression"} <= set(criteria.REGISTRY)


def test_unknown_criterion_names_the_valid_ones(cnn):
    with pytest.raises(ValueError, match="'apoz'.*'regression'|'regression'.*'apoz'"):
        pruneviz.Pruner(cnn, "slimming", "channel")


@pytest.mark.parametrize("criterion", ["apoz", "obd", "regression"])
def test_data_criteria_need_data(cnn, criterion):
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    with pytest.raises(ValueError, match="calibration data"):
        pruneviz.Pruner(cnn, criterion, "channel")
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())
