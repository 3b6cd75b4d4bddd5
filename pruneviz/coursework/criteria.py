"""Checks for the data-driven criteria exercises: APoZ of a channel (notebook 05), OBD saliency (notebook 04).

Each check runs the student's function on the lecture's example and on random cases, compares it with the
formula, and says in words what is wrong (shape, a channel's value, a mutated input).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .report import call, report


def _lecture_activations() -> torch.Tensor:
    """The lecture's example: 2 images, 3 channels of 4x4, with 11, 12 and 14 zeros of 32 per channel."""
    gen = torch.Generator().manual_seed(0)
    acts = torch.rand(3, 32, generator=gen) + 0.5
    for channel, zeros in enumerate((11, 12, 14)):
        acts[channel, torch.randperm(32, generator=gen)[:zeros]] = 0.0
    return acts.reshape(3, 2, 4, 4).transpose(0, 1).contiguous()


def _compare(got: object, expected: torch.Tensor, case: str, what: str, problems: list[str]) -> None:
    if got is None:
        problems.append(f"{case}: returned None; return the {what} (a tensor)")
        return
    if not isinstance(got, torch.Tensor):
        problems.append(f"{case}: returned a {type(got).__name__}, expected a torch.Tensor")
        return
    if got.shape != expected.shape:
        problems.append(f"{case}: returned shape {tuple(got.shape)}, expected {tuple(expected.shape)} "
                        f"({what})")
        return
    if not torch.allclose(got.to(expected.dtype), expected, rtol=1e-5, atol=1e-7):
        wrong = (~torch.isclose(got.to(expected.dtype), expected, rtol=1e-5, atol=1e-7)).nonzero()[0].tolist()
        problems.append(f"{case}: at index {wrong} got {got[tuple(wrong)].item():.4f}, "
                        f"expected {expected[tuple(wrong)].item():.4f}")


def check_apoz(student_fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """``student_fn(activations [N, C, H, W]) -> per-channel APoZ [C]``: the fraction of zeros of each channel
    over the batch and every spatial position."""
    problems: list[str] = []
    lecture = _lecture_activations()
    gen = torch.Generator().manual_seed(1)
    dead = torch.relu(torch.randn(4, 5, 3, 3, generator=gen))
    dead[:, 2] = 0.0
    cases = [("the lecture's example (2 images, 3 channels, 4x4)", lecture,
              torch.tensor([11 / 32, 12 / 32, 14 / 32])),
             ("a random ReLU output [8, 6, 5, 5]", torch.relu(torch.randn(8, 6, 5, 5, generator=gen)), None),
             ("a batch with a dead channel (channel 2 always zero)", dead, None),
             ("non-square maps [3, 4, 2, 7]", torch.relu(torch.randn(3, 4, 2, 7, generator=gen)), None)]
    for case, acts, expected in cases:
        if expected is None:
            expected = (acts == 0).float().mean(dim=(0, 2, 3))
        before = acts.clone()
        got = call(student_fn, acts, problems=problems, case=case)
        if got is None and problems and problems[-1].startswith(case):
            continue
        _compare(got, expected, case, "one APoZ per channel", problems)
        if not torch.equal(before, acts):
            problems.append(f"{case}: changed the activations in place")
    if not problems:
        order = torch.argsort(student_fn(lecture), descending=True, stable=True)
        if order[0] != 2:
            problems.append("the lecture's example: channel 2 has the highest APoZ and should be pruned first")
    return report("APoZ of a channel", problems)


def check_obd_saliency(student_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """``student_fn(weight, hessian_diag) -> saliency``, OBD's 1/2 h_ii w_i^2, elementwise, same shape."""
    problems: list[str] = []
    gen = torch.Generator().manual_seed(2)
    cases = [("two weights w = [2, -3], h = [0.5, 2]", torch.tensor([2.0, -3.0]), torch.tensor([0.5, 2.0])),
             ("a linear weight [4, 6]", torch.randn(4, 6, generator=gen), torch.rand(4, 6, generator=gen)),
             ("a conv weight [3, 2, 3, 3]", torch.randn(3, 2, 3, 3, generator=gen),
              torch.rand(3, 2, 3, 3, generator=gen)),
             ("a zero curvature (h = 0 everywhere)", torch.randn(5, generator=gen), torch.zeros(5))]
    for case, weight, hdiag in cases:
        w0, h0 = weight.clone(), hdiag.clone()
        got = call(student_fn, weight, hdiag, problems=problems, case=case)
        if got is None and problems and problems[-1].startswith(case):
            continue
        expected = 0.5 * hdiag * weight.square()
        if (isinstance(got, torch.Tensor) and got.shape == expected.shape and expected.any()
                and torch.allclose(got.to(expected.dtype), 2 * expected)):
            problems.append(f"{case}: twice the expected saliency: missing the 1/2 of the Taylor expansion")
        else:
            _compare(got, expected, case, "one saliency per weight", problems)
        if not (torch.equal(w0, weight) and torch.equal(h0, hdiag)):
            problems.append(f"{case}: changed an input in place")
    return report("OBD saliency", problems)


def check_slimming_penalty(student_fn: Callable[[torch.nn.Module, float], torch.Tensor]) -> bool:
    """``student_fn(model, strength) -> strength * sum |gamma|`` over every BatchNorm, differentiable."""
    from ..criteria.scaling import slimming_penalty
    from ..zoo.models import digits_cnn

    problems: list[str] = []
    torch.manual_seed(0)
    model = digits_cnn()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(-1.0, 1.0)  # negative gammas too: |gamma|, not gamma
    for strength in (1e-3, 0.5):
        case = f"digits-cnn with random gammas, strength {strength}"
        got = call(student_fn, model, strength, problems=problems, case=case)
        if got is None and problems and problems[-1].startswith(case):
            continue
        expected = slimming_penalty(model, strength).detach()
        _compare(got if not isinstance(got, torch.Tensor) else got.detach().reshape(()), expected, case,
                 "one number", problems)
        if isinstance(got, torch.Tensor) and not got.requires_grad:
            problems.append(f"{case}: the result has no gradient; build it from the gammas (no .item(), no "
                            ".detach()) so backward() reaches them")
    return report("network slimming penalty", problems)


def check_least_squares(student_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """``student_fn(x [N, d], y [N, n_out]) -> W [n_out, d]`` minimising ||y - x W^T||^2."""
    problems: list[str] = []
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(50, 6, generator=gen, dtype=torch.float64)
    exact = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    noisy = x @ exact.T + 0.1 * torch.randn(50, 4, generator=gen, dtype=torch.float64)
    for case, y in (("outputs that a W fits exactly", x @ exact.T), ("noisy outputs", noisy)):
        got = call(student_fn, x.clone(), y.clone(), problems=problems, case=case)
        if got is None and problems and problems[-1].startswith(case):
            continue
        best = torch.linalg.lstsq(x, y).solution.T
        _compare(got, best, case, "a weight [n_out, d]: note the transpose", problems)
    return report("least-squares reconstruction", problems)
