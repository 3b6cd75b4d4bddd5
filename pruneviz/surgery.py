"""Width pruning that removes channels: from channel masks, a physically smaller dense model.

A zeroed channel still costs all its multiply-accumulates in a dense kernel; a removed one costs none.
:func:`compact` slices each pruned layer's output channels, the BatchNorm that scales them and the input channels
of every layer that reads them (a Linear after a flatten reads ``C x H x W`` columns: it loses the ``H x W``
columns of each removed channel).

Who reads which channels is found by tracing the model with torch.fx and following every layer's output through
ops that keep channels where they are (BatchNorm, activations, pooling, dropout, ``flatten(1)``, a mean over the
spatial dims) to the next Conv or Linear. A skip connection's add ties together the channels of every layer that
meets there (a *coupled group*: in a ResNet the stem, each block's last conv and its downsample conv): they can
only be removed together, so :func:`compact` accepts a coupled group only when all its layers carry the same
channel mask. The Pruner scores each layer on its own, so on a residual network pass it the layers that can go
alone, ``Pruner(model, granularity="channel", layers=channel_prunable_layers(model))`` (in a ResNet: the first
conv of each block). A module called more than once ties the channels it reads at each call the same way.
Anything the tracer cannot follow (a ``view``, a ``cat``, a grouped conv, a ConvTranspose, the model's output)
blocks the channels that reach it, and asking to remove them is a ValueError naming the layer and the op.

The copy computes what the masked model computes only if a pruned channel reaches every later layer as zero, so
:func:`compact` also refuses channels that a masked model would turn into a constant on the way (graph.py's
leaks: a Sigmoid, a BatchNorm with ``affine=False``, a second BatchNorm, a BatchNorm after a skip connection's
add, which a channel Pruner cannot zero for one layer).
"""
from __future__ import annotations

import copy
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from .errors import check_masks
from .graph import (NORMS, TiedKeys, build_graph, leak, module_leak, passes_through, prunable_layers,
                    trace_or_refuse, untraced_reason)

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_FLAT, _DIM1 = "flat", "dim1"  # where the channels are: the last dim ([N, C]), or dim 1 of [N, C, spatial...]
_ADD_TIE = "a skip connection (add)"
_ADDS = {operator.add, operator.iadd, torch.add}
_METADATA = {"size", "dim", "numel"}  # ops that read a tensor's shape, not its channels
_REDUCTIONS = {"mean", "sum", "amax", "amin"}


@dataclass
class ChannelGroup:
    """Channels that are kept or removed together: the outputs of ``producers`` (more than one when a skip
    connection adds them, or a module called twice reads them), scaled by ``norms`` and read by ``consumers``
    ({layer: input columns per channel})."""

    producers: list[str] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    consumers: dict[str, int] = field(default_factory=dict)
    blockers: list[str] = field(default_factory=list)  # why these channels cannot be removed
    ties: list[str] = field(default_factory=list)  # what couples the producers (an add, a reused module)

    @property
    def coupled(self) -> bool:
        return len(self.producers) > 1


class _Analysis:
    """One pass over the fx graph: the channel origin of every node, and union-find over coupled producers."""

    def __init__(self, model: nn.Module, traced: fx.GraphModule):
        self.modules = dict(model.named_modules())
        self.ties = TiedKeys()
        self.records = self.ties.records  # (key, kind, payload), grouped once unions are known
        self.origin: dict[fx.Node, tuple[str, str]] = {}  # node -> (producer key, layout)
        self.read_by: dict[str, str] = {}  # module with per-channel weights -> the channels its first call read
        self.rank: dict[fx.Node, int | None] = {}  # tensor rank where known (a conv's output; after flatten(1): 2)
        for node in traced.graph.nodes:
            self._visit(node)

    def _key(self, key: str) -> str:
        return self.ties.add(key)

    def _read(self, name: str, key: str) -> None:
        """A module with per-channel weights reads the channels of ``key``: every call must read the same ones
        (a module called twice ties the channels it reads each time)."""
        first = self.read_by.setdefault(name, key)
        self.ties.union(first, key, f"{name!r}, called more than once,")

    # -- recording -----------------------------------------------------------------------------------
    def _block(self, node: fx.Node, why: str) -> None:
        for arg in node.all_input_nodes:
            if arg in self.origin:
                self.records.append((self.origin[arg][0], "blocker", why))

    def _pass(self, node: fx.Node, src: fx.Node, layout: str | None = None, rank: int | None = -1) -> None:
        if src in self.origin:
            key, old = self.origin[src]
            self.origin[node] = (key, layout or old)
            self.rank[node] = self.rank.get(src) if rank == -1 else rank

    def _visit(self, node: fx.Node) -> None:
        if node.op == "placeholder":
            key = self._key(f"<input {node.name}>")
            self.origin[node] = (key, _DIM1)
            self.records.append((key, "blocker", f"they are the model's input {node.name!r}"))
        elif node.op == "output":
            self._block(node, "they reach the model's output")
        elif node.op == "call_module":
            self._visit_module(node, self.modules[node.target])
        elif node.op in ("call_function", "call_method"):
            self._visit_function(node)

    def _visit_module(self, node: fx.Node, module: nn.Module) -> None:
        name, src = node.target, node.args[0] if node.args else None
        why = module_leak(name, module)
        if why is not None:
            self._block(node, why)
        elif isinstance(module, CONVS + (nn.Linear,)):
            layout = _DIM1 if isinstance(module, CONVS) else _FLAT
            grouped = isinstance(module, CONVS) and module.groups != 1
            if src in self.origin:
                key, have = self.origin[src]
                self._read(name, key)
                if grouped:
                    self.records.append((key, "blocker", f"grouped conv {name!r} (groups={module.groups}) reads "
                                         "them: each of its groups reads a fixed slice of input channels, and "
                                         "compact does not remove channels around grouped or depthwise convs"))
                elif have != layout:
                    self.records.append((key, "blocker", f"{name!r} reads them along another dimension"))
                else:
                    self.records.append((key, "consumer", name))
            key = self._key(name)
            self.records.append((key, "producer", name))
            # a conv's output rank is its weight's; a Linear keeps its input's rank (channels last), known only
            # when its input's is (per token, [N, T, C], a flatten interleaves tokens and channels)
            self.rank[node] = module.weight.dim() if isinstance(module, CONVS) else self.rank.get(src)
            if grouped:
                self.records.append((key, "blocker", f"{name!r} is a grouped conv (groups={module.groups}): its "
                                     "groups must keep equal widths, and compact does not remove channels "
                                     "around grouped or depthwise convs"))
            self.origin[node] = (key, layout)
        elif isinstance(module, NORMS):
            if src in self.origin:
                self._read(name, self.origin[src][0])
                self.records.append((self.origin[src][0], "norm", name))
            self._pass(node, src)
        elif isinstance(module, nn.Flatten):
            if module.start_dim == 1 and module.end_dim == -1:
                self._flatten(node, src, repr(name))
            else:
                self._block(node, f"{name!r} flattens dims {module.start_dim}..{module.end_dim}")
        elif passes_through(node, module):
            self._pass(node, src)
        else:
            self._block(node, f"{name!r} ({type(module).__name__}) reads them, which compact cannot follow")

    def _visit_function(self, node: fx.Node) -> None:
        target = node.target
        label = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        if target in _METADATA or target is getattr:
            return  # reads a shape: no channel flows on
        why = leak(node, None)
        if why is not None:
            self._block(node, why)
        elif passes_through(node, None):
            self._pass(node, src)
        elif target in _ADDS or target in ("add", "add_"):
            self._visit_add(node, label)
        elif target in (torch.flatten, "flatten"):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            if start == 1 and end == -1:
                self._flatten(node, src, label)
            else:
                self._block(node, f"{label}(start_dim={start}, end_dim={end}) mixes them with other dims")
        elif target in _REDUCTIONS or target in (torch.mean, torch.sum, torch.amax, torch.amin):
            self._visit_reduction(node, label, src)
        else:
            self._block(node, f"{label!r} (node {node.name!r}) reads them, which compact cannot follow")

    def _visit_add(self, node: fx.Node, label: str) -> None:
        tensors = [a for a in node.args if isinstance(a, fx.Node)]
        if len(tensors) != 2 or any(a not in self.origin for a in tensors):
            self._block(node, f"{label} (node {node.name!r}) adds something compact cannot follow")
            return
        (ka, la), (kb, lb) = self.origin[tensors[0]], self.origin[tensors[1]]
        if la != lb:
            self._block(node, f"{label} (node {node.name!r}) adds tensors of different layouts")
            return
        self.ties.union(ka, kb, _ADD_TIE)
        self.origin[node] = (ka, la)
        ranks = {self.rank.get(t) for t in tensors} - {None}
        self.rank[node] = ranks.pop() if len(ranks) == 1 else None

    def _flatten(self, node: fx.Node, src: fx.Node | None, label: str) -> None:
        """flatten(1): channel c of [N, C, spatial...] lands at columns c*HW .. (c+1)*HW - 1; of a Linear's output
        with more than two dims ([N, T, C], per token) the channels interleave with the tokens."""
        layout, rank = self.origin.get(src, (None, None))[1], self.rank.get(src)
        if layout == _FLAT and rank != 2:
            self._block(node, f"{label} (node {node.name!r}) flattens a Linear's output applied per token or "
                              "of unknown rank: its channels interleave with the other dims")
        else:
            self._pass(node, src, _FLAT, rank=2)

    def _visit_reduction(self, node: fx.Node, label: str, src: fx.Node | None) -> None:
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        dims = [dims] if isinstance(dims, int) else list(dims) if isinstance(dims, (list, tuple)) else None
        layout, rank = self.origin.get(src, (None, None))[1], self.rank.get(src)
        if dims and rank is not None and all(isinstance(d, int) for d in dims):
            dims = sorted({d % rank for d in dims})  # negative dims resolved against the rank
        if dims and layout == _DIM1 and rank is not None and all(isinstance(d, int) and d >= 2 for d in dims):
            left = rank if keepdim else rank - len(dims)  # a mean over spatial dims keeps channels
            self._pass(node, src, _FLAT if left == 2 else _DIM1, rank=left)
        else:
            self._block(node, f"{label} over dims {dims} (node {node.name!r}) mixes channels, or dims the "
                              "analysis cannot resolve (a negative dim of a tensor of unknown rank)")

    # -- result --------------------------------------------------------------------------------------
    def groups(self, graph) -> list[ChannelGroup]:
        by_root: dict[str, ChannelGroup] = {}
        for root, kind, payload in self.ties.by_set():
            group = by_root.setdefault(root, ChannelGroup())
            if kind == "producer":
                if payload not in group.producers:  # a layer called twice produces the same channels
                    group.producers.append(payload)
            elif kind == "norm":
                if payload not in group.norms:
                    group.norms.append(payload)
            elif kind == "consumer":
                group.consumers[payload] = 1
            elif kind == "tie":
                group.ties.append(payload)
            else:
                group.blockers.append(payload)
        groups = [g for g in by_root.values() if g.producers]
        for group in groups:
            self._fill_columns(group)
            _check_zeroed(group, graph)
        return groups

    def _fill_columns(self, group: ChannelGroup) -> None:
        """Input columns per channel of each consumer: 1 for a conv, H x W for a Linear after a flatten."""
        channels = _out_channels(self.modules[group.producers[0]])
        for name in group.consumers:
            module = self.modules[name]
            width = module.in_features if isinstance(module, nn.Linear) else module.in_channels
            if width % channels:
                group.blockers.append(f"{name!r} reads {width} inputs, not a multiple of their {channels}")
            else:
                group.consumers[name] = width // channels
        for name in group.norms:
            if self.modules[name].num_features != channels:
                group.blockers.append(f"BatchNorm {name!r} normalizes {self.modules[name].num_features} "
                                      f"features, not their {channels} channels")


def _check_zeroed(group: ChannelGroup, graph) -> None:
    """Compact equals masked only if a pruned channel reaches every later layer as zero: each producer's
    channels must not leak (graph.py), and every BatchNorm on the way must be one a channel Pruner zeros."""
    for name in group.producers:
        why = graph.layers[name].channel_leak
        if why is not None:
            group.blockers.append(why)
    zeroed = {graph.layers[name].norm for name in group.producers}
    for norm in group.norms:
        if norm not in zeroed:
            group.blockers.append(f"BatchNorm {norm!r} scales them where other channels join them (after a skip "
                                  "connection's add, or in a module called more than once), and a channel "
                                  "Pruner zeros only the BatchNorm one layer's channels pass alone")


def _out_channels(module: nn.Module) -> int:
    return module.weight.shape[0]


def channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """Every set of channels the surgery keeps or removes together, with what reads them and what blocks them."""
    traced = trace_or_refuse(model, "compact needs")
    return _Analysis(model, traced).groups(build_graph(model, traced))


def channel_prunable_layers(model: nn.Module) -> list[str]:
    """Layers whose output channels compact can remove on their own (no skip connection ties them, nothing it
    cannot follow reads them): the ``layers=`` to give a channel Pruner on a residual network."""
    return _alone(channel_groups(model), model)


def _alone(groups: list[ChannelGroup], model: nn.Module) -> list[str]:
    names = {n for g in groups if not g.coupled and not g.blockers for n in g.producers}
    return [name for name in prunable_layers(model) if name in names]


def channel_keep(masks: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """One bool per output channel for each masked layer, from weight-shaped channel masks or per-channel vectors.

    A weight-shaped mask must keep or prune each output channel as a whole (``granularity="channel"``).
    """
    layers = prunable_layers(model)
    keeps = {}
    for name, mask in check_masks(masks, model, "compact", per_channel=True).items():
        weight = layers[name].weight
        if mask.shape == weight.shape[:1]:
            keep = mask
        else:
            keep = mask.flatten(1).any(1)
            if not torch.equal(mask.flatten(1).all(1), keep):
                raise ValueError(f"the mask of {name!r} prunes parts of channels; compact removes whole output "
                                 "channels: use a Pruner with granularity='channel'")
        keeps[name] = keep.to(weight.device)
    return keeps


def _group_keep(group: ChannelGroup, keeps: Mapping[str, torch.Tensor], alone: list[str]) -> torch.Tensor | None:
    """The channels a group keeps, or None when it loses none; a ValueError when its masks cannot be honoured."""
    masked = {n: keeps[n] for n in group.producers if n in keeps and not bool(keeps[n].all())}
    if not masked:
        return None
    layer = next(iter(masked))
    if group.blockers:
        raise ValueError(f"cannot remove channels of {layer!r}: {group.blockers[0]}; layers whose channels "
                         f"compact can remove: {', '.join(repr(n) for n in alone) or 'none'}")
    if group.coupled:
        whole = [n for n in group.producers if n not in masked]
        differ = [n for n in masked if not torch.equal(masked[n], masked[layer])]
        if whole or differ:
            others = ", ".join(repr(n) for n in group.producers if n != layer)
            tie = group.ties[0] if group.ties else _ADD_TIE
            raise ValueError(f"cannot remove channels of {layer!r} alone: {tie} ties them to {others}; give all "
                             f"of these the same channel mask, or prune only layers that can go alone: "
                             f"{', '.join(repr(n) for n in alone) or 'none'}")
    keep = masked[layer]
    if not bool(keep.any()):
        raise ValueError(f"the mask of {layer!r} removes every channel; keep at least one")
    return keep


_WRAPPED = ("module", "_orig_mod")  # DataParallel / DistributedDataParallel, torch.compile's OptimizedModule


def _unwrapped(model: nn.Module, masks: object) -> tuple[nn.Module, object]:
    """The model a wrapper holds and the masks renamed to its layers (fx cannot trace the wrappers themselves)."""
    for attr in _WRAPPED:
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module) and list(model._modules) == [attr] and isinstance(masks, Mapping):
            prefix = attr + "."
            return _unwrapped(inner, {n[len(prefix):] if n.startswith(prefix) else n: m for n, m in masks.items()})
    return model, masks


def _refuse_unseen(keeps: Mapping[str, torch.Tensor], groups: list[ChannelGroup], model: nn.Module,
                   alone: list[str]) -> None:
    """A layer the trace never calls (it runs inside a module torch.fx keeps as one op, such as
    nn.TransformerEncoderLayer or nn.MultiheadAttention, or its weight is used by a function) is in no channel
    group: compact would leave it whole, returning a model no smaller than the masked one. Refused instead."""
    seen = {name for group in groups for name in group.producers}
    for name, keep in keeps.items():
        if name in seen or bool(keep.all()):
            continue
        where = untraced_reason(model, name)
        raise ValueError(f"cannot remove channels of {name!r}: {where}, so compact cannot see what reads its "
                         f"channels; layers whose channels compact can remove: "
                         f"{', '.join(repr(n) for n in alone) or 'none'}")


def _parameter(like: nn.Parameter, value: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(value.detach().clone(), requires_grad=like.requires_grad)


def _slice_out(module: nn.Module, keep: torch.Tensor) -> None:
    module.weight = _parameter(module.weight, module.weight[keep])
    if module.bias is not None:
        module.bias = _parameter(module.bias, module.bias[keep])
    n = int(keep.sum())
    if isinstance(module, nn.Linear):
        module.out_features = n
    else:
        module.out_channels = n


def _slice_in(module: nn.Module, keep: torch.Tensor, columns: int) -> None:
    cols = keep.repeat_interleave(columns)  # flatten(1) puts channel c at columns c*HW .. (c+1)*HW - 1
    module.weight = _parameter(module.weight, module.weight[:, cols])
    if isinstance(module, nn.Linear):
        module.in_features = int(cols.sum())
    else:
        module.in_channels = int(cols.sum())


def _slice_norm(norm: nn.Module, keep: torch.Tensor) -> None:
    for name in ("weight", "bias"):
        if getattr(norm, name, None) is not None:
            setattr(norm, name, _parameter(getattr(norm, name), getattr(norm, name)[keep]))
    for name in ("running_mean", "running_var"):
        if getattr(norm, name, None) is not None:
            setattr(norm, name, getattr(norm, name)[keep].clone())
    norm.num_features = int(keep.sum())


@torch.no_grad()
def compact(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """A physically smaller copy of ``model`` without the channels ``masks`` prune; ``model`` is left unchanged.

    ``masks`` is ``Pruner.masks`` of a channel Pruner ({layer: bool per weight}) or {layer: bool per output
    channel}; layers not named keep all their channels. The copy computes what the masked model computes
    (the Pruner zeros a pruned channel's bias and BatchNorm too, so it emits exactly zero), with fewer
    parameters and MACs. Masks that split a skip connection's coupled channels, that remove every channel of a
    layer, or that reach an op the surgery cannot follow raise a ValueError naming the layer.

    A wrapped model (``nn.DataParallel``, ``DistributedDataParallel``, ``torch.compile``'s module), whose masks
    name layers ``module.<name>`` or ``_orig_mod.<name>``, gives the compacted model it wraps: wrap it again.
    """
    if getattr(masks, "keeps", None) is not None:  # a group Pruner's masks: its coupled groups go as wholes
        from .group_masks import compact_groups
        return compact_groups(model, masks)
    model, masks = _unwrapped(model, masks)
    keeps = channel_keep(masks, model)
    groups = channel_groups(model)
    alone = _alone(groups, model)
    _refuse_unseen(keeps, groups, model, alone)
    plan = []
    for group in groups:
        keep = _group_keep(group, keeps, alone)
        if keep is not None:
            plan.append((group, keep))
    small = copy.deepcopy(model)
    for group, keep in plan:
        for name in group.producers:
            _slice_out(small.get_submodule(name), keep)
        for name in group.norms:
            _slice_norm(small.get_submodule(name), keep)
        for name, columns in group.consumers.items():
            _slice_in(small.get_submodule(name), keep, columns)
    return small
