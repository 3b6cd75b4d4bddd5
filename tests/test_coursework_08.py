"""Notebook 08's exercise checks: the solution passes; wrong answers and the library's own code are refused in
words (pruneviz.coursework.schedules)."""
import pytest
import torch

from pruneviz.coursework import CheckFailed
from pruneviz.coursework.schedules import check_masked_momentum_step


def solution(weight, grad, velocity, mask, lr, momentum):
    mask = mask.to(weight.dtype)
    velocity = (momentum * velocity + grad * mask) * mask
    return (weight - lr * velocity) * mask, velocity


def test_the_solution_passes(capsys):
    assert check_masked_momentum_step(solution)
    assert "✓ masked momentum step" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,words", [
    # gradient masked, weight not masked after the step: dense momentum revives the pruned weights
    (lambda w, g, v, m, lr, mu: (w - lr * (mu * v + g * m), mu * v + g * m),
     "pruned weight(s) are not zero after the step"),
    # weights masked, the velocity of pruned weights kept: the optimizer's state holds dense momentum
    (lambda w, g, v, m, lr, mu: ((w - lr * (mu * v + g * m)) * m, mu * v + g * m),
     "the velocity of 2 pruned weight(s) is not zero"),
    # no momentum at all (velocity dropped)
    (lambda w, g, v, m, lr, mu: ((w - lr * g) * m, torch.zeros_like(v)), "moved like SGD without momentum"),
    # the step taken with the old velocity (v updated after the weight)
    (lambda w, g, v, m, lr, mu: ((w - lr * v) * m, (mu * v + g) * m), "kept weights differ from momentum SGD"),
    (lambda w, g, v, m, lr, mu: w * m, "return (new weight, new velocity)"),
])
def test_wrong_answers_are_told_what_is_wrong(wrong, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_masked_momentum_step(wrong)


def test_the_lectures_case_is_the_first_problem():
    def no_mask_after(w, g, v, m, lr, mu):
        return w - lr * (mu * v + g * m), (mu * v + g * m) * m

    with pytest.raises(CheckFailed) as failed:
        check_masked_momentum_step(no_mask_after)
    lines = str(failed.value).splitlines()
    assert "the lecture's four weights" in lines[1]
    assert len(lines) == 1 + 4  # one problem per case: the lecture's and three random sequences


def test_torch_sgd_is_refused():
    def with_torch_sgd(weight, grad, velocity, mask, lr, momentum):
        param = torch.nn.Parameter(weight.clone())
        optimizer = torch.optim.SGD([param], lr=lr, momentum=momentum)
        param.grad = grad * mask
        optimizer.state[param]["momentum_buffer"] = velocity.clone()
        optimizer.step()
        return param.detach() * mask, optimizer.state[param]["momentum_buffer"] * mask

    with pytest.raises(CheckFailed, match="calls torch.optim.sgd.SGD.*write it yourself"):
        check_masked_momentum_step(with_torch_sgd)


def test_the_pruners_own_calls_are_refused(mlp):
    import pruneviz

    def with_the_pruner(weight, grad, velocity, mask, lr, momentum):
        layer = torch.nn.Linear(weight.numel(), 1, bias=False)
        pruner = pruneviz.Pruner(torch.nn.Sequential(layer))
        pruner.apply_masks()
        return solution(weight, grad, velocity, mask, lr, momentum)

    # the first library call is the one named (the Pruner it builds), and once
    with pytest.raises(CheckFailed, match=r"pruneviz\.pruner\.Pruner\.__init__, the library's own answer"):
        check_masked_momentum_step(with_the_pruner)


def test_a_stub_is_one_problem():
    def stub(*args):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="(?s)1 problem.*not implemented yet"):
        check_masked_momentum_step(stub)
