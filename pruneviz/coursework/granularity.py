"""Checks for the granularity and magnitude exercises (notebooks 01 and 02).

Each check runs the student's function on the lecture's worked examples and on random tensors, compares it with
pruneviz's own implementation (:func:`pruneviz.prune_tensor`, :func:`pruneviz.tensor_mask`), and says in words
what is wrong: the shape, the count, which weights, a mutated input.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..granularity import CHANNEL
from ..tensor import prune_tensor, tensor_mask
from .report import call, report

# Random cases: a linear weight [out, in] and a conv weight [out, in, kh, kw], as the lecture's layers.
_SHAPES = ((8, 16), (4, 8, 3, 3))


def _random(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _fmt(t: torch.Tensor) -> str:
    """A short printable tensor (the values of a small case, the shape of a big one)."""
    if t.numel() <= 8:
        return str([round(v, 4) if isinstance(v, float) else v for v in t.flatten().tolist()])
    return f"a tensor of shape {tuple(t.shape)}"


def _as_tensor(out: object, case: str, problems: list[str]) -> torch.Tensor | None:
    if out is None:
        problems.append(f"{case}: returned None; return the result (a tensor)")
        return None
    if not isinstance(out, torch.Tensor):
        problems.append(f"{case}: returned a {type(out).__name__}, expected a torch.Tensor")
        return None
    return out


def _check_untouched(before: torch.Tensor, after: torch.Tensor, case: str, problems: list[str]) -> None:
    if not torch.equal(before, after):
        problems.append(f"{case}: changed the input tensor in place; work on a copy (e.g. tensor.clone() or "
                        "torch.where) so the dense weights survive")


# -- fine-grained pruning ---------------------------------------------------------------------------------

def _fine_grained_problems(got: torch.Tensor, tensor: torch.Tensor, sparsity: float, case: str) -> list[str]:
    expected = prune_tensor(tensor, sparsity)
    if got.shape != tensor.shape:
        return [f"{case}: returned shape {tuple(got.shape)}, expected the input's shape {tuple(tensor.shape)}"]
    if got.dtype == torch.bool:
        return [f"{case}: returned a bool mask; return the pruned tensor (the weights with the pruned ones "
                "set to zero)"]
    if got.dtype != tensor.dtype:
        return [f"{case}: returned dtype {got.dtype}, expected the input's dtype {tensor.dtype}"]
    if torch.equal(got, expected):
        return []
    n_zero, n_expected = int((got == 0).sum()), int((expected == 0).sum())
    if n_zero != n_expected:
        return [f"{case}: {n_zero} of {tensor.numel()} entries are zero, expected round({sparsity} x "
                f"{tensor.numel()}) = {n_expected}" + (f" (got {_fmt(got)}, expected {_fmt(expected)})"
                                                       if tensor.numel() <= 8 else "")]
    kept = got != 0
    if not torch.equal(got[kept], tensor[kept]):
        return [f"{case}: the kept weights changed value; keep them exactly as they were"]
    return [f"{case}: the right number of zeros but the wrong weights: prune the smallest |w| first"
            + (f" (got {_fmt(got)}, expected {_fmt(expected)})" if tensor.numel() <= 8 else "")]


def check_fine_grained_prune(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Check ``fn(tensor, sparsity) -> pruned copy``: the ``round(sparsity x numel)`` smallest |w| set to zero.

    Cases: the lecture's [-2, 3, -5, 1] at 50 %, the lab's 5x5 test at 75 %, sparsity 0 and 1, a count that
    only ``round`` gets right, and random linear and conv weights against :func:`pruneviz.prune_tensor`.
    """
    cases = [
        ("lecture example [-2, 3, -5, 1] at 50 %", torch.tensor([-2.0, 3.0, -5.0, 1.0]), 0.5),
        ("5x5 tensor at 75 % (the lab's test)", _random((5, 5), seed=5), 0.75),
        ("sparsity 0 keeps everything", _random((4, 6), seed=1), 0.0),
        ("sparsity 1 prunes everything", _random((4, 6), seed=2), 1.0),
        ("7 entries at 50 % (round(3.5) = 4 zeros, not int(3.5) = 3)", _random((7,), seed=3), 0.5),
    ]
    cases += [(f"random {'x'.join(map(str, shape))} weight at {s:.0%}", _random(shape, seed=10 + i), s)
              for i, shape in enumerate(_SHAPES) for s in (0.3, 0.9)]
    problems: list[str] = []
    for case, tensor, sparsity in cases:
        before = tensor.clone()
        out = _as_tensor(call(fn, tensor, sparsity, problems=problems, case=case), case, problems)
        _check_untouched(before, tensor, case, problems)
        if out is not None:
            problems += _fine_grained_problems(out, before, sparsity, case)
    return report("fine-grained pruning", problems)


# -- N:M masks --------------------------------------------------------------------------------------------

def _blocks(t: torch.Tensor, m: int) -> torch.Tensor:
    """Blocks of ``m`` consecutive entries along the input dim (dim 1), one block per row of the result."""
    return t.movedim(1, -1).reshape(-1, m)


def _nm_problems(got: torch.Tensor, weight: torch.Tensor, n: int, m: int, case: str) -> list[str]:
    if got.shape != weight.shape:
        return [f"{case}: returned shape {tuple(got.shape)}, expected the weight's shape {tuple(weight.shape)}"]
    if got.dtype != torch.bool:
        return [f"{case}: returned dtype {got.dtype}, expected a bool mask (True = kept)"]
    expected = tensor_mask(weight, 1 - n / m, granularity=f"{n}:{m}")
    if torch.equal(got, expected):
        return []
    kept = _blocks(got, m).sum(dim=1)
    wrong = int((kept != n).sum())
    if wrong:
        return [f"{case}: {wrong} of {kept.numel()} blocks of {m} do not keep exactly {n} "
                f"(kept counts seen: {sorted(set(kept.tolist()))}); blocks run along the input dim (dim 1)"]
    return [f"{case}: every block keeps {n}, but not the {n} largest |w| of the block"
            + (" (are your blocks along dim 1, the input dimension?)" if weight.dim() > 1 else "")]


def check_nm_mask(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> bool:
    """Check ``fn(weight, n, m) -> bool mask``: in every block of ``m`` consecutive weights along the input
    dimension, exactly the ``n`` largest |w| are kept (NVIDIA Ampere's 2:4 for n=2, m=4)."""
    example = torch.tensor([[3.0, -1.0, 0.5, -4.0, 2.0, 1.0, -3.0, 0.1]])
    cases = [("one row [3, -1, 0.5, -4, 2, 1, -3, 0.1] at 2:4", example, 2, 4)]
    cases += [(f"random {'x'.join(map(str, shape))} weight at {n}:{m}", _random(shape, seed=20 + i), n, m)
              for i, shape in enumerate(_SHAPES) for n, m in ((2, 4), (1, 4), (4, 8))]
    problems: list[str] = []
    for case, weight, n, m in cases:
        before = weight.clone()
        out = _as_tensor(call(fn, weight, n, m, problems=problems, case=case), case, problems)
        _check_untouched(before, weight, case, problems)
        if out is not None:
            problems += _nm_problems(out, before, n, m, case)
    return report("N:M mask", problems)


# -- row-wise importance ----------------------------------------------------------------------------------

def _row_problems(got: torch.Tensor, weight: torch.Tensor, case: str) -> list[str]:
    expected = CHANNEL.group_scores(weight.abs())
    if got.shape != expected.shape:
        hint = ""
        if got.numel() == weight.shape[1] and weight.shape[0] != weight.shape[1]:
            hint = " (one value per column: sum over dim 1 and beyond, not dim 0)"
        elif got.numel() == expected.numel():
            hint = " (the right values? flatten to one value per row)"
        return [f"{case}: returned shape {tuple(got.shape)}, expected one score per output row: "
                f"{tuple(expected.shape)}{hint}"]
    if torch.allclose(got.to(expected.dtype), expected, rtol=1e-5, atol=1e-6):
        return []
    rest = tuple(range(1, weight.dim()))
    hints = {"the sum of w without the absolute value": weight.sum(dim=rest),
             "the L2 norm sqrt(sum w^2); the lecture's row importance is sum |w|":
                 weight.square().sum(dim=rest).sqrt()}
    for hint, value in hints.items():
        if torch.allclose(got.to(value.dtype), value, rtol=1e-5, atol=1e-6):
            return [f"{case}: that is {hint}"]
    return [f"{case}: got {_fmt(got)}, expected {_fmt(expected)} (sum of |w| over each output row)"]


def check_row_importance(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(weight) -> per-row sum |w|``: one score per output row (neuron or filter), the lecture's
    row-wise importance; W = [[3, -2], [1, -5]] gives [5, 6]."""
    cases = [("lecture example W = [[3, -2], [1, -5]]", torch.tensor([[3.0, -2.0], [1.0, -5.0]]))]
    cases += [(f"random {'x'.join(map(str, shape))} weight", _random(shape, seed=30 + i))
              for i, shape in enumerate(_SHAPES)]
    problems: list[str] = []
    for case, weight in cases:
        before = weight.clone()
        out = _as_tensor(call(fn, weight, problems=problems, case=case), case, problems)
        _check_untouched(before, weight, case, problems)
        if out is not None:
            problems += _row_problems(out, before, case)
    return report("row-wise importance", problems)
