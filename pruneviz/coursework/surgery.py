"""Checks for the surgery exercises (notebooks 09 and 10): removing channels and neurons for real.

Each check runs the student's function on the lab's or the notebook's own example and on random layers, compares
with what :func:`pruneviz.compact` gives, says in words what differs (shapes, stale ``out_channels`` /
``in_features`` attributes, outputs), and refuses a function that calls the library's surgery.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..metrics import count_parameters
from .. import surgery
from ..surgery import compact
from .report import Check


def _trio(cin: int, mid: int, cout: int, seed: int, bias: bool = False) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1, bias=bias), nn.BatchNorm2d(mid), nn.ReLU(),
                        nn.Conv2d(mid, cout, 3, padding=1))
    with torch.no_grad():  # trained-looking BatchNorm statistics, so slicing them wrongly shows
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-0.5, 0.5)
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def _slice_problem(out: object, net: nn.Sequential, keep: torch.Tensor) -> str | None:
    if not (isinstance(out, tuple) and len(out) == 3 and all(isinstance(m, nn.Module) for m in out)):
        return f"return a tuple (conv, bn, next_conv) of three modules, got {type(out).__name__}"
    conv, bn, nxt = out
    n = int(keep.sum())
    wrong = []
    if conv.weight.shape[0] != n:
        wrong.append(f"conv has {conv.weight.shape[0]} output channels, expected {n} (the kept ones)")
    parts = {"weight": bn.weight, "bias": bn.bias, "running_mean": bn.running_mean, "running_var": bn.running_var}
    unsliced = [f"{name} ({t.shape[0]} entries)" for name, t in parts.items() if t is not None and t.shape[0] != n]
    if unsliced:
        wrong.append(f"the BatchNorm must keep {n} channels in all four of weight, bias, running_mean and "
                     f"running_var, sliced with the same mask; not sliced: {', '.join(unsliced)}")
    if nxt.weight.shape[1] != n:
        wrong.append(f"next_conv reads {nxt.weight.shape[1]} input channels, expected {n}: slice its weight "
                     "along dim 1")
    if wrong:
        return "; ".join(wrong)
    stale = [f"{layer}.{attr} still says {getattr(module, attr)} but its weight has {n}"
             for layer, module, attr in (("conv", conv, "out_channels"), ("bn", bn, "num_features"),
                                         ("next_conv", nxt, "in_channels"))
             if getattr(module, attr, n) != n]
    if stale:
        return ("; ".join(stale) + ": update the attribute with the tensors (repr(), a saved config, and code that "
                "builds the next layer from it read the stale number)")
    expected = compact(net, {"0": keep})
    x = torch.randn(2, net[0].in_channels, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if net[0].bias is not None and (conv.bias is None or conv.bias.shape[0] != n):
            return f"conv's bias must keep the same {n} channels as its weight"
        try:
            got = nxt.eval()(torch.relu(bn.eval()(conv(x))))
        except Exception as error:  # said in words, not as a traceback from inside torch
            return (f"the three layers do not run one after the other ({type(error).__name__}: {error}); "
                    "check every tensor and attribute you sliced")
        want = expected(x)
    if not torch.allclose(got, want, atol=1e-5):
        return ("the right shapes, but the outputs differ from the model without those channels: keep the "
                "channels where keep is True, in their order, in all three layers")
    return None


# the library's channel surgery: a student's slicing must not call it
_SURGERY = (compact, surgery._slice_out, surgery._slice_in, surgery._slice_norm)


def check_channel_slice(fn: Callable[[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d, torch.Tensor], tuple]) -> bool:
    """Check ``fn(conv, bn, next_conv, keep) -> (conv, bn, next_conv)``: new, smaller layers without the output
    channels of ``conv`` where ``keep`` is False (the BatchNorm after it and ``next_conv``'s inputs with them),
    the input layers left unchanged. A function that calls :func:`pruneviz.compact` is refused."""
    lab = _trio(64, 128, 256, 4)  # the lab VGG's second and third convs: keep the 64 of largest L1 norm
    lab_keep = torch.zeros(128, dtype=torch.bool)
    lab_keep[lab[0].weight.abs().sum(dim=(1, 2, 3)).topk(64).indices] = True
    cases = [("the lab VGG's conv 64 -> 128 -> 256, keep the 64 channels of largest L1 norm", (64, 128, 256, 4),
              lab_keep, False),
             ("8 channels, keep 0, 2, 5", (3, 8, 4, 1), torch.tensor([1, 0, 1, 0, 0, 1, 0, 0], dtype=torch.bool),
              False),
             ("a conv with a bias, 10 channels, keep 1, 4, 7, 8", (3, 10, 4, 5), torch.isin(
                 torch.arange(10), torch.tensor([1, 4, 7, 8])), True),
             ("16 channels, keep one", (3, 16, 4, 2), torch.arange(16) == 9, False),
             ("12 channels, keep all", (3, 12, 4, 3), torch.ones(12, dtype=torch.bool), False)]
    check = Check("channel slicing", forbid=_SURGERY)
    for case, shape, keep, bias in cases:
        with check.case(case):
            net = _trio(*shape, bias=bias)
            before = {k: v.clone() for k, v in net.state_dict().items()}
            out = check.run(fn, net[0], net[1], net[3], keep.clone())
            check.expect(all(torch.equal(before[k], v) for k, v in net.state_dict().items()),
                         "changed the layers it was given; build new ones (or copies)")
            problem = _slice_problem(out, net, keep)
            if problem:
                check.fail(problem)
    return check.done()


def check_mlp_parameters(fn: Callable[[list[int]], int]) -> bool:
    """Check ``fn(widths) -> int``: the parameters (weights and biases) of an MLP of Linear layers
    ``widths[0] -> widths[1] -> ... -> widths[-1]``. A function that asks :func:`pruneviz.count_parameters`
    is refused: the exercise is the arithmetic."""
    cases = [[64, 256, 128, 10], [64, 64, 32, 10], [64, 16, 8, 10], [4, 3], [64, 1, 1, 10]]
    check = Check("MLP parameter count", forbid=(count_parameters,))
    for widths in cases:
        with check.case(f"widths {widths}"):
            expected = count_parameters(nn.Sequential(*[nn.Linear(a, b) for a, b in zip(widths, widths[1:])]))
            got = check.run(fn, list(widths))
            check.expect(got is not None, "returned None, expected an int")
            check.expect(isinstance(got, int) and not isinstance(got, bool),
                         f"returned a {type(got).__name__}, expected an int")
            weights = sum(a * b for a, b in zip(widths, widths[1:]))
            hint = " (the biases are missing: one per output neuron)" if got == weights else ""
            check.expect(got == expected, f"got {got}, expected {expected}{hint}")
    return check.done()


def _scored_after_slicing(mlp: nn.Sequential, sparsity: float) -> nn.Sequential:
    """The typical slip, to name it: each layer's neurons ranked after its inputs were already cut."""
    narrow = copy.deepcopy(mlp).eval()
    linears = [m for m in narrow if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer, following in zip(linears, linears[1:]):
            n = layer.weight.shape[0]
            keep = layer.weight.abs().sum(1).topk(n - round(sparsity * n)).indices.sort().values
            layer.weight, layer.bias = nn.Parameter(layer.weight[keep]), nn.Parameter(layer.bias[keep])
            following.weight = nn.Parameter(following.weight[:, keep])
    return narrow


def _neuron_problem(got: object, mlp: nn.Sequential, expected: nn.Module, sparsity: float) -> str | None:
    """What is wrong with ``got`` as ``expected``, the compacted narrow MLP (None: nothing)."""
    if not isinstance(got, nn.Module):
        return f"returned {type(got).__name__}, expected a new nn.Module (the narrow MLP)"
    if got is mlp:
        return "returned the MLP it was given; build a new, narrow one"
    mine = [m for m in got.modules() if isinstance(m, nn.Linear)]
    want = [m for m in expected.modules() if isinstance(m, nn.Linear)]
    widths = [m.weight.shape[0] for m in mine]
    if widths != [m.out_features for m in want]:
        return (f"its Linear layers have {widths} outputs, expected {[m.out_features for m in want]}: every "
                "hidden layer loses round(sparsity x its neurons), the output layer (the classes) none")
    reads = [m.weight.shape[1] for m in mine]
    if reads != [m.in_features for m in want]:
        return (f"its Linear layers read {reads} inputs, expected {[m.in_features for m in want]}: the layer "
                "after a pruned one loses the matching columns of its weight")
    for i, m in enumerate(mine):
        if (m.out_features, m.in_features) != tuple(m.weight.shape):
            return (f"Linear {i} says in_features={m.in_features}, out_features={m.out_features} but its weight "
                    f"is {tuple(m.weight.shape)}: update the attributes with the tensors")
        if m.bias is None or m.bias.shape[0] != m.weight.shape[0]:
            return f"Linear {i}'s bias must keep the same neurons as its weight's rows"
    if all(torch.equal(a.weight, b.weight) for a, b in zip(mine, want)):
        if not all(torch.equal(a.bias, b.bias) for a, b in zip(mine, want)):
            return "the right weights, but a bias kept other neurons: slice it with the weight's rows"
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))  # every case's MLP reads 64 pixels
    with torch.no_grad():
        out = got.eval()(x)
        same = torch.allclose(out, expected.eval()(x), atol=1e-5)
        scored_late = torch.allclose(out, _scored_after_slicing(mlp, sparsity)(x), atol=1e-5)
    if not same and scored_late:
        return ("each layer was scored after the previous one had cut its columns: score every hidden layer on "
                "the weights of the MLP you were given, then slice (the library's and the lecture's L1 norm of a "
                "neuron is over all of its incoming weights)")
    if not same:
        return ("the right widths, but other outputs than the narrow model that keeps, in each hidden layer, the "
                "neurons with the largest L1 norm of their incoming weights (the rows of the layer's weight, "
                "summed |w|); keep them in their order, and slice the next layer's columns with the same indices")
    return None


def _random_mlp(widths: list[int], seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def check_neuron_pruning(fn: Callable[[nn.Sequential, float], nn.Module]) -> bool:
    """Check ``fn(mlp, sparsity) -> narrow MLP``: every hidden Linear loses ``round(sparsity x its neurons)``, the
    ones of smallest L1 norm of incoming weights (rows), the next Linear the matching columns; ``mlp`` is left
    unchanged. A function that calls :func:`pruneviz.compact` or a :class:`pruneviz.Pruner` is refused."""
    from ..pruner import Pruner
    from ..zoo import load

    cases = [("the zoo's 64-256-128-10 MLP at 75 % (the notebook's 64 -> 64 -> 32 -> 10)",
              lambda: load("digits-mlp", device="cpu"), 0.75),
             ("the zoo's MLP at 50 %", lambda: load("digits-mlp", device="cpu"), 0.5),
             ("a random 64-20-12-10 MLP at 25 %", lambda: _random_mlp([64, 20, 12, 10], 1), 0.25),
             ("a deeper random 64-10-6-4-10 MLP at 50 %", lambda: _random_mlp([64, 10, 6, 4, 10], 2), 0.5),
             ("a random 64-8-10 MLP at 0 % (nothing goes)", lambda: _random_mlp([64, 8, 10], 3), 0.0)]
    check = Check("neuron pruning", forbid=(compact, Pruner, surgery._slice_out, surgery._slice_in))
    for case, build, sparsity in cases:
        with check.case(case):
            mlp = build()
            pruner = Pruner(mlp, "magnitude", "channel").prune(sparsity)
            expected = compact(mlp, pruner.masks)
            pruner.restore()
            before = {k: v.clone() for k, v in mlp.state_dict().items()}
            got = check.run(fn, mlp, sparsity)
            check.expect(all(torch.equal(before[k], v) for k, v in mlp.state_dict().items()),
                         "changed the MLP it was given; build a new one (slice copies of the tensors)")
            problem = _neuron_problem(got, mlp, expected, sparsity)
            if problem:
                check.fail(problem)
    return check.done()
