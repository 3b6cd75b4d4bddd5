"""The explorer's readout counts MACs as pruneviz.macs does (issue 20, item 14): one counting for both."""
import torch
from torch import nn

import pruneviz
from pruneviz.widgets import explore


def test_the_readout_counts_what_pruneviz_macs_counts_layers_it_does_not_prune_included():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(8, 4, 3, padding=1),
                          nn.Flatten(), nn.Linear(4 * 8 * 8, 10)).eval()
    x = torch.rand(40, 1, 8, 8)
    y = torch.randint(0, 10, (40,))
    explorer = explore(model, (x, y), figure="agg", grid=(0.0, 0.5))
    dense = explorer.session.readout()
    assert dense.macs == pruneviz.macs(model, x[:1])  # the ConvTranspose's MACs counted too
    explorer.sparsity.value = 0.5
    pruned = explorer.session.readout()
    assert pruned.macs == dense.macs
    assert pruned.sparse_macs == pruneviz.macs(model, x[:1], sparse=True) < dense.macs
