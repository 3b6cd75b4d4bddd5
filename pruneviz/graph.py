"""Which layers a pruning decision touches: the prunable layers, the BatchNorm after each, the model's edges.

Found by tracing the model with torch.fx; a model fx cannot trace (data-dependent control flow) falls back to
the order in which modules were registered, which is right for the Sequential-style nets of the lecture.

A pruned channel must arrive at the next layer as zero, or zeroing it (the Pruner) and removing it
(:func:`pruneviz.compact`) compute different things. On its way it may pass ops that keep a zero channel zero
(``PASS_THROUGH``: ReLU, pooling, dropout...), and BatchNorms, which the Pruner zeros with the channel (gamma and
beta). Anything that turns a zero into something else (a Sigmoid, a BatchNorm without gamma and beta, a second
BatchNorm, a GroupNorm or LayerNorm) is a *leak*: ``LayerInfo.channel_leak`` says why, channel granularity
leaves the layer out, and compact refuses to remove its channels.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from scipy.cluster.hierarchy import DisjointSet
from torch import fx, nn
from torch.nn import functional as F

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# modules that keep every channel where it is and map 0 to 0: after them a zeroed channel is the same
# channel, and still zero (an activation with f(0) != 0, such as Sigmoid, is not one of them)
PASS_THROUGH = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Hardtanh, nn.ELU,
                nn.CELU, nn.SELU, nn.Hardswish, nn.Softsign, nn.Tanhshrink, nn.Identity, nn.Dropout, nn.Dropout1d,
                nn.Dropout2d, nn.Dropout3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
                nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
# the same as call_function / call_method targets
PASS_THROUGH_FUNCS = {torch.relu, torch.relu_, F.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.mish, F.elu,
                      F.hardswish, F.hardtanh, torch.tanh, F.tanh, F.dropout, F.dropout1d, F.dropout2d,
                      F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
                      F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool1d,
                      F.adaptive_max_pool2d, F.adaptive_max_pool3d}
PASS_THROUGH_METHODS = {"relu", "relu_", "tanh", "tanh_", "contiguous", "clone", "detach"}
# channel-wise ops that map 0 to something else: a zeroed channel leaves them as a constant
NONZERO_AT_ZERO = (nn.Sigmoid, nn.Hardsigmoid, nn.LogSigmoid, nn.Softplus)
NONZERO_AT_ZERO_FUNCS = {torch.sigmoid: torch.sigmoid, F.sigmoid: torch.sigmoid, F.hardsigmoid: F.hardsigmoid,
                         F.logsigmoid: F.logsigmoid, F.softplus: F.softplus, "sigmoid": torch.sigmoid,
                         "sigmoid_": torch.sigmoid}
# norms whose statistics span several channels: a zeroed channel comes out of them as minus their mean
MIXING_NORMS = (nn.GroupNorm, nn.LayerNorm)
ACTIVATIONS = (nn.ReLU, nn.ReLU6)


def module_leak(name: str, module: nn.Module) -> str | None:
    """Why a channel that is zero before module ``name`` is not zero after it (None: it stays zero, or the
    module is not a channel-wise one)."""
    if isinstance(module, NORMS) and module.weight is None:
        return (f"BatchNorm {name!r} has no gamma and beta (affine=False): a zeroed channel leaves it as the "
                "constant -running_mean / sqrt(running_var + eps), not zero")
    if isinstance(module, NONZERO_AT_ZERO):
        return f"{name!r} ({type(module).__name__}) maps a zeroed channel to {_at_zero(module):g}, not 0"
    if isinstance(module, MIXING_NORMS):
        return (f"{name!r} ({type(module).__name__}) normalizes a zeroed channel with the others, so it leaves "
                "as -mean / std of them (times gamma, plus beta), not zero")
    if isinstance(module, nn.modules.instancenorm._InstanceNorm) and module.affine:
        return f"{name!r} ({type(module).__name__}) adds its beta to a zeroed channel"
    return None


def leak(node: fx.Node, module: nn.Module | None) -> str | None:
    """:func:`module_leak` for any node of an fx graph, functions such as ``torch.sigmoid`` included."""
    if module is not None:
        return module_leak(node.target, module)
    if node.op in ("call_function", "call_method") and hashable(node.target) in NONZERO_AT_ZERO_FUNCS:
        name = getattr(node.target, "__name__", node.target)
        value = _at_zero(NONZERO_AT_ZERO_FUNCS[node.target])
        return f"{name} (node {node.name!r}) maps a zeroed channel to {value:g}, not 0"
    return None


def hashable(target: object) -> object:
    """An fx node's target if it can be looked up in a set, else None (a bound method of a tensor cannot)."""
    try:
        hash(target)
    except TypeError:
        return None
    return target


def _at_zero(f) -> float:
    return float(f(torch.zeros(1)))


def passes_through(node: fx.Node, module: nn.Module | None) -> bool:
    """Does ``node`` keep every channel where it is and a zero channel zero?"""
    if node.op == "call_module":
        return isinstance(module, PASS_THROUGH)
    return node.op in ("call_function", "call_method") and (
        hashable(node.target) in PASS_THROUGH_FUNCS or node.target in PASS_THROUGH_METHODS)


@dataclass
class LayerInfo:
    """What pruning one layer's output channels touches."""

    name: str
    module: nn.Module
    norm: str | None = None  # the BatchNorm its channels pass before the next layer: zeroed with a channel
    activation: str | None = None  # ReLU right after it (or after a BatchNorm right after it)
    activation_input: str | None = None  # the module whose output that ReLU reads: the layer or that BatchNorm
    channel_leak: str | None = None  # why a zeroed output channel reaches the next layer as something else
    is_input: bool = False  # reads the model's input: its input channels are the data's
    is_output: bool = False  # writes the model's output: its channels are the classes


@dataclass
class ModelGraph:
    layers: dict[str, LayerInfo] = field(default_factory=dict)
    traced: bool = False


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Linear and Conv layer with a weight, by module name, in registration order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE) and m.weight is not None}


class _Tracer(fx.Tracer):
    """torch.fx's tracer that also keeps what compact leaves of an nn.MultiheadAttention (its forward branches on
    the input) and of a LayerNorm over pruned channels as one op each: a compacted model traces as the
    original did, and coupling says why their channels are kept."""

    def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
        from .attention import PrunedMultiheadAttention
        from .group_masks import FullWidth

        return isinstance(m, (PrunedMultiheadAttention, FullWidth)) or super().is_leaf_module(m, qualified_name)


def symbolic_trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx.symbolic_trace`` with the kit's leaves (a compacted model traces as its original did)."""
    tracer = _Tracer()
    graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, model.__class__.__name__)


def trace_or_refuse(model: nn.Module, who_needs: str) -> fx.GraphModule:
    """The model's fx graph, or a ValueError saying who needs one (``"compact needs"``) and why tracing failed."""
    try:
        return symbolic_trace(model)
    except Exception as err:  # any tracing failure means the same thing to the user
        raise ValueError(f"{who_needs} a model torch.fx can trace, and tracing {type(model).__name__} failed "
                         f"({type(err).__name__}: {err}); data-dependent control flow is the usual cause") from None


class TiedKeys:
    """Channel keys that meet (an add, a reused module, a depthwise conv...) as sets, with what was found of
    each key: the bookkeeping both dependency analyses (surgery's channel groups, coupling's coupled groups)
    group their findings by. The sets are scipy's DisjointSet (union-find); the records are ours."""

    def __init__(self):
        self.sets = DisjointSet()
        self.records: list[tuple[str, str, object]] = []  # (key, kind, payload), grouped once unions are known

    def add(self, key: str) -> str:
        self.sets.add(key)
        return key

    def find(self, key: str) -> str:
        return self.sets[key]

    def union(self, a: str, b: str, why: str) -> bool:
        """Tie the sets of ``a`` and ``b`` (recording why); False if they were one already."""
        if not self.sets.merge(a, b):
            return False
        self.records.append((a, "tie", why))
        return True

    def note(self, key: str, kind: str, payload: object) -> None:
        self.records.append((key, kind, payload))

    def by_set(self) -> Iterator[tuple[str, str, object]]:
        """(the key's set, kind, payload) for every record, in the order found."""
        for key, kind, payload in self.records:
            yield self.find(key), kind, payload


def _trace(model: nn.Module) -> fx.GraphModule | None:
    try:
        return symbolic_trace(model)
    except Exception:  # fx cannot trace every model; the registration-order fallback covers the rest
        return None


def build_graph(model: nn.Module, traced: fx.GraphModule | None = None) -> ModelGraph:
    """Layer infos for every prunable layer of the model (``traced``: its fx trace, if the caller has one)."""
    layers = {name: LayerInfo(name, m) for name, m in prunable_layers(model).items()}
    graph = ModelGraph(layers)
    if not layers:
        return graph
    traced = traced if traced is not None else _trace(model)
    if traced is None:
        _fill_by_order(model, graph)
    else:
        graph.traced = True
        _fill_by_trace(model, traced, graph)
    return graph


def _module_of(node: fx.Node, modules: dict[str, nn.Module]) -> nn.Module | None:
    return modules.get(node.target) if node.op == "call_module" else None


def _fill_by_trace(model: nn.Module, traced: fx.GraphModule, graph: ModelGraph) -> None:
    modules = dict(model.named_modules())
    calls: dict[str, list[fx.Node]] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module" and node.target in graph.layers:
            calls.setdefault(node.target, []).append(node)
    for name, nodes in calls.items():
        info = graph.layers[name]
        _find_activation(info, nodes[0], modules)
        norms, leaks = [], []
        for node in nodes:  # a module called twice feeds both paths
            _walk_channels(node, modules, graph, norms, leaks)
        _settle_norm(info, norms, leaks, modules)
    # input layers: reached from a placeholder through pass-through ops only; output layers likewise backwards
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            for name in _reach(node, modules, graph, forward=True):
                graph.layers[name].is_input = True
        if node.op == "output":
            for name in _reach(node, modules, graph, forward=False):
                graph.layers[name].is_output = True


def _find_activation(info: LayerInfo, node: fx.Node, modules: dict[str, nn.Module]) -> None:
    """The ReLU right after the layer, or after a BatchNorm right after it (what activation criteria read)."""
    users, before = list(node.users), node.target
    if len(users) == 1 and isinstance(_module_of(users[0], modules), NORMS):
        before = users[0].target
        users = list(users[0].users)
    if len(users) == 1:
        nxt = users[0]
        if isinstance(_module_of(nxt, modules), ACTIVATIONS) or (
                nxt.op in ("call_function", "call_method") and getattr(nxt.target, "__name__", nxt.target)
                in ("relu", "relu_", "relu6")):
            info.activation = nxt.target if nxt.op == "call_module" else str(nxt)
            info.activation_input = before


def _walk_channels(start: fx.Node, modules: dict[str, nn.Module], graph: ModelGraph, norms: list[str],
                   leaks: list[str]) -> None:
    """From a layer's call to the next layers, through ops that keep channels apart: the BatchNorms met, and
    the leaks. The walk ends at a prunable layer, a merge (an add: other layers' channels join), or any op it
    does not know (compact refuses to cross those)."""
    stack, seen = list(start.users), set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        module = _module_of(node, modules)
        if node.op == "call_module" and node.target in graph.layers:
            continue
        why = leak(node, module)
        if why is not None:
            leaks.append(why)
        elif isinstance(module, NORMS):
            if node.target not in norms:
                norms.append(node.target)
            stack.extend(node.users)
        elif passes_through(node, module) or _keeps_channels_apart(node, module):
            stack.extend(node.users)


def _keeps_channels_apart(node: fx.Node, module: nn.Module | None) -> bool:
    """A flatten(1), or a reduction over spatial dims only: a zero channel's values stay zero and its own."""
    if isinstance(module, nn.Flatten) or node.target in (torch.flatten, "flatten"):
        return True
    if node.target in (torch.mean, torch.sum, torch.amax, torch.amin, "mean", "sum", "amax", "amin"):
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        dims = [dims] if isinstance(dims, int) else dims
        return isinstance(dims, (list, tuple)) and len(dims) > 0 and all(isinstance(d, int) and d >= 2
                                                                        for d in dims)
    return False


def _settle_norm(info: LayerInfo, norms: list[str], leaks: list[str], modules: dict[str, nn.Module]) -> None:
    """The one BatchNorm a channel Pruner zeros with the layer's channels, or why there is none that works."""
    channels = info.module.weight.shape[0]
    wrong = [n for n in norms if modules[n].num_features != channels]
    if wrong:
        leaks.append(f"BatchNorm {wrong[0]!r} normalizes {modules[wrong[0]].num_features} features, not the "
                     f"layer's {channels} channels, so a channel Pruner cannot zero a channel in it")
    fits = [n for n in norms if n not in wrong]
    if len(fits) > 1:
        leaks.append(f"{len(fits)} BatchNorms ({', '.join(repr(n) for n in fits)}) scale its channels before "
                     "the next layer; a channel Pruner zeros one, so the others would turn a zeroed channel "
                     "into a constant")
    info.norm = fits[0] if fits else None
    info.channel_leak = leaks[0] if leaks else None


def _reach(start: fx.Node, modules: dict[str, nn.Module], graph: ModelGraph, forward: bool) -> set[str]:
    """Prunable layers reached from ``start`` without crossing another prunable layer."""
    found, stack, seen = set(), [start], set()
    while stack:
        node = stack.pop()
        nexts = list(node.users) if forward else list(node.all_input_nodes)
        for nxt in nexts:
            if nxt in seen:
                continue
            seen.add(nxt)
            if reads_shape_only(nxt):
                continue  # x.shape[0] fed to a reshape carries a size, not the data
            if nxt.op == "call_module" and nxt.target in graph.layers:
                found.add(nxt.target)
            else:
                stack.append(nxt)
    return found


SHAPE_ATTRIBUTES = {"shape", "dtype", "device", "ndim"}
SHAPE_METHODS = {"size", "dim", "numel", "ndimension"}


def reads_shape_only(node: fx.Node) -> bool:
    """Does ``node`` read a tensor's shape (x.shape, x.size(0), x.dim()) rather than its values?"""
    if node.op == "call_method":
        return node.target in SHAPE_METHODS
    return node.op == "call_function" and node.target is getattr and len(node.args) > 1 and \
        node.args[1] in SHAPE_ATTRIBUTES


def _fill_by_order(model: nn.Module, graph: ModelGraph) -> None:
    modules = dict(model.named_modules())
    ordered = [(name, m) for name, m in modules.items() if name and not list(m.children())]
    names = list(graph.layers)
    graph.layers[names[0]].is_input = True
    graph.layers[names[-1]].is_output = True
    for i, (name, module) in enumerate(ordered):
        if name not in graph.layers:
            continue
        info, rest = graph.layers[name], ordered[i + 1:]
        first = rest[1:] if rest and isinstance(rest[0][1], NORMS) else rest
        if first and isinstance(first[0][1], ACTIVATIONS):
            info.activation = first[0][0]
            info.activation_input = rest[0][0] if first is not rest else name
        norms, leaks = [], []
        for later, m in rest:  # the modules registered after it, up to the next layer
            why = module_leak(later, m)
            if later in graph.layers or why is not None:
                leaks += [why] if why else []
                break
            if isinstance(m, NORMS):
                norms.append(later)
            elif not isinstance(m, PASS_THROUGH + (nn.Flatten,)):
                break
        _settle_norm(info, norms, leaks, modules)


def untraced_reason(model: nn.Module, name: str) -> str:
    """Why torch.fx's trace never calls layer ``name``: the module fx keeps whole around it, or a function that
    uses its weight. One wording for the Pruner's ``skipped`` and for ``compact``'s refusal."""
    modules = dict(model.named_modules())
    parts = name.split(".")
    outer = next((p for p in (".".join(parts[:i]) for i in range(1, len(parts)))
                  if _Tracer().is_leaf_module(modules[p], p)), None)
    return (f"it runs inside {outer!r} ({type(modules[outer]).__name__}), which torch.fx traces as one op"
            if outer is not None else "torch.fx's trace never calls it (its weight is used by a function)")
