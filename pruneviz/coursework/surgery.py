"""Checks for the surgery exercises (notebooks 09 and 10): removing channels for real, and counting what is left.

Each check builds small layers with random weights, runs the student's function, and compares with what
:func:`pruneviz.compact` and :func:`pruneviz.count_parameters` give, saying in words what differs.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..metrics import count_parameters
from .. import surgery
from ..surgery import compact
from .report import Check


def _trio(cin: int, mid: int, cout: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
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
    if bn.weight.shape[0] != n or bn.running_mean.shape[0] != n:
        wrong.append(f"the BatchNorm must keep {n} channels: its weight, bias, running_mean and running_var, "
                     "all sliced with the same mask")
    if nxt.weight.shape[1] != n:
        wrong.append(f"next_conv reads {nxt.weight.shape[1]} input channels, expected {n}: slice its weight "
                     "along dim 1")
    if wrong:
        return "; ".join(wrong)
    expected = compact(net, {"0": keep})
    x = torch.randn(2, net[0].in_channels, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = nxt.eval()(torch.relu(bn.eval()(conv(x))))
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
    cases = [("8 channels, keep 0, 2, 5", 8, torch.tensor([1, 0, 1, 0, 0, 1, 0, 0], dtype=torch.bool), 1),
             ("16 channels, keep one", 16, torch.arange(16) == 9, 2),
             ("12 channels, keep all", 12, torch.ones(12, dtype=torch.bool), 3)]
    check = Check("channel slicing", forbid=_SURGERY)
    for case, mid, keep, seed in cases:
        with check.case(case):
            net = _trio(3, mid, 4, seed)
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
