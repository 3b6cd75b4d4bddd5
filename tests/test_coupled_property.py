"""The coupled-group property: on random residual, depthwise, concatenating and gated nets, a group Pruner's
masked model and ``compact`` of it compute the same function, for any criterion, ratio and scope; the model the
masks came from is left as it was."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import pruneviz
from benchmarks.coupled_models import (BasicBlock, Bottleneck, ConvNeXtBlock, DenseBlock, EncoderLayer,
                                       InvertedResidual, RegNetBlock, TinyViT, randomized)

from .conftest import same_state, state_of

BLOCKS = ("basic", "bottleneck", "inverted", "inverted_se", "dense", "concat", "gate", "grouped", "convnext",
          "attention", "torch_encoder")


class Concat(nn.Module):
    """Two branches concatenated along the channels, a 1x1 conv back to the input width, added to the input."""

    def __init__(self, c: int, left: int, right: int, bias: bool):
        super().__init__()
        self.left = nn.Conv2d(c, left, 3, padding=1, bias=bias)
        self.right = nn.Conv2d(c, right, 1, bias=bias)
        self.bn = nn.BatchNorm2d(left + right)
        self.merge = nn.Conv2d(left + right, c, 1, bias=bias)

    def forward(self, x):
        h = torch.relu(self.bn(torch.cat([self.left(x), torch.relu(self.right(x))], dim=1)))
        return x + self.merge(h)


class Gate(nn.Module):
    """A conv whose output is multiplied by a sigmoid of another conv of the same input (a GLU-like gate)."""

    def __init__(self, c: int, out: int, bias: bool):
        super().__init__()
        self.value = nn.Conv2d(c, out, 3, padding=1, bias=bias)
        self.gate = nn.Conv2d(c, out, 1, bias=bias)

    def forward(self, x):
        return self.value(x) * torch.sigmoid(self.gate(x))


class Attention(nn.Module):
    """The feature map's positions as tokens through a transformer encoder layer (heads 2 channels wide), back
    to a map: the hand-written EncoderLayer (nn.MultiheadAttention inside) or torch's nn.TransformerEncoderLayer
    (which fx keeps whole), after a 1x1 conv to the layer's width."""

    def __init__(self, c: int, width: int, bias: bool, torch_layer: bool):
        super().__init__()
        self.dim = 2 * max(2, width // 2)
        self.inp = nn.Conv2d(c, self.dim, 1, bias=bias)
        self.layer = (nn.TransformerEncoderLayer(self.dim, self.dim // 2, 2 * width, dropout=0.0, batch_first=True,
                                                 bias=bias) if torch_layer else
                      EncoderLayer(self.dim, self.dim // 2, 2 * width))

    def forward(self, x):
        h = self.inp(x)
        return self.layer(h.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(h.shape)


def block(kind: str, c: int, width: int, bias: bool) -> tuple[nn.Module, int]:
    """A block of ``kind`` reading c channels; its output channels."""
    if kind == "basic":
        return BasicBlock(c, width, 1 + (width % 2)), width
    if kind == "bottleneck":
        return Bottleneck(c, max(1, width // 2)), 4 * max(1, width // 2)
    if kind in ("inverted", "inverted_se"):
        return InvertedResidual(c, c if width % 2 else width, 1, 2, se=kind == "inverted_se"), \
            c if width % 2 else width
    if kind == "dense":
        return DenseBlock(2, c, max(1, width // 2)), c + 2 * max(1, width // 2)
    if kind == "concat":
        return Concat(c, width, max(1, width // 2), bias), c
    if kind == "gate":
        return Gate(c, width, bias), width
    if kind in ("attention", "torch_encoder"):
        module = Attention(c, width, bias, kind == "torch_encoder")
        return module, module.dim
    if kind == "grouped":  # RegNet's block: a grouped 3x3 conv of groups 2 channels wide, SE, residual add
        out = 4 * max(1, width // 2)
        return RegNetBlock(c, out, 1 + (width % 2), 2), out
    return ConvNeXtBlock(c), c


class RandomNet(nn.Module):
    def __init__(self, kinds, widths, bias: bool):
        super().__init__()
        c = widths[0]
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=bias)
        self.bn = nn.BatchNorm2d(c)
        blocks = []
        for kind, width in zip(kinds, widths[1:]):
            module, c = block(kind, c, width, bias)
            blocks.append(module)
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, 5)

    def forward(self, x):
        h = self.blocks(torch.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


X = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@st.composite
def nets(draw):
    n = draw(st.integers(1, 3))
    kinds = draw(st.lists(st.sampled_from(BLOCKS), min_size=n, max_size=n))
    widths = draw(st.lists(st.integers(2, 8), min_size=n + 1, max_size=n + 1))
    torch.manual_seed(draw(st.integers(0, 10_000)))
    return randomized(RandomNet(kinds, widths, draw(st.booleans()))).double(), kinds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=nets(), ratio=st.floats(0.0, 0.95), scope=st.sampled_from(["local", "global"]),
       criterion=st.sampled_from(["magnitude", "l2", "random"]))
def test_masked_equals_compacted(net, ratio, scope, criterion):
    model, kinds = net
    pruner = pruneviz.Pruner(model, criterion, "group", scope)
    pruner.prune(ratio)
    before = state_of(model)
    if not all(bool(keep.any()) for keep in pruner.group_masks().values()):  # a global order may empty a group
        with pytest.raises(ValueError, match="remove every channel of the group"):
            pruneviz.compact(model, pruner.masks)
        assert same_state(state_of(model), before)
        return
    small = pruneviz.compact(model, pruner.masks)
    assert same_state(state_of(model), before)  # compact leaves the model as it was
    with torch.no_grad():
        torch.testing.assert_close(small(X), model(X), rtol=1e-9, atol=1e-9)
    kept = {name: int(keep.sum()) for name, keep in pruner.group_masks().items()}
    for name, group in pruner._plan.groups.items():  # every producer of a group has exactly its kept channels
        for layer in group.producers:
            assert small.get_submodule(layer).weight.shape[0] == kept[name]
        for layer in group.heads:  # and every attention layer its kept heads
            assert small.get_submodule(layer).num_heads == kept[name]
    assert pruneviz.count_parameters(small) <= pruneviz.count_parameters(model)


@pytest.mark.parametrize("kind", BLOCKS)
def test_every_block_loses_channels_and_stays_exact(kind):
    torch.manual_seed(0)
    model = randomized(RandomNet([kind, kind], [6, 6, 6], True)).double()
    pruner = pruneviz.Pruner(model, "magnitude", "group").prune(0.5)
    small = pruneviz.compact(model, pruner.masks)
    with torch.no_grad():
        torch.testing.assert_close(small(X), model(X), rtol=1e-9, atol=1e-9)
    assert pruneviz.macs(small, X[:1]) < pruneviz.macs(model, X[:1])


def test_mlp_with_batchnorm_on_raw_input():
    torch.manual_seed(0)
    model = randomized(nn.Sequential(nn.Linear(16, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 8),
                                     nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))).double()
    pruner = pruneviz.Pruner(model, "magnitude", "group").prune(0.5)
    assert list(pruner.scores) == ["0", "3"]
    x = torch.randn(5, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(pruneviz.compact(model, pruner.masks)(x), model(x), rtol=1e-9, atol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heads=st.integers(1, 4), head_dim=st.integers(1, 3), depth=st.integers(1, 2), ratio=st.floats(0.0, 0.95),
       scope=st.sampled_from(["local", "global"]), criterion=st.sampled_from(["magnitude", "l2", "random"]),
       seed=st.integers(0, 10_000))
def test_vit_masked_equals_compacted(heads, head_dim, depth, ratio, scope, criterion, seed):
    """A ViT: the residual stream (through LayerNorms and every attention layer's in-projection), the heads and
    the MLP channels are groups; the compacted model computes what the masked one does."""
    torch.manual_seed(seed)
    model = randomized(TinyViT(dim=heads * head_dim, heads=heads, depth=depth)).double()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    pruner = pruneviz.Pruner(model, criterion, "group", scope).prune(ratio)
    # only the classes are kept, and the heads of a single-head attention
    assert set(pruner.skipped) == {"head"} | ({f"layers.{i}.attn" for i in range(depth)} if heads == 1 else set())
    if not all(bool(keep.any()) for keep in pruner.group_masks().values()):
        return  # a global order emptied a group: compact refuses it (test_masked_equals_compacted)
    small = pruneviz.compact(model, pruner.masks)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), rtol=1e-9, atol=1e-9)
    kept = pruner.group_masks()
    for i in range(depth):
        assert small.layers[i].attn.num_heads == int(kept[f"layers.{i}.attn"].sum()) if \
            f"layers.{i}.attn" in kept else True
        assert small.layers[i].attn.embed_dim == int(kept["embed"].sum())
