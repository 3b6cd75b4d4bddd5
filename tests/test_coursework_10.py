"""Notebook 10's exercise check: pruning the neurons of an MLP into a narrow dense one."""
import copy

import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.surgery import check_neuron_pruning


def prune_neurons(mlp, sparsity, *, order=True, bias=True, attributes=True, largest=True, copy_first=True):
    """The notebook's solution; the keyword switches turn it into the typical wrong answers."""
    mlp = copy.deepcopy(mlp) if copy_first else mlp
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    keeps = []
    for layer in linears[:-1]:  # every layer scored on the weights it was given, before any slicing
        n = layer.out_features
        importance = layer.weight.detach().abs().sum(dim=1)
        keeps.append(importance.topk(n - round(sparsity * n), largest=largest).indices.sort().values)
    for layer, following, keep in zip(linears, linears[1:], keeps):
        columns = keep if order else keep.flip(0)  # order=False: the next layer's columns in another order
        layer.weight = nn.Parameter(layer.weight.detach()[keep].clone())
        if bias:
            layer.bias = nn.Parameter(layer.bias.detach()[keep].clone())
        following.weight = nn.Parameter(following.weight.detach()[:, columns].clone())
        if attributes:
            layer.out_features, following.in_features = len(keep), len(keep)
    return mlp


def the_library(mlp, sparsity):
    return pruneviz.compact(mlp, pruneviz.Pruner(mlp, "magnitude", "channel").prune(sparsity).masks)


def scored_after_slicing(mlp, sparsity):
    mlp = copy.deepcopy(mlp)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    for layer, following in zip(linears, linears[1:]):
        n = layer.out_features
        keep = layer.weight.detach().abs().sum(dim=1).topk(n - round(sparsity * n)).indices.sort().values
        layer.weight = nn.Parameter(layer.weight.detach()[keep].clone())
        layer.bias = nn.Parameter(layer.bias.detach()[keep].clone())
        following.weight = nn.Parameter(following.weight.detach()[:, keep].clone())
        layer.out_features, following.in_features = len(keep), len(keep)
    return mlp


def prunes_the_classes_too(mlp, sparsity):
    narrow = prune_neurons(mlp, sparsity)
    last = [m for m in narrow if isinstance(m, nn.Linear)][-1]
    keep = torch.arange(last.out_features - round(sparsity * last.out_features))
    last.weight = nn.Parameter(last.weight.detach()[keep].clone())
    last.bias = nn.Parameter(last.bias.detach()[keep].clone())
    last.out_features = len(keep)
    return narrow


def test_the_solution_passes(capsys):
    assert check_neuron_pruning(prune_neurons) is True
    assert capsys.readouterr().out.startswith("✓ neuron pruning")


@pytest.mark.parametrize("fn, words", [
    (lambda m, s: prune_neurons(m, s, largest=False), "other outputs than the narrow model"),
    (lambda m, s: prune_neurons(m, s, order=False), "slice the next layer's columns with the same indices"),
    (lambda m, s: prune_neurons(m, s, bias=False), "bias must keep the same neurons"),
    (lambda m, s: prune_neurons(m, s, attributes=False), "update the attributes with the tensors"),
    (lambda m, s: prune_neurons(m, s, copy_first=False), "changed the MLP it was given"),
    (prunes_the_classes_too, "the output layer (the classes) none"),
    (scored_after_slicing, "scored after the previous one had cut its columns"),
    (lambda m, s: m, "returned the MLP it was given"),
    (lambda m, s: None, "returned NoneType"),
    (the_library, "the library's own answer"),
])
def test_wrong_answers_are_refused_with_words(fn, words):
    with pytest.raises(CheckFailed) as err:
        check_neuron_pruning(fn)
    assert words in str(err.value), str(err.value)


def test_the_notebook_example_is_a_case():
    with pytest.raises(CheckFailed) as err:
        check_neuron_pruning(lambda m, s: prune_neurons(m, s, largest=False))
    assert "the zoo's 64-256-128-10 MLP at 75 %" in str(err.value)
