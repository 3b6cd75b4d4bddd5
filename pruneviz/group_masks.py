"""Application of coupled groups: one keep vector per group expanded to every tensor the group touches.

The Pruner selects channels of groups (:mod:`pruneviz.coupling`); this module turns ``{group: bool per channel}``
into the masks it writes: the rows of every producer (and its bias), the features of every BatchNorm on the way
(gamma and beta, at the group's offset there), and the input columns of every layer that reads the group. A
pruned channel is then exactly zero wherever it is read, so :func:`compact_groups` can remove it and compute the
same function.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from . import attention
from .coupling import CoupledGroup, coupled_groups


class GroupMasks(dict):
    """``Pruner.masks`` of a group Pruner: {layer: bool per weight}, plus ``keeps`` ({group: bool per channel}),
    which :func:`pruneviz.compact` reads to remove the groups (a consumer's pruned input columns alone cannot say
    which channels go)."""

    def __init__(self, masks: Mapping[str, torch.Tensor], keeps: Mapping[str, torch.Tensor]):
        super().__init__(masks)
        self.keeps = dict(keeps)


class GroupPlan:
    """The groups a Pruner prunes and every tensor they touch."""

    def __init__(self, model: nn.Module, groups: list[CoupledGroup]):
        self.modules = dict(model.named_modules())
        self.groups = {g.name: g for g in groups}
        self.layers = list(dict.fromkeys(name for g in groups for name in g.layers()))
        self.norms = list(dict.fromkeys(name for g in groups for name in g.norms))
        self.grouped = {name: n for g in groups for name, n in g.grouped.items()}
        self.heads = {name: g.name for g in groups for name in g.heads}  # attention layer -> its group
        # q, k, v projection weights whose input columns a group is: "attn.in_proj_weight" -> the parameter
        self.attention_inputs = {key: self.modules[key.rpartition(".")[0]] for g in groups
                                 for key in g.attention_inputs}

    def keep_all(self) -> dict[str, torch.Tensor]:
        """Every channel of every group kept: the keeps of an unpruned model."""
        return {name: torch.ones(g.size, dtype=torch.bool, device=self._device(g)) for name, g in self.groups.items()}

    def _device(self, group: CoupledGroup) -> torch.device:
        return self.modules[group.layers()[0]].weight.device

    def written(self):
        """(key, parameter) for every tensor a prune writes, each once."""
        for key in self._attention_tensors():
            owner, _, pname = key.rpartition(".")
            yield key, getattr(self.modules[owner], pname)
        for name in self.layers:
            module = self.modules[name]
            yield f"{name}.weight", module.weight
            if module.bias is not None and any(name in g.producers for g in self.groups.values()):
                yield f"{name}.bias", module.bias
        for name in self.norms:
            for pname in ("weight", "bias"):
                param = getattr(self.modules[name], pname, None)
                if param is not None:
                    yield f"{name}.{pname}", param

    def _attention_tensors(self) -> list[str]:
        """Every q, k, v projection tensor the groups touch: all of them (and the biases) where heads go, the
        weights whose input columns a group is."""
        keys = [f"{name}.{pname}" for name in self.heads for pname, _ in attention.projections(self.modules[name])]
        return list(dict.fromkeys(keys + list(self.attention_inputs)))

    def _attention_keeps(self, keeps: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{projection tensor: bool mask broadcast over it}: the rows of the kept heads, and the input columns
        of the kept channels."""
        out: dict[str, torch.Tensor] = {}
        for name, group in self.heads.items():
            module = self.modules[name]
            for pname, rows in attention.row_keeps(module, keeps[group]).items():
                out[f"{name}.{pname}"] = rows.reshape(-1, *[1] * (getattr(module, pname).dim() - 1))
        for key, cols in self.attention_columns(keeps).items():
            out[key] = out[key] & cols.reshape(1, -1) if key in out else cols.reshape(1, -1)
        return out

    def attention_columns(self, keeps: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{q, k, v projection weight: bool per input column}."""
        cols: dict[str, torch.Tensor] = {}
        for name, keep in keeps.items():
            for key, offset in self.groups[name].attention_inputs.items():
                owner, _, pname = key.rpartition(".")
                width = getattr(self.attention_inputs[key], pname).shape[1]
                vector = cols.setdefault(key, torch.ones(width, dtype=torch.bool, device=keep.device))
                vector[offset:offset + keep.numel()] = keep
        return cols

    # -- keeps -------------------------------------------------------------------------------------
    def _vectors(self, keeps: Mapping[str, torch.Tensor]):
        """Per layer the kept output rows and input columns, per BatchNorm the kept features."""
        rows, cols, feats = {}, {}, {}
        for name, keep in keeps.items():
            group = self.groups[name]
            for layer in group.producers:
                rows[layer] = keep
            for layer, (first, columns) in group.consumers.items():
                module = self.modules[layer]
                width = module.weight.shape[1]
                vector = cols.setdefault(layer, torch.ones(width, dtype=torch.bool, device=keep.device))
                vector[first:first + group.size * columns] = keep.repeat_interleave(columns)
            for norm, offset in group.norms.items():
                vector = feats.setdefault(norm, torch.ones(_features(self.modules[norm]), dtype=torch.bool,
                                                           device=keep.device))
                vector[offset:offset + group.size] = keep
        return rows, cols, feats

    def weight_masks(self, keeps: Mapping[str, torch.Tensor]) -> GroupMasks:
        """{layer: bool per weight} for every layer the groups touch."""
        rows, cols, _ = self._vectors(keeps)
        masks = {}
        for name in self.layers:
            weight = self.modules[name].weight
            mask = torch.ones(weight.shape, dtype=torch.bool, device=weight.device)
            if name in rows:
                mask &= rows[name].reshape(-1, *[1] * (weight.dim() - 1))
            if name in cols:
                mask &= cols[name].reshape(1, -1, *[1] * (weight.dim() - 2))
            if name in self.grouped:  # output o of slice i reads the inputs of slice i: weight dim 1 is local
                keep, groups = rows[name], self.grouped[name]
                local = keep.reshape(groups, -1).repeat_interleave(weight.shape[0] // groups, 0)
                mask &= local.reshape(*local.shape, *[1] * (weight.dim() - 2))
            masks[name] = mask
        return GroupMasks(masks, keeps)

    def tensor_keeps(self, keeps: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]):
        """(key, keep) for every written tensor: weights by ``masks``, biases by rows, BatchNorms by features."""
        rows, _, feats = self._vectors(keeps)
        yield from self._attention_keeps(keeps).items()
        for name in self.layers:
            yield f"{name}.weight", masks[name]
            if name in rows and self.modules[name].bias is not None:
                yield f"{name}.bias", rows[name]
        for name, vector in feats.items():
            for pname in ("weight", "bias"):
                if getattr(self.modules[name], pname, None) is not None:
                    yield f"{name}.{pname}", vector

    def even_slices(self, keeps: Mapping[str, torch.Tensor], scores: Mapping[str, torch.Tensor]
                    ) -> dict[str, torch.Tensor]:
        """Keeps where a grouped conv's slices each lose as many channels: ``round(removed / slices)``, the
        lowest scores of each slice (monotone in ``removed`` and a fixed order per slice, so masks still nest)."""
        out = dict(keeps)
        for name, keep in keeps.items():
            slices = self.groups[name].slices
            if slices == 1:
                continue
            per_slice = round(int((~keep).sum()) / slices)
            order = torch.sort(scores[name].reshape(slices, -1), dim=1, stable=True).indices
            rank = torch.empty_like(order)
            rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
            out[name] = (rank >= per_slice).reshape(-1)
        return out

    def group_scores(self, member_scores: Mapping[str, torch.Tensor], criterion=None) -> dict[str, torch.Tensor]:
        """A group's score: the sum of its scored members' channel scores (the lecture's sum over a row,
        taken over every layer the channel spans); a group of attention heads: ``criterion.head_scores``, the
        same sum over every weight of a head; groups with no scored member are not in the result."""
        out = {}
        for name, group in self.groups.items():
            if group.heads and criterion is not None:
                (layer,) = group.heads
                out[name] = criterion.head_scores(layer, self.modules[layer])
                continue
            scored = [member_scores[p] for p in group.producers if p in member_scores]
            if scored:
                out[name] = torch.stack([s.to(torch.float64) for s in scored]).sum(0).to(scored[0].dtype)
        return out


def _features(norm: nn.Module) -> int:
    """How many channels a BatchNorm or a LayerNorm over the channels normalizes."""
    return norm.num_features if hasattr(norm, "num_features") else norm.normalized_shape[0]


class FullWidth(nn.Module):
    """A module whose statistics span the channels (a LayerNorm over them), kept at its width in a compacted
    model: the kept channels are put back among zeros where the removed ones were, the module runs as in the
    masked model, and the kept channels are taken out again. A LayerNorm of the kept channels alone would
    normalize with other statistics than the masked model's (Torch-Pruning prunes it so; fine-tuning then
    absorbs the difference): this one computes what the masked model computes, at the cost of a copy."""

    def __init__(self, module: nn.Module, keep: torch.Tensor, in_dim: int, out_dim: int):
        super().__init__()
        self.module, self.in_dim, self.out_dim, self.width = module, in_dim, out_dim, keep.numel()
        self.register_buffer("kept", torch.nonzero(keep).flatten(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = list(x.shape)
        shape[self.in_dim] = self.width
        full = x.new_zeros(shape).index_copy(self.in_dim, self.kept, x)
        return self.module(full).index_select(self.out_dim, self.kept)


def _set_out(module: nn.Module, keep: torch.Tensor, depthwise: bool) -> None:
    from .surgery import _slice_out

    _slice_out(module, keep)
    if depthwise:  # a depthwise conv reads one channel per output: its input and groups shrink with it
        module.in_channels = module.groups = int(keep.sum())


def _slice_grouped(name: str, conv: nn.Module, keep: torch.Tensor, groups: int) -> None:
    """A grouped conv as wide as its input, without the channels ``keep`` drops from each of its groups."""
    from .surgery import _parameter

    slices = keep.reshape(groups, -1)
    kept = slices.sum(1)
    if not bool((kept == kept[0]).all()):
        raise ValueError(f"grouped conv {name!r} (groups={groups}) would keep {kept.tolist()} channels in its "
                         "groups; they must stay of equal width")
    width = slices.shape[1]
    weight = conv.weight.reshape(groups, width, width, *conv.weight.shape[2:])
    parts = [weight[i][slices[i]][:, slices[i]] for i in range(groups)]  # one small slice per conv group
    conv.weight = _parameter(conv.weight, torch.cat(parts).contiguous())
    if conv.bias is not None:
        conv.bias = _parameter(conv.bias, conv.bias[keep])
    conv.in_channels = conv.out_channels = int(keep.sum())


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


@torch.no_grad()
def compact_groups(model: nn.Module, masks: GroupMasks) -> nn.Module:
    """A smaller copy of ``model`` without the channels of the groups ``masks.keeps`` prunes."""
    from .surgery import _slice_in, _slice_norm

    found = {g.name: g for g in coupled_groups(model)}
    keeps = {}
    for name, keep in masks.keeps.items():
        group = found.get(name)
        if group is None or group.size != keep.numel():
            raise ValueError(f"the group masks name a group {name!r} of {keep.numel()} channels, which this model "
                             "does not have: compact the model the Pruner was built on")
        if group.blockers:
            raise ValueError(f"cannot remove channels of the group {name!r}: {group.blockers[0]}")
        if not bool(keep.all()):
            if not bool(keep.any()):
                raise ValueError(f"the masks remove every channel of the group {name!r} "
                                 f"({', '.join(group.members())}); keep at least one")
            keeps[name] = keep
    plan = GroupPlan(model, [found[name] for name in keeps])
    rows, cols, feats = plan._vectors(keeps)
    widened = {norm: dims for name in keeps for norm, dims in found[name].widened.items()}
    scales = {}  # a parameter scaling the channels (a layer scale): one bool per its values along the dim
    for name, keep in keeps.items():
        for param, (dim, size, offset) in found[name].scales.items():
            vector = scales.setdefault(param, (dim, torch.ones(size, dtype=torch.bool, device=keep.device)))[1]
            vector[offset:offset + keep.numel()] = keep
    depthwise = {layer for name in keeps for layer in found[name].depthwise}
    small = copy.deepcopy(model)
    # first: the smaller attention takes its kept heads (q, k, v rows, out_proj columns) and input columns
    columns = plan.attention_columns(keeps)
    touched = list(dict.fromkeys(list(plan.heads) + [key.rpartition(".")[0] for key in columns]))
    for layer in touched:
        module = small.get_submodule(layer)
        heads = keeps.get(plan.heads.get(layer), torch.ones(module.num_heads, dtype=torch.bool))
        inputs = {key.rpartition(".")[2]: keep for key, keep in columns.items() if key.rpartition(".")[0] == layer}
        _replace(small, layer, attention.compact_heads(module, heads, inputs))
        cols.pop(f"{layer}.out_proj", None)
    for layer, keep in rows.items():
        if layer in plan.grouped:
            _slice_grouped(layer, small.get_submodule(layer), keep, plan.grouped[layer])
            continue
        _set_out(small.get_submodule(layer), keep.to(plan.modules[layer].weight.device), layer in depthwise)
    for layer, keep in cols.items():
        _slice_in(small.get_submodule(layer), keep, 1)
    for norm, keep in feats.items():
        if norm in widened:
            _replace(small, norm, FullWidth(small.get_submodule(norm), keep, *widened[norm]))
        else:
            _slice_norm(small.get_submodule(norm), keep)
    for param, (dim, keep) in scales.items():
        owner, _, attr = param.rpartition(".")
        module = small.get_submodule(owner) if owner else small
        old = getattr(module, attr)
        new = old.index_select(dim, torch.nonzero(keep.to(old.device)).flatten())
        setattr(module, attr, nn.Parameter(new.detach().clone(), requires_grad=old.requires_grad)
                if isinstance(old, nn.Parameter) else new)
    return small
