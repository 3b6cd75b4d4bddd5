"""Checks for the granularity and magnitude exercises (notebooks 01 and 02).

Each check runs the student's function on the lecture's and the lab's worked examples and on random tensors,
compares it with pruneviz's own implementation (:func:`pruneviz.prune_tensor`, :func:`pruneviz.tensor_mask`),
says in words what is wrong (the shape, the count, which weights, a mutated input), and refuses a function that
calls that implementation instead of being one.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..granularity import Granularity, NMGranularity
from ..selection import GlobalSelector, LocalSelector
from ..tensor import prune_tensor, tensor_mask
from .report import Check

# What computes a mask or a row score in the library: a student's function must not call it.
_LIBRARY = (prune_tensor, tensor_mask, LocalSelector, GlobalSelector, Granularity, NMGranularity)

# MIT 6.5940 Lab 1's test_fine_grained_prune: this 5x5 tensor at sparsity 0.75 keeps exactly these 6 weights.
LAB_TENSOR = torch.tensor([[-0.46, -0.40, 0.39, 0.19, 0.37],
                           [0.00, 0.40, 0.17, -0.15, 0.16],
                           [-0.20, -0.23, 0.36, 0.25, 0.03],
                           [0.24, 0.41, 0.07, 0.13, -0.15],
                           [0.48, -0.09, -0.36, 0.12, 0.45]])
LAB_MASK = torch.tensor([[True, True, False, False, False],
                         [False, True, False, False, False],
                         [False, False, False, False, False],
                         [False, True, False, False, False],
                         [True, False, False, False, True]])

# Random cases: a linear weight [out, in] and a conv weight [out, in, kh, kw], as the lecture's layers.
_SHAPES = ((8, 16), (4, 8, 3, 3))


def _random(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _fmt(t: torch.Tensor) -> str:
    """A short printable tensor (the values of a small case, the shape of a big one)."""
    if t.numel() <= 8:
        return str([round(v, 4) if isinstance(v, float) else v for v in t.flatten().tolist()])
    return f"a tensor of shape {tuple(t.shape)}"


def _run_on_copy(check: Check, fn: Callable, tensor: torch.Tensor, *args) -> torch.Tensor:
    """Run ``fn(tensor, *args)``; the result must be a tensor and ``tensor`` must come back unchanged."""
    out = check.run(fn, tensor, *args, unchanged="changed the input tensor in place; work on a copy (e.g. "
                    "tensor.clone() or torch.where) so the dense weights survive")
    check.expect(out is not None, "returned None; return the result (a tensor)")
    check.expect(isinstance(out, torch.Tensor), f"returned a {type(out).__name__}, expected a torch.Tensor")
    return out


# -- fine-grained pruning ---------------------------------------------------------------------------------

def _fine_grained_problem(got: torch.Tensor, tensor: torch.Tensor, sparsity: float,
                          expected: torch.Tensor) -> str | None:
    if got.shape != tensor.shape:
        return f"returned shape {tuple(got.shape)}, expected the input's shape {tuple(tensor.shape)}"
    if got.dtype == torch.bool:
        return "returned a bool mask; return the pruned tensor (the weights with the pruned ones set to zero)"
    if got.dtype != tensor.dtype:
        return f"returned dtype {got.dtype}, expected the input's dtype {tensor.dtype}"
    if torch.equal(got, expected):
        return None
    small = tensor.numel() <= 8
    shown = f" (got {_fmt(got)}, expected {_fmt(expected)})" if small else ""
    n_zero, n_expected = int((got == 0).sum()), int((expected == 0).sum())
    if n_zero != n_expected:
        return (f"{n_zero} of {tensor.numel()} entries are zero, expected round({sparsity} x {tensor.numel()}) "
                f"= {n_expected}{shown}")
    kept = got != 0
    if not torch.equal(got[kept], tensor[kept]):
        return "the kept weights changed value; keep them exactly as they were"
    wrong = (kept != (expected != 0)).nonzero().tolist()
    where = "" if small else f" (first differing entry: index {wrong[0]})"
    return f"the right number of zeros but the wrong weights: prune the smallest |w| first{shown}{where}"


def check_fine_grained_prune(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Check ``fn(tensor, sparsity) -> pruned copy``: the ``round(sparsity x numel)`` smallest |w| set to zero.

    Cases: the lecture's [-2, 3, -5, 1] at 50 %, Lab 1's 5x5 test tensor at 75 % against the lab's own mask,
    sparsity 0 and 1, a count that only ``round`` gets right, and random linear and conv weights against
    :func:`pruneviz.prune_tensor`. A function that calls the library's pruning is refused.
    """
    lecture = torch.tensor([-2.0, 3.0, -5.0, 1.0])
    cases = [
        ("lecture example [-2, 3, -5, 1] at 50 %", lecture, 0.5, torch.tensor([0.0, 3.0, -5.0, 0.0])),
        ("Lab 1's 5x5 test tensor at 75 % (keeps -0.46, -0.40, 0.40, 0.41, 0.48, 0.45)", LAB_TENSOR, 0.75,
         torch.where(LAB_MASK, LAB_TENSOR, 0.0)),
        ("sparsity 0 keeps everything", _random((4, 6), seed=1), 0.0, None),
        ("sparsity 1 prunes everything", _random((4, 6), seed=2), 1.0, None),
        ("7 entries at 50 % (round(3.5) = 4 zeros, not int(3.5) = 3)", _random((7,), seed=3), 0.5, None),
    ]
    cases += [(f"random {'x'.join(map(str, shape))} weight at {s:.0%}", _random(shape, seed=10 + i), s, None)
              for i, shape in enumerate(_SHAPES) for s in (0.3, 0.9)]
    check = Check("fine-grained pruning", forbid=_LIBRARY)
    for case, tensor, sparsity, expected in cases:
        with check.case(case):
            tensor = tensor.clone()
            if expected is None:
                expected = prune_tensor(tensor, sparsity)
            out = _run_on_copy(check, fn, tensor, sparsity)
            problem = _fine_grained_problem(out, tensor, sparsity, expected)
            if problem:
                check.fail(problem)
    return check.done()


# -- N:M masks --------------------------------------------------------------------------------------------

def _blocks(t: torch.Tensor, m: int) -> torch.Tensor:
    """Blocks of ``m`` consecutive entries along the input dim (dim 1), one block per row of the result."""
    return t.movedim(1, -1).reshape(-1, m)


def _nm_problem(got: torch.Tensor, weight: torch.Tensor, n: int, m: int) -> str | None:
    if got.shape != weight.shape:
        return f"returned shape {tuple(got.shape)}, expected the weight's shape {tuple(weight.shape)}"
    if got.dtype != torch.bool:
        return f"returned dtype {got.dtype}, expected a bool mask (True = kept)"
    expected = tensor_mask(weight, 1 - n / m, granularity=f"{n}:{m}")
    if torch.equal(got, expected):
        return None
    kept = _blocks(got, m).sum(dim=1)
    wrong = int((kept != n).sum())
    if wrong:
        return (f"{wrong} of {kept.numel()} blocks of {m} do not keep exactly {n} "
                f"(kept counts seen: {sorted(set(kept.tolist()))}); blocks run along the input dim (dim 1)")
    return (f"every block keeps {n}, but not the {n} largest |w| of the block"
            + (" (are your blocks along dim 1, the input dimension?)" if weight.dim() > 1 else ""))


def check_nm_mask(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> bool:
    """Check ``fn(weight, n, m) -> bool mask``: in every block of ``m`` consecutive weights along the input
    dimension, exactly the ``n`` largest |w| are kept (NVIDIA Ampere's 2:4 for n=2, m=4)."""
    example = torch.tensor([[3.0, -1.0, 0.5, -4.0, 2.0, 1.0, -3.0, 0.1]])
    cases = [("one row [3, -1, 0.5, -4, 2, 1, -3, 0.1] at 2:4", example, 2, 4)]
    cases += [(f"random {'x'.join(map(str, shape))} weight at {n}:{m}", _random(shape, seed=20 + i), n, m)
              for i, shape in enumerate(_SHAPES) for n, m in ((2, 4), (1, 4), (4, 8))]
    check = Check("N:M mask", forbid=_LIBRARY)
    for case, weight, n, m in cases:
        with check.case(case):
            out = _run_on_copy(check, fn, weight, n, m)
            problem = _nm_problem(out, weight, n, m)
            if problem:
                check.fail(problem)
    return check.done()


# -- row-wise pruning -------------------------------------------------------------------------------------

def _row_scores(weight: torch.Tensor, norm: str) -> torch.Tensor:
    """Each output row's importance: sum |w| (L1) or sqrt(sum w^2) (L2) over everything but dim 0."""
    rows = weight.flatten(1)
    return rows.abs().sum(dim=1) if norm == "l1" else rows.square().sum(dim=1).sqrt()


def _zeroed_rows(t: torch.Tensor) -> list[int]:
    return t.flatten(1).eq(0).all(dim=1).nonzero().flatten().tolist()


def _tied_rows(scores: torch.Tensor, k: int) -> list[int] | None:
    """The rows tied with the k-th least important one, when the tie straddles the cut (else None)."""
    if not 0 < k < scores.numel():
        return None
    cut = torch.sort(scores, stable=True).values[k - 1]
    tied = (scores == cut).nonzero().flatten().tolist()
    return tied if int((scores < cut).sum()) + len(tied) > k else None


def _row_prune_problem(got: torch.Tensor, weight: torch.Tensor, sparsity: float, norm: str) -> str | None:
    criterion = "magnitude" if norm == "l1" else "l2"
    expected = prune_tensor(weight, sparsity, criterion=criterion, granularity="channel")
    if got.shape != weight.shape:
        return f"returned shape {tuple(got.shape)}, expected the weight's shape {tuple(weight.shape)}"
    if got.dtype == torch.bool:
        return "returned a bool mask; return the pruned weight (whole rows set to zero)"
    if got.dtype != weight.dtype:
        return f"returned dtype {got.dtype}, expected the weight's dtype {weight.dtype}"
    if torch.equal(got, expected):
        return None
    rows = weight.shape[0]
    zero_rows = got.flatten(1).eq(0).all(dim=1)
    some_zero = got.flatten(1).eq(0).any(dim=1) & ~weight.flatten(1).eq(0).any(dim=1)
    if bool((some_zero & ~zero_rows).any()):
        return "some rows are only partly zero: row-wise pruning removes whole rows (every weight of a neuron)"
    scores = _row_scores(weight, norm)
    n_expected = len(_zeroed_rows(expected))
    tied = _tied_rows(scores, n_expected)
    if int(zero_rows.sum()) != n_expected:
        if tied and int(zero_rows.sum()) > n_expected:
            return (f"{int(zero_rows.sum())} of {rows} rows are zero, expected round({sparsity:.4g} x {rows}) = "
                    f"{n_expected}: rows {tied} tie at the cut, and a threshold (importance <= the k-th smallest) "
                    "takes all of them; count k rows instead")
        return (f"{int(zero_rows.sum())} of {rows} rows are zero, expected round({sparsity:.4g} x {rows}) = "
                f"{n_expected} rows")
    kept = ~zero_rows
    if not torch.equal(got[kept], weight[kept]):
        return "the kept rows changed value; keep them exactly as they were"
    zeroed, want = _zeroed_rows(got), _zeroed_rows(expected)
    if tied and set(zeroed) - set(tied) == set(want) - set(tied):
        return (f"zeroed rows {zeroed}, expected {want}: rows {tied} have the same importance "
                f"({float(scores[tied[0]]):g}); a tie goes in row order, the lower index first (a stable sort: "
                "torch.argsort(..., stable=True)), so the rows pruned at a lower ratio stay pruned at a higher one")
    k = n_expected
    l1, l2 = weight.flatten(1).abs().sum(dim=1), weight.flatten(1).square().sum(dim=1)
    wrong_orders = {"the rows of largest importance went: prune the least important rows": -scores,
                    "the rows were ranked by sum w, without the absolute value": weight.flatten(1).sum(dim=1)}
    if norm == "l1":
        wrong_orders["the rows were ranked by the L2 norm; norm='l1' is the lecture's sum |w|"] = l2
    else:
        wrong_orders["the rows were ranked by sum |w| (L1); norm='l2' asks for sqrt(sum w^2)"] = l1
    matches = [hint for hint, score in wrong_orders.items()
               if set(torch.sort(score, stable=True).indices[:k].tolist()) == set(zeroed)]
    if len(matches) == 1:
        return matches[0]
    if matches:  # a case too small to tell them apart: name each
        return f"zeroed rows {zeroed}, expected rows {want}: either " + ", or ".join(matches)
    return f"zeroed rows {zeroed}, expected rows {want} (the {norm.upper()}-smallest)"


def check_row_prune(fn: Callable[..., torch.Tensor]) -> bool:
    """Check ``fn(weight, sparsity, norm="l1") -> pruned copy``: the ``round(sparsity x rows)`` output rows
    (neurons, filters) of smallest importance set to zero, whole rows at a time, the rest unchanged. The importance
    of a row is its sum |w| (``norm="l1"``, the lecture's) or sqrt(sum w^2) (``norm="l2"``), over every weight of
    the row (a conv filter's in x kh x kw); ties go in row order (a stable sort), so masks are nested.

    Cases: the lecture's W = [[3, -2], [1, -5]] at 50 % (row 0 goes, though it holds the second largest weight),
    the notebook's rows [1, 1, 1, 1] and [2.5, 0, 0, 0] under both norms, rows that tie at the cut (at two
    ratios, so a threshold or an unstable order shows), sparsity 0 and 1, 7 rows at 50 % (round(3.5) = 4), and
    random linear and conv weights against :func:`pruneviz.prune_tensor` at channel granularity.
    """
    ties = torch.tensor([[1.0, -1.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.5, -1.0], [-2.0, 0.0, 0.0],
                         [0.0, 0.0, 4.0]])  # rows 0, 2, 3 and 4 all sum to 2
    # four rows of L2 norm 5 and one of 5.2, which sum |w| would rank among the first three
    l2_ties = torch.tensor([[3.0, 4.0], [5.2, 0.0], [5.0, 0.0], [-4.0, 3.0], [0.0, -5.0]])
    g = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.5, 0.0, 0.0, 0.0]])
    cases = [
        ("lecture example W = [[3, -2], [1, -5]] at 50 %", torch.tensor([[3.0, -2.0], [1.0, -5.0]]), 0.5, "l1"),
        ("rows [1, 1, 1, 1] and [2.5, 0, 0, 0] at 50 %, norm='l1' (L1 keeps the first)", g, 0.5, "l1"),
        ("rows [1, 1, 1, 1] and [2.5, 0, 0, 0] at 50 %, norm='l2' (L2 keeps the second)", g, 0.5, "l2"),
        ("6 rows, four of them tied at sum |w| = 2, at 1/3 (the tie straddles the cut)", ties, 1 / 3, "l1"),
        ("the same 6 rows at 50 %", ties, 0.5, "l1"),
        ("5 rows, four of them tied at L2 norm 5, at 60 %, norm='l2'", l2_ties, 0.6, "l2"),
        ("sparsity 0 keeps every row", _random((5, 6), seed=41), 0.0, "l1"),
        ("sparsity 1 prunes every row", _random((5, 6), seed=42), 1.0, "l1"),
        ("7 rows at 50 % (round(3.5) = 4 rows, not int(3.5) = 3)", _random((7, 5), seed=43), 0.5, "l1"),
    ]
    cases += [(f"random {'x'.join(map(str, shape))} weight at {s:.0%}, norm={norm!r}", _random(shape, seed=44 + i),
               s, norm) for i, shape in enumerate(_SHAPES) for s in (0.25, 0.75) for norm in ("l1", "l2")]
    check = Check("row-wise pruning", forbid=_LIBRARY)
    for case, weight, sparsity, norm in cases:
        with check.case(case):
            if norm == "l1":  # the lecture's default: called without the argument
                out = _run_on_copy(check, fn, weight, sparsity)
            else:
                out = check.run(fn, weight, sparsity, norm=norm, unchanged="changed the input tensor in place; "
                                "work on a copy (e.g. weight.clone()) so the dense weights survive")
                check.expect(isinstance(out, torch.Tensor), f"returned a {type(out).__name__}, expected a tensor")
            problem = _row_prune_problem(out, weight, sparsity, norm)
            if problem:
                check.fail(problem)
    return check.done()
