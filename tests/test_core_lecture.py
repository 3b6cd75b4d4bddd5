"""The lecture's worked examples, exactly, and agreement with torch.nn.utils.prune."""
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from pruneviz import Pruner, prune_tensor, tensor_mask

W = torch.tensor([[3.0, -2.0], [1.0, -5.0]])


def test_fine_grained_example():
    assert torch.equal(prune_tensor(torch.tensor([-2.0, 3.0, -5.0, 1.0]), 0.5), torch.tensor([0.0, 3.0, -5.0, 0.0]))


def test_element_wise_example():
    assert torch.equal(prune_tensor(W, 0.5), torch.tensor([[3.0, 0.0], [0.0, -5.0]]))


def test_row_wise_example():
    # row importance = sum |w|: row 0 -> 5, row 1 -> 6: row 0 goes
    assert torch.equal(prune_tensor(W, 0.5, granularity="channel"), torch.tensor([[0.0, 0.0], [1.0, -5.0]]))


def test_prune_tensor_leaves_input_alone():
    original = W.clone()
    prune_tensor(W, 0.5)
    assert torch.equal(W, original)


def test_lab_exact_count():
    # the lab: 25 entries, sparsity chosen so exactly 10 remain -> 15 pruned
    t = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    assert int(tensor_mask(t, 0.6).sum()) == 10


@pytest.mark.parametrize("amount", [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("shape", [(16, 8), (8, 4, 3, 3), (3, 5)])
def test_agrees_with_l1_unstructured(amount, shape):
    weight = torch.randn(shape, generator=torch.Generator().manual_seed(hash((amount, shape)) % 1000))
    layer = nn.Linear(1, 1)
    layer.weight = nn.Parameter(weight.clone())
    torch_prune.l1_unstructured(layer, "weight", amount=amount)
    assert torch.equal(tensor_mask(weight, amount), layer.weight_mask.bool())


@pytest.mark.parametrize("amount", [0.0, 0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("norm,criterion", [(1, "magnitude"), (2, "l2")])
def test_agrees_with_ln_structured(amount, norm, criterion):
    weight = torch.randn(8, 6, 3, 3, generator=torch.Generator().manual_seed(7))
    layer = nn.Conv2d(6, 8, 3)
    layer.weight = nn.Parameter(weight.clone())
    torch_prune.ln_structured(layer, "weight", amount=amount, n=norm, dim=0)
    assert torch.equal(tensor_mask(weight, amount, criterion, "channel"), layer.weight_mask.bool())


def test_agrees_with_global_unstructured(cnn):
    reference = [(m, "weight") for m in cnn.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    pruner = Pruner(cnn, scope="global").prune(0.6)
    ours = {name: mask.clone() for name, mask in pruner.masks.items()}
    pruner.restore()
    torch_prune.global_unstructured(reference, torch_prune.L1Unstructured, amount=0.6)
    theirs = {name: m.weight_mask.bool() for name, m in cnn.named_modules() if hasattr(m, "weight_mask")}
    assert ours.keys() == theirs.keys()
    # ties between equal |w| may break differently; the counts and all other entries agree
    differing = sum(int((ours[n] != theirs[n]).sum()) for n in ours)
    assert sum(int((~m).sum()) for m in ours.values()) == sum(int((~m).sum()) for m in theirs.values())
    assert differing == 0


def test_nm_exact_pattern():
    weight = torch.randn(8, 16, 3, 3, generator=torch.Generator().manual_seed(1))
    mask = tensor_mask(weight, 0.5, granularity="2:4")
    blocks = mask.movedim(1, -1).reshape(-1, 4)
    assert torch.equal(blocks.sum(1), torch.full((blocks.shape[0],), 2))
    # the two kept are the two largest |w| of each block
    scores = weight.abs().movedim(1, -1).reshape(-1, 4)
    top2 = torch.zeros_like(blocks).scatter_(1, scores.topk(2, dim=1).indices, True)
    assert torch.equal(blocks, top2)
