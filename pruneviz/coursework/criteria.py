"""Checks for the data-driven criteria exercises: APoZ of a channel (notebook 05), OBD saliency (notebook 04).

Each check runs the student's function on the lecture's example and on random cases, compares it with the
formula, says in words what is wrong (shape, a channel's value, a mutated input), and refuses a function that
calls the library's own implementation.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..criteria.apoz import APoZ, apoz
from ..criteria.obd import OBD, obd_saliency
from ..criteria.regression import least_squares, reconstruct
from ..criteria.scaling import slimming_loss, slimming_penalty
from .report import Check

_APOZ = (apoz, APoZ)  # the library's APoZ: a student's function must not call it


def _lecture_activations() -> torch.Tensor:
    """The lecture's example: 2 images, 3 channels of 4x4, with 11, 12 and 14 zeros of 32 per channel."""
    gen = torch.Generator().manual_seed(0)
    acts = torch.rand(3, 32, generator=gen) + 0.5
    for channel, zeros in enumerate((11, 12, 14)):
        acts[channel, torch.randperm(32, generator=gen)[:zeros]] = 0.0
    return acts.reshape(3, 2, 4, 4).transpose(0, 1).contiguous()


def _compare(check: Check, got: object, expected: torch.Tensor, what: str) -> None:
    """End the case with a problem unless ``got`` is a tensor equal to ``expected`` (to float tolerance)."""
    check.expect(got is not None, f"returned None; return the {what} (a tensor)")
    check.expect(isinstance(got, torch.Tensor), f"returned a {type(got).__name__}, expected a torch.Tensor")
    check.expect(got.shape == expected.shape,
                 f"returned shape {tuple(got.shape)}, expected {tuple(expected.shape)} ({what})")
    close = torch.isclose(got.to(expected.dtype), expected, rtol=1e-5, atol=1e-7)
    if not close.all():
        wrong = tuple((~close).nonzero()[0].tolist())
        check.fail(f"at index {list(wrong)} got {got[wrong].item():.4f}, expected {expected[wrong].item():.4f}")


def check_apoz(student_fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """``student_fn(activations [N, C, H, W]) -> per-channel APoZ [C]``: the fraction of zeros of each channel
    over the batch and every spatial position."""
    lecture = _lecture_activations()
    gen = torch.Generator().manual_seed(1)
    dead = torch.relu(torch.randn(4, 5, 3, 3, generator=gen))
    dead[:, 2] = 0.0
    cases = [("the lecture's example (2 images, 3 channels, 4x4)", lecture,
              torch.tensor([11 / 32, 12 / 32, 14 / 32])),
             ("a random ReLU output [8, 6, 5, 5]", torch.relu(torch.randn(8, 6, 5, 5, generator=gen)), None),
             ("a batch with a dead channel (channel 2 always zero)", dead, None),
             ("non-square maps [3, 4, 2, 7]", torch.relu(torch.randn(3, 4, 2, 7, generator=gen)), None)]
    check = Check("APoZ of a channel", forbid=_APOZ)
    for case, acts, expected in cases:
        with check.case(case):
            if expected is None:
                expected = (acts == 0).float().mean(dim=(0, 2, 3))
            before = acts.clone()
            got = check.run(student_fn, acts)
            check.expect(torch.equal(before, acts), "changed the activations in place")
            _compare(check, got, expected, "one APoZ per channel")
            if acts is lecture:
                order = torch.argsort(got, descending=True, stable=True)
                check.expect(order[0] == 2, "channel 2 has the highest APoZ and should be pruned first")
    return check.done()


def check_obd_saliency(student_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """``student_fn(weight, hessian_diag) -> saliency``, OBD's 1/2 h_ii w_i^2, elementwise, same shape."""
    gen = torch.Generator().manual_seed(2)
    cases = [("two weights w = [2, -3], h = [0.5, 2]", torch.tensor([2.0, -3.0]), torch.tensor([0.5, 2.0])),
             ("a linear weight [4, 6]", torch.randn(4, 6, generator=gen), torch.rand(4, 6, generator=gen)),
             ("a conv weight [3, 2, 3, 3]", torch.randn(3, 2, 3, 3, generator=gen),
              torch.rand(3, 2, 3, 3, generator=gen)),
             ("a zero curvature (h = 0 everywhere)", torch.randn(5, generator=gen), torch.zeros(5))]
    check = Check("OBD saliency", forbid=(obd_saliency, OBD))
    for case, weight, hdiag in cases:
        with check.case(case):
            w0, h0 = weight.clone(), hdiag.clone()
            got = check.run(student_fn, weight, hdiag)
            check.expect(torch.equal(w0, weight) and torch.equal(h0, hdiag), "changed an input in place")
            expected = 0.5 * hdiag * weight.square()
            if (isinstance(got, torch.Tensor) and got.shape == expected.shape and expected.any()
                    and torch.allclose(got.to(expected.dtype), 2 * expected)):
                check.fail("twice the expected saliency: missing the 1/2 of the Taylor expansion")
            _compare(check, got, expected, "one saliency per weight")
    return check.done()


def check_slimming_penalty(student_fn: Callable[[torch.nn.Module, float], torch.Tensor]) -> bool:
    """``student_fn(model, strength) -> strength * sum |gamma|`` over every BatchNorm, differentiable."""
    from ..zoo.models import digits_cnn

    torch.manual_seed(0)
    model = digits_cnn()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(-1.0, 1.0)  # negative gammas too: |gamma|, not gamma
    check = Check("network slimming penalty", forbid=(slimming_penalty, slimming_loss))
    for strength in (1e-3, 0.5):
        with check.case(f"digits-cnn with random gammas, strength {strength}"):
            got = check.run(student_fn, model, strength)
            expected = slimming_penalty(model, strength).detach()
            _compare(check, got.detach().reshape(()) if isinstance(got, torch.Tensor) else got, expected,
                     "one number")
            check.expect(got.requires_grad, "the result has no gradient; build it from the gammas (no .item(), "
                         "no .detach()) so backward() reaches them")
    return check.done()


def check_least_squares(student_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """``student_fn(x [N, d], y [N, n_out]) -> W [n_out, d]`` minimising ||y - x W^T||^2."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(50, 6, generator=gen, dtype=torch.float64)
    exact = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    noisy = x @ exact.T + 0.1 * torch.randn(50, 4, generator=gen, dtype=torch.float64)
    check = Check("least-squares reconstruction", forbid=(least_squares, reconstruct))
    for case, y in (("outputs that a W fits exactly", x @ exact.T), ("noisy outputs", noisy)):
        with check.case(case):
            got = check.run(student_fn, x.clone(), y.clone())
            best = torch.linalg.lstsq(x, y).solution.T
            _compare(check, got, best, "a weight [n_out, d]: note the transpose")
    return check.done()
