"""Optimal Brain Damage: exact Hessian diagonal against autograd's full Hessian, the estimate against exact,
the Taylor terms of many removals at once against the full Hessian case by case."""
import copy

import pytest
import torch
from scipy import stats
from torch import nn

import pruneviz
from pruneviz.criteria import hessian_diagonal, obd_saliency
from pruneviz.criteria.obd import taylor_table, taylor_terms

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


def straightforward_taylor_terms(model, x, y, masks):
    """The expansion's terms from autograd's full Hessian over every layer's weight at once (the plain way)."""
    names = list(masks)
    weights = [model.get_submodule(n).weight.detach().clone() for n in names]
    sizes = [w.numel() for w in weights]

    def loss(flat):
        parts = dict(zip([f"{n}.weight" for n in names], flat.split(sizes)))
        params = {k: v.view_as(w) for (k, v), w in zip(parts.items(), weights)}
        return nn.functional.cross_entropy(torch.func.functional_call(model, params, (x,)), y)

    flat_w = torch.cat([w.reshape(-1) for w in weights])
    delta = torch.cat([torch.where(masks[n], 0.0, -w).reshape(-1) for n, w in zip(names, weights)])
    g = torch.autograd.functional.jacobian(loss, flat_w)
    hessian = torch.autograd.functional.hessian(loss, flat_w)
    estimate = hessian_diagonal(model, (x, y), names, limit=None)
    diagonal = float(sum(0.5 * (estimate[n] * torch.where(masks[n], 0.0, -w).square()).sum()
                         for n, w in zip(names, weights)))
    quadratic = float(0.5 * delta @ hessian @ delta)
    return {"diagonal": diagonal, "cross": quadratic - diagonal, "quadratic": quadratic,
            "first_order": float(g @ delta), "measured": float((loss(flat_w + delta) - loss(flat_w)).detach())}


def test_taylor_table_equals_the_full_hessian_computation_case_by_case(tiny):
    """taylor_table shares the diagonal, the gradient and one vmapped Hessian-vector pass among the cases;
    each row must be what the full Hessian gives for that case alone, and what taylor_terms gives."""
    model, (x, y) = tiny
    before = state_of(model)
    generator = torch.Generator().manual_seed(1)
    cases = {f"case {c}": {n: torch.rand(model.get_submodule(n).weight.shape, generator=generator) > keep
                           for n in ("0", "2")} for c, keep in enumerate((0.2, 0.5, 0.9))}
    cases["only layer 2"] = {"2": cases["case 1"]["2"]}
    table = taylor_table(model, (x, y), cases)
    assert list(table.index) == list(cases)
    for label, masks in cases.items():
        full = {n: masks.get(n, torch.ones_like(model.get_submodule(n).weight, dtype=torch.bool)) for n in ("0", "2")}
        expected = straightforward_taylor_terms(model, x, y, full)
        alone = taylor_terms(model, (x, y), masks)
        for term, value in expected.items():
            assert table.loc[label, term] == pytest.approx(value, rel=1e-9, abs=1e-12), (label, term)
            assert alone[term] == pytest.approx(value, rel=1e-9, abs=1e-12), (label, term)
    assert same_state(state_of(model), before)


def test_taylor_table_bad_input_is_clear(tiny):
    model, data = tiny
    keep = torch.ones(5, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="cases is empty"):
        taylor_table(model, data, {})
    with pytest.raises(ValueError, match="'0', '2'"):
        taylor_table(model, data, {"a": {"1": keep}})
    with pytest.raises(ValueError, match=r"mask of '0' has shape \(4, 5\).*\(case 'b'\)"):
        taylor_table(model, data, {"a": {"0": keep}, "b": {"0": keep.T}})
    with torch.no_grad():
        model[0].weight[0] = 0.0
    drop_zeros = keep.clone()
    drop_zeros[0] = False
    with pytest.raises(ValueError, match=r"dense model.*\(case 'b'\)"):
        taylor_table(model, data, {"a": {"0": keep}, "b": {"0": drop_zeros}})


def test_hessian_diagonal_is_computed_once_per_model_state_and_data(cnn, digits, monkeypatch):
    from pruneviz.criteria import obd as obd_module

    calls = []
    compute = obd_module._gauss_newton
    monkeypatch.setattr(obd_module, "_gauss_newton", lambda *a, **k: calls.append(1) or compute(*a, **k))
    monkeypatch.setattr(obd_module, "_DIAGONALS", obd_module.OrderedDict())
    model = copy.deepcopy(cnn)
    first = pruneviz.hessian_diagonal(model, digits.val, ["conv4", "fc"], limit=64)
    first["fc"].zero_()  # the caller's copy: the kept one is untouched
    again = pruneviz.hessian_diagonal(model, digits.val, ["conv4", "fc"], limit=64)
    assert len(calls) == 1 and again["fc"].abs().sum() > 0
    monkeypatch.setattr(obd_module, "_DIAGONALS", obd_module.OrderedDict())  # computed afresh: bit for bit the same
    recomputed = pruneviz.hessian_diagonal(model, digits.val, ["conv4", "fc"], limit=64)
    assert all(torch.equal(again[n], recomputed[n]) for n in again)
    with torch.no_grad():
        model.fc.weight[0, 0] = 0.0  # another model state: computed again
    pruneviz.hessian_diagonal(model, digits.val, ["conv4", "fc"], limit=64)
    pruneviz.hessian_diagonal(model, digits.val, ["conv4"], limit=64)  # other layers, other options: again
    pruneviz.hessian_diagonal(model, digits.val, ["conv4"], limit=32)
    loader = torch.utils.data.DataLoader(digits.val, batch_size=32)
    pruneviz.hessian_diagonal(model, loader, ["conv4"], limit=32)  # a loader is read again each time
    pruneviz.hessian_diagonal(model, loader, ["conv4"], limit=32)
    assert len(calls) == 7  # all but the second call computed
