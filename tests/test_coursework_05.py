"""Notebook 05's exercise checks: the solutions pass; wrong answers and the library's own code are refused in
words (pruneviz.coursework.criteria)."""
import copy
from collections import OrderedDict

import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.criteria import check_apoz, check_remove_dead_neurons


def remove_dead(mlp, x, *, rule=lambda out: (out != 0).any(dim=0), fix_next=True):
    layers = [copy.deepcopy(m) for m in mlp]
    linears = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        outputs, h = [], x
        for m in layers:
            h = m(h)
            outputs.append(h)
        for a, b in zip(linears, linears[1:]):
            alive = rule(outputs[a + 1])
            first, second = layers[a], layers[b]
            new_first = torch.nn.Linear(first.in_features, int(alive.sum()))
            new_first.weight.copy_(first.weight[alive])
            new_first.bias.copy_(first.bias[alive])
            layers[a] = new_first
            if fix_next:
                new_second = torch.nn.Linear(int(alive.sum()), second.out_features)
                new_second.weight.copy_(second.weight[:, alive])
                new_second.bias.copy_(second.bias)
                layers[b] = new_second
    return torch.nn.Sequential(OrderedDict(zip([n for n, _ in mlp.named_children()], layers)))


def in_place(mlp, x):  # zeroes the dead rows in the model it was given
    with torch.no_grad():
        h = x
        for i, m in enumerate(mlp):
            h = m(h)
            if isinstance(m, torch.nn.ReLU):
                mlp[i - 1].weight[~(h != 0).any(dim=0)] = 0.0
    return mlp


def library(mlp, x):
    from pruneviz.criteria.apoz import dead_units
    dead_units(mlp, (x, torch.zeros(len(x), dtype=torch.long)))
    return remove_dead(mlp, x)


def test_the_solutions_pass(capsys):
    assert check_apoz(lambda acts: (acts == 0).float().mean(dim=(0, 2, 3)))
    assert check_remove_dead_neurons(remove_dead)
    assert "✓ removing dead neurons" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,words", [
    (lambda mlp, x: copy.deepcopy(mlp), "dead neuron(s) (zero after the ReLU on every row) kept"),
    (lambda mlp, x: remove_dead(mlp, x, rule=lambda out: (out != 0).float().mean(0) > 0.1),
     "a neuron that fires on some row was removed"),
    (lambda mlp, x: remove_dead(mlp, x, fix_next=False), "remove the matching columns of the next Linear"),
    (in_place, "changed the MLP it was given"),
    (library, "the library's own answer"),
])
def test_wrong_removals_are_told_what_is_wrong(wrong, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_remove_dead_neurons(wrong)


def test_the_library_apoz_is_refused():
    def library_apoz(acts):
        conv = torch.nn.Conv2d(acts.shape[1], acts.shape[1], 1)
        model = torch.nn.Sequential(OrderedDict([("conv", conv), ("relu", torch.nn.ReLU())]))
        return pruneviz.apoz(model, (acts, torch.zeros(len(acts), dtype=torch.long)))["conv"]
    with pytest.raises(CheckFailed, match="the library's own answer"):
        check_apoz(library_apoz)
