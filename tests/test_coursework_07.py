"""Notebook 07's exercise check (pruneviz.coursework.ratio): solutions pass; wrong answers, a scan changed in place
and the library's own ratios_for_size are refused in words."""
import pytest

from pruneviz.coursework import CheckFailed
from pruneviz.coursework.ratio import check_ratio_dict
from pruneviz.ratios import ratios_for_size


def notebook_solution(scan, weights, target, floor):
    """The solution of notebook 07 (cheapest accuracy per weight removed, above the floor)."""
    total = sum(weights.values())
    allowed = scan[scan.accuracy >= floor]
    ratios = {layer: 0.0 for layer in weights}
    while sum(n * (1 - ratios[k]) for k, n in weights.items()) > target * total:
        best = None
        for layer, rows in allowed.groupby("layer"):
            now = ratios[layer]
            acc_now = float(scan[(scan.layer == layer) & (scan.sparsity == now)].accuracy.iloc[0])
            for r, acc in zip(rows.sparsity, rows.accuracy):
                if r > now:
                    cost = (acc_now - acc) / (weights[layer] * (r - now))
                    if best is None or cost < best[0]:
                        best = (cost, layer, float(r))
        ratios[best[1]] = best[2]
    return ratios


def largest_first(scan, weights, target, floor):
    """Feasible, and not a trade-off: prune the layer with the most weights left, one scanned step at a time
    (issue 19: the check judges the accuracy the dict keeps, so this fails where the large layer is sensitive)."""
    ratios = {layer: 0.0 for layer in weights}
    allowed = scan[scan.accuracy >= floor]
    while sum(n * (1 - ratios[k]) for k, n in weights.items()) > target * sum(weights.values()):
        layer = max(weights, key=lambda k: weights[k] * (1 - ratios[k]) if
                    (allowed[allowed.layer == k].sparsity > ratios[k] + 1e-9).any() else -1)
        ratios[layer] = float(allowed[(allowed.layer == layer)
                                      & (allowed.sparsity > ratios[layer] + 1e-9)].sparsity.min())
    return ratios


@pytest.mark.parametrize("solution", [notebook_solution])
def test_solutions_pass(solution, capsys):
    assert check_ratio_dict(solution)
    assert "✓ sensitivity-guided ratio dict" in capsys.readouterr().out


def test_largest_layers_first_is_feasible_but_refused():
    with pytest.raises(CheckFailed, match="the largest layer is the sensitive one.*predicts a drop of 0.090"):
        check_ratio_dict(largest_first)


def in_place(scan, weights, target, floor):
    scan.loc[:, "accuracy"] = scan.accuracy.round(1)  # rounds the caller's scan
    return notebook_solution(scan, weights, target, floor)


@pytest.mark.parametrize("wrong,words", [
    (lambda scan, weights, target, floor: {layer: 0.35 for layer in weights}, "was not scanned"),
    (lambda scan, weights, target, floor: {layer: 0.9 for layer in weights}, "below the floor"),
    (lambda scan, weights, target, floor: {}, "keeps 1.000 of the weights, the target is at most"),
    (lambda scan, weights, target, floor: {"conv9": 0.5}, "'conv9' is not in the scan"),
    (lambda scan, weights, target, floor: [0.5], "expected a dict"),
    (in_place, "changed the scan DataFrame in place"),
    (lambda scan, weights, target, floor: ratios_for_size(scan, weights, target, floor=floor),
     "calls pruneviz.ratios_for_size, the library's own answer"),
])
def test_wrong_answers_are_told_what_is_wrong(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_ratio_dict(wrong)


def test_a_stub_is_one_problem():
    def stub(scan, weights, target, floor):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match=r"(?s)1 problem.*not implemented"):
        check_ratio_dict(stub)
