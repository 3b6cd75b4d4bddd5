"""Checks for the criteria exercises of notebooks 03-06: the slimming penalty and its global threshold (03), the
Fisher diagonal (04), dead neurons (05), LASSO selection (06); the lecture's APoZ example and the comparison
helper the other checks share. OBD's saliency is checked in :mod:`.obd`, APoZ from hooks in :mod:`.apoz`, the
least-squares refit in :mod:`.refit`.

Each check runs the student's function on the lecture's example and on random cases, compares it with the
formula, says in words what is wrong (shape, a channel's value, a mutated input), and refuses a function that
calls the library's own implementation.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..criteria.apoz import APoZ, apoz
from ..criteria.obd import OBD
from ..criteria.scaling import Scaling, slimming_loss, slimming_penalty
from .report import Check



def lecture_activations() -> torch.Tensor:
    """The lecture's APoZ example: 2 images, 3 channels of 4x4, with 11, 12 and 14 zeros of 32 per channel
    (drawn by :func:`pruneviz.plot.apoz_maps`)."""
    gen = torch.Generator().manual_seed(0)
    acts = torch.rand(3, 32, generator=gen) + 0.5
    for channel, zeros in enumerate((11, 12, 14)):
        acts[channel, torch.randperm(32, generator=gen)[:zeros]] = 0.0
    return acts.reshape(3, 2, 4, 4).transpose(0, 1).contiguous()


def _compare(check: Check, got: object, expected: torch.Tensor, what: str, *, atol: float = 1e-7,
             fmt: str = ".4f", mistakes: tuple[tuple[torch.Tensor, str], ...] = ()) -> None:
    """End the case with a problem unless ``got`` is a tensor equal to ``expected`` (to float tolerance).
    ``mistakes``: (what a known mistake returns, its name in words): a match names the mistake, not numbers."""
    check.expect(got is not None, f"returned None; return the {what} (a tensor)")
    check.expect(isinstance(got, torch.Tensor), f"returned a {type(got).__name__}, expected a torch.Tensor")
    check.expect(got.shape == expected.shape,
                 f"returned shape {tuple(got.shape)}, expected {tuple(expected.shape)} ({what})")
    close = torch.isclose(got.to(expected.dtype), expected, rtol=1e-5, atol=atol)
    if not close.all():
        for wrong, mistake in mistakes:
            if torch.allclose(got.to(expected.dtype), wrong, rtol=1e-5, atol=atol):
                check.fail(mistake)
        wrong = tuple((~close).nonzero()[0].tolist())
        check.fail(f"at index {list(wrong)} got {got[wrong].item():{fmt}}, expected {expected[wrong].item():{fmt}}")


def check_slimming_penalty(student_fn: Callable[[torch.nn.Module, float], torch.Tensor]) -> bool:
    """``student_fn(model, strength) -> strength * sum |gamma|`` over every BatchNorm, differentiable."""
    from ..zoo.models import digits_cnn

    torch.manual_seed(0)
    model = digits_cnn()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(-1.0, 1.0)  # negative gammas too: |gamma|, not gamma
    check = Check("network slimming penalty", forbid=(slimming_penalty, slimming_loss))
    for strength in (1e-3, 0.5):
        with check.case(f"digits-cnn with random gammas, strength {strength}"):
            got = check.run(student_fn, model, strength)
            expected = slimming_penalty(model, strength).detach()
            if isinstance(got, torch.Tensor) and got.numel() != 1:
                check.fail(f"returned {got.numel()} numbers (shape {tuple(got.shape)}); return one number: "
                           "strength x the sum of |gamma| over every BatchNorm layer, all layers added up")
            _compare(check, got.detach().reshape(()) if isinstance(got, torch.Tensor) else got, expected,
                     "one number")
            check.expect(got.requires_grad, "the result has no gradient; build it from the gammas (no .item(), "
                         "no .detach()) so backward() reaches them")
    return check.done()


def _expected_slimming_masks(model: torch.nn.Module, fraction: float) -> dict[str, torch.Tensor]:
    norms = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    gammas = torch.cat([m.weight.detach().abs().flatten() for m in norms.values()])
    keep = torch.ones(gammas.numel(), dtype=torch.bool)
    keep[torch.argsort(gammas, stable=True)[:round(fraction * gammas.numel())]] = False
    return dict(zip(norms, keep.split([m.weight.numel() for m in norms.values()])))


def check_slimming_masks(student_fn: Callable[[torch.nn.Module, float], dict]) -> bool:
    """``student_fn(model, fraction) -> {BatchNorm2d name: keep mask}``: network slimming's one global threshold
    on |gamma|, the ``round(fraction * C)`` smallest of all C channels dropped."""
    from ..pruner import Pruner
    from ..zoo import load
    from ..zoo.models import digits_cnn

    torch.manual_seed(4)
    signed = digits_cnn()
    with torch.no_grad():
        for module in signed.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(-1.0, 1.0)  # negative gammas: the threshold is on |gamma|
    skewed = digits_cnn()
    with torch.no_grad():
        for i, module in enumerate(m for m in skewed.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            module.weight.copy_(torch.rand(module.weight.shape) * 10.0 ** -i)  # each layer ten times smaller
    cases = [("the zoo's digits-cnn at 0.5", load("digits-cnn", device="cpu"), 0.5),
             ("digits-cnn with gammas of both signs, at 0.3", signed, 0.3),
             ("layers on different scales (bn4's gammas the smallest), at 0.4", skewed, 0.4),
             ("fraction 0: nothing dropped", signed, 0.0)]
    check = Check("network slimming masks", forbid=(Pruner, Scaling))
    for case, model, fraction in cases:
        with check.case(case):
            before = {k: v.clone() for k, v in model.state_dict().items()}
            got = check.run(student_fn, model, fraction)
            check.expect(all(torch.equal(before[k], v) for k, v in model.state_dict().items()),
                         "changed the model; only read the gammas")
            expected = _expected_slimming_masks(model, fraction)
            check.expect(isinstance(got, dict), f"returned a {type(got).__name__}, expected a dict "
                         "{BatchNorm name: keep mask}")
            check.expect(set(got) == set(expected), f"returned masks for {sorted(got)}, expected one per "
                         f"BatchNorm2d: {sorted(expected)}")
            for name, want in expected.items():
                mask = got[name]
                check.expect(isinstance(mask, torch.Tensor) and mask.dtype == torch.bool,
                             f"the mask of {name} is not a bool tensor")
                check.expect(tuple(mask.shape) == tuple(want.shape),
                             f"the mask of {name} has shape {tuple(mask.shape)}, expected {tuple(want.shape)} "
                             "(one entry per channel)")
            dropped = sum(int((~got[n]).sum()) for n in expected)
            total = sum(m.numel() for m in expected.values())
            check.expect(dropped == round(fraction * total),
                         f"dropped {dropped} channels in all, expected round({fraction} * {total}) = "
                         f"{round(fraction * total)}")
            per_layer = [round(fraction * m.numel()) for m in expected.values()]
            if fraction and [int((~got[n]).sum()) for n in expected] == per_layer and any(
                    not torch.equal(got[n], m) for n, m in expected.items()):
                check.fail("dropped the same fraction of every layer: network slimming uses one threshold "
                           "for the whole network")
            for name, want in expected.items():
                if not torch.equal(got[name], want):
                    gammas = dict(model.named_modules())[name].weight.detach()
                    wrong = int((got[name] != want).nonzero()[0])
                    verb = "kept" if got[name][wrong] else "dropped"
                    check.fail(f"{name} channel {wrong} (gamma {gammas[wrong].item():.4f}) was {verb}; the "
                               "channels dropped are those of smallest |gamma| over the whole network")
    return check.done()


def _per_sample_fisher(model: torch.nn.Module, layer: str, x: torch.Tensor, y: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean of squared per-sample gradients, square of the mean gradient) of the layer's weight, eval mode."""
    from torch.func import functional_call, grad, vmap

    key = f"{layer}.weight"
    fixed = {k: v.detach() for k, v in (*model.named_parameters(), *model.named_buffers())}
    was_training = model.training
    model.eval()
    try:
        def loss(w, xn, yn):
            logits = functional_call(model, {**fixed, key: w}, (xn.unsqueeze(0),))
            return torch.nn.functional.cross_entropy(logits, yn.unsqueeze(0))

        grads = vmap(grad(loss), in_dims=(None, 0, 0))(fixed[key], x, y)
    finally:
        model.train(was_training)
    return grads.square().mean(0), grads.mean(0).square()


def check_empirical_fisher(student_fn: Callable[[torch.nn.Module, str, torch.Tensor, torch.Tensor], torch.Tensor]
                           ) -> bool:
    """``student_fn(model, layer, x, y) -> F`` (the layer's weight shape): the mean over samples of the squared
    per-sample gradient of the cross-entropy, the model in eval mode and left as it was."""
    from collections import OrderedDict

    from ..criteria.obd import hessian_diagonal
    from ..data import as_tensors, digits
    from ..zoo import load

    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    mlp = torch.nn.Sequential(OrderedDict([("fc1", torch.nn.Linear(6, 5)), ("relu", torch.nn.ReLU()),
                                           ("fc2", torch.nn.Linear(5, 3))]))
    x_small, y_small = torch.randn(10, 6, generator=gen), torch.randint(0, 3, (10,), generator=gen)
    cnn = load("digits-cnn", device="cpu")
    x_val, y_val = as_tensors(digits().val, limit=8)
    cnn.train()  # the check hands it over in training mode: BatchNorm must be switched to eval for the gradients
    cases = [("a small MLP, fc1, 10 samples", mlp, "fc1", x_small, y_small),
             ("a small MLP, fc2, a single sample", mlp, "fc2", x_small[:1], y_small[:1]),
             ("the zoo's digits-cnn (handed over in training mode), conv4, 8 validation images", cnn, "conv4",
              x_val, y_val)]
    check = Check("empirical Fisher diagonal", forbid=(hessian_diagonal, OBD))
    for case, model, layer, x, y in cases:
        with check.case(case):
            state = {k: v.clone() for k, v in model.state_dict().items()}
            was_training = model.training
            for p in model.parameters():
                p.grad = None
            got = check.run(student_fn, model, layer, x.clone(), y.clone())
            check.expect(all(torch.equal(state[k], v) for k, v in model.state_dict().items()),
                         "changed the model's weights or BatchNorm statistics (run it in eval mode)")
            check.expect(model.training == was_training, "left the model in another train/eval mode than it "
                         "was handed over in: put it back")
            check.expect(all(p.grad is None for p in model.parameters()), "left gradients in .grad: use "
                         "torch.autograd.grad, or zero them afterwards")
            expected, mean_squared = _per_sample_fisher(model, layer, x, y)
            if (isinstance(got, torch.Tensor) and got.shape == expected.shape and len(x) > 1
                    and torch.allclose(got.detach().to(expected.dtype), mean_squared, rtol=1e-3,
                                       atol=1e-4 * float(mean_squared.abs().max()))):
                check.fail("this is the square of the batch's mean gradient; the Fisher is the mean of the "
                           "squared per-sample gradients (one gradient per sample, squared, then averaged)")
            if (isinstance(got, torch.Tensor) and got.shape == expected.shape and len(x) > 1
                    and torch.allclose(got.detach().to(expected.dtype), len(x) * expected, rtol=1e-3,
                                       atol=1e-4 * len(x) * float(expected.abs().max()))):
                check.fail(f"{len(x)} times too large: divide the sum over samples by their number")
            _compare(check, got.detach() if isinstance(got, torch.Tensor) else got, expected,
                     "one value per weight of the layer", atol=1e-4 * float(expected.abs().max()), fmt=".3e")
    return check.done()


def _hidden_alive(mlp: torch.nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Per hidden Linear (all but the last): which of its neurons are non-zero after the ReLU on some row."""
    alive, h = [], x
    modules = list(mlp)
    with torch.no_grad():
        for i, module in enumerate(modules):
            h = module(h)
            if isinstance(module, torch.nn.ReLU):
                alive.append((h != 0).any(dim=0))
    return alive


def _planted_mlp() -> tuple[torch.nn.Sequential, torch.Tensor]:
    """A 5-8-6-3 MLP with dead neurons planted (rows that can never fire) and one that fires on one row only."""
    from collections import OrderedDict

    torch.manual_seed(6)
    mlp = torch.nn.Sequential(OrderedDict([("fc1", torch.nn.Linear(5, 8)), ("relu1", torch.nn.ReLU()),
                                           ("fc2", torch.nn.Linear(8, 6)), ("relu2", torch.nn.ReLU()),
                                           ("fc3", torch.nn.Linear(6, 3))]))
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        for layer, row in ((mlp.fc1, 1), (mlp.fc1, 6), (mlp.fc2, 3)):
            layer.weight[row] = 0.0
            layer.bias[row] = -1.0  # never above zero: dead on any input
        mlp.fc1.weight[4] = 0.0
        mlp.fc1.weight[4, 0] = 1.0
        mlp.fc1.bias[4] = -float(x[:, 0].max()) + 1e-3  # fires on the one row with the largest x[:, 0]
    return mlp, x


def check_remove_dead_neurons(student_fn: Callable[[torch.nn.Sequential, torch.Tensor], torch.nn.Module]) -> bool:
    """``student_fn(mlp, x) -> smaller MLP``: the hidden neurons that are zero after their ReLU on every row of
    ``x`` removed (rows of their Linear, columns of the next), the same outputs on ``x``, the input untouched."""
    from collections import OrderedDict

    from ..criteria.apoz import dead_units, prune_dead
    from ..data import as_tensors, digits
    from ..pruner import Pruner
    from ..zoo import load

    planted, x_planted = _planted_mlp()
    torch.manual_seed(7)
    lively = torch.nn.Sequential(OrderedDict([("fc1", torch.nn.Linear(4, 6)), ("relu1", torch.nn.ReLU()),
                                              ("fc2", torch.nn.Linear(6, 2))]))
    with torch.no_grad():
        lively.fc1.bias.fill_(10.0)  # every neuron fires on every row: nothing to remove
    x_val, _ = as_tensors(digits().val)
    cases = [("the zoo's digits-mlp on the 360 validation images", load("digits-mlp", device="cpu"), x_val),
             ("an MLP with three dead neurons planted and one that fires on a single row", planted, x_planted),
             ("an MLP in which every neuron fires (nothing to remove)", lively,
              torch.randn(10, 4, generator=torch.Generator().manual_seed(7)))]
    check = Check("removing dead neurons", forbid=(apoz, APoZ, dead_units, prune_dead, Pruner))
    for case, mlp, x in cases:
        with check.case(case):
            state = {k: v.clone() for k, v in mlp.state_dict().items()}
            got = check.run(student_fn, mlp, x.clone())
            check.expect(all(torch.equal(state[k], v) for k, v in mlp.state_dict().items())
                         and len(state) == len(mlp.state_dict()),
                         "changed the MLP it was given; build a new one (copy.deepcopy, or new nn.Linear layers)")
            check.expect(isinstance(got, torch.nn.Module), f"returned a {type(got).__name__}, expected a smaller "
                         "nn.Sequential")
            alive = _hidden_alive(mlp, x)
            dense_linears = [m for m in mlp if isinstance(m, torch.nn.Linear)]
            got_linears = [m for m in got.modules() if isinstance(m, torch.nn.Linear)]
            check.expect(len(got_linears) == len(dense_linears),
                         f"has {len(got_linears)} Linear layers, expected {len(dense_linears)}: keep every layer, "
                         "only fewer neurons")
            for i, (mask, layer) in enumerate(zip(alive, got_linears)):
                want = int(mask.sum())
                if layer.out_features > want:
                    check.fail(f"hidden layer {i + 1} has {layer.out_features} neurons, expected {want}: "
                               f"{layer.out_features - want} dead neuron(s) (zero after the ReLU on every row) kept")
                if layer.out_features < want:
                    check.fail(f"hidden layer {i + 1} has {layer.out_features} neurons, expected {want}: a neuron "
                               "that fires on some row was removed (APoZ below 1 is not dead)")
            with torch.no_grad():
                expected = mlp(x)
                try:
                    out = got(x)
                except RuntimeError as err:
                    check.fail(f"the smaller MLP fails on x ({err}): remove the matching columns of the next "
                               "Linear too")
            check.expect(tuple(out.shape) == tuple(expected.shape),
                         f"outputs of shape {tuple(out.shape)}, expected {tuple(expected.shape)}")
            check.expect(torch.allclose(out, expected, rtol=1e-4, atol=1e-5),
                         f"computes other outputs than the MLP on x (largest difference "
                         f"{float((out - expected).abs().max()):.2e}): remove the matching columns of the next "
                         "Linear, and keep the biases of the neurons that stay")
    return check.done()


def _planted_lasso(channels: int, strong: list[float], seed: int) -> tuple[torch.Tensor, torch.Tensor, set[int]]:
    """Contributions z [M, C] and y = sum of a few channels at full strength + the rest barely, + noise."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(400, channels, generator=gen, dtype=torch.float64)
    chosen = torch.randperm(channels, generator=gen)[:len(strong)].tolist()
    beta = torch.full((channels,), 0.02, dtype=torch.float64)
    beta[chosen] = torch.tensor(strong, dtype=torch.float64)
    y = z @ beta + 0.01 * torch.randn(400, generator=gen, dtype=torch.float64)
    return z, y, set(chosen)


def _correlated_lasso() -> tuple[torch.Tensor, torch.Tensor, set[int], dict[frozenset, str]]:
    """Six correlated channels (three hidden factors) where the LASSO's first two differ from each shortcut:
    ranking by |z_c^T y|, by |beta_OLS,c| ||z_c||, and greedy forward least squares each pick another pair.
    Returns z, y, the LASSO's pair (from the exact path, LARS-lasso) and {pair: the shortcut that gives it}."""
    import numpy as np
    from sklearn.linear_model import lars_path

    gen = torch.Generator().manual_seed(13)
    channels = 6
    base = torch.randn(200, 3, generator=gen, dtype=torch.float64)
    mix = torch.randn(3, channels, generator=gen, dtype=torch.float64)
    z = base @ mix + 0.3 * torch.randn(200, channels, generator=gen, dtype=torch.float64)
    y = z @ torch.randn(channels, generator=gen, dtype=torch.float64) + 0.1 * torch.randn(200, generator=gen,
                                                                                          dtype=torch.float64)
    _, _, coefs = lars_path(z.numpy(), y.numpy(), method="lasso")
    active = coefs != 0
    entered = np.where(active.any(1), active.argmax(1), coefs.shape[1])
    lasso = set(np.argsort(entered, kind="stable")[:2].tolist())
    corr = frozenset(torch.argsort((z.T @ y).abs(), descending=True)[:2].tolist())
    ols = torch.linalg.lstsq(z, y[:, None], driver="gelsd").solution[:, 0]
    scaled = frozenset(torch.argsort(ols.abs() * z.norm(dim=0), descending=True)[:2].tolist())
    chosen: list[int] = []
    for _ in range(2):  # forward selection: the channel that lowers the least-squares residual most
        def residual(c: int) -> float:
            cols = z[:, chosen + [c]]
            return float((y - cols @ torch.linalg.lstsq(cols, y[:, None], driver="gelsd").solution[:, 0]).norm())
        chosen.append(min((c for c in range(channels) if c not in chosen), key=residual))
    shortcuts = {corr: "ranked the channels by |z_c^T y| (their correlation with y): that is only the LASSO's "
                       "first step; correlated channels enter and leave as the penalty falls",
                 scaled: "ranked the channels by the least-squares coefficients (|beta_c| ||z_c||): that is the "
                         "penalty-free end of the path, not the order in which the LASSO selects",
                 frozenset(chosen): "greedy forward least squares (the channel that lowers the residual most, "
                                    "one at a time): close in spirit, but not the LASSO path"}
    return z, y, lasso, {k: v for k, v in shortcuts.items() if set(k) != lasso}


def check_lasso_select(student_fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> bool:
    """``student_fn(z [M, C], y [M], k) -> keep [C]``: the k channels the LASSO keeps longest as the penalty
    grows; on the zoo's conv3 it must reconstruct conv4's output as well as the kit's LASSO order does."""
    from ..criteria.regression import Regression, lasso_coefficients, lasso_order, layer_features, top_k
    from ..data import digits
    from ..zoo import load

    z3, y3, three = _planted_lasso(8, [1.0, 0.8, 0.6], seed=8)
    z5, y5, five = _planted_lasso(12, [1.0, 0.9, 0.7, 0.5, 0.3], seed=9)
    feats = layer_features(load("digits-cnn", device="cpu"), "conv3", digits().val, positions=64)
    z_cnn, y_cnn = feats.contributions().reshape(-1, 64), feats.y.reshape(-1)
    z_corr, y_corr, corr_pair, shortcuts = _correlated_lasso()
    cases = [("8 channels, 3 of them carry the output, k = 3", z3, y3, 3, three),
             ("6 correlated channels (3 hidden factors), k = 2", z_corr, y_corr, 2, corr_pair),
             ("12 channels, 5 of them carry the output (of different strength), k = 5", z5, y5, 5, five),
             ("the zoo's conv3 (64 channels, read by conv4, on 64 positions of val), k = 16", z_cnn, y_cnn, 16,
              None)]
    check = Check("LASSO channel selection", forbid=(lasso_order, lasso_coefficients, Regression))
    for case, z, y, k, planted in cases:
        with check.case(case):
            z0, y0 = z.clone(), y.clone()
            got = check.run(student_fn, z, y, k)
            check.expect(torch.equal(z0, z) and torch.equal(y0, y), "changed z or y in place")
            check.expect(isinstance(got, torch.Tensor), f"returned a {type(got).__name__}, expected a bool tensor")
            check.expect(got.dtype == torch.bool and tuple(got.shape) == (z.shape[1],),
                         f"returned {got.dtype} of shape {tuple(got.shape)}, expected a bool mask of shape "
                         f"({z.shape[1]},): one entry per channel")
            check.expect(int(got.sum()) == k, f"keeps {int(got.sum())} channels, expected exactly k = {k}")
            if planted is not None:
                chosen = set(torch.nonzero(got).flatten().tolist())
                if z is z_corr and chosen != planted and frozenset(chosen) in shortcuts:
                    check.fail(f"kept channels {sorted(chosen)}, the LASSO path's first two are {sorted(planted)}: "
                               f"{shortcuts[frozenset(chosen)]}")
                check.expect(chosen == planted, f"kept channels {sorted(chosen)}; the output is made of channels "
                             f"{sorted(planted)}, which the LASSO keeps longest")
            else:
                from ..criteria.regression import least_squares

                mine, kit = least_squares(feats, got)[1], least_squares(feats, top_k(lasso_order(feats), k))[1]
                check.expect(mine <= 1.05 * kit + 1e-3,
                             f"your {k} channels reconstruct conv4's output with a relative error of {mine:.3f}, "
                             f"the LASSO path's with {kit:.3f}: take the channels that stay non-zero up to the "
                             "largest penalty")
    return check.done()
