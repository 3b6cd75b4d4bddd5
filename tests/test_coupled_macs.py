"""MACs kept at 50 % by coupled groups: on the hand-written blocks within 10 % of the analytic optimum of uniform
group pruning, and on the torchvision-sized copies within 10 % of Torch-Pruning's figures (issue 21)."""
import pytest
import torch
from torch import nn

import pruneviz
from benchmarks.bench_coupled import TORCH_PRUNING, pruned
from benchmarks.coupled_models import (ARCHITECTURES, BasicBlock, Bottleneck, DenseBlock, EncoderLayer,
                                       InvertedResidual, randomized)

X = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))


class Net(nn.Module):
    def __init__(self, channels: int, out: int, *blocks: nn.Module):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(out, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


BLOCKS = {
    "basic": lambda: Net(16, 32, BasicBlock(16, 16), BasicBlock(16, 32, 2)),
    "bottleneck": lambda: Net(32, 64, Bottleneck(32, 8), Bottleneck(32, 16, 2)),
    "inverted_se": lambda: Net(16, 24, InvertedResidual(16, 16, 1, 4, se=True, act=nn.SiLU),
                               InvertedResidual(16, 24, 2, 4, k=5, se=True, act=nn.SiLU)),
    "dense": lambda: Net(16, 48, DenseBlock(4, 16, 8)),
}


def optimum(model: nn.Module) -> float:
    """MACs of uniform pruning of every channel by half, the model's input and classes kept: each layer's MACs
    scale by the share of output channels kept times the share of input channels kept (a depthwise conv reads
    one channel per output, so it scales once)."""
    total = 0.0
    for name, layer_macs in pruneviz.layer_macs(model, X).items():
        module = model.get_submodule(name)
        keep_out = 1.0 if name == "fc" else 0.5
        keep_in = 1.0 if name == "stem" or getattr(module, "groups", 1) > 1 else 0.5
        total += layer_macs * keep_out * keep_in
    return total


@pytest.mark.parametrize("block", BLOCKS)
def test_blocks_reach_the_analytic_optimum(block):
    torch.manual_seed(0)
    model = randomized(BLOCKS[block]())
    small, _ = pruned(model, "group")
    kept = pruneviz.macs(small, X)
    assert abs(kept / optimum(model) - 1) < 0.10
    assert kept / pruneviz.macs(model, X) < 0.35  # about a quarter: both sides of most layers halved


class Tokens(nn.Module):
    """T tokens of 12 features, a Linear embedding to E, an encoder layer (E, H heads, hidden), a classifier."""

    def __init__(self, layer: nn.Module, dim: int):
        super().__init__()
        self.embed = nn.Linear(12, dim)
        self.layer = layer
        self.fc = nn.Linear(dim, 10)

    def forward(self, x):
        return self.fc(self.layer(self.embed(x)).mean(1))


def transformer_macs(tokens: int, dim: int, hidden: int, share: float) -> float:
    """MACs of the Tokens model with a ``share`` of its heads and hidden channels kept: the q, k, v projections
    (3 T E^2), the attention products (2 T^2 E: scores and values over every head), out_proj (T E^2) and the MLP
    (2 T E hidden) scale by it; the embedding (T 12 E) and the classifier (E 10) do not (the residual stream
    passes LayerNorms over the channels: kept). share=0.5: the optimum of uniform group pruning by half."""
    grouped = 3 * tokens * dim ** 2 + 2 * tokens ** 2 * dim + tokens * dim ** 2 + 2 * tokens * dim * hidden
    return tokens * 12 * dim + share * grouped + dim * 10


@pytest.mark.parametrize("kind", ["hand_written", "torch"])
def test_transformer_encoder_layer_reaches_the_analytic_optimum(kind):
    torch.manual_seed(0)
    dim, heads, hidden, tokens = 32, 8, 64, 9
    layer = EncoderLayer(dim, heads, hidden) if kind == "hand_written" else \
        nn.TransformerEncoderLayer(dim, heads, hidden, dropout=0.0, batch_first=True)
    model = Tokens(layer, dim).eval()
    x = torch.randn(1, tokens, 12, generator=torch.Generator().manual_seed(0))
    assert pruneviz.macs(model, x) == transformer_macs(tokens, dim, hidden, 1.0)  # the count sees attention
    pruner = pruneviz.Pruner(model, "magnitude", "group").prune(0.5)
    small = pruneviz.compact(model, pruner.masks)
    assert abs(pruneviz.macs(small, x) / transformer_macs(tokens, dim, hidden, 0.5) - 1) < 0.10
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_torchvision_sized_copies_match_torch_pruning(name):
    torch.manual_seed(0)
    model = randomized(ARCHITECTURES[name]())
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    small, pruner = pruned(model, "group")
    kept = pruneviz.macs(small, x) / pruneviz.macs(model, x)
    assert abs(kept / TORCH_PRUNING[name] - 1) < 0.10
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), rtol=1e-4, atol=1e-5)


def test_convnext_prunes_its_residual_stream_through_layernorms():
    torch.manual_seed(0)
    model = randomized(ARCHITECTURES["convnext_tiny"](0.25))
    pruner = pruneviz.Pruner(model, "magnitude", "group")
    assert "features.0.0" in pruner.scores and "features.1.0.dwconv" not in pruner.skipped  # the stream is a group
    assert list(pruner.skipped) == ["classifier"]
