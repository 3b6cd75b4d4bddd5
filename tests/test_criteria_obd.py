"""Optimal Brain Damage: exact Hessian diagonal against autograd's full Hessian, the estimate against exact."""
import pytest
import torch
from scipy import stats
from torch import nn

import pruneviz
from pruneviz.criteria import hessian_diagonal, obd_saliency

from .conftest import same_state, state_of


@pytest.fixture
def tiny():
    """Tanh, not ReLU: its Hessian diagonal has curvature terms the Gauss-Newton estimate leaves out."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x = torch.randn(24, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (24,))
    return model, (x, y)


def autograd_diagonal(model, name, x, y):
    weight = model.get_submodule(name).weight.detach().clone()

    def loss(w):
        logits = torch.func.functional_call(model, {f"{name}.weight": w}, (x,))
        return nn.functional.cross_entropy(logits, y)

    n = weight.numel()
    return torch.autograd.functional.hessian(loss, weight).reshape(n, n).diagonal().reshape(weight.shape)


def test_exact_equals_autograd_hessian_diagonal(tiny):
    model, (x, y) = tiny
    exact = hessian_diagonal(model, (x, y), mode="exact", limit=None, chunk=7)  # chunks that do not divide n
    for name in ("0", "2"):
        assert torch.allclose(exact[name], autograd_diagonal(model, name, x, y), rtol=1e-10, atol=1e-12)
    # over two batches the diagonal of the mean loss is the share-weighted sum of the batches'
    split = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=10)
    batched = hessian_diagonal(model, split, mode="exact", limit=None)
    assert all(torch.allclose(batched[n], exact[n], rtol=1e-10, atol=1e-12) for n in exact)


def test_pruner_scores_are_half_h_w_squared(tiny):
    model, data = tiny
    exact = hessian_diagonal(model, data, mode="exact", limit=None)
    element = pruneviz.Pruner(model, "obd", "element", data=data, mode="exact", limit=None)
    channel = pruneviz.Pruner(model, "obd", "channel", data=data, mode="exact", limit=None)
    w = model[0].weight.detach()
    assert torch.allclose(element.scores["0"], 0.5 * exact["0"] * w.square())
    assert torch.allclose(channel.scores["0"], (0.5 * exact["0"] * w.square()).sum(1))
    assert torch.equal(obd_saliency(torch.tensor([2.0, -3.0]), torch.tensor([0.5, 2.0])), torch.tensor([1.0, 9.0]))


def test_estimate_ranks_like_exact_on_the_kits_cnn(cnn, digits):
    """Measured: Spearman 1.000 on conv1 (ReLU net: the Gauss-Newton diagonal is the exact one)."""
    train = digits.train
    exact = hessian_diagonal(cnn, train, ["conv1"], mode="exact", limit=32)["conv1"]
    estimate = hessian_diagonal(cnn, train, ["conv1"], mode="estimate", limit=32)["conv1"]
    w = cnn.conv1.weight.detach()
    rho = stats.spearmanr(obd_saliency(w, exact).flatten(), obd_saliency(w, estimate).flatten()).statistic
    k = w.numel() // 5
    low_exact = set(obd_saliency(w, exact).flatten().argsort()[:k].tolist())
    low_estimate = set(obd_saliency(w, estimate).flatten().argsort()[:k].tolist())
    overlap = len(low_exact & low_estimate) / k
    print(f"conv1 OBD saliency, estimate vs exact: Spearman {rho:.4f}, bottom-20% overlap {overlap:.3f}")
    assert rho > 0.99 and overlap > 0.9


def test_estimate_on_a_smooth_net_is_only_an_approximation(tiny):
    """Tanh'' terms are missing from Gauss-Newton: on this untrained net the saliency ranks differ a lot
    (measured Spearman 0.30) in the hidden layer, and agree exactly in the last one."""
    model, data = tiny
    exact = hessian_diagonal(model, data, mode="exact", limit=None)
    estimate = hessian_diagonal(model, data, mode="estimate", limit=None)
    assert not torch.allclose(exact["0"], estimate["0"])  # tanh'' terms are missing from Gauss-Newton
    assert torch.allclose(exact["2"], estimate["2"])  # the last layer: logits are linear in its weights
    w = model[0].weight.detach()
    rho = stats.spearmanr(obd_saliency(w, exact["0"]).flatten(), obd_saliency(w, estimate["0"]).flatten())
    print(f"untrained tanh net, hidden layer: Spearman {rho.statistic:.3f}")
    assert rho.statistic < 0.99


def test_scoring_leaves_the_model_as_it_was(cnn, digits):
    cnn.train()
    cnn.conv2.weight.requires_grad_(False)
    before = state_of(cnn)
    pruneviz.Pruner(cnn, "obd", "kernel", data=digits.train, limit=32)
    assert same_state(state_of(cnn), before) and cnn.training and not cnn.conv2.weight.requires_grad
    assert all(p.grad is None for p in cnn.parameters())


def test_bad_options_are_clear(cnn, digits):
    with pytest.raises(ValueError, match="'exact', 'estimate'"):
        pruneviz.Pruner(cnn, "obd", data=digits.train, mode="hutchinson")
    with pytest.raises(ValueError, match="mode='estimate'"):
        pruneviz.Pruner(cnn, "obd", data=digits.train, mode="exact")  # conv4 has 36864 weights
    with pytest.raises(ValueError, match="calibration data"):
        pruneviz.Pruner(cnn, "obd")
