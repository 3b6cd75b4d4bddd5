"""Data-free criteria: magnitude (L1, L2) and the random baseline."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from .base import Criterion, ElementCriterion, register


@dataclass
class Magnitude(ElementCriterion):
    """|w|: small weights matter least (Han et al. 2015). Groups: sum |w|, the lecture's row-wise importance."""

    name = "magnitude"
    description = "L1 magnitude: |w| per weight, sum |w| per group"

    def element_scores(self, weight):
        return weight.abs()


@dataclass
class L2Magnitude(Magnitude):
    """The L2 norm of each group, sqrt(sum w^2); element-wise it ranks like |w|."""

    name = "l2"
    norm = "l2"
    description = "L2 magnitude: sqrt(sum w^2) per group"


@dataclass
class Random(Criterion):
    """Uniform random scores per group: the baseline every criterion has to beat. Seeded, so repeatable."""

    name = "random"
    description = "random scores (baseline), seeded"
    seed: int = 0

    def scores(self, model, layers, granularity, data=None):
        gen = torch.Generator().manual_seed(self.seed)
        out = {}
        for name, info in layers.items():
            weight = info.module.weight
            shape = granularity.group_shape(weight.shape)
            out[name] = torch.rand(shape, generator=gen, dtype=torch.float64).to(weight.device, weight.dtype)
        return out

    scores_heads = True

    def head_scores(self, name, attention):
        """Uniform random scores per head, seeded by the criterion's seed and the layer's name."""
        gen = torch.Generator().manual_seed(self.seed + zlib.crc32(name.encode()))
        weight = attention.out_proj.weight
        return torch.rand(attention.num_heads, generator=gen, dtype=torch.float64).to(weight.device, weight.dtype)


for _factory in (Magnitude, L2Magnitude, Random):
    register(_factory)
