"""The design's promises 1, 2, 3, 5 and 7 as properties over random sequences of prune calls."""
import copy
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from pruneviz import Pruner, tensor_mask
from pruneviz.zoo.models import digits_cnn, digits_mlp

from .conftest import same_state, state_of

GRANULARITIES = ["element", "2:4", "1:4", "vector", "kernel", "channel", "input_channel"]
CRITERIA = ["magnitude", "l2", "random"]
ratios = st.floats(0.0, 1.0, allow_nan=False)


def small_cnn(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return digits_cnn().to(dtype).eval()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(criterion=st.sampled_from(CRITERIA), granularity=st.sampled_from(GRANULARITIES),
       scope=st.sampled_from(["local", "global"]), moves=st.lists(ratios, min_size=1, max_size=6))
def test_restore_is_exact_after_any_sequence(criterion, granularity, scope, moves):
    model = small_cnn()
    before = state_of(model)
    pruner = Pruner(model, criterion, granularity, scope)
    for ratio in moves:
        pruner.prune(ratio)
    pruner.restore()
    assert same_state(before, state_of(model))
    assert pruner.sparsity() == 0.0


@settings(max_examples=40, deadline=None)
@given(criterion=st.sampled_from(CRITERIA), granularity=st.sampled_from(GRANULARITIES), ratio=ratios)
def test_local_sparsity_within_one_group_per_layer(criterion, granularity, ratio):
    model = small_cnn()
    pruner = Pruner(model, criterion, granularity).prune(ratio)
    for name, mask in pruner.masks.items():
        groups = pruner.scores[name].numel()
        group_size = mask.numel() // groups
        pruned = int((~mask).sum())
        assert abs(pruned - ratio * mask.numel()) <= group_size / 2 + 1e-9, name
        # and the weights written match the mask: every pruned weight is zero
        assert bool((pruner.layers[name].weight[~mask] == 0).all())


@settings(max_examples=30, deadline=None)
@given(granularity=st.sampled_from(GRANULARITIES), ratio=ratios)
def test_global_sparsity_within_one_group(granularity, ratio):
    pruner = Pruner(small_cnn(), "magnitude", granularity, "global").prune(ratio)
    total = sum(m.numel() for m in pruner.masks.values())
    group = {n: m.numel() // pruner.scores[n].numel() for n, m in pruner.masks.items()}
    held_back = sum(group[n] for n in pruner.guarded)  # the guard keeps one channel of a layer, at most
    assert abs(pruner.sparsity() * total - ratio * total) <= max(group.values()) / 2 + held_back + 1e-6


@settings(max_examples=30, deadline=None)
@given(criterion=st.sampled_from(CRITERIA), granularity=st.sampled_from(GRANULARITIES),
       scope=st.sampled_from(["local", "global"]), pair=st.tuples(ratios, ratios))
def test_masks_are_nested(criterion, granularity, scope, pair):
    low, high = sorted(pair)
    pruner = Pruner(small_cnn(), criterion, granularity, scope)
    kept_low = {n: m.clone() for n, m in pruner.prune(low).masks.items()}
    for name, kept_high in pruner.prune(high).masks.items():
        assert bool((kept_high <= kept_low[name]).all()), name  # kept at high => kept at low


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), shape=st.sampled_from([(8, 8), (4, 16, 3, 3), (6, 4, 1, 1)]), seed=st.integers(0, 99))
def test_nm_keeps_exactly_n_per_block(n, shape, seed):
    weight = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    mask = tensor_mask(weight, 1 - n / 4, granularity=f"{n}:4")
    assert bool((mask.movedim(1, -1).reshape(-1, 4).sum(1) == n).all())


def test_nm_between_patterns_is_balanced():
    weight = torch.randn(16, 32)
    counts = tensor_mask(weight, 0.3, granularity="2:4").reshape(-1, 4).sum(1)
    assert set(counts.tolist()) <= {2, 3}  # every block keeps ceil or floor of 2.8


def test_channel_pruning_zeros_bias_and_batchnorm():
    model = small_cnn()
    pruner = Pruner(model, granularity="channel").prune(0.5)
    for name, info in pruner._infos.items():
        keep = pruner.group_masks()[name]
        if info.norm:
            bn = model.get_submodule(info.norm)
            assert bool((bn.weight[~keep] == 0).all()) and bool((bn.bias[~keep] == 0).all())
            assert bool((bn.weight[keep] != 0).any())
    # a pruned channel emits exactly zero after Conv-BN
    out = model.bn1(model.conv1(torch.randn(2, 1, 8, 8)))
    dead = ~pruner.group_masks()["conv1"]
    assert bool((out[:, dead] == 0).all())


def test_channel_scope_leaves_out_the_classifier_and_says_so():
    pruner = Pruner(small_cnn(), granularity="channel")
    assert "fc" not in pruner.layers and "classes" in pruner.skipped["fc"]
    pruner = Pruner(small_cnn(), granularity="input_channel")
    assert "conv1" not in pruner.layers and "input" in pruner.skipped["conv1"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("granularity", ["element", "channel", "2:4"])
def test_dtypes(dtype, granularity):
    model = small_cnn(dtype)
    before = state_of(model)
    pruner = Pruner(model, granularity=granularity).prune(0.5)
    assert all(m.weight.dtype == dtype for m in pruner.layers.values())
    model(torch.randn(2, 1, 8, 8, dtype=dtype))
    pruner.restore()
    assert same_state(before, state_of(model))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda():
    model = small_cnn().cuda()
    pruner = Pruner(model, granularity="channel").prune(0.5)
    assert all(m.device.type == "cuda" for m in pruner.masks.values())
    assert math.isclose(pruner.sparsity(), 0.5, abs_tol=0.05)


def test_mlp_row_and_column_pruning():
    torch.manual_seed(0)
    model = digits_mlp()
    pruner = Pruner(model, granularity="channel").prune({"fc1": 0.5})
    rows = pruner.masks["fc1"].all(1)
    assert int(rows.sum()) == 128 and bool((pruner.masks["fc1"].any(1) == rows).all())
    assert pruner.layer_sparsity()["fc2"] == 0.0


def test_deepcopy_of_pruned_model_and_pruner():
    model = small_cnn()
    pruner = Pruner(model).prune(0.7)
    clone = copy.deepcopy(model)
    assert same_state(state_of(model), state_of(clone))
    pruner_clone = copy.deepcopy(pruner)
    pruner_clone.restore()
    assert pruner.sparsity() > 0.69  # the original is untouched by its copy's restore


@settings(max_examples=25, deadline=None)
@given(granularity=st.sampled_from(["element", "channel", "kernel"]), cap=st.floats(0.1, 1.0),
       pair=st.tuples(ratios, ratios))
def test_global_guard_caps_every_layer_and_stays_nested(granularity, cap, pair):
    low, high = sorted(pair)
    pruner = Pruner(small_cnn(), "magnitude", granularity, "global", max_layer_sparsity=cap)
    kept_low = {n: m.clone() for n, m in pruner.prune(low).group_masks().items()}
    for name, kept in pruner.prune(high).group_masks().items():
        assert (~kept).sum() / kept.numel() <= cap + 1e-9, name  # a cap is a cap: never above it
        assert bool((kept <= kept_low[name]).all()), name


def test_global_channel_pruning_keeps_one_channel_per_layer_and_says_so():
    # the pain users report: one threshold over layers of different scales cuts the network; by default every
    # layer keeps its most important channel, and the Pruner says which layers the guard held back
    with pytest.warns(UserWarning, match="kept one channel in conv1"):
        pruner = Pruner(small_cnn(), granularity="channel", scope="global").prune(0.3)
    for name, kept in pruner.group_masks().items():
        assert int(kept.sum()) >= 1, name
    assert "conv1" in pruner.guarded and "would have pruned them all" in pruner.guarded["conv1"]
    guarded = Pruner(small_cnn(), granularity="channel", scope="global", max_layer_sparsity=0.8).prune(0.3)
    for name, kept in guarded.group_masks().items():
        assert int((~kept).sum()) <= round(0.8 * kept.numel()) < kept.numel(), name


def test_guard_needs_global_scope():
    with pytest.raises(ValueError, match="scope='global'"):
        Pruner(small_cnn(), max_layer_sparsity=0.5)
