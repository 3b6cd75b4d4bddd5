"""Real networks (issue 20, items 8, 18, 19, 22, 23), with the blocks written by hand: torchvision's wheels are
CUDA builds that cannot be imported here, so BasicBlock, Bottleneck, a ViT's token reshape and a per-token MLP
are reproduced as torchvision writes them."""
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from pruneviz import Pruner, compact
from pruneviz.criteria.apoz import apoz
from pruneviz.criteria.obd import gauss_newton_plan, hessian_diagonal
from pruneviz.graph import build_graph
from pruneviz.surgery import channel_prunable_layers

X = torch.randn(24, 1, 8, 8, generator=torch.Generator().manual_seed(0))
Y = torch.arange(24) % 10


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: ONE relu module, called after bn1 and again after the add."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck: one relu module called three times on tensors of different channel counts."""

    def __init__(self, c, width):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, c, 1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + x)


def _resnet(block):
    torch.manual_seed(0)
    net = nn.Sequential()
    net.stem, net.bn, net.act = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
    net.block = block
    net.pool, net.flat, net.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    with torch.no_grad():  # statistics off their defaults so a BatchNorm shifts some channels below zero
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.bias.uniform_(-0.5, 0.5)
    return net.eval()


def _zeros_before_relu(model, module):
    """Share of values <= 0 per channel of ``module``'s output (what the ReLU after it turns to zero)."""
    seen = {}
    handle = module.register_forward_hook(lambda m, i, o: seen.setdefault("out", o.detach().clone()))
    with torch.no_grad():
        model(X)
    handle.remove()
    out = seen["out"]
    return (out <= 0).transpose(0, 1).reshape(out.shape[1], -1).double().mean(1).float()


# -- 19: APoZ read at the call site, not from a ReLU module that runs twice ---------------------------------------
def test_apoz_of_a_basic_block_counts_only_the_zeros_after_its_own_layer():
    model = _resnet(BasicBlock(8))
    expected = _zeros_before_relu(model, model.block.bn1)
    assert torch.allclose(apoz(model, (X, Y))["block.conv1"], expected)
    assert torch.allclose(apoz(model, (X, Y), layers=["block.conv1"])["block.conv1"], expected)


def test_apoz_of_one_bottleneck_layer_equals_all_layer_scoring():
    model = _resnet(Bottleneck(8, 4))
    everything = apoz(model, (X, Y))
    for layer in ("block.conv1", "block.conv2"):
        alone = apoz(model, (X, Y), layers=[layer])[layer]
        assert torch.equal(alone, everything[layer])
        assert torch.allclose(alone, _zeros_before_relu(model, model.get_submodule(layer.replace("conv", "bn"))))


# -- 8: a Linear applied per token ---------------------------------------------------------------------------------
class PerToken(nn.Module):
    """x.reshape(N, 8, 8) -> Linear(8, 16) per token -> flatten -> Linear: the layout of an MLP-Mixer's token MLP."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.tok, self.head = nn.Linear(8, 16), nn.Linear(128, 10)

    def forward(self, x):
        return self.head(torch.relu(self.tok(x.reshape(x.shape[0], 8, 8))).flatten(1))


def test_compact_refuses_a_flatten_of_a_per_token_linear():
    model = PerToken()
    assert "tok" not in channel_prunable_layers(model)
    pruner = Pruner(model, granularity="channel", layers=["tok"]).prune(0.5)
    with pytest.raises(ValueError, match="per token"):
        compact(model, pruner.masks)


# -- 22: reductions: negative dims resolved against the rank -------------------------------------------------------
class MeanOver(nn.Module):
    def __init__(self, dim):
        super().__init__()
        torch.manual_seed(0)
        self.dim, self.conv, self.head = dim, nn.Conv2d(1, 8, 3, padding=1), nn.Linear(64, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(self.dim).flatten(1))


@pytest.mark.parametrize("dim", [2, 3, -1, -2])
def test_a_mean_over_one_spatial_dim_compacts_to_the_same_function(dim):
    model = MeanOver(dim)
    assert channel_prunable_layers(model) == ["conv"]
    pruner = Pruner(model, granularity="channel", layers=["conv"]).prune(0.5)
    assert torch.allclose(compact(model, pruner.masks)(X), model(X), atol=1e-6)


def test_a_mean_over_channels_written_as_a_negative_dim_is_not_a_spatial_reduction():
    model = MeanOver(-3)  # [N, C, H, W].mean(-3) is the mean over the channels
    assert channel_prunable_layers(model) == []
    pruner = Pruner(model, granularity="channel", layers=["conv"]).prune(0.5)
    with pytest.raises(ValueError):
        compact(model, pruner.masks)


# -- 23: a batch size read from x.shape feeds a reshape (torchvision's ViT) -----------------------------------------
class TinyViT(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(1, 16, 4, stride=4)
        self.mlp0, self.mlp2, self.head = nn.Linear(16, 32), nn.Linear(32, 16), nn.Linear(16, 10)

    def forward(self, x):
        n = x.shape[0]  # as torchvision's ViT reads it: from the input image
        x = self.patch(x)
        x = x.reshape(n, 16, -1).permute(0, 2, 1)  # [N, tokens, 16]
        x = x + self.mlp2(torch.relu(self.mlp0(x)))
        return self.head(x.mean(1))


def test_a_shape_read_is_not_a_path_of_the_input():
    graph = build_graph(TinyViT())
    assert [n for n, info in graph.layers.items() if info.is_input] == ["patch"]
    assert [n for n, info in graph.layers.items() if info.is_output] == ["head"]
    pruner = Pruner(TinyViT(), granularity="input_channel")
    assert {"mlp0", "mlp2", "head"} <= set(pruner.layers) and "patch" in pruner.skipped


# -- 18: OBD's estimate within a memory budget -----------------------------------------------------------------------
def _wide():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                         nn.Linear(2048, 10)).eval()


def test_the_plan_keeps_every_pass_within_the_budget():
    model = _wide()
    names = ["1", "3", "5"]
    weights = [model.get_submodule(n).weight for n in names]
    budget = 64 * 2**20
    naive = 32 * 10 * sum(w.numel() * 4 for w in weights)
    assert naive > 40 * budget  # the naive estimate would hold 5.6 GB of per-sample gradients at once
    plan = gauss_newton_plan(names, weights, 10, activation_bytes=20_000, budget=budget)
    assert sorted(n for group, _ in plan for n in group) == names
    for group, pairs in plan:
        grads = sum(model.get_submodule(n).weight.numel() * 4 for n in group)
        assert pairs >= 1 and pairs * (grads + 3 * 20_000) <= budget


def test_a_layer_that_cannot_fit_is_refused_before_anything_is_allocated():
    model = _wide()
    with pytest.raises(ValueError, match="'3'.*more than the memory budget"):
        hessian_diagonal(model, (X, Y), memory_budget=8 * 2**20, limit=2)


def test_budgeted_estimates_agree_whatever_the_chunks():
    model = _wide()
    small = hessian_diagonal(model, (X, Y), ["1", "5"], limit=3, memory_budget=3 * 2**20)
    large = hessian_diagonal(model, (X, Y), ["1", "5"], limit=3, memory_budget=2**30)
    assert all(torch.allclose(small[n], large[n], rtol=1e-4, atol=1e-12) for n in small)


def test_the_estimate_stays_within_its_budget_where_the_naive_one_would_not_fit():
    """Peak memory of a fresh process (ru_maxrss) scoring a model whose naive per-sample gradients for 8
    samples (80 pairs x 17 MB = 1.4 GB) would not fit: with a 64 MiB budget the process stays far below."""
    script = textwrap.dedent("""
        import resource, torch
        from torch import nn
        from pruneviz.criteria.obd import hessian_diagonal
        torch.set_num_threads(1)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                              nn.Linear(2048, 10)).eval()
        x, y = torch.randn(8, 1, 8, 8), torch.arange(8)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hessian_diagonal(model, (x, y), memory_budget=64 * 2**20)
        print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = map(int, done.stdout.split())
    naive_kib = 8 * 10 * (64 * 2048 + 2048 * 2048 + 2048 * 10) * 4 // 1024
    assert after - before < naive_kib / 4, (before, after, naive_kib)
