"""Selection: how many groups go, per layer or over the whole model.

Scores are sorted once (stable, so ties keep index order) into an ``order``: group indices from least to most
important. A ratio is a count ``k``: the first k groups of the order go. That keeps the masks nested (what is kept
at a higher ratio is kept at every lower one), and lets a re-prune from ``k_old`` to ``k_new`` touch only
``order[k_old:k_new]``, the groups whose keep flipped.

Memory: the order is the only per-group array kept (int32 below 2**31 groups, else int64); no rank, no float64
cumulative sizes (equal group sizes count arithmetically; unequal ones keep integer cumulative sizes, one per
group). Building sorts integer keys made from the scores' bits, which the CPU sorts by radix, 2-3x faster than
the comparison sort it gives floats, with the same stable order.
"""
from __future__ import annotations

import bisect
import math

import torch

from .granularity import Granularity

SCOPES = ("local", "global")

_INT_OF_SIZE = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def index_dtype(n: int) -> torch.dtype:
    """The smallest index type that holds positions 0..n: int32 below 2**31, else int64."""
    return torch.int32 if n < 2**31 - 1 else torch.int64


def _sort_key(values: torch.Tensor) -> torch.Tensor:
    """Integers that sort as ``values`` do (ties stay ties): a float's bits read as a signed integer, the
    negative ones' magnitude bits flipped so a larger magnitude sorts lower. -0.0 is made +0.0 first (a float
    sort ties them). torch sorts integers stably by radix on the CPU; floats get a comparison sort (measured:
    10M float32 3.0 s, the same as int32 keys 1.0 s, on this 2-core machine)."""
    flat = values.reshape(-1)
    if not flat.is_floating_point() or flat.element_size() not in _INT_OF_SIZE:
        return flat
    ints = _INT_OF_SIZE[flat.element_size()]
    if flat.is_contiguous() and (flat.numel() == 0 or int(flat.view(ints).min()) >= 0):  # no sign bit (e.g. |w|): the bits are the key
        return flat.view(ints)
    bits = (flat + 0.0).view(ints)  # + 0.0 turns -0.0 into +0.0
    magnitude = torch.iinfo(bits.dtype).max
    return torch.where(bits < 0, bits ^ magnitude, bits)


def _stable_order(scores: torch.Tensor, tiers: torch.Tensor | None) -> torch.Tensor:
    """Flat indices (int64) from least to most important: by tier first (if any), then score, then index."""
    order = torch.sort(_sort_key(scores), stable=True).indices
    if tiers is not None:
        order = order[torch.sort(tiers.reshape(-1)[order], stable=True).indices]
    return order


def _order(scores: torch.Tensor, tiers: torch.Tensor | None) -> torch.Tensor:
    """:func:`_stable_order` in the smallest index type."""
    return _stable_order(scores, tiers).to(index_dtype(scores.numel()))


def _ranks(order: torch.Tensor, n: int) -> torch.Tensor:
    """Each of n groups' position in ``order``; groups missing from it rank last, so they are never pruned."""
    dtype = index_dtype(n)
    rank = torch.full((n,), n, dtype=dtype, device=order.device)
    rank[order] = torch.arange(order.numel(), dtype=dtype, device=order.device)
    return rank


def _mask(order: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """One bool per group, False for the first k of ``order``: a scatter of the shorter side (the scattered
    indices are random in memory, so their count is the cost); groups missing from ``order`` stay kept."""
    if n == order.numel() and k > n // 2:
        mask = torch.zeros(n, dtype=torch.bool, device=order.device)
        mask[order[k:]] = True
        return mask
    mask = torch.ones(n, dtype=torch.bool, device=order.device)
    mask[order[:k]] = False
    return mask


def _kept_above(scores: torch.Tensor, last: int, k: int | None = None) -> torch.Tensor:
    """The same mask as ``_mask(order, k, n)`` for an order sorted by (score, index) without tiers, whose k-th
    group is ``last``: kept are the groups scoring above ``scores[last]``, and those tying with it at a higher
    index. A comparison reads every score once in memory order (about 10 ms for 23.5M), where a scatter of the
    pruned side writes k random places (about 140 ms for 7.8M): on a jump across the slider, the mask's cost.
    ``scores`` is flat, of the dtype the order was sorted in; -0.0 ties +0.0 as in the sort key. Without ``k``
    (the count of pruned groups, which tells whether any tie lies past ``last``) the ties are looked for."""
    threshold = scores[last]
    keep = scores > threshold
    if k is None or scores.numel() - int(torch.count_nonzero(keep)) != k:  # ties past `last` are kept too
        keep[last + 1:] |= scores[last + 1:] == threshold
    return keep


def _count(ratio: float, n: int) -> int:
    # Python's round, as torch.nn.utils.prune and the lecture's lab count: k = round(ratio * n)
    return min(n, round(ratio * n))


def _cap_count(cap: float, n: int) -> int:
    """The most groups a cap lets go: rounded down (a cap of 0.8 on 16 channels takes 12, not 13), with a
    tolerance for ratios such as 0.29 whose product with n lands a hair below a whole number."""
    return min(n, math.floor(cap * n + 1e-9))


def _tier_ends(tiers: torch.Tensor | None) -> list[int] | None:
    """Where each tier ends in the order (tiers sort first): positions, one per tier value."""
    if tiers is None:
        return None
    return torch.cumsum(torch.bincount(tiers.reshape(-1).long()), 0).tolist()


def _last_positions(k: int, ends: list[int] | None) -> list[int]:
    """Positions in an order that hold the largest score among its first k: the last one, and with tiers (which
    sort first, each tier sorted by score) the last of every tier wholly among the first k."""
    if k <= 0:
        return []
    positions = {k - 1}
    if ends is not None:
        positions.update(end - 1 for end in ends if 0 < end <= k)
    return sorted(positions)


class LocalSelector:
    """Per layer: the ``round(ratio x groups)`` least important groups of each layer go."""

    def __init__(self, scores: dict[str, torch.Tensor], granularity: Granularity):
        self.shapes = {name: s.shape for name, s in scores.items()}
        self.orders: dict[str, torch.Tensor] = {}
        self.tier_ends: dict[str, list[int] | None] = {}
        for name, s in scores.items():
            tiers = granularity.tiers(s)
            self.orders[name] = _order(s, tiers)
            self.tier_ends[name] = _tier_ends(tiers)

    def counts(self, ratios: dict[str, float]) -> dict[str, int]:
        """Groups pruned per layer at ``ratios``."""
        return {name: _count(ratios.get(name, 0.0), order.numel()) for name, order in self.orders.items()}

    def masks_at(self, counts: dict[str, int], scores: dict[str, torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
        """Group masks at ``counts``; given the scores the orders were sorted by, built from the k-th score
        (:func:`_kept_above`) where no tiers (N:M) sort first."""
        masks = {}
        for name, order in self.orders.items():
            k, n = counts[name], order.numel()
            if scores is not None and self.tier_ends[name] is None and 0 < k < n:
                mask = _kept_above(scores[name].reshape(-1), int(order[k - 1]), k)
            else:
                mask = _mask(order, k, n)
            masks[name] = mask.reshape(self.shapes[name])
        return masks

    def group_masks(self, ratios: dict[str, float]) -> dict[str, torch.Tensor]:
        return self.masks_at(self.counts(ratios))

    def threshold(self, name: str, k: int, scores: dict[str, torch.Tensor]) -> float | None:
        """The largest score among the layer's first k groups (None when k is 0): O(1), O(tiers) for N:M."""
        order, flat = self.orders[name], scores[name].reshape(-1)
        positions = _last_positions(k, self.tier_ends[name])
        if not positions:
            return None
        return max(float(flat[int(order[p])]) for p in positions)


class GlobalSelector:
    """One threshold over all layers: groups of every layer in one order, pruned until the ratio of weights.

    Scores of different layers live on different scales, so one threshold can empty a whole layer, and a network
    with an emptied layer computes a constant. So with ``keep_one`` (channel pruning) every layer keeps at least
    one group (its most important one);
    ``guarded_layers(ratio)`` names the layers the one threshold would have emptied. ``max_layer_sparsity`` is a
    stricter guard: no layer loses more than that fraction of its groups (rounded down: a cap is a cap).
    Past what the guards allow, the model stays at the guards' maximum sparsity.

    Held per group: ``order`` (int32 below 2**31 groups) and, only when layers' group sizes differ, the integer
    weights pruned after each prefix of it. Peak while building: the scores of all layers in one tensor, their
    integer sort keys, and the sort's values and int64 indices (4 + 4 + 4 + 8 bytes per group, float32 scores),
    plus int64 layer indices per group when a guard caps a layer.
    """

    def __init__(self, scores: dict[str, torch.Tensor], granularity: Granularity,
                 group_sizes: dict[str, int], max_layer_sparsity: float | None = None, keep_one: bool = True):
        self.names = list(scores)
        self.shapes = {name: s.shape for name, s in scores.items()}
        self.counts = [s.numel() for s in scores.values()]
        self.starts = [sum(self.counts[:i]) for i in range(len(self.counts))]
        self.groups = sum(self.counts)
        self.sizes = [int(group_sizes[n]) for n in self.names]
        device = next(iter(scores.values())).device
        self._starts = torch.tensor(self.starts, dtype=torch.int64, device=device)
        tiers = [granularity.tiers(s) for s in scores.values()]
        self.tiered = tiers[0] is not None
        dtype = self.dtype = _common_dtype([s.dtype for s in scores.values()])
        # an exact upcast keeps the float64 order of the past: the same keys, the same ties
        all_scores = torch.cat([s.reshape(-1).to(device, dtype) for s in scores.values()])
        all_tiers = None if not self.tiered else torch.cat([t.reshape(-1) for t in tiers])
        order = _stable_order(all_scores, all_tiers)
        del all_scores, all_tiers
        self.keep_one = keep_one
        self.equal_sizes = len(set(self.sizes)) == 1
        self.total_weights = float(sum(c * s for c, s in zip(self.counts, self.sizes)))
        caps = [max(0, c - 1) if keep_one else c for c in self.counts]  # every layer keeps one group
        if max_layer_sparsity is not None:
            caps = [min(cap, _cap_count(max_layer_sparsity, c)) for cap, c in zip(caps, self.counts)]
        # the unguarded order, read by guarded_layers: each layer's last position in it, and (unequal sizes)
        # its cumulated weights; kept only with keep_one, which is channel-level (one entry per channel)
        self._last_full: list[int] = []
        self._full_cum = None
        if keep_one:
            layer_of = self.layer_of(order)
            self._last_full = [int(p) for p in _last_index_per_layer(layer_of, len(self.counts))]
            if not self.equal_sizes:
                self._full_cum = self._cumulated(order)
        if any(cap < c for cap, c in zip(caps, self.counts)):
            order = self._guarded(order, caps)
        self.order = order.to(index_dtype(self.groups))
        del order
        # equal group sizes and no cap but keeping one: the first round(ratio x groups) of the guarded order
        self.uniform = self.equal_sizes and max_layer_sparsity is None
        self.cum_weights = None if self.equal_sizes else self._cumulated(self.order)
        self._last_seen: dict[int, tuple[int, int]] = {}  # layer -> (k, its last position before k, or -1)

    def layer_of(self, groups: torch.Tensor) -> torch.Tensor:
        """The layer (its index in ``names``) of each flat group index."""
        return torch.searchsorted(self._starts, groups.to(torch.int64), right=True) - 1

    def _cumulated(self, order: torch.Tensor) -> torch.Tensor:
        """Weights pruned after each prefix of ``order``, as integers (exact; int32 when they fit)."""
        sizes = torch.tensor(self.sizes, dtype=torch.int64, device=order.device)[self.layer_of(order)]
        return torch.cumsum(sizes, 0).to(index_dtype(int(self.total_weights)))

    def _guarded(self, order: torch.Tensor, caps: list[int]) -> torch.Tensor:
        """The order without each layer's groups beyond its cap (a count per layer): those are never pruned."""
        device = order.device
        counts = torch.tensor(self.counts, device=device)
        layer_of = self.layer_of(order)
        by_layer = torch.sort(layer_of, stable=True).indices  # positions in `order`, grouped by layer
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(order)
        rank[by_layer] = torch.arange(order.numel(), device=device) - starts[layer_of[by_layer]]
        return order[rank < torch.tensor(caps, device=device)[layer_of]]

    def k(self, ratio: float) -> int:
        """Groups of the order pruned at ``ratio``."""
        if self.order.numel() == 0:
            return 0
        if self.uniform:
            return min(self.order.numel(), _count(ratio, self.groups))
        return self._k_of(ratio, self.cum_weights, self.order.numel())

    _k = k

    def _k_of(self, ratio: float, cum_weights: torch.Tensor | None, n: int) -> int:
        """Groups to prune from an order of n groups whose cumulated weights are ``cum_weights`` (None: equal
        sizes, counted arithmetically): the count whose weights are nearest to the ratio."""
        target = ratio * self.total_weights
        if cum_weights is None:
            size = self.sizes[0]
            k = min(n, max(0, int(target // size)))  # groups whose weights stay at or under the target
            while k < n and size * (k + 1) <= target:
                k += 1
            while k > 0 and size * k > target:
                k -= 1
            weights_after = lambda i: float(size * (i + 1))  # noqa: E731
        else:
            floor = torch.tensor(math.floor(target), dtype=cum_weights.dtype, device=cum_weights.device)
            k = int(torch.searchsorted(cum_weights, floor, right=True))
            weights_after = lambda i: float(cum_weights[i])  # noqa: E731
        # k groups undershoot (or hit) the target; k + 1 may be closer
        below = weights_after(k - 1) if k else 0.0
        if k < n and weights_after(k) - target < target - below:
            k += 1
        return k

    def masks_at(self, k: int, scores: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Group masks at ``k``; given the scores (of the dtype the order was sorted in) and an order of every
        group by score alone (no tiers, no cap took a group out), built from the k-th score, layer by layer."""
        if (scores is None or self.tiered or self.order.numel() != self.groups or not 0 < k < self.groups
                or any(scores[name].dtype != self.dtype for name in self.names)):
            mask = _mask(self.order, k, self.groups)
            return {name: part.reshape(self.shapes[name])
                    for name, part in zip(self.names, torch.split(mask, self.counts))}
        last = int(self.order[k - 1])
        layer = bisect.bisect_right(self.starts, last) - 1
        threshold = scores[self.names[layer]].reshape(-1)[last - self.starts[layer]]
        masks = {}
        for i, name in enumerate(self.names):  # the order breaks ties by flat index: layer by layer
            flat = scores[name].reshape(-1)
            if i == layer:
                mask = _kept_above(flat, last - self.starts[i])
            else:  # a tie in a layer before the k-th group's is pruned, after it kept
                mask = flat > threshold if i < layer else flat >= threshold
            masks[name] = mask.reshape(self.shapes[name])
        return masks

    def group_masks(self, ratio: float) -> dict[str, torch.Tensor]:
        return self.masks_at(self.k(ratio))

    def guarded_layers(self, ratio: float, kept: dict) -> list[str]:
        """Layers that one threshold with no guard would empty at ``ratio`` and that the selection leaves with
        the one group the guard keeps. ``kept``: groups kept per layer, as a count or a group mask."""
        if not self.keep_one:
            return []
        if self.equal_sizes:
            k_full = min(self.groups, _count(ratio, self.groups))
        else:
            k_full = self._k_of(ratio, self._full_cum, self.groups)
        return [name for name, last in zip(self.names, self._last_full)
                if last < k_full and _as_count(kept[name]) == 1]

    def last_pruned(self, layer: int, k: int, budget: int | None = None) -> int | None:
        """Position in ``order`` of the layer's last group among the first k (None: none of them), from the
        answer for an earlier k: a scan of the order between the two, or backwards to the layer's previous group.
        Raises :class:`_TooFar` once ``budget`` positions are scanned without an answer."""
        if k <= 0:
            return None
        known_k, known = self._last_seen.get(layer, (0, -1))
        if k >= known_k:
            found = self._scan_back(layer, k, known_k, budget)
            pos = known if found is None else found
        elif known < k:  # nothing of the layer lies between known and known_k
            pos = known
        else:
            found = self._scan_back(layer, k, 0, budget)
            pos = -1 if found is None else found
        self._last_seen[layer] = (k, pos)
        return None if pos < 0 else pos

    def _scan_back(self, layer: int, end: int, start: int, budget: int | None = None) -> int | None:
        """The last position in [start, end) of a group of ``layer``, scanning back in doubling chunks."""
        first, past = self.starts[layer], self.starts[layer] + self.counts[layer]  # the layer's flat indices
        chunk, scanned = 4096, 0
        while end > start:
            if budget is not None:
                if scanned >= budget:
                    raise _TooFar
                chunk = min(chunk, budget - scanned)
            lo = max(start, end - chunk)
            part = self.order[lo:end]
            hits = ((part >= first) & (part < past)).nonzero()
            if hits.numel():
                return lo + int(hits[-1])
            scanned += end - lo
            end, chunk = lo, chunk * 2
        return None

    def threshold(self, name: str, k: int, scores: dict[str, torch.Tensor]) -> float | None:
        """The largest score among the layer's groups in the first k of the order (None: none). Without tiers the
        order is sorted by score, so it is the score of the layer's last group there: found by a scan of the
        order from the last call's answer, or, when the order holds every group (no cap) and the scan would read
        more positions than the layer has groups (a jump; a layer whose groups all went long before the k-th),
        by one pass over the layer's scores against the k-th score."""
        layer = self.names.index(name)
        flat = scores[name].reshape(-1)
        uncapped = (self.order.numel() == self.groups and not self.tiered
                    and all(scores[n].dtype == self.dtype for n in self.names))
        try:
            pos = self.last_pruned(layer, k, budget=self.counts[layer] if uncapped else None)
        except _TooFar:
            return self._threshold_from_scores(layer, k, scores)
        if pos is None:
            return None
        return float(flat[int(self.order[pos]) - self.starts[layer]])

    def _threshold_from_scores(self, layer: int, k: int, scores: dict[str, torch.Tensor]) -> float | None:
        """The largest score of the layer among the first k of an uncapped order sorted by (score, index): the
        k-th score itself in the k-th group's layer; before it, the largest score not above it (ties there are
        pruned); after it, the largest below it."""
        last = int(self.order[k - 1])
        at = bisect.bisect_right(self.starts, last) - 1
        kth = scores[self.names[at]].reshape(-1)[last - self.starts[at]]
        if layer == at:
            return float(kth)
        flat = scores[self.names[layer]].reshape(-1)
        pruned = flat <= kth if layer < at else flat < kth
        if not bool(pruned.any()):
            return None
        lowest = float("-inf") if flat.is_floating_point() else torch.iinfo(flat.dtype).min
        return float(torch.where(pruned, flat, flat.new_tensor(lowest)).max())


class _TooFar(Exception):
    """A scan of the order read more positions than it was allowed."""


def _as_count(kept) -> int:
    return int(kept.sum()) if isinstance(kept, torch.Tensor) else int(kept)


def _last_index_per_layer(layer_of: torch.Tensor, layers: int) -> torch.Tensor:
    """For each layer, the last position in ``layer_of`` holding it."""
    positions = torch.arange(layer_of.numel(), device=layer_of.device)
    last = torch.full((layers,), -1, dtype=torch.int64, device=layer_of.device)
    return last.scatter_reduce(0, layer_of, positions, reduce="amax")


def _common_dtype(dtypes: list[torch.dtype]) -> torch.dtype:
    """The one dtype every layer's scores convert to exactly."""
    out = dtypes[0]
    for dtype in dtypes[1:]:
        out = torch.promote_types(out, dtype)
    return out
