"""Notebook 02's exercises: the notebook's own fine_grained_prune and row_importance pass their checks; the
library's own functions and wrong answers are refused, in words."""
import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed, check_fine_grained_prune, check_row_importance
from pruneviz.coursework.granularity import check_row_prune
from tests.notebook_source import notebook_function


def test_the_notebooks_solutions_pass():
    assert check_fine_grained_prune(notebook_function("02_magnitude.ipynb", "fine_grained_prune")) is True
    assert check_row_importance(notebook_function("02_magnitude.ipynb", "row_importance")) is True


@pytest.mark.parametrize("check, fn, words", [
    (check_fine_grained_prune, lambda t, s: pruneviz.prune_tensor(t, s), "calls pruneviz.prune_tensor"),
    (check_fine_grained_prune, lambda t, s: torch.where(t.abs() > t.abs().mean(), t, 0.0), "entries are zero"),
    (check_row_importance, lambda w: pruneviz.get_granularity("row").group_scores(w.abs()),
     "the library's own answer"),
    (check_row_importance, lambda w: w.flatten(1).sum(dim=1), "without the absolute value"),
])
def test_the_library_and_wrong_answers_are_refused(check, fn, words):
    with pytest.raises(CheckFailed, match=words):
        check(fn)


def prune_rows_with(score):
    """A row-wise pruning that ranks rows by ``score(weight)`` (the right one: sum |w|)."""
    def prune_rows(weight, sparsity):
        pruned = weight.clone()
        pruned[score(weight).argsort()[:round(sparsity * weight.shape[0])]] = 0
        return pruned
    return prune_rows


def test_the_notebooks_prune_rows_passes():
    prune_rows = notebook_function("02_magnitude.ipynb", "prune_rows")
    prune_rows.__globals__["row_importance"] = notebook_function("02_magnitude.ipynb", "row_importance")
    assert check_row_prune(prune_rows) is True


@pytest.mark.parametrize("fn, words", [
    (lambda w, s: pruneviz.prune_tensor(w, s, granularity="channel"), "calls pruneviz.prune_tensor"),
    (prune_rows_with(lambda w: -w.abs().flatten(1).sum(1)), "the rows of largest sum |w| went"),
    (prune_rows_with(lambda w: w.square().flatten(1).sum(1)), "ranked by the L2 norm"),
    (lambda w, s: torch.where(w.abs() > w.abs().median(), w, 0.0), "only partly zero"),
    (lambda w, s: w.mul_(0), "changed the input tensor in place"),
])
def test_prune_rows_refuses_the_library_and_wrong_rows(fn, words):
    with pytest.raises(CheckFailed, match=words):
        check_row_prune(fn)
