"""Check for notebook 00: the highest sparsity that keeps accuracy above a floor."""
from __future__ import annotations

from collections.abc import Callable

from .. import data as datasets
from .. import zoo
from ..evaluation import evaluate
from ..pruner import Pruner
from .report import Check


def _reference(pruner: Pruner, test, floor: float, grid) -> float:
    best = 0.0
    for ratio in grid:
        pruner.prune(ratio)
        if evaluate(pruner.model, test) >= floor:
            best = max(best, ratio)
    pruner.restore()
    return best


def check_highest_sparsity(student_fn: Callable) -> bool:
    """student_fn(pruner, data, floor, grid) -> the largest ratio of ``grid`` whose accuracy >= floor,
    leaving the model dense again. (Using the Pruner and pruneviz.evaluate is the exercise: nothing is forbidden.)"""
    check = Check("highest_sparsity")
    test = datasets.digits().test
    grid = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
    for name, floor in (("digits-mlp", 0.95), ("digits-mlp", 0.5), ("digits-cnn", 0.97)):
        with check.case(f"{name}, floor {floor:.2f}"):
            model = zoo.load(name, device="cpu")
            dense = {k: v.clone() for k, v in model.state_dict().items()}
            expected = _reference(Pruner(model, "magnitude", "element", "global"), test, floor, grid)
            pruner = Pruner(model, "magnitude", "element", "global")
            got = check.run(student_fn, pruner, test, floor, grid)
            check.expect(all(v.equal(dense[k]) for k, v in model.state_dict().items()),
                         "the model is still pruned afterwards (call pruner.restore())")
            check.expect(got is not None, "returned None, expected a ratio")
            check.expect(isinstance(got, (int, float)), f"returned a {type(got).__name__}, expected a ratio")
            check.expect(abs(float(got) - expected) <= 1e-9, f"returned {float(got):.3f}, expected {expected:.3f}")
    return check.done()
