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


# --- the masked optimizer step whose state persists across prunes -------------------------------------------

_LECTURE_WEIGHT = (0.5, -0.2, 0.05, 0.8)  # four weights, the two smallest pruned at 50 %
_LECTURE_GRAD = (0.1, 0.3, -0.2, -0.1)
_LECTURE_VELOCITY = (0.2, -0.4, 0.1, 0.3)  # momentum from dense training: non-zero everywhere
_LECTURE_MASK = (True, False, False, True)


def _reference_step(weight, grad, velocity, mask, lr, momentum):
    """g <- g m; v <- (mu v + g) m; w <- (w - lr v) m: kept weights follow momentum SGD, pruned ones stay 0."""
    velocity = (momentum * velocity + grad * mask) * mask
    return (weight - lr * velocity) * mask, velocity


def _momentum_cases(seed: int = 0):
    """(description, weight, [(grad, mask)] per step, lr, momentum): the lecture's one step, then random
    sequences whose mask tightens twice (two prunes by magnitude of the current weights, as in iterative
    pruning), so the velocity of the kept weights must carry over a prune while that of the pruned goes."""
    import torch

    yield ("the lecture's four weights, pruned at 50 % with momentum from dense training",
           torch.tensor(_LECTURE_WEIGHT), torch.tensor(_LECTURE_VELOCITY),
           [(torch.tensor(_LECTURE_GRAD), torch.tensor(_LECTURE_MASK))], 0.1, 0.9)
    gen = torch.Generator().manual_seed(seed)
    for shape, lr, momentum in (((6, 5), 0.05, 0.9), ((3, 4, 2), 0.1, 0.5), ((40,), 0.02, 0.99)):
        weight = torch.randn(shape, generator=gen)
        velocity = torch.randn(shape, generator=gen)
        plan, mask = [], torch.ones(shape, dtype=torch.bool)
        w, v = weight.clone(), velocity.clone()
        for step in range(7):
            if step in (2, 5):  # a prune: the smallest half of the survivors goes
                kept = w[mask].abs()
                mask = mask & (w.abs() > kept.median())
            grad = torch.randn(shape, generator=gen)
            plan.append((grad, mask.clone()))
            w, v = _reference_step(w, grad, v, mask, lr, momentum)
        yield (f"random {tuple(shape)} weights, lr {lr}, momentum {momentum}, 7 steps with prunes before steps 2 "
               "and 5", weight, velocity, plan, lr, momentum)


def check_masked_momentum_step(student_fn) -> bool:
    """Run ``student_fn(weight, grad, velocity, mask, lr, momentum) -> (weight, velocity)`` step after step,
    feeding its own velocity back in, and compare with momentum SGD on the kept weights. The library's loops
    (``Pruner.mask_gradients`` / ``apply_masks``, ``pruneviz.train``) and ``torch.optim.SGD`` are refused."""
    import torch

    from ..masked_loop import own_loop
    from ..pruner import Pruner
    from ..training import train

    check = Check("masked momentum step", forbid=(Pruner.mask_gradients, Pruner.apply_masks, own_loop, train,
                                                  torch.optim.SGD))
    for case, weight, velocity, plan, lr, momentum in _momentum_cases():
        with check.case(case):
            w, v = weight.clone(), velocity.clone()
            ref_w, ref_v = weight.clone(), velocity.clone()
            plain_w = weight.clone()  # what SGD without momentum would give
            for step, (grad, mask) in enumerate(plan):
                got = check.run(student_fn, w.clone(), grad.clone(), v.clone(), mask.clone(), lr, momentum)
                at = f"step {step}"
                check.expect(isinstance(got, tuple) and len(got) == 2,
                             f"{at}: returned {type(got).__name__}; return (new weight, new velocity)")
                got_w, got_v = got
                check.expect(isinstance(got_w, torch.Tensor) and isinstance(got_v, torch.Tensor)
                             and got_w.shape == weight.shape and got_v.shape == weight.shape,
                             f"{at}: return two tensors of the weight's shape {tuple(weight.shape)}")
                ref_w, ref_v = _reference_step(ref_w, grad, ref_v, mask, lr, momentum)
                plain_w = (plain_w - lr * grad * mask) * mask
                revived = int(torch.count_nonzero(got_w[~mask]))
                check.expect(revived == 0, f"{at}: {revived} pruned weight(s) are not zero after the step: the "
                             "velocity carried from before the prune moved them; write the mask again after the "
                             "update (w <- w * m)")
                stale = int(torch.count_nonzero(got_v[~mask]))
                check.expect(stale == 0, f"{at}: the velocity of {stale} pruned weight(s) is not zero: mask the "
                             "gradient before the momentum update and the velocity itself (v <- v * m), or the "
                             "momentum of dense training stays in the optimizer's state and pushes on them")
                if not torch.allclose(got_w, ref_w, atol=1e-5):
                    if torch.allclose(got_w, plain_w, atol=1e-5):
                        check.fail(f"{at}: the kept weights moved like SGD without momentum: the velocity must "
                                   "carry over from step to step, across a prune too (v <- mu v + g)")
                    check.fail(f"{at}: kept weights differ from momentum SGD, w - lr (mu v + g) (largest gap "
                               f"{float((got_w - ref_w).abs().max()):.3g})")
                check.expect(torch.allclose(got_v, ref_v, atol=1e-5),
                             f"{at}: the velocity of the kept weights differs from mu v + g (largest gap "
                             f"{float((got_v - ref_v).abs().max()):.3g})")
                w, v, plain_w = got_w, got_v, got_w
    return check.done()
