"""Check for 04's OBD saliency exercise: the exact Hessian diagonal of a loss by Hessian-vector products (double
backward), then OBD's 1/2 h_ii w_i^2.

The student's function ``fn(loss_fn, weight) -> saliency`` gets the loss as a function of one weight tensor, so
the same code serves a quadratic whose Hessian is written down, a small tanh network (where the Gauss-Newton
diagonal is *not* the Hessian's), and the notebook's own setting: the validation loss of the zoo's digits-cnn as a
function of ``conv1``'s 144 weights, where the check's answer is what ``pruneviz.hessian_diagonal(mode="exact")``
gives. Negative h_ii and a non-zero gradient are in the cases, so ``|h|``, the squared gradient, the Hessian's row
sums (one HVP with a vector of ones) and the measured loss change of a removal are each told apart by name.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from .criteria import _compare
from .report import Check

Loss = Callable[[torch.Tensor], torch.Tensor]


def hessian_diagonal(loss_fn: Loss, weight: torch.Tensor) -> torch.Tensor:
    """d^2 L / d w_i^2 for every entry of ``weight``: one Hessian-vector product with e_i per weight (the check's
    own answer, written the way the exercise asks; a loop, not the library, whose code the check refuses)."""
    w = weight.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(w), w, create_graph=True)
    flat_g = g.reshape(-1)
    diagonal = torch.empty(w.numel(), dtype=w.dtype)
    for i in range(w.numel()):
        (row,) = torch.autograd.grad(flat_g[i], w, retain_graph=True)
        diagonal[i] = row.reshape(-1)[i]
    return diagonal.reshape(w.shape)


@contextmanager
def _one_thread() -> Iterator[None]:
    """The check's own passes on one thread (a loop of small double backward passes: on a shared CPU, two
    threads that wait for each other cost more than they give); the count is given back."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _gradient(loss_fn: Loss, weight: torch.Tensor) -> torch.Tensor:
    w = weight.detach().clone().requires_grad_(True)
    return torch.autograd.grad(loss_fn(w), w)[0]


def _row_sums(loss_fn: Loss, weight: torch.Tensor) -> torch.Tensor:
    """H times a vector of ones: each row of H summed, the cross terms too (the usual slip for the diagonal)."""
    w = weight.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(w), w, create_graph=True)
    return torch.autograd.grad(g, w, grad_outputs=torch.ones_like(g))[0]


def _removal_change(loss_fn: Loss, weight: torch.Tensor) -> torch.Tensor:
    """L(w with w_i = 0) - L(w) for each i: what removing one weight really does (gradient term included)."""
    with torch.no_grad():
        base = loss_fn(weight)
        change = torch.empty(weight.numel(), dtype=weight.dtype)
        for i in range(weight.numel()):
            removed = weight.clone().reshape(-1)
            removed[i] = 0.0
            change[i] = loss_fn(removed.reshape(weight.shape)) - base
    return change.reshape(weight.shape)


def _quadratic(h: list[list[float]], b: list[float]) -> Loss:
    """L(w) = 1/2 w^T H w + b^T w: its Hessian is H everywhere, its gradient at w is H w + b."""
    hessian, linear = torch.tensor(h, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    return lambda w: 0.5 * w.reshape(-1) @ hessian @ w.reshape(-1) + linear @ w.reshape(-1)


def _tanh_mlp() -> tuple[Loss, torch.Tensor]:
    """Cross-entropy of a 6-4-3 tanh MLP as a function of its first weight [4, 6] (float64): its logits are not
    linear in a weight, so the Gauss-Newton diagonal is not the Hessian's, and some h_ii are negative."""
    gen = torch.Generator().manual_seed(21)
    x = torch.randn(20, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=gen)
    second = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    weight = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    return lambda w: torch.nn.functional.cross_entropy(torch.tanh(x @ w.T) @ second.T, y), weight


def _tanh_conv() -> tuple[Loss, torch.Tensor]:
    """Cross-entropy of a tiny tanh conv net as a function of its conv weight [3, 2, 3, 3] (float64)."""
    gen = torch.Generator().manual_seed(22)
    x = torch.randn(6, 2, 5, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (6,), generator=gen)
    head = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    weight = 0.5 * torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64)

    def loss(w: torch.Tensor) -> torch.Tensor:
        features = torch.tanh(torch.nn.functional.conv2d(x, w, padding=1)).mean(dim=(2, 3))
        return torch.nn.functional.cross_entropy(features @ head.T, y)
    return loss, weight


def _zoo_conv1() -> tuple[Loss, torch.Tensor, torch.nn.Module]:
    """The notebook's setting: the zoo's digits-cnn in eval mode, its validation cross-entropy on 8 images as a
    function of conv1's weight (the model itself is not changed: the weight is swapped in functionally)."""
    from torch.func import functional_call

    from ..data import as_tensors, digits
    from ..zoo import load

    model = load("digits-cnn", device="cpu").eval()
    x, y = as_tensors(digits().val, limit=8)
    fixed = {k: v.detach() for k, v in (*model.named_parameters(), *model.named_buffers())}

    def loss(w: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(functional_call(model, {**fixed, "conv1.weight": w}, (x,)), y)
    return loss, model.conv1.weight.detach().clone(), model


def _cases() -> list[tuple[str, Loss, torch.Tensor, torch.nn.Module | None]]:
    w2 = torch.tensor([2.0, -3.0], dtype=torch.float64)
    w3 = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    mlp_loss, mlp_weight = _tanh_mlp()
    conv_loss, conv_weight = _tanh_conv()
    zoo_loss, zoo_weight, zoo_model = _zoo_conv1()
    return [
        ("a quadratic 1/2 w^T H w, H = [[0.5, 0.3], [0.3, 2]], at w = [2, -3] (saliencies 1 and 9)",
         _quadratic([[0.5, 0.3], [0.3, 2.0]], [0.0, 0.0]), w2, None),
        ("a quadratic with negative curvature, diag(H) = [-0.5, 2, -4], a linear term, at w = [1, 2, -1]",
         _quadratic([[-0.5, 0.4, 0.1], [0.4, 2.0, -0.3], [0.1, -0.3, -4.0]], [0.2, -0.1, 0.3]), w3, None),
        ("the cross-entropy of a small tanh MLP, its first weight [4, 6]", mlp_loss, mlp_weight, None),
        ("the cross-entropy of a small tanh conv net, its conv weight [3, 2, 3, 3]", conv_loss, conv_weight, None),
        ("the zoo's digits-cnn, validation loss on 8 images, conv1's weight [16, 1, 3, 3]", zoo_loss, zoo_weight,
         zoo_model),
    ]


def check_obd_saliency(student_fn: Callable[[Loss, torch.Tensor], torch.Tensor]) -> bool:
    """``student_fn(loss_fn, weight) -> saliency`` (``weight``'s shape): OBD's 1/2 h_ii w_i^2 with h_ii the exact
    diagonal of the Hessian of ``loss_fn`` at ``weight``; ``weight`` and any model behind the loss left as they
    were. The library's OBD (``pruneviz.hessian_diagonal``, ``obd_saliency``...) is refused by the policy."""
    check = Check("OBD saliency")
    for case, loss_fn, weight, model in _cases():
        with check.case(case):
            state = {k: v.clone() for k, v in model.state_dict().items()} if model is not None else {}
            got = check.run(student_fn, loss_fn, weight, unchanged="changed the weight in place; work on "
                            "weight.detach().clone().requires_grad_()")
            if model is not None:
                check.expect(all(torch.equal(state[k], v) for k, v in model.state_dict().items()),
                             "changed the model behind the loss")
                check.expect(all(p.grad is None for p in model.parameters()), "left gradients in a model's .grad: "
                             "use torch.autograd.grad, not backward()")
            check.expect(isinstance(got, torch.Tensor), f"returned a {type(got).__name__}, expected a tensor of "
                         "saliencies (the weight's shape)")
            got = got.detach()
            with _one_thread():
                h = hessian_diagonal(loss_fn, weight)
            w = weight.detach()
            expected = 0.5 * h * w.square()
            scale = float(expected.abs().max())
            atol = (1e-5 if weight.dtype == torch.float32 else 1e-10) * max(scale, 1e-12)
            if (got.shape == expected.shape
                    and torch.isclose(got.to(expected.dtype), expected, rtol=1e-4, atol=atol).all()):
                continue
            if got.shape == expected.shape and expected.any() and torch.allclose(
                    got.to(expected.dtype), 2 * expected, rtol=1e-4, atol=atol):
                check.fail("twice the expected saliency: missing the 1/2 of the Taylor expansion")
            if got.shape == expected.shape and torch.allclose(got.to(expected.dtype), expected, rtol=1e-2,
                                                              atol=1e-2 * scale):
                check.fail("within 1 % of the exact saliencies, but not equal to them to float rounding: an "
                           "approximation (finite differences, a random-probe estimate)? Differentiate the "
                           "gradient with autograd: one Hessian-vector product per weight")
            with _one_thread():  # what the usual slips return: computed only for an answer that is wrong
                g, row_sums, removal = (_gradient(loss_fn, weight), _row_sums(loss_fn, weight),
                                        _removal_change(loss_fn, weight))
            _compare(check, got, expected, "one saliency per weight", atol=atol, fmt=".4e", mistakes=(
                (0.5 * h.abs() * w.square(), "used |h_ii|: OBD's saliency 1/2 h_ii w_i^2 keeps the sign of the "
                 "curvature (a negative h_ii says removing the weight lowers the loss, to second order)"),
                (h, "returned the Hessian diagonal h_ii itself; the saliency is 1/2 h_ii w_i^2"),
                (0.5 * g.square() * w.square(), "used the squared gradient g_i^2 for h_ii (a one-batch Fisher, "
                 "not the curvature): differentiate the gradient once more, d(dL/dw_i)/dw_i"),
                (0.5 * row_sums * w.square(), "used H times a vector of ones: that sums each row of H, the cross "
                 "terms h_ij too; the diagonal needs the i-th entry of H e_i, one Hessian-vector product per "
                 "weight"),
                (removal, "measured the loss change of removing each weight, L(w with w_i = 0) - L(w): that "
                 "includes the gradient term -g_i w_i and every higher order; OBD's saliency is the "
                 "second-order diagonal term alone, 1/2 h_ii w_i^2"),
                (0.5 * h * w.abs(), "used |w_i| where the formula squares it: 1/2 h_ii w_i^2")))
    return check.done()
