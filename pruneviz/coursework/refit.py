"""Check for 06's least-squares exercise: He et al.'s second step, the next layer refitted on the input channels
that stay, for a Linear and a Conv2d layer.

The student's function ``fn(layer, x, keep) -> weight`` gets the next layer (dense), its input on calibration data
and the bool mask of the input channels kept; it returns the layer's new weight (its shape, zero in the pruned
input channels) that makes the layer reproduce its own dense output on ``x`` best in least squares, the bias left
as it is (as ``pruneviz.reconstruct`` does). Cases with and without a bias, a conv with padding and one with
stride, kept channels that are rank-deficient (a channel zero on every sample, two identical channels: the
minimum-norm answer is the one asked for), and the notebook's own: digits-cnn's conv4 refitted on half of conv3's
channels (conv3 has a dead channel on the validation images). The check's answer (:func:`reference_weight`) is
an SVD least squares in float64.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .report import Check


def _rows(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs [R, C, m], targets [R, n_out]) in float64: one row per sample (Linear) or per sample and output
    position (Conv2d, its input patches as F.unfold lays them out), the target the dense output minus the bias."""
    with torch.no_grad():
        y = layer(x).to(torch.float64)
        if layer.bias is not None:
            y = y - layer.bias.to(torch.float64).reshape(1, -1, *([1] * (y.dim() - 2)))
        x = x.to(torch.float64)
        if isinstance(layer, nn.Conv2d):
            patches = F.unfold(x, layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
                               stride=layer.stride)  # [N, C * kh * kw, L]
            inputs = patches.transpose(1, 2).reshape(-1, x.shape[1], layer.kernel_size[0] * layer.kernel_size[1])
            return inputs, y.flatten(2).transpose(1, 2).reshape(-1, y.shape[1])
        return x.reshape(len(x), -1, 1), y


def _fit(inputs: torch.Tensor, y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The minimum-norm least-squares weight [n_out, C, m] on the kept channels (SVD: ``driver="gelsd"``)."""
    out, m = y.shape[1], inputs.shape[2]
    solution = torch.linalg.lstsq(inputs[:, keep].reshape(len(inputs), -1), y, driver="gelsd").solution
    weight = torch.zeros(out, inputs.shape[1], m, dtype=torch.float64)
    weight[:, keep] = solution.T.reshape(out, -1, m)
    return weight


def reference_weight(layer: nn.Module, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The minimum-norm least-squares weight on the kept input channels, in float64, the layer's weight shape."""
    return _fit(*_rows(layer, x), keep).reshape(layer.weight.shape)


def relative_error(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> float:
    """||Y - Y'||^2 / ||Y||^2 of the layer's output (bias aside) with ``weight`` in place of its own."""
    inputs, y = _rows(layer, x)
    fitted = inputs.reshape(len(inputs), -1) @ weight.to(torch.float64).reshape(y.shape[1], -1).T
    return float((y - fitted).square().sum() / y.square().sum())


def _layer(kind: str, seed: int, *shape: int, bias: bool, **conv: int) -> nn.Module:
    torch.manual_seed(seed)
    layer = nn.Linear(*shape, bias=bias) if kind == "linear" else nn.Conv2d(*shape, bias=bias, **conv)
    return layer.double()


def _inputs(seed: int, *shape: int) -> torch.Tensor:
    # post-ReLU inputs, as a layer that reads a pruned layer's channels sees them
    return torch.relu(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))


def _rank_deficient() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A Linear whose kept inputs include a channel zero on every sample and two identical channels."""
    x = _inputs(33, 40, 7)
    x[:, 2] = 0.0  # dead on the calibration data
    x[:, 5] = x[:, 4]  # two channels that always agree
    keep = torch.tensor([True, False, True, True, True, True, False])
    return _layer("linear", 33, 7, 3, bias=True), x, keep


def _zoo_conv4() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """digits-cnn's conv4 and its input (conv3's channels after the ReLU) on 64 validation images; every other
    channel kept, and conv3's dead channels (zero on every image) kept too."""
    from ..data import as_tensors, digits
    from ..zoo import load

    model = load("digits-cnn", device="cpu").eval()
    x, _ = as_tensors(digits().val, limit=64)
    seen = {}
    handle = model.relu3.register_forward_hook(lambda m, i, out: seen.setdefault("x", out.detach().clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    inputs = seen["x"]
    dead = inputs.eq(0).all(dim=(0, 2, 3))
    keep = (torch.arange(inputs.shape[1]) % 2 == 0) | dead
    return model.conv4, inputs, keep


def _cases() -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor, bool]]:
    """(case, layer, x, keep, float64 case: weights compared, not only the fit)."""
    rank_layer, rank_x, rank_keep = _rank_deficient()
    conv4, conv4_x, conv4_keep = _zoo_conv4()
    return [
        ("a Linear 6 -> 4 with a bias, input channels 1 and 4 pruned, 50 samples", _layer("linear", 31, 6, 4, bias=True),
         _inputs(31, 50, 6), torch.tensor([True, False, True, True, False, True]), True),
        ("a Linear 8 -> 3 without a bias, 3 of 8 channels pruned, 30 samples", _layer("linear", 32, 8, 3, bias=False),
         _inputs(32, 30, 8), torch.tensor([False, True, True, False, True, True, False, True]), True),
        ("a Linear 7 -> 3 whose kept channels are rank-deficient (channel 2 is zero on every sample, channels 4 and 5 "
         "are identical)", rank_layer, rank_x, rank_keep, True),
        ("a Conv2d 3 -> 4, 3x3, padding 1, with a bias, channel 1 pruned, 6 images of 5x5",
         _layer("conv", 34, 3, 4, 3, bias=True, padding=1), _inputs(34, 6, 3, 5, 5),
         torch.tensor([True, False, True]), True),
        ("a Conv2d 4 -> 2, 3x3, stride 2, no padding, no bias, channels 0 and 2 pruned, 5 images of 7x7",
         _layer("conv", 35, 4, 2, 3, bias=False, stride=2), _inputs(35, 5, 4, 7, 7),
         torch.tensor([False, True, False, True]), True),
        (f"the zoo's digits-cnn conv4 on 64 validation images, {int(conv4_keep.sum())} of conv3's 64 channels kept "
         "(a dead one among them)", conv4, conv4_x, conv4_keep, False),
    ]


def _problem(got: torch.Tensor, layer: nn.Module, x: torch.Tensor, keep: torch.Tensor, exact: bool) -> str | None:
    """What is wrong with ``got`` as the refitted weight (None: nothing)."""
    if tuple(got.shape) != tuple(layer.weight.shape):
        return (f"returned shape {tuple(got.shape)}, expected the layer's weight shape {tuple(layer.weight.shape)} "
                "(zero in the pruned input channels)")
    if got.dtype != layer.weight.dtype:
        return f"returned dtype {got.dtype}, expected the layer's {layer.weight.dtype}"
    if not bool(torch.isfinite(got).all()):
        return ("the weight has inf or NaN entries: the kept channels' inputs are rank-deficient here, which the "
                "normal equations (x^T x)^-1 x^T y cannot solve; use torch.linalg.lstsq(..., driver='gelsd') or "
                "torch.linalg.pinv")
    if bool(got.detach().transpose(0, 1)[~keep].any()):
        return "the pruned input channels have non-zero weights: the layer no longer reads them, give them 0"
    got = got.detach()
    old = layer.weight.detach()
    if torch.equal(got, old * keep.reshape(1, -1, *([1] * (old.dim() - 2))).to(old.dtype)):
        return ("kept the old weights of the kept channels: refit them by least squares on x, that is what repairs "
                "the layer's output")
    inputs, y = _rows(layer, x)
    best = _fit(inputs, y, keep).reshape(old.shape)
    mine, least = relative_error(layer, x, got), relative_error(layer, x, best)
    if layer.bias is not None:  # the usual slip: the bias left in the target
        with_bias = _fit(inputs, y + layer.bias.detach().to(torch.float64), keep).reshape(old.shape)
        if torch.allclose(got.to(torch.float64), with_bias, rtol=1e-4, atol=1e-6):
            return ("fitted the output with its bias in it: the bias stays as it is, so fit the weight to the output "
                    "minus the bias (else the kept channels are spent on reproducing a constant)")
    if mine > least * (1 + 1e-3) + 1e-9:
        kept = inputs[:, keep].reshape(len(inputs), -1)
        if int(torch.linalg.matrix_rank(kept)) < kept.shape[1]:
            hint = (" The kept channels' inputs are rank-deficient here: a solver that assumes full rank, or the "
                    "default driver of torch.linalg.lstsq on the CPU, can misjudge the rank; pass driver='gelsd' "
                    "(SVD) or use torch.linalg.pinv")
        elif isinstance(layer, nn.Conv2d):
            hint = (" A conv: its input patches are F.unfold(x, kernel_size, dilation, padding, stride), channel by "
                    "channel, as weight.reshape(out, -1) reads them")
        else:
            hint = ""
        return (f"reconstructs the layer's output with a relative error of {mine:.4g}, where least squares on the kept "
                f"channels reaches {least:.4g}.{hint}")
    if exact and not torch.allclose(got.to(torch.float64), best, rtol=1e-5, atol=1e-8 * float(best.abs().max())):
        return ("fits the output as well as least squares can, but is not the minimum-norm weight: where the kept "
                "channels' inputs do not determine it (a channel zero on every sample, identical channels), the "
                "answer asked for has the smallest norm: 0 for the dead channel, equal shares for identical ones "
                "(torch.linalg.lstsq(..., driver='gelsd') or torch.linalg.pinv give it)")
    if not exact:
        dead = x.transpose(0, 1).reshape(x.shape[1], -1).eq(0).all(dim=1) & keep
        if bool(dead.any()) and bool(got.transpose(0, 1)[dead].abs().max() > 1e-3 * got.abs().max()):
            return ("a dead kept channel (zero on every calibration image) got a large weight: it is undetermined by "
                    "the data, and the minimum-norm answer (driver='gelsd', or pinv) gives it 0, so it does nothing "
                    "on images where it comes back to life")
    return None


def check_least_squares(student_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """``student_fn(layer, x, keep) -> weight``: the next layer's weight refitted by least squares on its kept
    input channels (``layer.weight``'s shape, zero elsewhere), the bias unchanged, the minimum-norm solution where
    the data leaves it open; ``layer`` and ``x`` left as they were. The library's ``reconstruct`` and
    ``least_squares`` are refused (the policy)."""
    check = Check("least-squares reconstruction")
    for case, layer, x, keep, exact in _cases():
        with check.case(case):
            state = {k: v.clone() for k, v in layer.state_dict().items()}
            x_before = x.clone()
            got = check.run(student_fn, layer, x, keep.clone())
            check.expect(all(torch.equal(state[k], v) for k, v in layer.state_dict().items()),
                         "changed the layer it was given: return the new weight, leave the layer as it is")
            check.expect(torch.equal(x, x_before), "changed x in place")
            check.expect(isinstance(got, torch.Tensor), f"returned a {type(got).__name__}, expected the new weight "
                         "(a tensor of the layer's weight shape)")
            problem = _problem(got, layer, x, keep, exact)
            if problem:
                check.fail(problem)
    return check.done()
