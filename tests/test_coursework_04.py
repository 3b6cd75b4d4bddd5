"""Notebook 04's exercise checks: the solutions pass; wrong answers and the library's own code are refused in
words (pruneviz.coursework.criteria)."""
import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.criteria import check_empirical_fisher, check_obd_saliency


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
    assert check_obd_saliency(lambda w, h: 0.5 * h * w.square())
    assert check_empirical_fisher(fisher)
    assert "✓ empirical Fisher diagonal" in capsys.readouterr().out


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


def test_the_library_saliency_is_refused():
    with pytest.raises(CheckFailed, match="the library's own answer"):
        check_obd_saliency(pruneviz.criteria.obd_saliency)
