"""Check for notebook 00: the highest sparsity that keeps accuracy above a floor."""
from __future__ import annotations

from collections.abc import Callable

from .. import data as datasets
from .. import zoo
from ..evaluation import evaluate
from ..pruner import Pruner
from .report import call, report


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
    leaving the model dense again."""
    problems: list[str] = []
    test = datasets.digits().test
    grid = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
    for name, floor in (("digits-mlp", 0.95), ("digits-mlp", 0.5), ("digits-cnn", 0.97)):
        model = zoo.load(name, device="cpu")
        dense = {k: v.clone() for k, v in model.state_dict().items()}
        expected = _reference(Pruner(model, "magnitude", "element", "global"), test, floor, grid)
        pruner = Pruner(model, "magnitude", "element", "global")
        case = f"{name}, floor {floor:.2f}"
        got = call(student_fn, pruner, test, floor, grid, problems=problems, case=case)
        if got is None and not any(p.startswith(case) for p in problems):
            problems.append(f"{case}: returned None, expected a ratio")
        elif got is not None and abs(float(got) - expected) > 1e-9:
            problems.append(f"{case}: returned {float(got):.3f}, expected {expected:.3f}")
        if any(not v.equal(dense[k]) for k, v in model.state_dict().items()):
            problems.append(f"{case}: the model is still pruned afterwards (call pruner.restore())")
    return report("highest_sparsity", problems)
