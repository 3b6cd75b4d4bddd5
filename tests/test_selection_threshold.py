"""A jump of the slider builds its masks from the k-th score (one comparison pass) instead of scattering the
order's first k: the two must give the same mask, bit for bit, for every k, whatever ties the scores hold (many
equal values, -0.0 beside +0.0, infinities), in any dtype, layer by layer and over the whole model, and wherever
the k-th group falls (first layer, last layer, first or last index). Where the comparison cannot be exact (tiers
of N:M, layers capped by a guard, layers of different dtypes) the scatter is kept: those agree trivially."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pruneviz.granularity import ELEMENT, get_granularity
from pruneviz.selection import GlobalSelector, LocalSelector

VALUES = [0.0, -0.0, 1.0, -1.0, 2.5, float("inf"), float("-inf"), 1e-30, -1e-30]


def scores_of(draw_values: list[list[float]], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {f"layer{i}": torch.tensor(values, dtype=torch.float64).to(dtype) for i, values in enumerate(draw_values)}


layer_values = st.lists(st.lists(st.sampled_from(VALUES), min_size=1, max_size=24), min_size=1, max_size=4)
dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16])


@settings(max_examples=150, deadline=None)
@given(values=layer_values, dtype=dtypes)
def test_local_masks_from_the_kth_score_equal_the_scattered_order(values, dtype):
    scores = scores_of(values, dtype)
    selector = LocalSelector(scores, ELEMENT)
    for k in range(max(s.numel() for s in scores.values()) + 1):
        counts = {name: min(k, s.numel()) for name, s in scores.items()}
        by_threshold, by_scatter = selector.masks_at(counts, scores), selector.masks_at(counts)
        for name in scores:
            assert torch.equal(by_threshold[name], by_scatter[name]), (name, k, scores[name].tolist())


@settings(max_examples=150, deadline=None)
@given(values=layer_values, dtype=dtypes)
def test_global_masks_from_the_kth_score_equal_the_scattered_order(values, dtype):
    scores = scores_of(values, dtype)
    selector = GlobalSelector(scores, ELEMENT, {name: 1 for name in scores}, keep_one=False)
    for k in range(selector.groups + 1):
        by_threshold, by_scatter = selector.masks_at(k, scores), selector.masks_at(k)
        for name in scores:
            assert torch.equal(by_threshold[name], by_scatter[name]), (name, k, {n: s.tolist() for n, s in scores.items()})


def test_random_scores_at_scale_agree_at_many_counts():
    """A million scores with ties at every magnitude the dense weights of a pruned model hold (zeros)."""
    generator = torch.Generator().manual_seed(0)
    scores = {"a": torch.randn(600_000, generator=generator).abs(), "b": torch.randn(3, 400, 300, generator=generator)}
    scores["a"][::7] = 0.0
    scores["b"][0, :, ::5] = -0.0
    local = LocalSelector(scores, ELEMENT)
    glob = GlobalSelector(scores, ELEMENT, {"a": 1, "b": 1}, keep_one=False)
    for fraction in (0.01, 0.1, 0.142, 0.3, 0.5, 0.77, 0.99):
        counts = {name: round(fraction * s.numel()) for name, s in scores.items()}
        k = round(fraction * glob.groups)
        for threshold, scatter in ((local.masks_at(counts, scores), local.masks_at(counts)),
                                   (glob.masks_at(k, scores), glob.masks_at(k))):
            assert all(torch.equal(threshold[n], scatter[n]) for n in scores), fraction


@pytest.mark.parametrize("case", ["n:m", "capped", "mixed dtypes"])
def test_where_a_comparison_is_not_the_order_the_scatter_decides(case):
    generator = torch.Generator().manual_seed(1)
    scores = {"a": torch.randn(8, 16, generator=generator).abs(), "b": torch.randn(4, 16, generator=generator).abs()}
    if case == "n:m":
        granularity = get_granularity("2:4")
        local = LocalSelector(scores, granularity)
        counts = {name: s.numel() // 2 for name, s in scores.items()}
        assert all(torch.equal(local.masks_at(counts, scores)[n], local.masks_at(counts)[n]) for n in scores)
        return
    if case == "mixed dtypes":
        scores["b"] = scores["b"].double()
    glob = GlobalSelector(scores, ELEMENT, {"a": 1, "b": 1}, max_layer_sparsity=0.5 if case == "capped" else None,
                          keep_one=False)
    for k in range(0, glob.order.numel() + 1, 7):
        assert all(torch.equal(glob.masks_at(k, scores)[n], glob.masks_at(k)[n]) for n in scores)


def reference_threshold(mask: torch.Tensor, scores: torch.Tensor) -> float | None:
    """The largest score of the pruned groups, read off the mask."""
    pruned = scores[~mask]
    return None if pruned.numel() == 0 else float(pruned.max())


@settings(max_examples=100, deadline=None)
@given(values=layer_values, dtype=st.sampled_from([torch.float32, torch.float64]), data=st.data())
def test_a_layers_threshold_after_any_sequence_of_counts_is_read_off_its_pruned_scores(values, dtype, data):
    """The scan of the order (a drag), the pass over the layer's scores (a jump, a layer emptied long before the
    k-th group) and the cached answers between them all give the largest pruned score."""
    scores = scores_of(values, dtype)
    selector = GlobalSelector(scores, ELEMENT, {name: 1 for name in scores}, keep_one=False)
    for k in data.draw(st.lists(st.integers(0, selector.groups), min_size=1, max_size=8)):
        masks = selector.masks_at(k)
        for name in scores:
            expected = reference_threshold(masks[name].reshape(-1), scores[name].reshape(-1))
            assert selector.threshold(name, k, scores) == expected, (name, k)
            if k:  # the pass a jump takes, whatever the scan would have read
                layer = selector.names.index(name)
                assert selector._threshold_from_scores(layer, k, scores) == expected, (name, k)


def test_a_layer_emptied_long_before_the_kth_group_is_answered_without_scanning_the_order():
    """A layer of small scores goes whole at a low ratio; at a high one its last pruned group lies far back in
    the order: the answer comes from one pass over its own scores (no chunk of the order read past its size)."""
    generator = torch.Generator().manual_seed(2)
    scores = {"small": torch.rand(1000, generator=generator) * 1e-3, "large": torch.rand(200_000, generator=generator)}
    selector = GlobalSelector(scores, ELEMENT, {"small": 1, "large": 1}, keep_one=False)
    read = []
    order = selector.order

    class Counted(torch.Tensor):
        def __getitem__(self, index):
            part = order[index]
            read.append(part.numel())
            return part

    selector.order = order.as_subclass(Counted)
    assert selector.threshold("small", 150_000, scores) == float(scores["small"].max())
    assert sum(read) <= 1000 + 2, f"the scan read {sum(read)} positions of the order for a 1,000-group layer"
