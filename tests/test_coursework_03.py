"""Notebook 03's exercise checks: the solutions pass; wrong answers and the library's own code are refused in
words (pruneviz.coursework.criteria)."""
import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.criteria import check_slimming_masks, check_slimming_penalty


def penalty(model, strength):
    return strength * sum(m.weight.abs().sum() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def slimming_masks(model, fraction):
    norms = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    gammas = torch.cat([m.weight.detach().abs() for m in norms.values()])
    keep = torch.ones(len(gammas), dtype=torch.bool)
    keep[torch.argsort(gammas, stable=True)[:round(fraction * len(gammas))]] = False
    return dict(zip(norms, keep.split([m.weight.numel() for m in norms.values()])))


def per_layer_masks(model, fraction):  # one threshold per layer: not network slimming
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            g = m.weight.detach().abs()
            keep = torch.ones(len(g), dtype=torch.bool)
            keep[torch.argsort(g, stable=True)[:round(fraction * len(g))]] = False
            out[name] = keep
    return out


def signed_masks(model, fraction):  # forgot the absolute value
    norms = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    gammas = torch.cat([m.weight.detach() for m in norms.values()])
    keep = torch.ones(len(gammas), dtype=torch.bool)
    keep[torch.argsort(gammas, stable=True)[:round(fraction * len(gammas))]] = False
    return dict(zip(norms, keep.split([m.weight.numel() for m in norms.values()])))


def library_masks(model, fraction):
    pruner = pruneviz.Pruner(model, "scaling", "channel", scope="global").prune(fraction)
    masks = pruner.group_masks()
    pruner.restore()
    return masks


def test_the_solutions_pass(capsys):
    assert check_slimming_penalty(penalty)
    assert check_slimming_masks(slimming_masks)
    assert "✓ network slimming masks" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,words", [
    (per_layer_masks, "same fraction of every layer"),
    (signed_masks, "smallest |gamma| over the whole network"),
    (lambda model, fraction: {}, "expected one per BatchNorm2d"),
    (lambda model, fraction: {k: v.float() for k, v in slimming_masks(model, fraction).items()}, "not a bool"),
    (library_masks, "the library's own answer"),
])
def test_wrong_masks_are_told_what_is_wrong(wrong, words):
    with pytest.raises(CheckFailed, match=words.replace("|", r"\|")):
        check_slimming_masks(wrong)


def test_the_library_penalty_is_refused():
    with pytest.raises(CheckFailed, match="the library's own answer"):
        check_slimming_penalty(pruneviz.slimming_penalty)
