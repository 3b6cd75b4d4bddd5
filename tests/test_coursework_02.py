"""Notebook 02's exercises: the notebook's own fine_grained_prune and row_importance pass their checks; the
library's own functions and wrong answers are refused, in words."""
import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed, check_fine_grained_prune, check_row_importance
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
