"""Notebook 02's exercises: the notebook's own fine_grained_prune and prune_rows pass their checks; the library's
own functions and the shortcuts (a threshold that takes every tied row, a tie order that is not the row order,
the wrong norm) are refused, in words."""
import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed, check_fine_grained_prune
from pruneviz.coursework.granularity import check_row_prune
from tests.notebook_source import notebook_function


def test_the_notebooks_solutions_pass():
    assert check_fine_grained_prune(notebook_function("02_magnitude.ipynb", "fine_grained_prune")) is True
    assert check_row_prune(notebook_function("02_magnitude.ipynb", "prune_rows")) is True


@pytest.mark.parametrize("fn, words", [
    (lambda t, s: pruneviz.prune_tensor(t, s), "calls pruneviz.prune_tensor"),
    (lambda t, s: torch.where(t.abs() > t.abs().mean(), t, 0.0), "entries are zero"),
])
def test_the_library_and_wrong_answers_are_refused(fn, words):
    with pytest.raises(CheckFailed, match=words):
        check_fine_grained_prune(fn)


def importance(weight, norm="l1"):
    rows = weight.flatten(1)
    return rows.abs().sum(1) if norm == "l1" else rows.norm(dim=1)


def prune_rows_by(order):
    """A row-wise pruning that zeroes the first k rows of ``order(weight, norm)``."""
    def prune_rows(weight, sparsity, norm="l1"):
        pruned = weight.clone()
        pruned[order(weight, norm)[:round(sparsity * weight.shape[0])]] = 0
        return pruned
    return prune_rows


def by_threshold(weight, sparsity, norm="l1"):
    """Every row at or below the k-th smallest importance: all the rows of a tie at the cut go."""
    k = round(sparsity * weight.shape[0])
    pruned = weight.clone()
    if k:
        scores = importance(weight, norm)
        pruned[scores <= scores.kthvalue(k).values] = 0
    return pruned


@pytest.mark.parametrize("fn, words", [
    (lambda w, s, norm="l1": pruneviz.prune_tensor(w, s, granularity="channel"), "calls pruneviz.prune_tensor"),
    (prune_rows_by(lambda w, n: importance(w, n).argsort(descending=True, stable=True)),
     "the rows of largest importance went"),
    (prune_rows_by(lambda w, n: w.square().flatten(1).sum(1).argsort(stable=True)), "ranked by the L2 norm"),
    (prune_rows_by(lambda w, n: importance(w, "l1").argsort(stable=True)), "norm='l2' asks for sqrt(sum w^2)"),
    (by_threshold, "tie at the cut, and a threshold"),
    (prune_rows_by(lambda w, n: importance(w, n).argsort(descending=True, stable=True).flip(0)),
     "a tie goes in row order, the lower index first"),
    (lambda w, s, norm="l1": torch.where(w.abs() > w.abs().median(), w, 0.0), "only partly zero"),
    (lambda w, s, norm="l1": w.mul_(0), "changed the input tensor in place"),
    (lambda w, s: w.clone(), "unexpected keyword argument 'norm'"),
])
def test_prune_rows_refuses_the_library_and_the_shortcuts(fn, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace(")", r"\)").replace("^", r"\^")):
        check_row_prune(fn)


def test_the_tie_cases_straddle_the_cut_and_the_library_breaks_them_by_row_order():
    """The check's tie cases are real ties at the cut, and its expected rows (the library's stable order) are the
    lower indices: the nested masks the prompt promises."""
    from pruneviz.coursework.granularity import _tied_rows

    ties = torch.tensor([[1.0, -1.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.5, -1.0], [-2.0, 0.0, 0.0],
                         [0.0, 0.0, 4.0]])
    assert _tied_rows(importance(ties), 2) == [0, 2, 3, 4]
    zeroed = [set(pruneviz.prune_tensor(ties, s, granularity="channel").flatten(1).eq(0).all(1).nonzero()
                  .flatten().tolist()) for s in (1 / 6, 1 / 3, 0.5, 2 / 3)]
    assert zeroed == [{0}, {0, 2}, {0, 2, 3}, {0, 2, 3, 4}]
