"""Selection: how many groups go, per layer or over the whole model.

Scores are sorted once (stable, so ties keep index order) and each group remembers its rank in that order; a new
ratio is then one comparison, ``rank >= k``, a sequential pass rather than a scatter of k random indices.
That is what keeps a slider fast and the masks nested: what is kept at a higher ratio is kept at every lower one.
"""
from __future__ import annotations

import math

import torch

from .granularity import Granularity

SCOPES = ("local", "global")


def _stable_order(scores: torch.Tensor, tiers: torch.Tensor | None) -> torch.Tensor:
    """Flat indices from least to most important: by tier first (if any), then score, then index."""
    order = torch.sort(scores.reshape(-1), stable=True).indices
    if tiers is not None:
        order = order[torch.sort(tiers.reshape(-1)[order], stable=True).indices]
    return order


def _ranks(order: torch.Tensor, n: int) -> torch.Tensor:
    """Each of n groups' position in ``order``; groups missing from it rank last, so they are never pruned."""
    dtype = torch.int32 if n < 2**31 - 1 else torch.int64  # half the memory on large models
    rank = torch.full((n,), n, dtype=dtype, device=order.device)
    rank[order] = torch.arange(order.numel(), dtype=dtype, device=order.device)
    return rank


def _count(ratio: float, n: int) -> int:
    # Python's round, as torch.nn.utils.prune and the lecture's lab count: k = round(ratio * n)
    return min(n, round(ratio * n))


def _cap_count(cap: float, n: int) -> int:
    """The most groups a cap lets go: rounded down (a cap of 0.8 on 16 channels takes 12, not 13), with a
    tolerance for ratios such as 0.29 whose product with n lands a hair below a whole number."""
    return min(n, math.floor(cap * n + 1e-9))


class LocalSelector:
    """Per layer: the ``round(ratio x groups)`` least important groups of each layer go."""

    def __init__(self, scores: dict[str, torch.Tensor], granularity: Granularity):
        self.ranks = {name: _ranks(_stable_order(s, granularity.tiers(s)), s.numel()).reshape(s.shape)
                      for name, s in scores.items()}

    def group_masks(self, ratios: dict[str, float]) -> dict[str, torch.Tensor]:
        return {name: rank >= _count(ratios.get(name, 0.0), rank.numel()) for name, rank in self.ranks.items()}


class GlobalSelector:
    """One threshold over all layers: groups of every layer in one order, pruned until the ratio of weights.

    Scores of different layers live on different scales, so one threshold can empty a whole layer, and a network
    with an emptied layer computes a constant. So with ``keep_one`` (channel pruning) every layer keeps at least
    one group (its most important one);
    ``guarded_layers(ratio)`` names the layers the one threshold would have emptied. ``max_layer_sparsity`` is a
    stricter guard: no layer loses more than that fraction of its groups (rounded down: a cap is a cap).
    Past what the guards allow, the model stays at the guards' maximum sparsity.
    """

    def __init__(self, scores: dict[str, torch.Tensor], granularity: Granularity,
                 group_sizes: dict[str, int], max_layer_sparsity: float | None = None, keep_one: bool = True):
        self.names = list(scores)
        self.shapes = {name: s.shape for name, s in scores.items()}
        flat = [s.reshape(-1) for s in scores.values()]
        device = flat[0].device
        tiers = [granularity.tiers(s) for s in scores.values()]
        all_tiers = None if tiers[0] is None else torch.cat([t.reshape(-1) for t in tiers])
        all_scores = torch.cat([f.to(device, torch.float64) for f in flat])
        self.order = _stable_order(all_scores, all_tiers)
        self.counts = [f.numel() for f in flat]
        self.groups = sum(self.counts)
        self.full_rank = _ranks(self.order, self.groups)  # positions in the one unguarded order
        full_order = self.order
        caps = [max(0, c - 1) if keep_one else c for c in self.counts]  # every layer keeps one group
        if max_layer_sparsity is not None:
            caps = [min(cap, _cap_count(max_layer_sparsity, c)) for cap, c in zip(caps, self.counts)]
        self.order = self._guarded(self.order, caps)
        sizes = torch.cat([torch.full((f.numel(),), group_sizes[n], dtype=torch.float64, device=device)
                           for n, f in zip(self.names, flat)])
        self.total_weights = float(sizes.sum())
        # equal group sizes and no cap but keeping one: the first round(ratio x groups) of the guarded order
        self.uniform = len(set(group_sizes.values())) == 1 and max_layer_sparsity is None
        self.cum_weights = torch.cumsum(sizes[self.order], 0)  # weights pruned after the first k groups
        self.rank = _ranks(self.order, sum(self.counts))
        self.keep_one = keep_one
        self.equal_sizes = len(set(group_sizes.values())) == 1
        self.full_cum_weights = torch.cumsum(sizes[full_order], 0)  # the same, one threshold and no guard

    def _guarded(self, order: torch.Tensor, caps: list[int]) -> torch.Tensor:
        """The order without each layer's groups beyond its cap (a count per layer): those are never pruned."""
        device = order.device
        counts = torch.tensor(self.counts, device=device)
        layer_of = torch.repeat_interleave(torch.arange(len(self.counts), device=device), counts)[order]
        by_layer = torch.sort(layer_of, stable=True).indices  # positions in `order`, grouped by layer
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(order)
        rank[by_layer] = torch.arange(order.numel(), device=device) - starts[layer_of[by_layer]]
        return order[rank < torch.tensor(caps, device=device)[layer_of]]

    def _k(self, ratio: float) -> int:
        if self.order.numel() == 0:
            return 0
        if self.uniform:
            return min(self.order.numel(), _count(ratio, self.groups))
        return self._k_of(ratio, self.cum_weights)

    def _k_of(self, ratio: float, cum_weights: torch.Tensor) -> int:
        """Groups to prune from an order whose cumulated weights are ``cum_weights``: the nearest to the ratio."""
        n = cum_weights.numel()
        target = ratio * self.total_weights
        k = int(torch.searchsorted(cum_weights, torch.tensor(target, dtype=torch.float64,
                                                              device=cum_weights.device), right=True))
        # k groups undershoot (or hit) the target; k + 1 may be closer
        below = float(cum_weights[k - 1]) if k else 0.0
        if k < n and float(cum_weights[k]) - target < target - below:
            k += 1
        return k

    def group_masks(self, ratio: float) -> dict[str, torch.Tensor]:
        mask = self.rank >= self._k(ratio)
        return {name: part.reshape(self.shapes[name])
                for name, part in zip(self.names, torch.split(mask, self.counts))}

    def guarded_layers(self, ratio: float, masks: dict[str, torch.Tensor]) -> list[str]:
        """Layers that one threshold with no guard would empty at ``ratio`` and that ``masks`` (from
        :meth:`group_masks`) leave with the one group the guard keeps."""
        if not self.keep_one:
            return []
        k_full = (min(self.groups, _count(ratio, self.groups)) if self.equal_sizes
                  else self._k_of(ratio, self.full_cum_weights))
        return [name for name, rank in zip(self.names, torch.split(self.full_rank, self.counts))
                if bool((rank < k_full).all()) and int(masks[name].sum()) == 1]
