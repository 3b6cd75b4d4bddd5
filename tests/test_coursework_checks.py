"""The autograder checks pass a correct function and fail, with words, the typical wrong ones."""
import pytest
import torch

from pruneviz.coursework import CheckFailed, check_fine_grained_prune, check_nm_mask
from pruneviz.coursework.granularity import LAB_MASK, LAB_TENSOR


def run(check, fn, capsys) -> tuple[bool, str]:
    """(passed, words): the printed ✓ line on a pass, the CheckFailed message on a fail."""
    try:
        passed = check(fn)
    except CheckFailed as failure:
        return False, str(failure)
    assert passed is True
    return passed, capsys.readouterr().out


# -- fine-grained pruning --------------------------------------------------------------------------------

def fine_grained(tensor, sparsity):  # the lab's solution: k = round(s * n), kthvalue threshold
    k = round(sparsity * tensor.numel())
    if k == 0:
        return tensor.clone()
    threshold = tensor.abs().flatten().kthvalue(k).values
    return torch.where(tensor.abs() > threshold, tensor, 0.0)


def fine_grained_floor(tensor, sparsity):  # int() instead of round()
    k = int(sparsity * tensor.numel())
    if k == 0:
        return tensor.clone()
    threshold = tensor.abs().flatten().kthvalue(k).values
    return torch.where(tensor.abs() > threshold, tensor, 0.0)


def fine_grained_in_place(tensor, sparsity):
    pruned = fine_grained(tensor, sparsity)
    tensor.copy_(pruned)
    return tensor


def fine_grained_signed(tensor, sparsity):  # forgets |w|: prunes the most negative weights
    k = round(sparsity * tensor.numel())
    if k == 0:
        return tensor.clone()
    threshold = tensor.flatten().kthvalue(k).values
    return torch.where(tensor > threshold, tensor, 0.0)


def fine_grained_mask(tensor, sparsity):  # returns the mask, not the pruned tensor
    return fine_grained(tensor, sparsity) != 0


def test_fine_grained_passes_a_correct_function(capsys):
    passed, out = run(check_fine_grained_prune, fine_grained, capsys)
    assert passed, out
    assert out.startswith("✓ fine-grained pruning")


@pytest.mark.parametrize("fn, words", [
    (fine_grained_floor, "round(3.5) = 4 zeros"),
    (fine_grained_in_place, "changed the input tensor in place"),
    (fine_grained_signed, "the wrong weights"),
    (fine_grained_mask, "returned a bool mask"),
    (lambda t, s: t.flatten(), "returned shape"),
    (lambda t, s: None, "returned None"),
    (lambda t, s: t.tolist(), "returned a list"),
    (lambda t, s: t.double(), "dtype"),
    (lambda t, s: 1 / 0, "raised ZeroDivisionError"),
])
def test_fine_grained_fails_wrong_functions_with_words(fn, words, capsys):
    passed, out = run(check_fine_grained_prune, fn, capsys)
    assert passed is False
    assert out.startswith("✗ fine-grained pruning")
    assert words in out, out


def test_a_stub_is_one_problem_not_implemented_yet(capsys):
    def stub(tensor, sparsity):
        raise NotImplementedError("fine_grained_prune: your code here")
    passed, out = run(check_fine_grained_prune, stub, capsys)
    assert passed is False
    assert out.startswith("✗ fine-grained pruning: 1 problem(s)"), out
    assert "stub is not implemented yet" in out and "returned None" not in out


def test_the_labs_own_test_tensor_and_mask_are_a_case(capsys):
    def lab_only_wrong(tensor, sparsity):  # right everywhere but on the lab's tensor
        out = fine_grained(tensor, sparsity)
        if tensor.shape == (5, 5):
            out = torch.where(LAB_MASK, 0.0, tensor)
        return out
    passed, out = run(check_fine_grained_prune, lab_only_wrong, capsys)
    assert not passed and "Lab 1's 5x5 test tensor at 75 %" in out and "1 problem(s)" in out, out
    assert int(LAB_MASK.sum()) == 6 and LAB_TENSOR.shape == (5, 5)


def test_each_failed_case_reports_one_problem(capsys):
    # in place AND wrong weights AND a list: each case still names one problem, and the one cause all nine
    # cases share is said once, with its count
    passed, out = run(check_fine_grained_prune, lambda t, s: t.mul_(-1).tolist(), capsys)
    lines = out.split("\n")[1:]
    assert not passed and len(lines) == 1 and "1 problem(s) in 9 cases" in out, out
    assert "in 9 cases (" in lines[0] and "changed the input tensor in place" in lines[0], out


# -- N:M masks -------------------------------------------------------------------------------------------

def nm_mask(weight, n, m):  # sort inside each block of m along dim 1
    blocks = weight.abs().movedim(1, -1).reshape(-1, m)
    keep = torch.zeros_like(blocks, dtype=torch.bool)
    keep.scatter_(1, blocks.topk(n, dim=1).indices, True)
    moved = weight.movedim(1, -1).shape
    return keep.reshape(moved).movedim(-1, 1)


def nm_mask_last_dim(weight, n, m):  # blocks along the last dim instead of the input dim
    blocks = weight.abs().reshape(-1, m)
    keep = torch.zeros_like(blocks, dtype=torch.bool)
    keep.scatter_(1, blocks.topk(n, dim=1).indices, True)
    return keep.reshape(weight.shape)


def nm_mask_smallest(weight, n, m):  # keeps the smallest
    return ~nm_mask(weight, m - n, m)


def nm_mask_global(weight, n, m):  # right sparsity, but one threshold for the whole tensor
    k = weight.numel() * n // m
    threshold = weight.abs().flatten().topk(k).values[-1]
    return weight.abs() >= threshold


def test_nm_passes_a_correct_function(capsys):
    passed, out = run(check_nm_mask, nm_mask, capsys)
    assert passed, out


@pytest.mark.parametrize("fn, words", [
    (nm_mask_smallest, "not the 2 largest |w|"),
    (nm_mask_global, "do not keep exactly"),
    (nm_mask_last_dim, "blocks run along the input dim"),
    (lambda w, n, m: nm_mask(w, n, m).float(), "expected a bool mask"),
    (lambda w, n, m: nm_mask(w, n, m)[0], "returned shape"),
    (lambda w, n, m: w.abs_() > 0, "changed the input tensor in place"),
    (lambda w, n, m: w[n:m], "returned shape"),
    (lambda w, n, m: w.reshape(-1, m).topk(n)[9], "raised IndexError"),
])
def test_nm_fails_wrong_functions_with_words(fn, words, capsys):
    passed, out = run(check_nm_mask, fn, capsys)
    assert passed is False
    assert out.startswith("✗ N:M mask")
    assert words in out, out
