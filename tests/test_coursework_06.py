"""Notebook 06's exercise checks: the solutions pass; wrong answers and the library's own code are refused in
words (pruneviz.coursework.criteria)."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import lasso_path

from pruneviz.coursework import CheckFailed
from pruneviz.coursework.criteria import check_lasso_select, check_least_squares
from pruneviz.criteria.regression import Features, lasso_order, least_squares


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
    assert check_least_squares(lambda x, y: torch.linalg.lstsq(x, y).solution.T)
    assert check_lasso_select(lasso_select)
    assert "✓ LASSO channel selection" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,words", [
    (first_k, "which the LASSO keeps longest"),
    (lambda z, y, k: lasso_select(z, y, k + 1), "expected exactly k"),
    (lambda z, y, k: lasso_select(z, y, k).float(), "expected a bool mask"),
    (library, "the library's own answer"),
])
def test_wrong_selections_are_told_what_is_wrong(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_lasso_select(wrong)


def test_the_library_least_squares_is_refused():
    def library_ls(x, y):
        features = Features(x.unsqueeze(2), torch.zeros(y.shape[1], x.shape[1], 1, dtype=x.dtype), y)
        return least_squares(features, torch.ones(x.shape[1], dtype=torch.bool))[0].squeeze(2)
    with pytest.raises(CheckFailed, match="the library's own answer"):
        check_least_squares(library_ls)
