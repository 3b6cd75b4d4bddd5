"""Notebook 04's exercise checks: the solutions pass; wrong answers, the shortcuts and the library's own code are
refused in words (pruneviz.coursework.obd, pruneviz.coursework.criteria)."""
import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.criteria import check_empirical_fisher
from pruneviz.coursework.obd import check_obd_saliency, hessian_diagonal
from tests.notebook_source import notebook_function


def fisher(model, layer, x, y):
    weight = model.get_submodule(layer).weight
    was_training = model.training
    model.eval()
    total = torch.zeros_like(weight)
    try:
        for xn, yn in zip(x, y):
            loss = torch.nn.functional.cross_entropy(model(xn.unsqueeze(0)), yn.unsqueeze(0))
            total += torch.autograd.grad(loss, weight)[0].square()
    finally:
        model.train(was_training)
    return total / len(x)


def batch_gradient_squared(model, layer, x, y):
    was_training = model.training
    model.eval()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    g = torch.autograd.grad(loss, model.get_submodule(layer).weight)[0]
    model.train(was_training)
    return g.square()


def summed(model, layer, x, y):
    return fisher(model, layer, x, y) * len(x)


def training_mode(model, layer, x, y):  # BatchNorm left in training mode: batch statistics of one sample
    weight = model.get_submodule(layer).weight
    total = torch.zeros_like(weight)
    for xn, yn in zip(x, y):
        loss = torch.nn.functional.cross_entropy(model(xn.unsqueeze(0).expand(2, *xn.shape)), yn.repeat(2))
        total += torch.autograd.grad(loss, weight)[0].square()
    return total / len(x)


def with_backward(model, layer, x, y):  # fills .grad
    model.eval()
    weight = model.get_submodule(layer).weight
    total = torch.zeros_like(weight)
    for xn, yn in zip(x, y):
        weight.grad = None
        torch.nn.functional.cross_entropy(model(xn.unsqueeze(0)), yn.unsqueeze(0)).backward()
        total += weight.grad.square()
    return total / len(x)


def library(model, layer, x, y):
    return pruneviz.hessian_diagonal(model, (x, y), [layer])[layer]


def test_the_solutions_pass(capsys):
    assert check_obd_saliency(notebook_function("04_second_order.ipynb", "obd_saliency"))
    assert check_empirical_fisher(fisher)
    out = capsys.readouterr().out
    assert "✓ OBD saliency" in out and "✓ empirical Fisher diagonal" in out


@pytest.mark.parametrize("wrong,words", [
    (batch_gradient_squared, "square of the batch's mean gradient"),
    (summed, "times too large"),
    (with_backward, "left gradients in .grad"),
    (training_mode, "changed the model's weights or BatchNorm statistics"),
    (library, "the library's own answer"),
])
def test_wrong_fishers_are_told_what_is_wrong(wrong, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace(".", r"\.")):
        check_empirical_fisher(wrong)


# -- OBD saliency: every shortcut fails, by name ---------------------------------------------------------

def _w(weight):
    return weight.detach().clone().requires_grad_(True)


def exact_diagonal(loss_fn, weight):
    """h_ii by one HVP per weight, written here: the checker's own hessian_diagonal is refused as an answer."""
    w = _w(weight)
    (g,) = torch.autograd.grad(loss_fn(w), w, create_graph=True)
    return torch.stack([torch.autograd.grad(g.reshape(-1)[i], w, retain_graph=True)[0].reshape(-1)[i]
                        for i in range(w.numel())]).reshape(w.shape)


def gradient(loss_fn, weight):
    w = _w(weight)
    return torch.autograd.grad(loss_fn(w), w)[0]


def saliency_with(curvature):
    return lambda loss_fn, weight: 0.5 * curvature(loss_fn, weight) * weight.detach().square()


def times_ones(loss_fn, weight):
    """One HVP with a vector of ones: the row sums of H, not its diagonal."""
    w = _w(weight)
    (g,) = torch.autograd.grad(loss_fn(w), w, create_graph=True)
    return torch.autograd.grad(g, w, grad_outputs=torch.ones_like(g))[0]


def measured_change(loss_fn, weight):
    """L(w with w_i = 0) - L(w): the real cost of a removal, gradient term included."""
    with torch.no_grad():
        base, flat = loss_fn(weight), weight.reshape(-1)
        return torch.stack([loss_fn(torch.cat([flat[:i], flat.new_zeros(1), flat[i + 1:]]).reshape(weight.shape))
                            - base for i in range(flat.numel())]).reshape(weight.shape)


def central_differences(loss_fn, weight, eps=1e-3):
    """h_ii from finite differences of the gradient: close, not exact, in float32."""
    flat = torch.empty(weight.numel(), dtype=weight.dtype)
    for i in range(weight.numel()):
        step = torch.zeros(weight.numel(), dtype=weight.dtype)
        step[i] = eps
        step = step.reshape(weight.shape)
        flat[i] = (gradient(loss_fn, weight + step) - gradient(loss_fn, weight - step)).reshape(-1)[i] / (2 * eps)
    return flat.reshape(weight.shape)


def library_formula(loss_fn, weight):
    return pruneviz.criteria.obd_saliency(weight, exact_diagonal(loss_fn, weight))


@pytest.mark.parametrize("wrong, words", [
    (saliency_with(lambda l, w: exact_diagonal(l, w).abs()), "used |h_ii|"),
    (saliency_with(lambda l, w: gradient(l, w).square()), "used the squared gradient"),
    (saliency_with(times_ones), "used H times a vector of ones"),
    (measured_change, "measured the loss change of removing each weight"),
    (lambda l, w: exact_diagonal(l, w), "returned the Hessian diagonal h_ii itself"),
    (lambda l, w: exact_diagonal(l, w) * w.square(), "missing the 1/2"),
    (lambda l, w: 0.5 * exact_diagonal(l, w) * w.abs(), "used |w_i|"),
    (saliency_with(central_differences), "within 1 % of the exact saliencies|at index"),  # float32: not exact
    (library_formula, "the library's own answer"),
    (lambda l, w: 0.5 * hessian_diagonal(l, w) * w.square(), "calls pruneviz.coursework.obd.hessian_diagonal"),
    (lambda w, h: 0.5 * h * w.square(), "raised"),  # the old one-line exercise, given a function for h
])
def test_obd_saliency_refuses_the_shortcuts_by_name(wrong, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace("|h_ii|", r"\|h_ii\|")
                       .replace("|w_i|", r"\|w_i\|")):
        check_obd_saliency(wrong)


def test_the_checks_hessian_is_the_notebooks_exact_mode():
    """The prompt says the check's saliencies on conv1 are those of mode="exact": its own HVP loop on the zoo case
    equals pruneviz.hessian_diagonal(mode="exact") on the same 8 images, and the quadratics give their H."""
    from pruneviz.coursework.obd import _cases

    cases = _cases()
    _, quadratic, w, _ = cases[0]
    assert torch.allclose(hessian_diagonal(quadratic, w), torch.tensor([0.5, 2.0], dtype=torch.float64))
    assert torch.allclose(0.5 * hessian_diagonal(quadratic, w) * w.square(), torch.tensor([1.0, 9.0],
                                                                                         dtype=torch.float64))
    assert (hessian_diagonal(*cases[1][1:3]) < 0).sum() == 2  # negative curvature in the cases
    _, loss_fn, weight, model = cases[-1]
    x, y = pruneviz.data.as_tensors(pruneviz.data.digits().val, limit=8)
    exact = pruneviz.hessian_diagonal(model, (x, y), ["conv1"], mode="exact")["conv1"]
    mine = hessian_diagonal(loss_fn, weight)
    assert torch.allclose(mine, exact, rtol=1e-4, atol=1e-6 * float(exact.abs().max()))


def test_the_library_saliency_is_refused():
    with pytest.raises(CheckFailed, match="the library's own answer"):
        check_obd_saliency(pruneviz.criteria.obd_saliency)
