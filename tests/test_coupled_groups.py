"""Coupled channel groups found on hand-written copies of the blocks people use (torchvision's structures)."""
import pytest
import torch
from torch import nn

from benchmarks.coupled_models import (BasicBlock, Bottleneck, ConvNeXtBlock, DenseBlock, EncoderLayer,
                                       InvertedResidual, RegNetBlock)
from pruneviz.coupling import coupled_groups


class Net(nn.Module):
    """stem conv-BN-ReLU, the blocks, average pool, classifier: the blocks' context in a real network."""

    def __init__(self, channels: int, *blocks: nn.Module, out: int | None = None):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(out or channels, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def by_name(model):
    return {g.name: g for g in coupled_groups(model)}


def test_basic_block_ties_stem_and_last_convs_of_the_blocks():
    groups = by_name(Net(8, BasicBlock(8, 8), BasicBlock(8, 16, 2), out=16))
    assert groups["stem"].producers == ["stem", "blocks.0.conv2"]
    assert groups["stem"].norms == {"bn": 0, "blocks.0.bn2": 0}
    assert set(groups["stem"].consumers) == {"blocks.0.conv1", "blocks.1.conv1", "blocks.1.downsample.0"}
    assert groups["stem"].ties == ["a residual add"] and not groups["stem"].blockers
    assert groups["blocks.1.conv2"].producers == ["blocks.1.conv2", "blocks.1.downsample.0"]
    assert groups["blocks.1.conv2"].consumers == {"fc": (0, 1)}
    assert groups["blocks.0.conv1"].producers == ["blocks.0.conv1"]  # a group of one
    assert groups["fc"].blockers == ["they reach the model's output"]


def test_bottleneck_couples_expansions_and_leaves_inner_convs_alone():
    groups = by_name(Net(32, Bottleneck(32, 8), Bottleneck(32, 8)))
    assert groups["stem"].producers == ["stem", "blocks.0.conv3", "blocks.1.conv3"]
    for block in ("blocks.0", "blocks.1"):
        assert groups[f"{block}.conv1"].producers == [f"{block}.conv1"]
        assert groups[f"{block}.conv2"].consumers == {f"{block}.conv3": (0, 1)}


def test_inverted_residual_with_squeeze_excitation():
    groups = by_name(Net(8, InvertedResidual(8, 8, 1, 4, se=True, act=nn.SiLU)))
    hidden = groups["blocks.0.block.0.0"]
    # the expansion, the depthwise conv that reads it and the SE gate that multiplies it are one group
    assert hidden.producers == ["blocks.0.block.0.0", "blocks.0.block.1.0", "blocks.0.block.2.fc2"]
    assert hidden.depthwise == ["blocks.0.block.1.0"]
    assert set(hidden.norms) == {"blocks.0.block.0.1", "blocks.0.block.1.1"}
    assert set(hidden.consumers) == {"blocks.0.block.2.fc1", "blocks.0.block.3.0"} and not hidden.blockers
    assert groups["stem"].producers == ["stem", "blocks.0.block.3.0"]  # the residual add
    assert groups["blocks.0.block.2.fc1"].consumers == {"blocks.0.block.2.fc2": (0, 1)}


def test_regnet_block_grouped_conv_keeps_equal_groups():
    groups = by_name(Net(8, RegNetBlock(8, 16, 2, 4), out=16))
    inner = groups["blocks.0.a.0"]
    # the 1x1 conv, the grouped 3x3 that reads and writes the same channels, the SE gate: one group whose four
    # slices (the 3x3's groups of 4 channels) must each lose as many channels
    assert inner.producers == ["blocks.0.a.0", "blocks.0.b.0", "blocks.0.se.fc2"]
    assert inner.grouped == {"blocks.0.b.0": 4} and inner.slices == 4 and not inner.blockers
    assert groups["blocks.0.c.0"].producers == ["blocks.0.c.0", "blocks.0.proj.0"]


def test_dense_block_concatenation_offsets():
    groups = by_name(Net(8, DenseBlock(3, 8, 4), out=20))
    assert groups["stem"].consumers["blocks.0.denselayer3.conv1"] == (0, 1)
    first = groups["blocks.0.denselayer1.conv2"]
    # its 4 channels come after the stem's 8 in every later concatenation, and its BatchNorms there
    assert first.consumers == {"blocks.0.denselayer2.conv1": (8, 1), "blocks.0.denselayer3.conv1": (8, 1),
                               "fc": (8, 1)}
    assert first.norms == {"blocks.0.denselayer2.norm1": 8, "blocks.0.denselayer3.norm1": 8}
    assert groups["blocks.0.denselayer3.conv2"].consumers == {"fc": (16, 1)}
    assert all(not g.coupled and not g.blockers for n, g in groups.items() if n != "fc")


def test_convnext_block_permute_and_layernorm():
    groups = by_name(Net(8, ConvNeXtBlock(8)))
    assert groups["blocks.0.pwconv1"].consumers == {"blocks.0.pwconv2": (0, 1)}  # channels-last, per token
    assert not groups["blocks.0.pwconv1"].blockers
    # the stem, the depthwise conv that reads it and the layer-scaled residual branch are one group; it passes a
    # LayerNorm over the channels (after a permute: channels last), zeroed with it and kept at its width by
    # compact (channels at dim 3 going in and out), and a layer scale of one value per channel (dim 0 of it)
    stem = groups["stem"]
    assert stem.producers == ["stem", "blocks.0.dwconv", "blocks.0.pwconv2"] and not stem.blockers
    assert stem.norms == {"bn": 0, "blocks.0.norm": 0}
    assert stem.widened == {"blocks.0.norm": (3, 3)}
    assert stem.scales == {"blocks.0.layer_scale": (0, 8, 0)}


def test_layernorm2d_as_torchvision_writes_it():
    """permute, F.layer_norm on the module's own weight, permute back: the LayerNorm is found by its weight,
    its input and output channels at dim 1."""
    from benchmarks.coupled_models import LayerNorm2d

    class Stem(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.norm = LayerNorm2d(8)
            self.out = nn.Conv2d(8, 4, 1)

        def forward(self, x):
            return self.out(self.norm(self.conv(x)))

    group = by_name(Stem())["conv"]
    assert (group.norms, group.widened, group.consumers, group.blockers) == ({"norm": 0}, {"norm": (1, 1)},
                                                                             {"out": (0, 1)}, [])


@pytest.mark.parametrize("case", ["no_affine", "over_more"])
def test_layernorms_the_kit_cannot_keep_are_said(case):
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 6)
            self.norm = nn.LayerNorm(6, elementwise_affine=False) if case == "no_affine" else nn.LayerNorm((3, 6))
            self.b = nn.Linear(6, 2)

        def forward(self, x):
            return self.b(self.norm(self.a(x)))

    expected = "elementwise_affine=False" if case == "no_affine" else "normalizes over (3, 6)"
    assert any(expected in b for b in by_name(Odd())["a"].blockers)


def test_transformer_encoder_layer():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(12, 16)
            self.layer = EncoderLayer(16, 4, 32)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.layer(self.embed(x)).mean(1))

    groups = by_name(Tokens())
    assert groups["layer.linear1"].consumers == {"layer.linear2": (0, 1)} and not groups["layer.linear1"].blockers
    # the heads: channel i of the group is head i, its q, k, v rows (in_proj) and its 4 columns of out_proj
    heads = groups["layer.attn"]
    assert (heads.size, heads.heads, heads.consumers, heads.producers) == (4, {"layer.attn": 4},
                                                                           {"layer.attn.out_proj": (0, 4)}, [])
    assert not heads.blockers
    # what attention reads and writes is the residual stream: kept, and said why
    assert groups["embed"].producers == ["embed", "layer.attn.out_proj", "layer.linear2"]
    assert groups["embed"].norms == {"layer.norm1": 0, "layer.norm2": 0}  # LayerNorms over the channels
    # attention reads it through the input columns of its packed q, k, v in-projection
    assert groups["embed"].attention_inputs == {"layer.attn.in_proj_weight": 0}
    # the tokens come from the model's input, of a rank the analysis does not know: the mean over dim 1 could
    # be over the channels, so they are kept (TinyViT embeds its tokens with a conv: there the stream goes too)
    assert groups["embed"].blockers == ["mean over dims [1] (node 'mean') mixes them"]


@pytest.mark.parametrize("norm_first", [False, True])
def test_torch_transformer_encoder_layers_are_read_from_their_structure(norm_first):
    """fx keeps nn.TransformerEncoder(Layer) as one op: its heads and MLP channels are found all the same."""
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(12, 16)
            layer = nn.TransformerEncoderLayer(16, 4, 24, batch_first=True, norm_first=norm_first)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.encoder(self.embed(x)).mean(1))

    groups = by_name(Tokens())
    for i in range(2):
        prefix = f"encoder.layers.{i}"
        assert groups[f"{prefix}.self_attn"].heads == {f"{prefix}.self_attn": 4}
        assert groups[f"{prefix}.linear1"].consumers == {f"{prefix}.linear2": (0, 1)}
        assert not groups[f"{prefix}.self_attn"].blockers and not groups[f"{prefix}.linear1"].blockers
        assert "LayerNorms normalize over the channels" in groups[f"{prefix}.linear2"].blockers[0]
    assert "(TransformerEncoder) normalizes them with LayerNorms" in groups["embed"].blockers[0]


def test_attention_weights_read_keep_the_heads():
    class Weights(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            out, weights = self.attn(x, x, x)
            return out.mean() + weights.mean()

    assert any("attention weights average over the heads" in b for b in by_name(Weights())["attn"].blockers)


@pytest.mark.parametrize("op", ["view", "layernorm", "sigmoid_add"])
def test_what_the_kit_cannot_follow_is_said(op):
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.b = nn.Conv2d(4, 4, 1)
            self.norm = nn.GroupNorm(2, 4)

        def forward(self, x):
            h = self.a(x)
            if op == "view":
                h = h.view(h.shape[0], 4, -1).unsqueeze(-1)
            elif op == "layernorm":
                h = self.norm(h)
            else:
                h = torch.sigmoid(h) + h
            return self.b(h).mean()

    blockers = by_name(Odd())["a"].blockers
    assert blockers, op
    expected = {"view": "'view'", "layernorm": "GroupNorm", "sigmoid_add": "sigmoid"}[op]
    assert any(expected in b for b in blockers), blockers
