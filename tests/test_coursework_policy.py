"""Issue 19, items 14-16: one delegation policy in the shared checker (threads included), checks that test the
right thing, and feedback a student can act on. Every shortcut the issue names must fail its check."""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as torch_prune

import pruneviz
from pruneviz.coursework import CheckFailed, check_apoz, check_channel_slice, check_fine_grained_prune
from pruneviz.coursework import check_obd_saliency, check_ratio_dict
from pruneviz.coursework.criteria import check_lasso_select, check_remove_dead_neurons, check_slimming_penalty
from pruneviz.coursework.granularity import check_row_prune
from pruneviz.coursework.report import POLICY, Check


def failure(check, fn) -> str:
    with pytest.raises(CheckFailed) as info:
        check(fn)
    return str(info.value)


# -- item 14: delegation, whatever the route -------------------------------------------------------------

def torch_l1_unstructured(tensor, sparsity):
    holder = torch.nn.Module()
    holder.weight = torch.nn.Parameter(tensor.clone())
    torch_prune.l1_unstructured(holder, "weight", amount=round(sparsity * tensor.numel()))
    return holder.weight.detach().clone()


def torch_ln_structured(weight, sparsity):
    holder = torch.nn.Module()
    holder.weight = torch.nn.Parameter(weight.clone())
    torch_prune.ln_structured(holder, "weight", amount=round(sparsity * weight.shape[0]), n=1, dim=0)
    return holder.weight.detach().clone()


def private_helpers(tensor, sparsity):
    from pruneviz.selection import _count, _ranks, _stable_order

    k = _count(sparsity, tensor.numel())
    rank = _ranks(_stable_order(tensor.abs(), None), tensor.numel()).reshape(tensor.shape)
    return torch.where(rank < k, torch.zeros_like(tensor), tensor)


def on_a_worker_thread(tensor, sparsity):
    return ThreadPoolExecutor(1).submit(pruneviz.prune_tensor, tensor, sparsity).result()


@pytest.mark.parametrize("check, fn, names", [
    (check_fine_grained_prune, torch_l1_unstructured, "torch.nn.utils.prune"),
    (check_row_prune, torch_ln_structured, "torch.nn.utils.prune"),
    (check_fine_grained_prune, private_helpers, "pruneviz.selection._"),
    (check_fine_grained_prune, on_a_worker_thread, "pruneviz.prune_tensor"),
])
def test_every_route_to_the_librarys_answer_is_refused(check, fn, names):
    message = failure(check, fn)
    assert names in message and POLICY in message
    assert message.count("the library's own answer") == 1  # said once for the whole check


def test_the_checkers_own_answers_are_refused():
    """pruneviz.coursework is plumbing for the notebooks (the checks live there), but its reference answers are
    answers: a student's function that calls one is told so, for the old checks and the new alike. What a check
    hands the student (the loss function of 04's cases, defined inside the check) stays callable."""
    from pruneviz.coursework.apoz import reference_apoz
    from pruneviz.coursework.criteria import _expected_slimming_masks, _per_sample_fisher, check_empirical_fisher
    from pruneviz.coursework.criteria import check_slimming_masks
    from pruneviz.coursework.granularity import _row_scores
    from pruneviz.coursework.obd import hessian_diagonal
    from pruneviz.coursework.refit import check_least_squares, reference_weight

    def rows_by_the_checker(weight, sparsity, norm="l1"):
        pruned = weight.clone()
        pruned[_row_scores(weight, norm).argsort(stable=True)[:round(sparsity * weight.shape[0])]] = 0
        return pruned

    refused = [(check_obd_saliency, lambda loss, w: 0.5 * hessian_diagonal(loss, w) * w.square(),
                "pruneviz.coursework.obd.hessian_diagonal"),
               (check_apoz, reference_apoz, "pruneviz.coursework.apoz.reference_apoz"),
               (check_least_squares, lambda layer, x, keep: reference_weight(layer, x, keep).to(layer.weight.dtype),
                "pruneviz.coursework.refit.reference_weight"),
               (check_row_prune, rows_by_the_checker, "pruneviz.coursework.granularity._row_scores"),
               (check_empirical_fisher, lambda model, layer, x, y: _per_sample_fisher(model, layer, x, y)[0],
                "pruneviz.coursework.criteria._per_sample_fisher"),
               (check_slimming_masks, _expected_slimming_masks, "pruneviz.coursework.criteria._expected_slimming")]
    for check, fn, name in refused:
        message = failure(check, fn)
        assert f"calls {name}" in message and "the checker's own answers" in message, message


def test_the_surgery_of_05_by_compact_is_refused():
    def dead_then_compact(mlp, x):  # finds the dead neurons itself, lets compact() do all the surgery
        mlp = copy.deepcopy(mlp)
        masks, h, last = {}, x, None
        for name, module in mlp.named_children():
            h = module(h)
            if isinstance(module, torch.nn.Linear):
                last = name
            elif isinstance(module, torch.nn.ReLU) and last is not None:
                alive = (h > 0).any(0)
                masks[last] = alive[:, None].expand_as(mlp.get_submodule(last).weight).clone()
        return pruneviz.compact(mlp, masks)

    assert "pruneviz.compact" in failure(check_remove_dead_neurons, dead_then_compact)


def test_what_an_exercise_is_handed_stays_allowed():
    """00's exercise is to use the Pruner it is given and pruneviz.evaluate: the check allows exactly those."""
    from pruneviz.coursework.welcome import check_highest_sparsity

    def highest(pruner, data, floor, grid):
        best = 0.0
        for ratio in grid:
            pruner.prune(ratio)
            if pruneviz.evaluate(pruner.model, data) >= floor:
                best = max(best, ratio)
        pruner.restore()
        return best

    assert check_highest_sparsity(highest)


def test_a_check_allows_plain_torch_and_its_own_helpers():
    check = Check("plain torch")
    with check.case("sorting"):
        out = check.run(lambda t: torch.sort(t.abs()).values, torch.randn(5))
    assert out is not None and check.done()


# -- item 15: checks that test the right thing ---------------------------------------------------------

def _lasso_free(rank):
    def select(z, y, k):
        keep = torch.zeros(z.shape[1], dtype=torch.bool)
        keep[rank(z, y)[:k]] = True
        return keep
    return select


by_correlation = _lasso_free(lambda z, y: torch.argsort((z.T @ y).abs(), descending=True))
by_ols = _lasso_free(lambda z, y: torch.argsort(torch.linalg.lstsq(z, y[:, None]).solution[:, 0].abs()
                                                * z.norm(dim=0), descending=True))


def greedy_forward(z, y, k):
    chosen = []
    for _ in range(k):
        def residual(c):
            cols = z[:, chosen + [c]]
            return float((y - cols @ torch.linalg.lstsq(cols, y[:, None]).solution[:, 0]).norm())
        chosen.append(min((c for c in range(z.shape[1]) if c not in chosen), key=residual))
    keep = torch.zeros(z.shape[1], dtype=torch.bool)
    keep[chosen] = True
    return keep


@pytest.mark.parametrize("fn, words", [(by_correlation, "|z_c^T y|"), (by_ols, "least-squares coefficients"),
                                       (greedy_forward, "greedy forward")])
def test_lasso_select_refuses_selections_that_use_no_lasso(fn, words):
    message = failure(check_lasso_select, fn)
    assert "6 correlated channels" in message and words in message


def _vgg_scan():
    from pruneviz.coursework.ratio import _cases

    return _cases()


def at_the_floor(scan, weights, target, floor):
    """Every layer as far as the floor allows: feasible, and a needless loss."""
    return {layer: float(rows[rows.accuracy >= floor].sparsity.max()) for layer, rows in scan.groupby("layer")}


def largest_first(scan, weights, target, floor):
    """The largest layers pruned first, each to its floor, until the target holds."""
    def kept(ratios):
        return sum(weights[k] * (1 - r) for k, r in ratios.items()) / sum(weights.values())

    ratios = {layer: 0.0 for layer in weights}
    for layer in sorted(weights, key=weights.get, reverse=True):
        for ratio in sorted(scan[(scan.layer == layer) & (scan.accuracy >= floor)].sparsity):
            ratios[layer] = float(ratio)
            if kept(ratios) <= target:
                return ratios
    return ratios


@pytest.mark.parametrize("fn", [at_the_floor, largest_first])
def test_ratio_dict_judges_the_trade_off_not_feasibility(fn):
    message = failure(check_ratio_dict, fn)
    assert "predicts a drop of" in message and "is possible at this target" in message


def test_ratio_dict_takes_float32_ratios_of_a_right_answer():
    def float32(scan, weights, target, floor):
        return {k: np.float32(v) for k, v in pruneviz.ratios_for_size(scan, weights, target, floor=floor).items()}

    with pytest.raises(CheckFailed, match="own answer"):  # the library's own answer, refused by policy
        check_ratio_dict(float32)
    from pruneviz.coursework.ratio import _problem, best_drop

    for _, scan, counts, target, floor in _vgg_scan():
        answer = pruneviz.ratios_for_size(scan, counts, target, floor=floor)
        assert _problem({k: np.float32(v) for k, v in answer.items()}, scan, counts, target, floor) is None
        assert _problem({k: torch.tensor(v) for k, v in answer.items()}, scan, counts, target, floor) is None
        assert best_drop(scan, counts, target, floor) <= pruneviz.ratios.kept_fraction(answer, counts) + 1


def test_obd_saliency_keeps_the_sign_of_the_curvature():
    from tests.test_coursework_04 import exact_diagonal

    message = failure(check_obd_saliency, lambda loss, w: 0.5 * exact_diagonal(loss, w).abs() * w.square())
    assert "negative curvature" in message and "used |h_ii|" in message


# -- item 16: feedback --------------------------------------------------------------------------------------

def test_a_failure_shows_the_list_not_a_traceback():
    error = CheckFailed("✗ x: 1 problem(s)\n  - a: wrong")
    assert error._render_traceback_() == [str(error)]


def test_one_cause_over_many_cases_is_said_once_and_the_others_still_show():
    def in_place_and_wrong(tensor, sparsity):
        tensor.mul_(1.0)  # harmless, but then also a real in-place change below
        k = round(sparsity * tensor.numel())
        if k:
            tensor.view(-1)[torch.argsort(tensor.abs().view(-1))[:k]] = 0.0
        return tensor

    message = failure(check_fine_grained_prune, in_place_and_wrong)
    lines = [line for line in message.splitlines() if line.startswith("  - ")]
    assert sum("in place" in line for line in lines) == 1
    assert "cases (" in message and "problem(s) in" in message


def test_an_inverted_apoz_is_named():
    from tests.notebook_source import notebook_function

    apoz = notebook_function("05_apoz.ipynb", "channel_apoz")
    message = failure(check_apoz, lambda model, x, b: {k: 1 - v for k, v in apoz(model, x, b).items()})
    assert "non-zero activations (1 - APoZ)" in message and "got 0.6562" not in message


def test_a_forgotten_batchnorm_bias_is_explained_not_crashed():
    def forgets_bias(conv, bn, nxt, keep):
        conv, bn, nxt = copy.deepcopy(conv), copy.deepcopy(bn), copy.deepcopy(nxt)
        conv.weight = torch.nn.Parameter(conv.weight[keep].clone())
        conv.out_channels = int(keep.sum())
        if conv.bias is not None:
            conv.bias = torch.nn.Parameter(conv.bias[keep].clone())
        bn.weight = torch.nn.Parameter(bn.weight[keep].clone())
        bn.running_mean, bn.running_var = bn.running_mean[keep].clone(), bn.running_var[keep].clone()
        bn.num_features = int(keep.sum())
        nxt.weight = torch.nn.Parameter(nxt.weight[:, keep].clone())
        nxt.in_channels = int(keep.sum())
        return conv, bn, nxt

    message = failure(check_channel_slice, forgets_bias)
    assert "not sliced: bias" in message and "Traceback" not in message


def test_a_per_layer_penalty_vector_is_explained():
    def per_layer(model, strength):
        return torch.stack([strength * m.weight.abs().sum() for m in model.modules()
                            if isinstance(m, torch.nn.BatchNorm2d)])

    message = failure(check_slimming_penalty, per_layer)
    assert "return one number" in message and "all layers added up" in message


def test_a_decorated_analysis_is_judged_by_its_own_code_not_by_the_shared_wrapper(mlp, digits):
    """Every analysis runs through one decorator (pruneviz.snapshot.analysis): allowing one must not allow the
    others, forbidding one must name it, and the wrapper's bookkeeping is nobody's answer."""
    from pruneviz.baselines import accuracy_sweep
    from pruneviz.sensitivity import sensitivity_scan

    small = pruneviz.data.as_tensors(digits.val, limit=32)

    def scans(model):
        return sensitivity_scan(model, small, sparsities=[0.5], progress=False)

    def sweeps(model):
        return accuracy_sweep(model, small, [0.5])

    allowed = Check("scan allowed", allow=[sensitivity_scan])
    with allowed.case("scan"):
        allowed.run(scans, mlp)
    assert allowed.done()
    refused = Check("sweep refused", allow=[sensitivity_scan], forbid=[accuracy_sweep])
    with refused.case("sweep"):
        refused.run(sweeps, mlp)
    with pytest.raises(CheckFailed, match=r"calls pruneviz\.(baselines\.)?accuracy_sweep, the library.s own answer"):
        refused.done()
