"""The criterion interface and the registry the Pruner finds criteria in by name.

A criterion turns a model's layers into scores: low score = pruned first. Two kinds plug into the Pruner:

- element criteria give a score per weight, which any granularity reduces to its groups (magnitude, l2, obd);
- group criteria give a score per group directly, for the granularities where they mean something
  (random at any granularity; scaling, apoz, regression per channel).

New criteria register with :func:`register`; the Pruner finds them by name.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar
from dataclasses import dataclass, fields, is_dataclass

import torch
from torch import nn

from ..errors import unknown_choice
from ..granularity import Granularity
from ..graph import LayerInfo

Scores = dict[str, torch.Tensor]


@dataclass
class Criterion:
    """Base class. Subclasses set the class attributes and implement :meth:`scores`."""

    name = "criterion"
    needs_data = False
    granularities: ClassVar[tuple[str, ...] | None] = None  # None: every granularity
    description = ""

    def setup(self, model: nn.Module) -> None:
        """Called by the Pruner before :meth:`covers`, for criteria whose scope depends on the model's graph."""

    def covers(self, info: LayerInfo) -> str | None:
        """Why this criterion means nothing for a layer (it is then left out), or None."""
        return None

    def scores(self, model: nn.Module, layers: dict[str, LayerInfo], granularity: Granularity,
               data: object = None) -> Scores:
        raise NotImplementedError  # abstract: every registered criterion overrides it

    # -- granularity "group": a coupled channel group (pruneviz.coupling) -----------------------------
    def covers_group(self, group, infos: dict[str, LayerInfo]) -> str | None:
        """Why this criterion cannot score a channel group (None: it can). By default a group is scored by
        the members the criterion covers as layers (their channel scores are summed), so it needs one."""
        if group.heads:
            return None if self.scores_heads else (
                f"criterion {self.name!r} scores what it reads of a Linear or Conv layer, not the heads of an "
                "attention layer; criteria that score heads: 'magnitude', 'l2', 'random'")
        reasons = [self.covers(infos[name]) for name in group.producers]
        return None if any(r is None for r in reasons) else reasons[0]

    scores_heads = False  # can it score the heads of an attention layer (head_scores)?

    def head_scores(self, name: str, attention: nn.Module) -> torch.Tensor:
        """One score per head of attention layer ``name`` (criteria with ``scores_heads``)."""
        raise NotImplementedError  # abstract: criteria with scores_heads override it

    def group_scores(self, model: nn.Module, groups: list, data: object = None) -> Scores | None:
        """Scores of whole groups, for criteria that read something of the group rather than of each member
        (scaling: every BatchNorm the group passes); None: sum the members' channel scores."""
        return None


@dataclass
class ElementCriterion(Criterion):
    """A score per weight, summed over each group (``norm="l2"``: root of the summed squares)."""

    norm = "l1"
    scores_heads = True

    def head_scores(self, name, attention):
        """The head's element scores summed over its q, k, v rows and out_proj columns (pruneviz.attention)."""
        from ..attention import head_scores

        with torch.no_grad():
            return head_scores(attention, self.element_scores, self.norm)

    def element_scores(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # abstract

    def scores(self, model, layers, granularity, data=None):
        with torch.no_grad():
            return {name: granularity.group_scores(self.element_scores(info.module.weight.detach()), self.norm)
                    for name, info in layers.items()}


REGISTRY: dict[str, Callable[..., Criterion]] = {}


def register(factory: Callable[..., Criterion], name: str | None = None) -> Callable[..., Criterion]:
    """Make a criterion available by name to the Pruner and the widgets."""
    REGISTRY[name or factory.name] = factory
    return factory


def get_criterion(name: str | Criterion, **options) -> Criterion:
    """A criterion instance by name (options go to its constructor, e.g. ``seed`` for random)."""
    if isinstance(name, Criterion):
        return name
    if not isinstance(name, str) or name.strip().lower() not in REGISTRY:
        raise unknown_choice("criterion", name, REGISTRY)
    factory = REGISTRY[name.strip().lower()]
    valid = [f.name for f in fields(factory)] if is_dataclass(factory) else None
    unknown = [key for key in options if valid is not None and key not in valid]
    if unknown:
        raise ValueError(f"criterion {name!r} has no option {unknown[0]!r}; its options: "
                         f"{', '.join(repr(v) for v in valid) or 'none'}")
    return factory(**options)
