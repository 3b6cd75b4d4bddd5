"""The check mechanism: raises with the words, one problem per case, and refuses the library's own answer."""
import sys

import pandas as pd
import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.coursework import (CheckFailed, check_apoz, check_channel_slice, check_fine_grained_prune,
                                 check_mlp_parameters, check_nm_mask, check_obd_saliency, check_ratio_dict)
from pruneviz.coursework.criteria import check_slimming_penalty
from pruneviz.coursework.refit import check_least_squares
from pruneviz.coursework.report import Check, call, report
from pruneviz.coursework.schedules import check_agp_sparsity
from pruneviz.criteria.regression import least_squares
from pruneviz.schedules import AGP


def _double(x):
    return 2 * x


def test_a_pass_prints_a_tick_and_returns_true(capsys):
    check = Check("doubling")
    for x in (1, 2):
        with check.case(f"x = {x}"):
            check.expect(check.run(_double, x) == 2 * x, "wrong")
    assert check.done() is True
    assert capsys.readouterr().out == "✓ doubling: all checks passed\n"


def test_a_fail_raises_an_assertion_error_with_one_problem_per_case(capsys):
    check = Check("doubling")
    for x in (1, 2, 3):
        with check.case(f"x = {x}"):
            got = check.run(lambda v: None if v < 3 else v, x)
            check.expect(got is not None, "returned None")
            check.expect(got == 2 * x, f"got {got}")  # not reached when the line above failed
    with pytest.raises(AssertionError) as failure:
        check.done()
    assert isinstance(failure.value, CheckFailed)
    # one cause over two cases is said once, with its cases (issue 19: repeats hid the other mistakes)
    assert str(failure.value) == ("✗ doubling: 2 problem(s) in 3 cases\n  - in 2 cases (x = 1; x = 2): returned None\n"
                                  "  - x = 3: got 3")
    assert capsys.readouterr().out == ""  # the words are in the error, printed once by whoever shows it


def test_an_error_in_the_students_function_is_a_problem_of_its_case():
    check = Check("inverse")
    for x in (0, 1):
        with check.case(f"x = {x}"):
            check.expect(check.run(lambda v: 1 / v, x) == 1, "wrong")
    assert check.problems == ["x = 0: raised ZeroDivisionError: division by zero"]


def test_a_stub_is_one_problem_for_the_whole_check():
    def answer(x):
        raise NotImplementedError("answer: your code here")
    check = Check("answer")
    for x in range(4):
        with check.case(f"x = {x}"):
            check.expect(check.run(answer, x) is not None, "returned None")
    assert check.problems == ["answer is not implemented yet (it still raises NotImplementedError)"]


def test_not_implemented_after_some_cases_names_its_case():
    def partly(x):
        if x > 1:
            raise NotImplementedError("the general case")
        return x
    check = Check("partly")
    for x in range(4):
        with check.case(f"x = {x}"):
            check.run(partly, x)
    assert check.problems == ["x = 2: partly raised NotImplementedError; the cases after this one were not run"]


def _via_pruner(tensor, sparsity):  # delegation two calls deep: Pruner -> selector
    holder = nn.Linear(tensor.shape[1], tensor.shape[0], bias=False)
    with torch.no_grad():
        holder.weight.copy_(tensor)
    pruner = pruneviz.Pruner(holder, "magnitude", "element", "local")
    pruner.prune(sparsity)
    return holder.weight.detach().clone()


@pytest.mark.parametrize("fn", [pruneviz.prune_tensor, lambda t, s: pruneviz.tensor.prune_tensor(t, s),
                                lambda t, s: torch.where(pruneviz.tensor_mask(t, s), t, 0.0), _via_pruner],
                         ids=["the function itself", "a lambda around it", "tensor_mask", "through Pruner"])
def test_delegating_to_the_library_is_refused_once(fn):
    with pytest.raises(CheckFailed) as failure:
        check_fine_grained_prune(fn if fn is not _via_pruner else
                                 lambda t, s: _via_pruner(t.reshape(t.shape[0], -1), s).reshape(t.shape))
    words = str(failure.value)
    assert "1 problem(s)" in words and "the library's own answer" in words, words
    assert "write it yourself" in words


def test_the_profiler_in_place_before_a_check_is_back_after_it():
    calls = []

    def outer_profile(frame, event, arg):
        calls.append(event)

    sys.setprofile(outer_profile)
    try:
        with pytest.raises(CheckFailed):
            check_fine_grained_prune(pruneviz.prune_tensor)
        assert sys.getprofile() is outer_profile
    finally:
        sys.setprofile(None)
    assert calls  # the previous profiler kept receiving events during the check


def test_the_older_call_and_report_helpers_still_work(capsys):
    problems = []
    assert call(lambda: 1 / 0, problems=problems, case="case a") is None
    assert problems == ["case a: raised ZeroDivisionError: division by zero"]
    assert report("old style", []) is True and "✓ old style" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="case a: raised ZeroDivisionError"):
        report("old style", problems)


# -- every check refuses the library's own answer ---------------------------------------------------------

def _library_apoz(model, x, batch_size):
    """pruneviz.apoz, its keys moved from each layer to the ReLU after it."""
    names = [n for n, _ in model.named_modules()]
    relus = [n for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
    values = pruneviz.apoz(model, (x, torch.zeros(len(x), dtype=torch.long)))
    return {relu: next(v for layer, v in values.items() if names.index(layer) < names.index(relu))
            for relu in relus}


def _library_obd(loss_fn, weight):
    """The exact diagonal by hand, then the kit's own formula (pruneviz.criteria.obd_saliency)."""
    from pruneviz.criteria.obd import obd_saliency

    w = weight.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(w), w, create_graph=True)
    h = torch.stack([torch.autograd.grad(g.reshape(-1)[i], w, retain_graph=True)[0].reshape(-1)[i]
                     for i in range(w.numel())]).reshape(w.shape)
    return obd_saliency(weight, h)


def _library_least_squares(layer, x, keep):
    from pruneviz.criteria.regression import _features

    features = _features(layer, x, layer(x).detach(), x.shape[1], 10**9, 0)
    return least_squares(features, keep)[0].reshape(layer.weight.shape).to(layer.weight.dtype)


def _library_slice(conv, bn, next_conv, keep):
    import copy
    net = copy.deepcopy(nn.Sequential(conv, bn, nn.ReLU(), next_conv))
    small = pruneviz.compact(net, {"0": keep})
    return small[0], small[1], small[3]


LIBRARY_ANSWERS = {
    "fine-grained": (check_fine_grained_prune, pruneviz.prune_tensor),
    "N:M": (check_nm_mask, lambda w, n, m: pruneviz.tensor_mask(w, 1 - n / m, granularity=f"{n}:{m}")),
    "APoZ": (check_apoz, _library_apoz),
    "OBD": (check_obd_saliency, _library_obd),
    "slimming": (check_slimming_penalty, pruneviz.slimming_penalty),
    "least squares": (check_least_squares, _library_least_squares),
    "ratio dict": (check_ratio_dict, lambda scan, w, target, floor: pruneviz.ratios_for_size(scan, w, target,
                                                                                             floor=floor)),
    "AGP": (check_agp_sparsity, lambda step, i, f, start, prunes, every:
            AGP(f, i, start=start, prunes=prunes, every=every).sparsity_at(step)),
    "channel slice": (check_channel_slice, _library_slice),
    "MLP parameters": (check_mlp_parameters, lambda widths: pruneviz.count_parameters(
        nn.Sequential(*[nn.Linear(a, b) for a, b in zip(widths, widths[1:])]))),
}


@pytest.mark.parametrize("name", LIBRARY_ANSWERS)
def test_every_check_refuses_the_librarys_own_implementation(name):
    check, library_answer = LIBRARY_ANSWERS[name]
    with pytest.raises(CheckFailed) as failure:
        check(library_answer)
    words = str(failure.value)
    assert "1 problem(s)" in words and "the library's own answer to this exercise" in words, words


@pytest.mark.parametrize("value, mutate", [
    (torch.ones(3), lambda t: t.mul_(2)),
    (nn.Linear(2, 2), lambda m: m.weight.data.zero_()),
    (pd.DataFrame({"a": [1.0, 2.0]}), lambda df: df.__setitem__("a", 0.0)),
    ([1, 2], lambda xs: xs.append(3)),
], ids=["tensor", "module", "DataFrame", "list"])
def test_unchanged_catches_an_argument_changed_in_place(value, mutate):
    check = Check("purity")
    with check.case("mutating"):
        check.run(mutate, value, unchanged="changed its input in place")
    with check.case("reading"):
        check.run(lambda v: None, value, unchanged="changed its input in place")
    assert check.problems == ["mutating: changed its input in place"]


def test_unchanged_ignores_what_cannot_be_compared():
    check = Check("purity")
    with check.case("an object compared by identity"):
        check.run(lambda v: None, object(), unchanged="changed")
    assert check.problems == []



def test_a_delegation_that_then_fails_is_still_told_as_a_delegation():
    def half_delegating(tensor, sparsity):
        pruneviz.tensor_mask(tensor, sparsity)
        raise RuntimeError("and then something broke")
    with pytest.raises(CheckFailed) as failure:
        check_fine_grained_prune(half_delegating)
    assert "calls pruneviz.tensor_mask" in str(failure.value) and "RuntimeError" not in str(failure.value)


# -- the checks written for the new exercises, tried on the library's answer too -------------------------

def _library_momentum_step(weight, grad, velocity, mask, lr, momentum):
    param = nn.Parameter(weight.clone())
    sgd = torch.optim.SGD([param], lr=lr, momentum=momentum)
    sgd.state[param]["momentum_buffer"] = velocity.clone() * mask
    param.grad = grad * mask
    sgd.step()
    return param.detach() * mask, sgd.state[param]["momentum_buffer"] * mask


def _library_slimming_masks(model, fraction):
    import copy
    pruner = pruneviz.Pruner(copy.deepcopy(model), "scaling", "channel", "global").prune(fraction)
    return dict(pruner.masks)


def _library_fisher(model, layer, x, y):
    return pruneviz.hessian_diagonal(model, (x, y), layers=[layer], mode="estimate")[layer]


def _library_neuron_pruning(mlp, sparsity):
    import copy
    mlp = copy.deepcopy(mlp)
    return pruneviz.compact(mlp, pruneviz.Pruner(mlp, "magnitude", "channel").prune(sparsity).masks)


def _library_remove_dead(mlp, x):
    import copy

    from pruneviz.criteria.apoz import prune_dead
    mlp = copy.deepcopy(mlp)
    pruner = prune_dead(mlp, (x, torch.zeros(len(x), dtype=torch.long)))
    return pruneviz.compact(mlp, pruner.masks)


def _library_lasso_select(z, y, k):
    from pruneviz.criteria.regression import Features, lasso_order, top_k
    features = Features(z[:, :, None], torch.ones(1, z.shape[1], 1, dtype=z.dtype), y.reshape(-1, 1))
    return top_k(lasso_order(features), k)


def _library_highest_sparsity(pruner, data, floor, grid):
    from pruneviz.baselines import accuracy_sweep
    sweep = accuracy_sweep(pruner.model, data, grid, scope="global")
    return max((r for r, a in zip(sweep.sparsity, sweep.accuracy) if a >= floor), default=0.0)


def _more_library_answers():
    from pruneviz.coursework import criteria, granularity, schedules, surgery, welcome
    return {
        "masked momentum step": (schedules.check_masked_momentum_step, _library_momentum_step),
        "slimming masks": (criteria.check_slimming_masks, _library_slimming_masks),
        "empirical Fisher": (criteria.check_empirical_fisher, _library_fisher),
        "neuron pruning": (surgery.check_neuron_pruning, _library_neuron_pruning),
        "removing dead neurons": (criteria.check_remove_dead_neurons, _library_remove_dead),
        "LASSO selection": (criteria.check_lasso_select, _library_lasso_select),
        "row-wise pruning": (granularity.check_row_prune,
                             lambda w, s: pruneviz.prune_tensor(w, s, granularity="channel")),
        "highest sparsity": (welcome.check_highest_sparsity, _library_highest_sparsity),
    }


@pytest.mark.parametrize("name", ["masked momentum step", "slimming masks", "empirical Fisher", "neuron pruning",
                                  "removing dead neurons", "LASSO selection", "row-wise pruning",
                                  "highest sparsity"])
def test_the_new_checks_refuse_the_librarys_own_implementation(name):
    check, library_answer = _more_library_answers()[name]
    with pytest.raises(CheckFailed) as failure:
        check(library_answer)
    words = str(failure.value)
    assert "1 problem(s)" in words and "the library's own answer to this exercise" in words, words


def test_every_check_is_tried_on_the_librarys_answer():
    """A new check_* must show it refuses the library's own implementation: add it above."""
    import importlib
    import inspect
    import pkgutil

    import pruneviz.coursework as coursework

    checks = {name for info in pkgutil.iter_modules(coursework.__path__)
              for name, fn in inspect.getmembers(importlib.import_module(f"pruneviz.coursework.{info.name}"),
                                                 inspect.isfunction)
              if name.startswith("check_") and fn.__module__.startswith("pruneviz.coursework.")}
    tried = {check.__name__ for check, _ in [*LIBRARY_ANSWERS.values(), *_more_library_answers().values()]}
    # the project (11) is the library used end to end: Pruner, finetune, compact are the student's to call, and
    # tests/test_project.py grades the reference that calls them
    tried |= {"check_project"}
    assert checks - tried == set(), ("add each of these, called with the library's own answer, to "
                                     "LIBRARY_ANSWERS or _more_library_answers in tests/test_coursework_report.py")


def test_a_check_that_runs_outside_a_case_is_told_it_is_the_checks_mistake():
    check = Check("careless")
    with pytest.raises(RuntimeError, match="outside a `with check.case"):
        check.expect(False, "wrong")
