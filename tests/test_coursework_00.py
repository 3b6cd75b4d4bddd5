"""Notebook 00's exercise: the notebook's own solution passes check_highest_sparsity; wrong answers and the
library's own loop are refused, in words."""
import pytest

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.welcome import check_highest_sparsity
from tests.notebook_source import notebook_function


def refused(fn) -> str:
    with pytest.raises(CheckFailed) as failed:
        check_highest_sparsity(fn)
    return str(failed.value)


def last_passing(pruner, data, floor, grid):  # the last ratio that passes, not the largest
    best = 0.0
    for ratio in grid:
        pruner.prune(ratio)
        if pruneviz.evaluate(pruner.model, data) >= floor:
            best = ratio
    pruner.restore()
    return best


def never_restores(pruner, data, floor, grid):
    best = 0.0
    for ratio in grid:
        pruner.prune(ratio)
        if pruneviz.evaluate(pruner.model, data) >= floor:
            best = max(best, ratio)
    return best


def library_loop(pruner, data, floor, grid):
    sweep = pruneviz.baselines.accuracy_sweep(pruner.model, data, grid, scope="global")
    return max((r for r, a in zip(grid, sweep.accuracy) if a >= floor), default=0.0)


def test_the_notebooks_solution_passes(capsys):
    assert check_highest_sparsity(notebook_function("00_welcome.ipynb", "highest_sparsity")) is True
    assert "✓ highest_sparsity" in capsys.readouterr().out


@pytest.mark.parametrize("fn, words", [
    (last_passing, "the last ratio of the grid is not always the largest one"),
    (never_restores, "the model is still pruned afterwards"),
    (library_loop, "calls pruneviz.baselines.accuracy_sweep, the library's own answer"),
    (lambda pruner, data, floor, grid: None, "returned None"),
])
def test_wrong_answers_are_refused_in_words(fn, words, capsys):
    assert words in refused(fn)
