"""Notebook 01's exercise: the notebook's own nm_mask passes check_nm_mask; the library's 2:4 and a wrong
mask are refused, in words."""
import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed, check_nm_mask
from tests.notebook_source import notebook_function


def test_the_notebooks_solution_passes(capsys):
    assert check_nm_mask(notebook_function("01_granularity.ipynb", "nm_mask")) is True


@pytest.mark.parametrize("fn, words", [
    (lambda w, n, m: pruneviz.tensor_mask(w, 1 - n / m, granularity=f"{n}:{m}"),
     "calls pruneviz.tensor_mask, the library's own answer"),
    (lambda w, n, m: w.abs() > w.abs().median(), "do not keep exactly"),  # one threshold, not per block
])
def test_the_library_and_a_wrong_mask_are_refused(fn, words):
    with pytest.raises(CheckFailed, match=words):
        check_nm_mask(fn)
