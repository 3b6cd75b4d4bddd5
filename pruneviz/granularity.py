"""Granularity: which weights are pruned together (a group).

A granularity reduces element scores to group scores and expands a group mask back to the weight's shape.
Everything is a reshape and a reduction; no Python loop touches a weight.

Weights are conv ``[out, in, kh, kw]`` (any number of spatial dims) or linear ``[out, in]``. A grouped conv
(depthwise included) stores ``[out, in / groups, kh, kw]``: output channel o reads only the input channels of
its group, so dim 1 holds one input channel of *each* group. Every granularity but input_channel means the same
there as on a plain conv (a weight, a kernel, a filter, N of M consecutive inputs of one output); input_channel
would prune one input channel of every group at once, so it leaves grouped convs out and says why.

| name            | a group is                                    | lecture term                      |
|-----------------|-----------------------------------------------|-----------------------------------|
| element         | one weight                                    | fine-grained / unstructured       |
| "N:M" ("2:4")   | N kept of every M consecutive input weights   | pattern-based (Ampere 2:4)        |
| vector          | one row of a kernel (conv only)               | vector-level                      |
| kernel          | one kh x kw kernel (conv only)                | kernel-level                      |
| channel         | one output channel / filter / neuron          | channel-level, row-wise           |
| input_channel   | one input channel across all filters          | channel pruning of the next layer |
| group           | a channel with every channel coupled to it    | structural (DepGraph) pruning     |

"group" is channel granularity over coupled channel groups (:mod:`pruneviz.coupling`): a residual add, a
depthwise conv, a concatenation or a gate ties channels of several layers, and they are scored, selected and
masked as one unit; a channel that goes alone is a group of one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .errors import unknown_choice

NAMES = ("element", "N:M", "vector", "kernel", "channel", "input_channel", "group")
_NM = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def _check_rank(weight_shape: torch.Size) -> None:
    if len(weight_shape) < 2:
        raise ValueError(f"pruneviz prunes weights with 2 or more dims ([out, in, ...]), got shape {tuple(weight_shape)}")


@dataclass(frozen=True)
class Granularity:
    """Groups of weights that are kept or pruned together.

    ``group_dims`` are the weight dims that index a group; the others are summed over.
    """

    name: str
    group_dims: tuple[int, ...] | None  # None: every dim (element-wise)
    conv_only: bool = False

    # -- scope -------------------------------------------------------------------------------------
    def unsupported_reason(self, weight_shape: torch.Size, groups: int = 1) -> str | None:
        """Why this granularity has no meaning for a weight of this shape (of a conv with ``groups``), or None."""
        if self.group_dims is None:
            return None  # element-wise works on any shape
        _check_rank(weight_shape)
        if self.conv_only and len(weight_shape) < 3:
            return f"{self.name} granularity needs a conv weight [out, in, k...], got shape {tuple(weight_shape)}"
        if groups != 1 and 1 in self.group_dims and 0 not in self.group_dims:
            return (f"{self.name} granularity on a grouped conv (groups={groups}, weight {tuple(weight_shape)}): "
                    f"its weight's dim 1 holds one input channel of each of the {groups} groups, not one input "
                    "channel of the layer; prune the channels of the layer before it instead")
        return None

    # -- scores and masks --------------------------------------------------------------------------
    def group_shape(self, weight_shape: torch.Size) -> torch.Size:
        if self.group_dims is None:
            return torch.Size(weight_shape)
        return torch.Size(weight_shape[d] for d in self.group_dims)

    def group_scores(self, element_scores: torch.Tensor, norm: str = "l1") -> torch.Tensor:
        """Sum of element scores over each group (the lecture's sum |w|); ``norm="l2"`` takes sqrt(sum s^2)."""
        if norm not in ("l1", "l2"):
            raise unknown_choice("norm", norm, ("l1", "l2"))
        scores = element_scores.square() if norm == "l2" else element_scores
        if self.group_dims is not None:
            summed = [d for d in range(scores.dim()) if d not in self.group_dims]
            if summed:
                scores = scores.sum(dim=summed)
        return scores.sqrt() if norm == "l2" else scores

    def expand(self, group_mask: torch.Tensor, weight_shape: torch.Size) -> torch.Tensor:
        """A group mask broadcast back to one entry per weight."""
        if self.group_dims is None:
            return group_mask.reshape(weight_shape)
        view = [weight_shape[d] if d in self.group_dims else 1 for d in range(len(weight_shape))]
        return group_mask.reshape(view).expand(weight_shape)

    def tiers(self, group_scores: torch.Tensor) -> torch.Tensor | None:
        """A primary sort key that comes before the score (None: the score alone orders groups)."""
        return None

    @property
    def default_sparsity(self) -> float | None:
        """The sparsity the granularity is named for (N:M only), else None."""
        return None

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class NMGranularity(Granularity):
    """Pattern-based N:M sparsity along the input dimension (NVIDIA Ampere's 2:4).

    Blocks are M consecutive weights along the input dim (for conv: input channels, at each out/kh/kw).
    Selection drops the least important weight of every block first, then the second least, and so on:
    at sparsity 1 - N/M every block keeps exactly N; in between every block keeps ceil or floor of the
    mean, so a slider moves smoothly and masks stay nested.
    """

    n: int = 2
    m: int = 4

    def unsupported_reason(self, weight_shape: torch.Size, groups: int = 1) -> str | None:
        _check_rank(weight_shape)
        if weight_shape[1] % self.m:
            within = f" input channels per group of a grouped conv with groups={groups}" if groups != 1 else ""
            return (f"{self.name} needs the input dimension to be a multiple of {self.m}, "
                    f"got {weight_shape[1]}{within} (weight shape {tuple(weight_shape)})")
        return None

    def tiers(self, group_scores: torch.Tensor) -> torch.Tensor:
        # rank of each weight inside its block: 0 for the least important
        moved = group_scores.movedim(1, -1)
        blocks = moved.reshape(-1, self.m)
        rank = blocks.argsort(dim=1, stable=True).argsort(dim=1)
        return rank.reshape(moved.shape).movedim(-1, 1).contiguous()

    @property
    def default_sparsity(self) -> float:
        return 1.0 - self.n / self.m


ELEMENT = Granularity("element", None)
VECTOR = Granularity("vector", (0, 1, 2), conv_only=True)  # [out, in, kh]: one row of kw weights
KERNEL = Granularity("kernel", (0, 1), conv_only=True)
CHANNEL = Granularity("channel", (0,))
INPUT_CHANNEL = Granularity("input_channel", (1,))
GROUP = Granularity("group", (0,))  # per layer a group's rows, as channel; the Pruner selects whole groups
_FIXED = {g.name: g for g in (ELEMENT, VECTOR, KERNEL, CHANNEL, INPUT_CHANNEL, GROUP)}


def get_granularity(name: str | Granularity) -> Granularity:
    """Look a granularity up by name: 'element', 'vector', 'kernel', 'channel', 'input_channel' or 'N:M'."""
    if isinstance(name, Granularity):
        return name
    if not isinstance(name, str):
        raise unknown_choice("granularity", name, NAMES)
    key = name.strip().lower().replace("-", "_")
    aliases = {"fine_grained": "element", "unstructured": "element", "filter": "channel", "row": "channel",
               "neuron": "channel", "column": "input_channel", "coupled": "group"}
    key = aliases.get(key, key)
    if key in _FIXED:
        return _FIXED[key]
    match = _NM.match(key)
    if match:
        n, m = int(match.group(1)), int(match.group(2))
        if not 0 < n <= m:
            raise ValueError(f"N:M granularity needs 0 < N <= M, got {name!r} (for example '2:4')")
        return NMGranularity(f"{n}:{m}", None, n=n, m=m)
    raise unknown_choice("granularity", name, NAMES)  # 'N:M' stands for any pattern such as '2:4'

