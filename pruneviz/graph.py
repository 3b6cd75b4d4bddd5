"""Which layers a pruning decision touches: the prunable layers, the BatchNorm after each, the model's edges.

Found by tracing the model with torch.fx; a model fx cannot trace (data-dependent control flow) falls back to
the order in which modules were registered, which is right for the Sequential-style nets of the lecture.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import fx, nn

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# modules that pass channels through unchanged: a layer's channel is still the same channel after them
PASS_THROUGH = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.Hardswish,
                nn.Identity, nn.Dropout, nn.Dropout2d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d,
                nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
ACTIVATIONS = (nn.ReLU, nn.ReLU6)


@dataclass
class LayerInfo:
    """What pruning one layer's output channels touches."""

    name: str
    module: nn.Module
    norm: str | None = None  # BatchNorm right after it, scaling its channels
    activation: str | None = None  # ReLU after it (and after the norm), for activation criteria
    is_input: bool = False  # reads the model's input: its input channels are the data's
    is_output: bool = False  # writes the model's output: its channels are the classes


@dataclass
class ModelGraph:
    layers: dict[str, LayerInfo] = field(default_factory=dict)
    traced: bool = False


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Linear and Conv layer with a weight, by module name, in registration order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE) and m.weight is not None}


def _trace(model: nn.Module) -> fx.GraphModule | None:
    try:
        return fx.symbolic_trace(model)
    except Exception:  # fx cannot trace every model; the registration-order fallback covers the rest
        return None


def build_graph(model: nn.Module) -> ModelGraph:
    """Layer infos for every prunable layer of the model."""
    layers = {name: LayerInfo(name, m) for name, m in prunable_layers(model).items()}
    graph = ModelGraph(layers)
    if not layers:
        return graph
    traced = _trace(model)
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
    for node in traced.graph.nodes:
        if node.op != "call_module" or node.target not in graph.layers:
            continue
        info = graph.layers[node.target]
        users = list(node.users)
        if len(users) == 1 and isinstance(_module_of(users[0], modules), NORMS):
            info.norm = users[0].target
            users = list(users[0].users)
        if len(users) == 1:
            nxt = users[0]
            if isinstance(_module_of(nxt, modules), ACTIVATIONS) or (
                    nxt.op in ("call_function", "call_method") and getattr(nxt.target, "__name__", nxt.target)
                    in ("relu", "relu_", "relu6")):
                info.activation = nxt.target if nxt.op == "call_module" else str(nxt)
    # input layers: reached from a placeholder through pass-through ops only; output layers likewise backwards
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            for name in _reach(node, modules, graph, forward=True):
                graph.layers[name].is_input = True
        if node.op == "output":
            for name in _reach(node, modules, graph, forward=False):
                graph.layers[name].is_output = True


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
            if nxt.op == "call_module" and nxt.target in graph.layers:
                found.add(nxt.target)
            else:
                stack.append(nxt)
    return found


def _fill_by_order(model: nn.Module, graph: ModelGraph) -> None:
    ordered = [(name, m) for name, m in model.named_modules() if name and not list(m.children())]
    names = list(graph.layers)
    graph.layers[names[0]].is_input = True
    graph.layers[names[-1]].is_output = True
    for i, (name, module) in enumerate(ordered):
        if name not in graph.layers:
            continue
        out = module.weight.shape[0]
        rest = ordered[i + 1:i + 3]
        if rest and isinstance(rest[0][1], NORMS) and rest[0][1].num_features == out:
            graph.layers[name].norm = rest[0][0]
            rest = rest[1:]
        if rest and isinstance(rest[0][1], ACTIVATIONS):
            graph.layers[name].activation = rest[0][0]

