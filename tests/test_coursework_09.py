"""Notebook 09's exercise check: slicing a conv, its BatchNorm and the next conv, attributes included."""
import copy

import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.surgery import check_channel_slice


def slice_channels(conv, bn, next_conv, keep):  # the notebook's solution
    conv, bn, next_conv = copy.deepcopy(conv), copy.deepcopy(bn), copy.deepcopy(next_conv)
    kept = int(keep.sum())
    conv.weight = nn.Parameter(conv.weight[keep].clone())
    if conv.bias is not None:
        conv.bias = nn.Parameter(conv.bias[keep].clone())
    conv.out_channels = kept
    bn.weight, bn.bias = nn.Parameter(bn.weight[keep].clone()), nn.Parameter(bn.bias[keep].clone())
    bn.running_mean, bn.running_var = bn.running_mean[keep].clone(), bn.running_var[keep].clone()
    bn.num_features = kept
    next_conv.weight = nn.Parameter(next_conv.weight[:, keep].clone())
    next_conv.in_channels = kept
    return conv, bn, next_conv


def stale_attributes(conv, bn, next_conv, keep):  # the old solution: tensors sliced, attributes left
    conv, bn, next_conv = slice_channels(conv, bn, next_conv, keep)
    conv.out_channels, bn.num_features, next_conv.in_channels = (len(keep),) * 3
    return conv, bn, next_conv


def stale_in_channels(conv, bn, next_conv, keep):
    conv, bn, next_conv = slice_channels(conv, bn, next_conv, keep)
    next_conv.in_channels = len(keep)
    return conv, bn, next_conv


def forgets_running_stats(conv, bn, next_conv, keep):
    conv, bn2, next_conv = slice_channels(conv, bn, next_conv, keep)
    bn2.running_mean = bn.running_mean.clone()
    return conv, bn2, next_conv


def forgets_conv_bias(conv, bn, next_conv, keep):
    out = slice_channels(conv, bn, next_conv, keep)
    if conv.bias is not None:
        out[0].bias = nn.Parameter(conv.bias.clone())
    return out


def in_place(conv, bn, next_conv, keep):
    new = slice_channels(conv, bn, next_conv, keep)
    with torch.no_grad():
        conv.weight.zero_()
    return new


def wrong_order(conv, bn, next_conv, keep):  # keeps the right number of channels, reversed
    index = keep.nonzero().flatten().flip(0)
    mask_like = torch.zeros_like(keep)
    mask_like[index] = True
    conv, bn, next_conv = slice_channels(conv, bn, next_conv, keep)
    with torch.no_grad():
        conv.weight.copy_(conv.weight.flip(0))
    return conv, bn, next_conv


def the_library(conv, bn, next_conv, keep):
    small = pruneviz.compact(nn.Sequential(conv, bn, nn.ReLU(), next_conv), {"0": keep})
    return small[0], small[1], small[3]


def test_the_solution_passes(capsys):
    assert check_channel_slice(slice_channels) is True
    assert capsys.readouterr().out.startswith("✓ channel slicing")


@pytest.mark.parametrize("fn, words", [
    (stale_attributes, "conv.out_channels still says 128 but its weight has 64"),
    (stale_attributes, "bn.num_features still says 8 but its weight has 3"),
    (stale_in_channels, "next_conv.in_channels still says"),
    (forgets_running_stats, "the BatchNorm must keep 64 channels"),
    (forgets_conv_bias, "conv's bias must keep the same 4 channels"),
    (in_place, "changed the layers it was given"),
    (wrong_order, "outputs differ from the model without those channels"),
    (the_library, "calls pruneviz.compact, the library's own answer"),
])
def test_wrong_answers_are_refused_with_words(fn, words):
    with pytest.raises(CheckFailed) as err:
        check_channel_slice(fn)
    assert words in str(err.value), str(err.value)


def test_the_lab_example_is_a_case():
    with pytest.raises(CheckFailed) as err:
        check_channel_slice(stale_attributes)
    assert "the lab VGG's conv 64 -> 128 -> 256" in str(err.value)
