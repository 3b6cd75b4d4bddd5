"""Check for the fine-tuning exercise (notebook 08): the sparsity of automated gradual pruning at a step.

The student's function ``fn(step, initial, final, start, prunes, every) -> float`` is compared with
:class:`pruneviz.schedules.AGP` at every step of several schedules: dense before ``start``, the cubic ramp
s_t = s_f + (s_i - s_f)(1 - (t - t0) / (n dt))^3 updated only every ``dt`` steps, and ``final`` after the ramp.
"""
from __future__ import annotations

from collections.abc import Callable

from ..schedules import AGP, Schedule
from .report import Check

_CASES = (AGP(0.9, 0.0, start=0, prunes=10, every=10, finetune_steps=20),
          AGP(0.8, 0.2, start=15, prunes=4, every=7, finetune_steps=10),
          AGP(0.5, 0.5, start=3, prunes=2, every=1, finetune_steps=3))


def _why(step: int, expected: float, case: AGP) -> str:
    if step < case.start:
        return "before start the model is dense (sparsity 0)"
    if step >= case.end:
        return "after start + prunes * every the sparsity stays at final"
    if (step - case.start) % case.every:
        return "between prunes the sparsity holds (it changes only every `every` steps)"
    return "on the ramp: s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3"


def check_agp_sparsity(student_fn: Callable[[int, float, float, int, int, int], float]) -> bool:
    """Compare ``student_fn(step, initial, final, start, prunes, every)`` with AGP at every step; the first
    wrong step of each schedule is its one problem. A function that asks :class:`pruneviz.AGP` is refused."""
    check = Check("AGP sparsity", forbid=(AGP, Schedule))
    for case in _CASES:
        name = (f"AGP(initial={case.initial}, final={case.final}, start={case.start}, prunes={case.prunes}, "
                f"every={case.every})")
        with check.case(name):
            for step in range(case.total_steps + 1):
                got = check.run(student_fn, step, case.initial, case.final, case.start, case.prunes, case.every)
                check.expect(got is not None, f"at step {step}: returned None; return the sparsity (a float)")
                expected = case.sparsity_at(step)
                try:
                    wrong = abs(float(got) - expected) > 1e-6
                except (TypeError, ValueError):
                    check.fail(f"at step {step}: returned {got!r}, expected a number")
                check.expect(not wrong, f"at step {step}: got {float(got):.4f}, expected {expected:.4f} "
                             f"({_why(step, expected, case)})")
    return check.done()
