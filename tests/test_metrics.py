"""macs() counts what torch.utils.flop_counter counts; layer_macs and macs(sparse=True) stay per layer."""
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import pruneviz
from pruneviz.metrics import layer_macs, macs


def flop_counter_macs(model, x):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(x)
    return counter.get_total_flops() // 2


class MatmulNet(nn.Module):
    """A hidden layer written as ``x @ W`` in forward, between two Linear layers."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.hidden = nn.Parameter(torch.randn(32, 24))
        self.fc2 = nn.Linear(24, 10)

    def forward(self, x):
        return self.fc2(torch.relu(torch.relu(self.fc1(x.flatten(1))) @ self.hidden))


class UpNet(nn.Module):
    """A ConvTranspose2d decoder after a Conv encoder."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        return self.head(torch.relu(self.up(torch.relu(self.down(x)))))


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        return self.fc(torch.relu(self.fc(x)))


X = torch.randn(1, 1, 8, 8)


@pytest.mark.parametrize("model, x", [(MatmulNet(), X), (UpNet(), X), (Twice(), torch.randn(3, 16)),
                                      (nn.Sequential(nn.Flatten(), nn.Linear(64, 5)), X)])
def test_macs_is_what_the_flop_counter_counts(model, x):
    assert macs(model, x) == flop_counter_macs(model, x) > 0


def test_matmul_in_forward_and_conv_transpose_are_counted():
    assert macs(MatmulNet(), X) == 64 * 32 + 32 * 24 + 24 * 10
    # ConvTranspose2d(8 -> 4, k=2, s=2) on 4x4: every input position feeds a 2x2 patch of each output channel
    assert macs(UpNet(), X) == 8 * 9 * 16 + 8 * 4 * 4 * 16 + 4 * 64
    assert layer_macs(UpNet(), X) == {"down": 8 * 9 * 16, "head": 4 * 64}  # prunable layers only


def test_layer_macs_add_up_over_the_calls_of_a_layer():
    assert layer_macs(Twice(), torch.randn(3, 16)) == {"fc": 2 * 3 * 16 * 16}


def test_sparse_macs_scale_only_the_pruned_layers():
    model = MatmulNet()
    dense = macs(model, X)
    pruneviz.Pruner(model, "magnitude", "element", layers=["fc1"]).prune(0.5)
    assert macs(model, X) == dense  # zeros in a dense tensor save nothing on dense hardware
    assert macs(model, X, sparse=True) == dense - 64 * 32 // 2  # half of fc1's MACs; x @ W counts in full


def test_macs_leave_the_mode_as_it_was():
    model = UpNet().train()
    macs(model, X)
    layer_macs(model, X)
    assert model.training


def test_summary_counts_as_macs_does():
    model = MatmulNet()
    pruneviz.Pruner(model, "magnitude", "channel", layers=["fc1"]).prune(0.25)
    numbers = pruneviz.metrics.summary(model, X)
    assert numbers["macs"] == macs(model, X) and numbers["sparse_macs"] == macs(model, X, sparse=True)
    assert numbers["sparse_macs"] == numbers["macs"] - 8 * 64  # 8 of fc1's 32 rows of 64 weights
