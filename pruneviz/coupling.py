"""Coupled channel groups: every set of output channels that must be pruned together, found with torch.fx.

A channel of a layer is not always its own: a residual add sums it with the same channel of other layers, a
depthwise conv reads exactly that channel and writes its own, a squeeze-excitation gate multiplies it by the
channel of another layer. Removing it from one of them and not from the others leaves shapes that no longer
match. A *group* is the set of all those members: the layers whose output channels it is (``producers``), the
BatchNorms that scale it on the way (``norms``, at an offset where a concatenation feeds them) and the layers
that read it (``consumers``: at an offset in their input, with H x W columns per channel after a flatten).
A channel that goes alone is a group of one producer. The analysis is Torch-Pruning's dependency graph in the
kit's small form: it lives here, apart from the Pruner (which scores and masks groups) and the surgery (which
removes them), as Torch-Pruning keeps ``dependency/`` apart from ``pruner/``.

Correctness first: a group is kept out (``blockers`` say why) unless the masked model, where every member of a
pruned channel is zeroed (weights, bias, BatchNorm gamma and beta), computes exactly what the model without
the channel computes. So a GroupNorm over the channels (it normalizes a zero with the others), a
sigmoid whose output reaches anything but the multiplication it gates, a view or reshape, a grouped conv whose
output is not as wide as its input (one as wide, like RegNet's, is pruned evenly in each of its groups),
a module fx keeps whole (but ``nn.TransformerEncoder(Layer)``, read from the structure of its forward) and the
model's input and output block the channels that reach them. The heads of an ``nn.MultiheadAttention`` are a group of their own (``heads``: channel i is
head i, its q, k, v rows and out_proj columns, :mod:`pruneviz.attention`); the channels it reads are input
columns of its q, k, v projections, and its output is out_proj's channels. A LayerNorm over exactly the
channels is zeroed with them like a BatchNorm, and compact keeps it at its width (``widened``).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.nn import functional as F

from . import attention
from .graph import (NORMS, TiedKeys, hashable, leak, module_leak, passes_through, prunable_layers,
                    trace_or_refuse)

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_ADDS = {operator.add, operator.iadd, torch.add, "add", "add_"}
_MULS = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
_CATS = {torch.cat, torch.concat}
_METADATA = {"size", "dim", "numel"}
_REDUCTIONS = {torch.mean, torch.sum, torch.amax, torch.amin, "mean", "sum", "amax", "amin"}


@dataclass
class CoupledGroup:
    """Channels kept or removed together (channel i of the group is output channel i of every producer)."""

    name: str  # its first producer, in the model's registration order: how ratios and scores name the group
    size: int  # number of channels
    producers: list[str] = field(default_factory=list)
    depthwise: list[str] = field(default_factory=list)  # producers that also read these channels, one each
    grouped: dict[str, int] = field(default_factory=dict)  # grouped convs reading and writing them: layer -> groups
    norms: dict[str, int] = field(default_factory=dict)  # BatchNorm -> offset of the group in its features
    consumers: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer -> (first column, per channel)
    heads: dict[str, int] = field(default_factory=dict)  # attention layer -> head_dim: channel i is its head i
    # a LayerNorm over the channels (in ``norms`` too) -> the dims of the channels at its input and output:
    # compact keeps it at its width, the removed channels put back as zeros around it (group_masks.FullWidth)
    widened: dict[str, tuple[int, int]] = field(default_factory=dict)
    scales: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # parameter -> (dim, its size, offset)
    attention_inputs: dict[str, int] = field(default_factory=dict)  # q/k/v projection weight -> first column
    ties: list[str] = field(default_factory=list)  # what couples the producers
    blockers: list[str] = field(default_factory=list)  # why these channels cannot be removed

    @property
    def coupled(self) -> bool:
        return len(self.producers) > 1

    @property
    def slices(self) -> int:
        """Equal slices that must each lose as many channels (a grouped conv keeps its groups of equal width)."""
        return max(self.grouped.values(), default=1)

    def layers(self) -> list[str]:
        """Every Linear/Conv whose weight the group touches: producers, then consumers."""
        return list(dict.fromkeys(self.producers + list(self.consumers)))

    def members(self) -> list[str]:
        """The modules whose channels these are: the producers, or the attention layer whose heads they are."""
        return self.producers + [name for name in self.heads if name not in self.producers]


@dataclass(frozen=True)
class _Flow:
    """Where a node's channels come from: segments (key, channels) along dim ``cdim`` of a tensor of ``rank``
    dims (None: unknown); ``flat``: after a flatten(1), each channel spans several columns; ``gate``: the values
    went through an f with f(0) != 0 (a sigmoid), so they stay right only as a multiplication's other factor."""

    segments: tuple[tuple[str, int], ...]
    cdim: int
    rank: int | None
    flat: bool = False
    gate: bool = False

    @property
    def channels(self) -> int:
        return sum(n for _, n in self.segments)

    def dim(self) -> int:
        return self.cdim % self.rank if self.rank is not None and self.cdim < 0 else self.cdim

    def is_last(self) -> bool:
        return self.cdim == -1 or (self.rank is not None and self.dim() == self.rank - 1)

    def is_dim1(self) -> bool:
        return self.dim() == 1 or (self.rank == 2 and self.cdim == -1)


# the records of a coupled set, by kind, and the CoupledGroup field each fills
_LISTED = {"producer": "producers", "depthwise": "depthwise", "blocker": "blockers"}
_KEYED = {"grouped": "grouped", "heads": "heads", "widened": "widened", "scale": "scales",
          "attention_input": "attention_inputs", "norm": "norms"}

class _Analysis:
    """One pass over the fx graph: each node's flow, union-find over the keys that meet."""

    def __init__(self, model: nn.Module, traced: fx.GraphModule):
        self.modules = dict(model.named_modules())
        self.order = {name: i for i, name in enumerate(prunable_layers(model))}
        self.ties = TiedKeys()
        self.records = self.ties.records
        self.size: dict[str, int] = {}  # channels of each key's set, at its current root
        self.flow: dict[fx.Node, _Flow] = {}
        self.read_by: dict[str, _Flow] = {}
        self.attention_out: dict[fx.Node, _Flow] = {}  # an attention call -> the flow of its output
        self.model = model
        self.nodes = list(traced.graph.nodes)
        self.norm_calls: list[tuple[str, fx.Node, fx.Node, _Flow]] = []  # LayerNorm, its input and output nodes
        for node in self.nodes:
            self._visit(node)
        for call in self.norm_calls:
            self._settle_widened(*call)

    # -- sets of keys that meet ----------------------------------------------------------------------
    def _key(self, key: str, size: int) -> str:
        self.size[self.ties.add(key)] = size
        return key

    def find(self, key: str) -> str:
        return self.ties.find(key)

    def _union(self, a: str, b: str, why: str) -> None:
        """Tie two keys' channels, one to one: only sets as wide as each other (else both are blocked)."""
        na, nb = self.size[self.find(a)], self.size[self.find(b)]
        if 0 in (na, nb):  # the model's input (its width unknown): blocked anyway
            na = nb = max(na, nb)
        if na != nb:
            self._note(a, "blocker", f"{why} joins {na} channels with {nb}")
            self._note(b, "blocker", f"{why} joins {nb} channels with {na}")
            return
        if self.ties.union(a, b, why):
            self.size[self.find(a)] = na

    def _union_flows(self, a: _Flow, b: _Flow, why: str) -> bool:
        if [n for _, n in a.segments] != [n for _, n in b.segments]:
            return False
        for (ka, _), (kb, _) in zip(a.segments, b.segments):
            self._union(ka, kb, why)
        return True

    # -- recording -----------------------------------------------------------------------------------
    def _note(self, key: str, kind: str, payload: object) -> None:
        self.ties.note(key, kind, payload)

    def _block_flow(self, flow: _Flow, why: str) -> None:
        for key, _ in flow.segments:
            self._note(key, "blocker", why)

    def _block(self, node: fx.Node, why: str) -> None:
        for arg in node.all_input_nodes:
            if arg in self.flow:
                self._block_flow(self.flow[arg], why)

    def _pass(self, node: fx.Node, src: object, **changes) -> None:
        if isinstance(src, fx.Node) and src in self.flow:
            old = self.flow[src]
            self.flow[node] = _Flow(**{**old.__dict__, **changes})

    def _ungated(self, node: fx.Node, what: str) -> bool:
        """A gate's values (sigmoid of a channel) may only multiply: anywhere else they block."""
        gated = [self.flow[a] for a in node.all_input_nodes if a in self.flow and self.flow[a].gate]
        for flow in gated:
            self._block_flow(flow, f"a sigmoid's output reaches {what} (node {node.name!r}), not only the "
                                   "multiplication it gates: a pruned channel would leave it as 0.5, not 0")
        return not gated

    def _read(self, name: str, flow: _Flow) -> None:
        """A module with per-channel weights called more than once must read the same channels each time."""
        first = self.read_by.setdefault(name, flow)
        if first is not flow and not self._union_flows(first, flow, f"{name!r}, called more than once,"):
            self._block_flow(flow, f"{name!r} is called on differently concatenated channels")

    # -- visiting ------------------------------------------------------------------------------------
    def _visit(self, node: fx.Node) -> None:
        if node.op == "placeholder":
            key = self._key(f"<input {node.name}>", 0)
            self.flow[node] = _Flow(((key, 0),), 1, None)
            self._note(key, "blocker", f"they are the model's input {node.name!r}")
        elif node.op == "output":
            self._block(node, "they reach the model's output")
        elif node.op == "call_module":
            self._visit_module(node, self.modules[node.target])
        elif node.op in ("call_function", "call_method"):
            self._visit_function(node)

    def _visit_module(self, node: fx.Node, module: nn.Module) -> None:
        name = node.target
        src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        flow = self.flow.get(src)
        if isinstance(module, CONVS + (nn.Linear,)):
            if not self._ungated(node, repr(name)):
                flow = None
            self._visit_layer(node, name, module, flow)
        elif isinstance(module, tuple(_GATES)):
            self._pass(node, src, gate=True)
        elif isinstance(module, attention.ATTENTION):
            self._visit_attention(node, name, module)
        elif isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerEncoder)):
            self._visit_encoder(node, name, module)
        elif _is_full_width(module):
            self._block(node, f"{name!r} is a LayerNorm that compact kept at its width (the channels it removed "
                              "are put back as zeros around it): the kit does not prune a compacted model's "
                              "channels there again; prune the original model at the higher ratio instead")
        elif isinstance(module, nn.LayerNorm) and flow is not None:
            self._visit_channel_norm(node, name, module, flow, src, node)
        elif module_leak(name, module) is not None:
            self._block(node, module_leak(name, module))
        elif isinstance(module, NORMS):
            if flow is not None and self._ungated(node, repr(name)):
                self._visit_norm(node, name, module, flow)
        elif isinstance(module, nn.Flatten):
            self._visit_flatten(node, src, module.start_dim, module.end_dim, repr(name))
        elif passes_through(node, module):
            self._pass(node, src)
        else:
            self._block(node, f"{name!r} ({type(module).__name__}) reads them, which the kit cannot follow"
                        + (" (torch.fx keeps it as one op, so the layers and heads inside are not seen)"
                           if isinstance(module, (nn.TransformerDecoderLayer, nn.TransformerDecoder)) else ""))

    def _visit_attention(self, node: fx.Node, name: str, module: nn.Module) -> None:
        """Its heads are one group; its output, the first item it returns, is out_proj's channels; the channels
        it reads are input columns of its q, k, v projections."""
        self._attention_inputs(node, name, module)
        key = self._heads(name, module)
        for user in node.users:
            if not (user.op == "call_function" and user.target is operator.getitem and user.args[1] == 0):
                self._note(key, "blocker", f"what {name!r} returns besides its output is read (node "
                                           f"{user.name!r}): its attention weights average over the heads, "
                                           "so a removed head would change them")
        out = self._key(f"{name}.out_proj", module.out_proj.out_features)
        self._note(out, "producer", f"{name}.out_proj")
        query = self.flow.get(node.args[0]) if node.args else None
        self.attention_out[node] = _Flow(((out, module.out_proj.out_features),), -1,
                                         query.rank if query is not None and not query.flat else None)

    def _attention_inputs(self, node: fx.Node, name: str, module: nn.Module) -> None:
        """Query, key and value are read through the q, k, v projections: their channels are input columns
        there (one set of columns for a packed in_proj_weight, which then ties the three inputs)."""
        names = ("query", "key", "value")
        inputs = [node.args[i] if len(node.args) > i else node.kwargs.get(names[i]) for i in range(3)]
        flows = [self.flow.get(a) if isinstance(a, fx.Node) else None for a in inputs]
        weights = [p for p, _ in attention.projections(module) if not p.endswith("bias")]
        usable = all(f is not None and not f.flat and f.is_last() for f in flows)
        if usable and weights[0] == weights[1]:  # one packed weight: q, k, v read the same columns
            usable = all(self._union_flows(flows[0], f, f"attention {name!r}'s packed in-projection")
                         for f in flows[1:])
        if not usable:
            for flow in flows:
                if flow is not None:
                    self._block_flow(flow, f"attention {name!r} reads them through its q, k, v in-projection "
                                           "along another dimension than the last, or with channels it cannot "
                                           "line up")
            return
        for pname, flow in dict(zip(weights, flows)).items():  # a packed weight once: its inputs are tied
            self._read(f"{name}.{pname}", flow)
            offset = 0
            for key, n in flow.segments:
                self._note(key, "attention_input", (f"{name}.{pname}", offset))
                offset += n

    def _heads(self, name: str, module: nn.Module) -> str:
        """The group of an attention layer's heads: channel i is head i, its q, k, v rows and out_proj columns."""
        key = self._key(name, module.num_heads)
        self._note(key, "heads", (name, module.head_dim))
        self._note(key, "consumer", (f"{name}.out_proj", 0, module.head_dim))
        why = attention.unsupported_reason(name, module)
        if why is not None:
            self._note(key, "blocker", why)
        return key

    def _visit_encoder(self, node: fx.Node, name: str, module: nn.Module) -> None:
        """torch.fx keeps nn.TransformerEncoder(Layer) as one op (its forward branches on the input), so its
        inside is read from the structure its forward has: x + self_attn(x) and x + linear2(act(linear1(x))),
        each with a LayerNorm over the channels. The heads and the MLP's hidden channels are groups; what goes
        in and comes out passes those LayerNorms: kept."""
        self._block(node, f"{name!r} ({type(module).__name__}) normalizes them with LayerNorms over the channels, "
                          "so a removed channel would change the others")
        layers = [(name, module)] if isinstance(module, nn.TransformerEncoderLayer) else \
            [(f"{name}.layers.{i}", layer) for i, layer in enumerate(module.layers)]
        for prefix, layer in layers:
            self._heads(f"{prefix}.self_attn", layer.self_attn)
            hidden = self._key(f"{prefix}.linear1", layer.linear1.out_features)
            self._note(hidden, "producer", f"{prefix}.linear1")
            self._note(hidden, "consumer", (f"{prefix}.linear2", 0, 1))
            at_zero = float(layer.activation(torch.zeros(1)))
            if at_zero != 0:
                self._note(hidden, "blocker", f"{prefix!r}'s activation maps a zeroed channel to {at_zero:g}")
            for out in (f"{prefix}.self_attn.out_proj", f"{prefix}.linear2"):
                key = self._key(out, layer.linear2.out_features)
                self._note(key, "producer", out)
                self._note(key, "blocker", f"{out!r} writes the residual stream of {prefix!r}, which its "
                                           "LayerNorms normalize over the channels")

    def _visit_layer(self, node: fx.Node, name: str, module: nn.Module, flow: _Flow | None) -> None:
        is_conv = isinstance(module, CONVS)
        out = module.weight.shape[0]
        key = self._key(name, out)
        self._note(key, "producer", name)
        depthwise = is_conv and module.groups != 1 and module.groups == module.in_channels == out
        # a grouped conv as wide as its input: channel c read and channel c written go together, the same number
        # from each of its groups, so the groups stay of equal width
        sliced = is_conv and module.groups != 1 and not depthwise and module.in_channels == out
        if flow is not None:
            self._read(name, flow)
            if is_conv and module.groups != 1 and not depthwise and not sliced:
                why = (f"grouped conv {name!r} (groups={module.groups}) reads {module.in_channels} channels and "
                       f"writes {out}: the kit prunes grouped convs as wide as their input only")
                self._block_flow(flow, why)
                self._note(key, "blocker", why)
            elif depthwise or sliced:
                if len(flow.segments) == 1 and flow.is_dim1() and not flow.flat:
                    kind = "depthwise" if depthwise else "grouped"
                    self._union(flow.segments[0][0], key, f"{kind} conv {name!r}")
                    self._note(key, kind, name if depthwise else (name, module.groups))
                else:
                    why = f"depthwise conv {name!r} reads concatenated or moved channels"
                    self._block_flow(flow, why)
                    self._note(key, "blocker", why)
            else:
                self._consume(name, module, flow, is_conv)
        elif is_conv and module.groups != 1 and not depthwise:
            self._note(key, "blocker", f"{name!r} is a grouped conv (groups={module.groups})")
        if is_conv:
            self.flow[node] = _Flow(((key, out),), 1, module.weight.dim())
        else:
            rank = flow.rank if flow is not None and not flow.flat else (2 if flow is not None else None)
            self.flow[node] = _Flow(((key, out),), -1, rank)

    def _consume(self, name: str, module: nn.Module, flow: _Flow, is_conv: bool) -> None:
        width = module.in_channels if is_conv else module.in_features
        total = flow.channels
        if is_conv and not (flow.is_dim1() and not flow.flat):
            self._block_flow(flow, f"{name!r} reads them along another dimension")
        elif not is_conv and not flow.is_last():
            self._block_flow(flow, f"{name!r} (Linear) reads them along another dimension than the last")
        elif total == 0 or width % total or (not flow.flat and width != total):
            self._block_flow(flow, f"{name!r} reads {width} inputs, not their {total} channels")
        else:
            columns, offset = width // total, 0
            for key, n in flow.segments:
                self._note(key, "consumer", (name, offset * columns, columns))
                offset += n

    def _visit_norm(self, node: fx.Node, name: str, module: nn.Module, flow: _Flow) -> None:
        if flow.rank is None and flow.cdim == -1 and isinstance(module, nn.BatchNorm1d):
            # a Linear's output of unknown rank read by a BatchNorm1d: [N, C], as surgery.py takes it too
            flow = _Flow(flow.segments, 1, 2, flow.flat, flow.gate)
            self.flow[node.args[0]] = flow
        if not flow.is_dim1() or flow.flat or module.num_features != flow.channels:
            self._block_flow(flow, f"BatchNorm {name!r} normalizes {module.num_features} features, not their "
                                   f"{flow.channels} channels along dim 1")
        else:
            self._norm_reads(name, flow)
        self._pass(node, node.args[0])

    def _norm_reads(self, name: str, flow: _Flow) -> None:
        """Norm ``name`` scales these channels: each segment at its offset among the norm's features."""
        self._read(name, flow)
        offset = 0
        for key, n in flow.segments:
            self._note(key, "norm", (name, offset))
            offset += n

    def _visit_layer_norm_call(self, node: fx.Node, src: fx.Node | None) -> None:
        """F.layer_norm inside a LayerNorm's own forward (torchvision's LayerNorm2d: permute, layer_norm,
        permute back): the LayerNorm is the module whose weight it reads, its input and output those of that
        module's nodes (fx's nn_module_stack)."""
        flow = self.flow.get(src)
        if flow is None:
            return
        weight = node.args[2] if len(node.args) > 2 else node.kwargs.get("weight")
        owner = weight.target.rpartition(".")[0] if isinstance(weight, fx.Node) and weight.op == "get_attr" \
            and weight.target.endswith(".weight") else None
        module = self.modules.get(owner)
        inside = [n for n in self.nodes if owner in n.meta.get("nn_module_stack", {})] if owner else []
        entry = {a for n in inside for a in n.all_input_nodes if a not in inside}
        if not isinstance(module, nn.LayerNorm) or len(entry) != 1:
            self._block_flow(flow, f"layer_norm (node {node.name!r}) normalizes over them, outside a LayerNorm "
                                   "module the kit can keep at its width")
            return
        self._visit_channel_norm(node, owner, module, flow, entry.pop(), inside[-1])

    def _visit_channel_norm(self, node: fx.Node, name: str, module: nn.LayerNorm, flow: _Flow, entry: fx.Node,
                            exit_: fx.Node) -> None:
        """A LayerNorm over exactly these channels: zeroed with them (gamma and beta), like a BatchNorm. Its
        statistics span the channels, so compact keeps it at its width (the removed channels back as zeros
        around it): the smaller model computes what the masked one does."""
        shape = tuple(module.normalized_shape)
        if not flow.is_last() or flow.flat or shape != (flow.channels,):
            self._block_flow(flow, f"LayerNorm {name!r} normalizes over {shape}, not over their {flow.channels} "
                                   "channels alone")
        elif module.weight is None:
            self._block_flow(flow, f"LayerNorm {name!r} has no gamma and beta (elementwise_affine=False): a "
                                   "removed channel would leave it as -mean / std of the others, not zero")
        else:
            self._norm_reads(name, flow)
            self.norm_calls.append((name, entry, exit_, flow))
        self._pass(node, node.args[0])

    def _settle_widened(self, name: str, entry: fx.Node, exit_: fx.Node, flow: _Flow) -> None:
        """Where the LayerNorm module's channels are at its input and output (compact puts removed ones back
        there), once every flow is known."""
        before, after = self.flow.get(entry), self.flow.get(exit_)
        if before is None or after is None or before.segments != after.segments or before.flat or after.flat:
            self._block_flow(flow, f"LayerNorm {name!r}'s input and output channels do not line up, so the kit "
                                   "cannot put removed channels back around it")
            return
        for key, _ in flow.segments:
            self._note(key, "widened", (name, (before.cdim, after.cdim)))

    def _visit_flatten(self, node: fx.Node, src: fx.Node | None, start: int, end: int, label: str) -> None:
        flow = self.flow.get(src)
        if flow is None:
            return
        if start == 1 and end == -1 and flow.is_dim1():
            self._pass(node, src, cdim=-1, rank=2, flat=flow.flat or (flow.rank != 2))
        elif flow.rank is not None and not flow.flat and 0 <= flow.dim() < start % flow.rank:
            # dims after the channels only ([N, C, H, W] -> [N, C, HW]): every channel keeps its place
            self._pass(node, src, cdim=flow.dim(), rank=flow.rank - (end % flow.rank - start % flow.rank))
        else:
            self._block_flow(flow, f"{label} flattens dims {start}..{end} with the channels")

    def _visit_function(self, node: fx.Node) -> None:
        target = node.target
        label = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        if target in _METADATA or target is getattr:
            return
        if target is operator.getitem and src in self.attention_out:
            if node.args[1] == 0:
                self.flow[node] = self.attention_out[src]
            return
        if hashable(target) in _GATES_FUNCS:
            self._pass(node, src, gate=True)
        elif target is F.layer_norm:
            self._visit_layer_norm_call(node, src)
        elif leak(node, None) is not None:
            self._block(node, leak(node, None))
        elif passes_through(node, None):
            self._pass(node, src)
        elif hashable(target) in _ADDS:
            if self._ungated(node, f"an add ({label})"):
                self._merge(node, label, "a residual add")
        elif hashable(target) in _MULS:
            self._visit_mul(node, label)
        elif hashable(target) in _CATS:
            self._visit_cat(node, label)
        elif target in (torch.flatten, "flatten"):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            self._visit_flatten(node, src, start, end, f"{label}")
        elif target == "permute" or target is torch.permute:
            self._visit_permute(node, src)
        elif target == "transpose" or target is torch.transpose:
            self._visit_transpose(node, src)
        elif hashable(target) in _REDUCTIONS:
            self._visit_reduction(node, label, src)
        else:
            self._block(node, f"{label!r} (node {node.name!r}) reads them, which the kit cannot follow")

    def _merge(self, node: fx.Node, label: str, why: str) -> None:
        tensors = [a for a in node.args if isinstance(a, fx.Node)]
        scalars = [a for a in node.args if not isinstance(a, fx.Node)]
        flows = [self.flow.get(a) for a in tensors]
        if len(tensors) != 2 or None in flows or scalars:
            unknown = [a.name for a in tensors if a not in self.flow] + [repr(a) for a in scalars]
            self._block(node, f"{label} (node {node.name!r}) combines them with {', '.join(unknown) or 'more'}, "
                              "whose channels the kit cannot follow")
            return
        a, b = flows
        if a.dim() != b.dim() or a.flat != b.flat or not self._union_flows(a, b, why):
            self._block(node, f"{label} (node {node.name!r}) combines channels laid out differently")
            return
        self.flow[node] = _Flow(a.segments, a.cdim, a.rank or b.rank, a.flat, a.gate and b.gate)

    def _visit_mul(self, node: fx.Node, label: str) -> None:
        tensors = [a for a in node.args if isinstance(a, fx.Node)]
        params = [a for a in tensors if a.op == "get_attr"]
        if len(tensors) == 2 and len(params) == 1 and (set(tensors) - set(params)).pop() in self.flow:
            self._visit_scale(node, label, params[0], (set(tensors) - set(params)).pop())
            return
        if len(tensors) == 1 and tensors[0] in self.flow:  # times a number: a zero stays zero
            if self._ungated(node, f"a multiplication by a number ({label})"):
                self._pass(node, tensors[0])
            return
        self._merge(node, label, "a gate (multiplication)")

    def _visit_scale(self, node: fx.Node, label: str, param: fx.Node, src: fx.Node) -> None:
        """Times a parameter (ConvNeXt's layer scale): a zero stays zero; one value per channel goes with it."""
        flow = self.flow[src]
        tensor = _attribute(self.model, param.target)
        pdim = None if flow.rank is None or flow.flat else flow.dim() - (flow.rank - tensor.dim())
        if not self._ungated(node, f"a multiplication ({label})"):
            return
        if pdim is None or (0 <= pdim and tensor.shape[pdim] not in (1, flow.channels)) or \
                tensor.dim() > (flow.rank or 0):
            self._block_flow(flow, f"{label} by {param.target!r} of shape {tuple(tensor.shape)} (node "
                                   f"{node.name!r}) does not scale them one value per channel")
            return
        if pdim >= 0 and tensor.shape[pdim] == flow.channels:
            offset = 0
            for key, n in flow.segments:
                self._note(key, "scale", (param.target, (pdim, flow.channels, offset)))
                offset += n
        self._pass(node, src)

    def _visit_cat(self, node: fx.Node, label: str) -> None:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors", ())
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        flows = [self.flow.get(t) for t in tensors] if isinstance(tensors, (list, tuple)) else [None]
        if None in flows or not self._ungated(node, "a concatenation"):
            self._block(node, f"{label} (node {node.name!r}) joins them with something the kit cannot follow")
            return
        first = flows[0]
        along = all(f.dim() == first.dim() and not f.flat for f in flows) and (
            dim == first.cdim or (first.rank is not None and dim % first.rank == first.dim()))
        if not along:
            self._block(node, f"{label} along dim {dim} (node {node.name!r}), not along their channels")
            return
        segments = tuple(s for f in flows for s in f.segments)
        self.flow[node] = _Flow(segments, first.cdim, first.rank)

    def _visit_permute(self, node: fx.Node, src: fx.Node | None) -> None:
        flow = self.flow.get(src)
        if flow is None:
            return
        dims = node.args[1:] if node.target == "permute" else node.args[1]
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = dims[0]
        dims = [d % len(dims) for d in dims]
        rank = len(dims)
        if flow.flat or (flow.rank is not None and flow.rank != rank):
            self._block_flow(flow, f"permute (node {node.name!r}) of flattened channels")
            return
        here = flow.cdim % rank
        self.flow[node] = _Flow(flow.segments, dims.index(here), rank, False, flow.gate)

    def _visit_transpose(self, node: fx.Node, src: fx.Node | None) -> None:
        """transpose(a, b): the channels move to b if they were at a (and back); a tensor of known rank only."""
        flow = self.flow.get(src)
        if flow is None:
            return
        a, b = node.args[1:3]
        if flow.flat or flow.rank is None:
            self._block_flow(flow, f"transpose (node {node.name!r}) of channels in a tensor of unknown rank")
            return
        a, b, here = a % flow.rank, b % flow.rank, flow.dim()
        cdim = b if here == a else a if here == b else here
        self.flow[node] = _Flow(flow.segments, cdim, flow.rank, False, flow.gate)

    def _visit_reduction(self, node: fx.Node, label: str, src: fx.Node | None) -> None:
        flow = self.flow.get(src)
        if flow is None:
            return
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        dims = [dims] if isinstance(dims, int) else list(dims) if isinstance(dims, (list, tuple)) else None
        rank, here = flow.rank, flow.dim()
        if dims and rank is not None and not flow.flat:
            dims = [d % rank for d in dims]
            if here not in dims and here >= 0:
                if keepdim:
                    self._pass(node, src)
                else:
                    self._pass(node, src, cdim=here - sum(d < here for d in dims), rank=rank - len(dims))
                return
        self._block(node, f"{label} over dims {dims} (node {node.name!r}) mixes them")

    # -- result --------------------------------------------------------------------------------------
    def groups(self) -> list[CoupledGroup]:
        by_root: dict[str, CoupledGroup] = {}
        for root, kind, payload in self.ties.by_set():
            group = by_root.setdefault(root, CoupledGroup("", self.size[root]))
            if kind in _LISTED:  # names, each once
                listed = getattr(group, _LISTED[kind])
                if payload not in listed:
                    listed.append(payload)
            elif kind in _KEYED:  # (name, what is known of it): the first record of a name holds
                getattr(group, _KEYED[kind]).setdefault(*payload)
            elif kind == "consumer":
                name, first, columns = payload
                group.consumers.setdefault(name, (first, columns))
            elif kind == "tie":
                group.ties.append(payload)
            elif payload not in group.blockers:
                group.blockers.append(payload)
        groups = [g for g in by_root.values() if g.producers or g.heads]
        for group in groups:
            group.producers.sort(key=self.order.__getitem__)
            group.name = group.members()[0]
            for name in group.depthwise + list(group.grouped):  # they read the group itself: not consumers
                group.consumers.pop(name, None)
            if len(set(group.grouped.values())) > 1:
                group.blockers.append(f"grouped convs with different groups ({group.grouped}) read them")
        # heads just before their attention layer's out_proj, whose channels come after them
        return sorted(groups, key=lambda g: (self.order[g.producers[0]], 1) if g.producers
                      else (self.order[f"{g.name}.out_proj"], 0))


_GATES = (nn.Sigmoid, nn.Hardsigmoid)
_GATES_FUNCS = {torch.sigmoid, nn.functional.sigmoid, nn.functional.hardsigmoid, "sigmoid", "sigmoid_"}


def _is_full_width(module: nn.Module) -> bool:
    from .group_masks import FullWidth  # group_masks builds on this module: imported when used

    return isinstance(module, FullWidth)


def _attribute(model: nn.Module, target: str) -> torch.Tensor:
    """The parameter or buffer an fx get_attr node names."""
    owner, _, attr = target.rpartition(".")
    return getattr(model.get_submodule(owner) if owner else model, attr)


def trace(model: nn.Module) -> fx.GraphModule:
    """The model's fx graph, or a ValueError saying why the kit cannot analyse it."""
    return trace_or_refuse(model, "coupled channel groups need")


def coupled_groups(model: nn.Module) -> list[CoupledGroup]:
    """Every channel group of the model (groups of one included), in the order of their first layer; a group
    with ``blockers`` cannot be pruned, and the blockers say why."""
    return _Analysis(model, trace(model)).groups()
