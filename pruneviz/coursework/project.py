"""The grader of the end-to-end project (notebook 11): compress MNIST-1D's CNN to a size target, keep an accuracy
target on a test set the student never sees.

The student's ``compress(model, train, val) -> nn.Module`` gets the dense ``mnist1d-cnn`` and the data it may use
(train to fine-tune, val to choose on). The grader then measures what it returns:

- **size**: MACs of one forward pass (``pruneviz.macs``, dense count: a masked model still does every MAC, so
  only a compacted one gets smaller) against the dense model's, at most :data:`MAX_MACS_FRACTION`;
- **accuracy** on :data:`HIDDEN_SIZE` signals drawn at grading time from :data:`HIDDEN_SEED`, a seed that
  is neither val's nor test's nor in the notebook, at least :data:`MIN_ACCURACY`.

The targets were chosen on val with the reference solution (half of every conv layer's channels, 10 epochs of
Adam): it leaves 28.0 % of the dense MACs and stays at least a point above the accuracy target on val over
fine-tuning seeds, while the same network without fine-tuning falls below 50 %. A student's CPU runs other
kernels, so a fine-tuning run ends elsewhere, as with another seed: the margin is for that, and
tests/test_project.py asserts it (and CI's second pass runs it with other kernels). Verdicts are printed at the
level every CPU agrees on (integers, and "met"); a failure says what failed and by how much.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import zoo
from ..data import Data, mnist1d_signals
from ..evaluation import evaluate
from ..finetune import finetune
from ..metrics import count_parameters, macs
from ..pruner import Pruner
from ..sensitivity import sensitivity_scan
from ..surgery import compact
from .report import Check

MODEL = "mnist1d-cnn"
HIDDEN_SEED = 20_261_118  # the grader's own: not val's (1), test's (2) or the standard split's (42)
HIDDEN_SIZE = 5_000  # one point of accuracy = 50 signals
MAX_MACS_FRACTION = 0.30
MIN_ACCURACY = 0.93
SIGNAL_SHAPE = (1, 40)
CLASSES = 10

__all__ = ["CLASSES", "HIDDEN_SEED", "HIDDEN_SIZE", "MAX_MACS_FRACTION", "MIN_ACCURACY", "MODEL", "ProjectGrade",
           "check_project", "dense_size", "grade_project", "hidden_test"]


@dataclass
class ProjectGrade:
    """What the grader measured on a submitted model, and the problems in words (empty: both targets met)."""

    macs: int | None = None
    dense_macs: int | None = None
    parameters: int | None = None
    dense_parameters: int | None = None
    correct: int | None = None  # right answers on the hidden signals
    signals: int = HIDDEN_SIZE
    problems: dict[str, str] = field(default_factory=dict)  # {"model" | "size" | "accuracy": what is wrong}

    @property
    def macs_fraction(self) -> float | None:
        return None if self.macs is None else self.macs / self.dense_macs

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None else self.correct / self.signals

    @property
    def passed(self) -> bool:
        return not self.problems and self.macs is not None and self.correct is not None


def hidden_test(num_samples: int = HIDDEN_SIZE) -> Data:
    """The signals the project is graded on: drawn from the grader's seed, never shown in the notebook."""
    return mnist1d_signals(HIDDEN_SEED, num_samples)


def dense_size() -> tuple[int, int]:
    """(MACs, parameters) of the dense ``mnist1d-cnn``, the size the target is a fraction of."""
    dense = zoo.load(MODEL, device="cpu")
    return macs(dense, torch.zeros(1, *SIGNAL_SHAPE)), count_parameters(dense)


def _runnable(model: object, x: torch.Tensor) -> tuple[nn.Module | None, str | None]:
    """A CPU copy of the submission in eval mode, or why it cannot be graded (never raises)."""
    if not isinstance(model, nn.Module):
        return None, (f"got a {type(model).__name__}, expected the compacted model (a torch.nn.Module); "
                      "return the model from compress")
    try:
        graded = copy.deepcopy(model).cpu().eval()  # the student's own model is left as it was
    except Exception as err:
        return None, f"the model cannot be copied to the CPU for grading ({type(err).__name__}: {err})"
    try:
        with torch.no_grad():
            out = graded(x)
    except Exception as err:
        return None, (f"the model cannot run MNIST-1D signals shaped [N, {SIGNAL_SHAPE[0]}, {SIGNAL_SHAPE[1]}] "
                      f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0], CLASSES):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return None, (f"on {x.shape[0]} signals the model returns {shape}, expected class scores shaped "
                      f"({x.shape[0]}, {CLASSES})")
    return graded, None


def _size_problem(grade: ProjectGrade, nonzero: int) -> str | None:
    fraction = grade.macs_fraction
    if fraction <= MAX_MACS_FRACTION + 1e-12:
        return None
    allowed = math.floor(MAX_MACS_FRACTION * grade.dense_macs + 1e-9)
    problem = (f"{grade.macs:,} MACs = {100 * fraction:.1f} % of the dense model's {grade.dense_macs:,}; the "
               f"target is at most {100 * MAX_MACS_FRACTION:.1f} % ({allowed:,}): {grade.macs - allowed:,} MACs "
               f"({100 * (fraction - MAX_MACS_FRACTION):.1f} points) too many")
    if nonzero < 0.9 * grade.parameters:  # zeros still multiplied: masked, not compacted
        problem += (f"; {grade.parameters - nonzero:,} of its {grade.parameters:,} parameters are zero, which "
                    "still costs every MAC: compact the pruned channels away (pruneviz.compact)")
    return problem


def _accuracy_problem(grade: ProjectGrade) -> str | None:
    needed = round(MIN_ACCURACY * grade.signals)
    if grade.correct >= needed:
        return None
    return (f"accuracy {100 * grade.accuracy:.1f} % on the {grade.signals:,} hidden test signals "
            f"({grade.correct:,} right); the target is at least {100 * MIN_ACCURACY:.1f} % ({needed:,}): "
            f"{needed - grade.correct:,} signals ({100 * (MIN_ACCURACY - grade.accuracy):.1f} points) short")


def grade_project(model: object, hidden: Data | None = None) -> ProjectGrade:
    """Measure a submission against both targets. Never raises on a bad submission: a model of the wrong type
    or one that cannot run the signals is ``problems["model"]``. ``hidden``: the graded signals (default: the
    hidden test set)."""
    hidden = hidden_test() if hidden is None else hidden
    signals = len(hidden)
    grade = ProjectGrade(signals=signals)
    grade.dense_macs, grade.dense_parameters = dense_size()
    example = torch.zeros(2, *SIGNAL_SHAPE)
    graded, problem = _runnable(model, example)
    if problem:
        grade.problems["model"] = problem
        return grade
    try:
        grade.macs = macs(graded, example[:1])
        grade.parameters = count_parameters(graded)
        nonzero = count_parameters(graded, nonzero=True)
        grade.correct = round(evaluate(graded, hidden) * signals)
    except Exception as err:  # an exotic module the counters or the evaluation cannot follow
        grade.problems["model"] = f"the model could not be measured ({type(err).__name__}: {err})"
        grade.macs = grade.correct = None
        return grade
    for name, found in (("size", _size_problem(grade, nonzero)), ("accuracy", _accuracy_problem(grade))):
        if found:
            grade.problems[name] = found
    return grade


def check_project(compress: Callable[[nn.Module, Data, Data], nn.Module]) -> bool:
    """Run the student's ``compress(dense, train, val)`` on a fresh dense ``mnist1d-cnn`` and grade what it
    returns: ✓ with the size when both targets are met, else CheckFailed saying what failed and by how much."""
    # the project is the library used end to end: its pipeline is the student's to call, not a shortcut
    check = Check("end-to-end project", allow=[Pruner, finetune, compact, sensitivity_scan])
    dense = zoo.load(MODEL, device="cpu")
    train, val, _ = zoo.data(MODEL)
    grade = None
    with check.case("compress(dense, train, val)"):
        result = check.run(compress, dense, train, val)
        grade = grade_project(result)
        if "model" in grade.problems:
            check.fail(grade.problems["model"])
    if grade is not None and "model" not in grade.problems:
        for name, case in (("size", f"size target (at most {100 * MAX_MACS_FRACTION:.0f} % of the dense MACs)"),
                           ("accuracy", f"accuracy target (at least {100 * MIN_ACCURACY:.0f} % on "
                                        f"{grade.signals:,} hidden test signals)")):
            with check.case(case):
                check.expect(name not in grade.problems, grade.problems.get(name, ""))
    if grade is not None and grade.passed:  # integers and "met": the same on every CPU
        print(f"size: {grade.macs:,} of {grade.dense_macs:,} MACs ({100 * grade.macs_fraction:.1f} %), "
              f"{grade.parameters:,} of {grade.dense_parameters:,} parameters: target met")
        print(f"accuracy on {grade.signals:,} hidden test signals >= {100 * MIN_ACCURACY:.1f} %: target met")
    return check.done()
