"""Check for notebook 00: the highest sparsity that keeps accuracy above a floor."""
from __future__ import annotations

import random
from collections.abc import Callable

from .. import data as datasets
from .. import zoo
from ..baselines import accuracy_sweep
from ..pruner import Pruner
from .report import Check


def _expected(accuracy: dict[float, float], floor: float, grid) -> float:
    """The largest ratio of ``grid`` whose accuracy reaches ``floor``, 0.0 if none does."""
    return max((ratio for ratio in grid if accuracy[ratio] >= floor), default=0.0)


def _cases() -> list[tuple[str, str, str, float, list[float]]]:
    """(case, model, split, floor, grid): the notebook's own question, the corners, and random ones."""
    cases = [
        ("digits-cnn on val, floor 0.98 (the notebook's question)", "digits-cnn", "val", 0.98,
         [0.8, 0.85, 0.9, 0.92, 0.94, 0.96]),
        ("digits-mlp on test, floor 0.95", "digits-mlp", "test", 0.95, [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]),
        ("digits-mlp, a grid out of order (the largest ratio, not the last one)", "digits-mlp", "test", 0.5,
         [0.95, 0.5, 0.9, 0.0, 0.8]),
        ("digits-cnn, a floor no ratio reaches (expected 0.0)", "digits-cnn", "test", 1.01, [0.5, 0.9]),
    ]
    rng = random.Random(0)
    for i in range(2):
        grid = sorted(rng.sample([0.1 * k for k in range(10)], 5))
        floor = round(rng.uniform(0.3, 0.97), 2)
        cases.append((f"random case {i + 1}: digits-mlp on val, floor {floor:.2f}, grid "
                      f"{[round(g, 2) for g in grid]}", "digits-mlp", "val", floor, grid))
    return cases


def check_highest_sparsity(student_fn: Callable) -> bool:
    """student_fn(pruner, data, floor, grid) -> the largest ratio of ``grid`` whose accuracy on ``data`` reaches
    ``floor`` (0.0 if none does), leaving the model dense again. The loop over the grid is the exercise:
    :func:`pruneviz.baselines.accuracy_sweep`, which runs it, is refused. The exercise hands the student a
    Pruner and asks to use it with :func:`pruneviz.evaluate`: those two are allowed (the shared policy refuses
    the rest of the library)."""
    from ..evaluation import evaluate

    check = Check("highest_sparsity", forbid=[accuracy_sweep], allow=[Pruner, evaluate])
    splits = datasets.digits()
    models, accuracies = {}, {}
    for case, name, split, floor, grid in _cases():
        with check.case(case):
            if name not in models:
                models[name] = zoo.load(name, device="cpu")
            model, data = models[name], getattr(splits, split)
            key = (name, split)
            known = accuracies.setdefault(key, {})
            missing = [r for r in grid if r not in known]
            if missing:  # the reference answer, measured once per (model, split)
                sweep = accuracy_sweep(model, data, missing, scope="global")
                known.update(zip(missing, sweep.accuracy))
            expected = _expected(known, floor, grid)
            dense = {k: v.clone() for k, v in model.state_dict().items()}
            got = check.run(student_fn, Pruner(model, "magnitude", "element", "global"), data, floor, grid)
            check.expect(all(v.equal(dense[k]) for k, v in model.state_dict().items()),
                         "the model is still pruned afterwards (call pruner.restore() before returning)")
            check.expect(got is not None, "returned None, expected a ratio")
            check.expect(isinstance(got, (int, float)), f"returned a {type(got).__name__}, expected a ratio")
            if abs(float(got) - expected) > 1e-9:
                hint = ""
                if float(got) == grid[-1] and expected != grid[-1]:
                    hint = " (the last ratio of the grid is not always the largest one that passes)"
                elif expected == 0.0:
                    hint = " (no ratio of the grid reaches the floor: return 0.0)"
                elif float(got) in grid and known[float(got)] < floor:
                    hint = f" (at {float(got):.3f} the accuracy is {100 * known[float(got)]:.1f} %, below the floor)"
                check.fail(f"returned {float(got):.3f}, expected {expected:.3f}{hint}")
    return check.done()
