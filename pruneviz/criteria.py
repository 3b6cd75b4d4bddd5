"""Criteria: how important each weight (or each group of weights) is.

A criterion turns a model's layers into scores: low score = pruned first. Two kinds plug into the Pruner:

- element criteria give a score per weight, which any granularity reduces to its groups (magnitude, l2, obd);
- group criteria give a score per group directly, for the granularities where they mean something
  (random at any granularity; scaling, apoz, regression per channel).

New criteria register with :func:`register`; the Pruner finds them by name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .errors import unknown_choice
from .granularity import Granularity
from .graph import LayerInfo

Scores = dict[str, torch.Tensor]


@dataclass
class Criterion:
    """Base class. Subclasses set the class attributes and implement :meth:`scores`."""

    name = "criterion"
    needs_data = False
    granularities: tuple[str, ...] | None = None  # None: every granularity
    description = ""

    def covers(self, info: LayerInfo) -> str | None:
        """Why this criterion means nothing for a layer (it is then left out), or None."""
        return None

    def scores(self, model: nn.Module, layers: dict[str, LayerInfo], granularity: Granularity,
               data: object = None) -> Scores:
        raise NotImplementedError  # abstract: every registered criterion overrides it


@dataclass
class ElementCriterion(Criterion):
    """A score per weight, summed over each group (``norm="l2"``: root of the summed squares)."""

    norm = "l1"

    def element_scores(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # abstract

    def scores(self, model, layers, granularity, data=None):
        with torch.no_grad():
            return {name: granularity.group_scores(self.element_scores(info.module.weight.detach()), self.norm)
                    for name, info in layers.items()}


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


REGISTRY: dict[str, Callable[..., Criterion]] = {}


def register(factory: Callable[..., Criterion], name: str | None = None) -> Callable[..., Criterion]:
    """Make a criterion available by name to the Pruner and the widgets."""
    REGISTRY[name or factory.name] = factory
    return factory


for _factory in (Magnitude, L2Magnitude, Random):
    register(_factory)


def get_criterion(name: str | Criterion, **options) -> Criterion:
    """A criterion instance by name (options go to its constructor, e.g. ``seed`` for random)."""
    if isinstance(name, Criterion):
        return name
    if not isinstance(name, str) or name.strip().lower() not in REGISTRY:
        raise unknown_choice("criterion", name, REGISTRY)
    return REGISTRY[name.strip().lower()](**options)
