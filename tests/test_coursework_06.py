"""Notebook 06's exercise checks: the solutions pass; wrong answers, the shortcuts and the library's own code are
refused in words (pruneviz.coursework.refit, pruneviz.coursework.criteria)."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import lasso_path

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.criteria import check_lasso_select
from pruneviz.coursework.refit import check_least_squares, reference_weight, relative_error
from pruneviz.criteria.regression import Features, lasso_order, least_squares
from tests.notebook_source import notebook_function


def lasso_select(z, y, k):
    _, coefs, _ = lasso_path(z.numpy(), y.numpy(), alphas=200, eps=1e-4)
    active = coefs != 0
    entered = np.where(active.any(1), active.argmax(1), active.shape[1])
    size = np.abs(coefs[np.arange(len(coefs)), np.minimum(entered, active.shape[1] - 1)])
    keep = torch.zeros(z.shape[1], dtype=torch.bool)
    keep[torch.as_tensor(np.lexsort((-size, entered))[:k])] = True
    return keep


def first_k(z, y, k):
    keep = torch.zeros(z.shape[1], dtype=torch.bool)
    keep[:k] = True
    return keep


def library(z, y, k):
    features = Features(z.unsqueeze(2), torch.ones(1, z.shape[1], 1, dtype=z.dtype), y.unsqueeze(1))
    keep = torch.zeros(z.shape[1], dtype=torch.bool)
    keep[torch.argsort(lasso_order(features), descending=True)[:k]] = True
    return keep


def test_the_solutions_pass(capsys):
    assert check_least_squares(notebook_function("06_regression.ipynb", "reconstruct_weight"))
    assert check_lasso_select(lasso_select)
    out = capsys.readouterr().out
    assert "✓ least-squares reconstruction" in out and "✓ LASSO channel selection" in out


@pytest.mark.parametrize("wrong,words", [
    (first_k, "which the LASSO keeps longest"),
    (lambda z, y, k: lasso_select(z, y, k + 1), "expected exactly k"),
    (lambda z, y, k: lasso_select(z, y, k).float(), "expected a bool mask"),
    (library, "the library's own answer"),
])
def test_wrong_selections_are_told_what_is_wrong(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_lasso_select(wrong)


# -- the least-squares refit: every shortcut fails, by name ----------------------------------------------

def refit(solve, *, subtract_bias=True):
    """reconstruct_weight with the kept columns' system solved by ``solve(a, y)`` (gelsd: a right answer)."""
    def reconstruct_weight(layer, x, keep):
        with torch.no_grad():
            y = layer(x)
            if layer.bias is not None and subtract_bias:
                y = y - layer.bias.reshape(1, -1, *([1] * (y.dim() - 2)))
            if isinstance(layer, torch.nn.Conv2d):
                patches = torch.nn.functional.unfold(x, layer.kernel_size, dilation=layer.dilation,
                                                     padding=layer.padding, stride=layer.stride)
                inputs = patches.transpose(1, 2).reshape(-1, x.shape[1], patches.shape[1] // x.shape[1])
                y = y.flatten(2).transpose(1, 2).reshape(-1, y.shape[1])
            else:
                inputs = x.reshape(len(x), -1, 1)
            a = inputs[:, keep].reshape(len(inputs), -1)
            weight = torch.zeros(y.shape[1], x.shape[1], inputs.shape[2], dtype=layer.weight.dtype)
            weight[:, keep] = solve(a, y).T.reshape(y.shape[1], -1, inputs.shape[2])
        return weight.reshape(layer.weight.shape)
    return reconstruct_weight


def gelsd(a, y):
    return torch.linalg.lstsq(a, y, driver="gelsd").solution


def normal_equations(a, y):
    return torch.linalg.solve(a.T @ a, a.T @ y)


def shifted_solution(a, y):
    """A least-squares solution, but not the minimum-norm one: the null space's direction added."""
    solution = gelsd(a, y)
    null = torch.linalg.svd(a, full_matrices=True).Vh[-1]  # a direction a does not see (a is rank-deficient)
    if float((a @ null).abs().max()) < 1e-9:
        solution = solution + null[:, None]
    return solution


def sliced(layer, x, keep):
    weight = layer.weight.detach().clone()
    weight[:, ~keep] = 0
    return weight


def patches_in_the_wrong_order(layer, x, keep):
    """Unfold's columns read as [kh * kw, C] instead of [C, kh * kw]: right for a Linear, wrong for a conv."""
    if not isinstance(layer, torch.nn.Conv2d):
        return refit(gelsd)(layer, x, keep)
    with torch.no_grad():
        y = layer(x)
        if layer.bias is not None:
            y = y - layer.bias.reshape(1, -1, 1, 1)
        m = layer.kernel_size[0] * layer.kernel_size[1]
        patches = torch.nn.functional.unfold(x, layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
                                             stride=layer.stride)
        inputs = patches.transpose(1, 2).reshape(-1, m, x.shape[1]).transpose(1, 2)
        y = y.flatten(2).transpose(1, 2).reshape(-1, y.shape[1])
        a = inputs[:, keep].reshape(len(inputs), -1)
        weight = torch.zeros(y.shape[1], x.shape[1], m, dtype=layer.weight.dtype)
        weight[:, keep] = gelsd(a, y).T.reshape(y.shape[1], -1, m)
    return weight.reshape(layer.weight.shape)


def library_refit(layer, x, keep):
    from pruneviz.criteria.regression import _features
    features = _features(layer, x, layer(x).detach(), x.shape[1], 10**9, 0)
    return least_squares(features, keep)[0].reshape(layer.weight.shape).to(layer.weight.dtype)


@pytest.mark.parametrize("wrong, words", [
    (refit(normal_equations), "rank-deficient.*raised _?LinAlgError"),
    (refit(shifted_solution), "not the minimum-norm weight"),
    (refit(gelsd, subtract_bias=False), "fitted the output with its bias in it"),
    (sliced, "kept the old weights of the kept channels"),
    (patches_in_the_wrong_order, "F.unfold"),
    (lambda layer, x, keep: refit(gelsd)(layer, x, keep).double(), "expected the layer's torch.float32"),
    (lambda layer, x, keep: refit(gelsd)(layer, x, keep)[:, keep], "expected the layer's weight shape"),
    (library_refit, "calls pruneviz.criteria.regression._features, the library's own answer"),
    (lambda x, y: torch.linalg.lstsq(x, y).solution.T, "raised TypeError"),  # the old one-line exercise
])
def test_least_squares_refuses_the_shortcuts_by_name(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_least_squares(wrong)


def test_the_checks_answer_is_minimum_norm_and_least_squares():
    """On the rank-deficient case the check's answer is pinv's (minimum norm: 0 for the dead channel, equal shares
    for the identical ones); on the zoo's conv4 it fits as well as the kit's own least squares."""
    from pruneviz.coursework.refit import _cases, _rows

    case = {name: (layer, x, keep) for name, layer, x, keep, _ in _cases()}
    layer, x, keep = next(v for k, v in case.items() if "rank-deficient" in k)
    weight = reference_weight(layer, x, keep)
    inputs, y = _rows(layer, x)
    pinv = torch.linalg.pinv(inputs[:, keep].reshape(len(inputs), -1)) @ y
    assert torch.allclose(weight[:, keep], pinv.T, atol=1e-10)
    assert float(weight[:, 2].abs().max()) < 1e-12 and torch.allclose(weight[:, 4], weight[:, 5])
    layer, x, keep = next(v for k, v in case.items() if "zoo" in k)
    features = pruneviz.criteria.regression._features(layer, x, layer(x).detach(), 64, 10**9, 0)
    kit = least_squares(features, keep)[1]
    assert relative_error(layer, x, reference_weight(layer, x, keep)) == pytest.approx(kit, rel=1e-6, abs=1e-9)


def test_the_gap_between_the_solution_and_the_kit_on_conv3_is_the_sample():
    """Notebook 06, exercise 2's text: on `small` (64 positions per image) the kit's exact path picks the same 16
    channels as the reference solution (error 0.169); on every position it swaps 4 of them (error 0.150)."""
    from pruneviz.criteria.regression import layer_features, top_k

    torch.manual_seed(0)
    _, val, _ = pruneviz.data.digits()
    model = pruneviz.zoo.load("digits-cnn")
    features = layer_features(model, "conv3", val)
    small = layer_features(model, "conv3", val, positions=64)
    solution = notebook_function("06_regression.ipynb", "lasso_select")(
        small.contributions().reshape(-1, 64), small.y.reshape(-1), 16)
    kit_small, kit_full = top_k(lasso_order(small), 16), top_k(lasso_order(features), 16)
    assert torch.equal(solution, kit_small)
    assert int((kit_full & ~kit_small).sum()) == 4
    assert f"{least_squares(features, solution)[1]:.3f}" == "0.169"
    assert f"{least_squares(features, kit_full)[1]:.3f}" == "0.150"
