"""Regression-based channel pruning (He, Zhang and Sun 2017, "Channel Pruning for Accelerating Very Deep Neural
Networks").

Pruning output channel c of layer L removes input channel c of the layer L+1 that reads it. Sample L+1's input
X (N rows: positions for a conv, samples for a Linear) and its output Y on calibration data. Channel c contributes
``Z_c = X_c W_c^T`` to Y, and the paper chooses the channels to keep with a LASSO on per-channel coefficients:

    min_beta  1/(2 N n) || Y - sum_c beta_c Z_c ||^2 + alpha ||beta||_1

Raising alpha drops channels one by one; the channels that survive the strongest penalty matter most. Then the
kept channels' weights of L+1 are fitted again by least squares, so L+1's outputs match the original ones:

    min_W' || Y - X_kept W'^T ||^2

Here the exact LASSO path (scikit-learn's LARS-lasso, ``lars_path_gram``) is computed once per layer and ranks the channels by the
largest penalty at which each is still selected: keeping the top k of that order is the LASSO's choice at the
penalty where k channels are left, and every ratio reuses the one path (scores once, nested masks).
:func:`reconstruct` applies the least-squares step to a channel-pruned model.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ..activations import calibration_batches, evaluating, record, record_io
from ..data import Data, check_data
from ..graph import LayerInfo
from ..snapshot import analysis, rolled_back
from .base import Criterion, register

POSITIONS = 4096  # rows of L+1's input and output sampled for the LASSO and the least squares
LIMIT = 512  # calibration samples at most


def next_layers(model: nn.Module) -> dict[str, tuple[str, int]]:
    """{layer L: (the one layer L+1 reading its channels, input columns per channel)} for every layer whose
    channels reach exactly one Conv/Linear through channel-wise ops (no skip connection, no blocker)."""
    from ..surgery import channel_groups  # the surgery's dependency analysis: who reads which channels

    try:
        groups = channel_groups(model)
    except ValueError:  # a model fx cannot trace: no layer has a known next layer
        return {}
    out = {}
    for group in groups:
        if len(group.producers) == 1 and len(group.consumers) == 1 and not group.blockers:
            (consumer, columns), = group.consumers.items()
            module = dict(model.named_modules())[consumer]
            if isinstance(module, nn.Linear) or getattr(module, "groups", 1) == 1:
                out[group.producers[0]] = (consumer, columns)
    return out


@dataclass
class Features:
    """Sampled inputs and outputs of layer L+1, split by the input channel they come from.

    ``x``: [N, C, m] input per channel (m = kernel positions, or flatten columns per channel);
    ``weight``: [n_out, C, m] L+1's weight in the same layout; ``y``: [N, n_out] output without bias.
    Read-only once built: :meth:`normal_equations` keeps what it computes from them.
    """

    x: torch.Tensor
    weight: torch.Tensor
    y: torch.Tensor
    _normal: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, init=False, repr=False, compare=False)

    def contributions(self) -> torch.Tensor:
        """Z: [N, n_out, C], each input channel's share of the output (they sum to y)."""
        return torch.einsum("ncm,ocm->noc", self.x, self.weight)

    def normal_equations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(X^T X [C*m, C*m], X^T Y [C*m, n_out]) over every channel, computed once: the least squares of any
        selection of channels is a block of these, so comparing many selections costs one pass over the rows."""
        if self._normal is None:
            x = self.x.reshape(len(self.x), -1)
            self._normal = (x.T @ x, x.T @ self.y)
        return self._normal


def _padding(module: nn.Conv2d) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding of a conv, as F.pad takes it ('same' pads the extra on the end)."""
    if module.padding == "valid":
        return (0, 0, 0, 0)
    if module.padding == "same":
        pads = []
        for k, d in zip(reversed(module.kernel_size), reversed(module.dilation)):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    ph, pw = module.padding
    return (pw, pw, ph, ph)


def _one_pixel_high(conv: nn.Conv1d) -> SimpleNamespace:
    """The geometry of a Conv1d as that of a Conv2d over inputs one pixel high (what _patches reads)."""
    padding = conv.padding if isinstance(conv.padding, str) else (0, conv.padding[0])
    return SimpleNamespace(kernel_size=(1, conv.kernel_size[0]), stride=(1, conv.stride[0]),
                           dilation=(1, conv.dilation[0]), padding=padding)


def _patches(module: nn.Conv2d, inputs: torch.Tensor, rows: torch.Tensor, out_size: tuple[int, int],
             channels: torch.Tensor) -> torch.Tensor:
    """The conv's input patches at the given output rows (image x position, as F.unfold numbers them), only
    ``channels``: [len(rows), len(channels), kh * kw]. Gathers just the sampled rows: what F.unfold of the whole
    input followed by row sampling gives, without building every patch first."""
    (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.stride, module.dilation
    padded = F.pad(inputs[:, channels], _padding(module))
    device = inputs.device
    rows = rows.to(device)
    per_image = out_size[0] * out_size[1]
    image, position = rows // per_image, rows % per_image
    top = (position // out_size[1]) * sh
    left = (position % out_size[1]) * sw
    r = top[:, None] + dh * torch.arange(kh, device=device)  # [R, kh]
    c = left[:, None] + dw * torch.arange(kw, device=device)  # [R, kw]
    patches = padded[image[:, None, None], :, r[:, :, None], c[:, None, :]]  # [R, kh, kw, C]
    return patches.permute(0, 3, 1, 2).reshape(len(rows), len(channels), kh * kw)


def _sample(count: int, positions: int, seed: int) -> torch.Tensor:
    """Rows to keep of ``count``: all in order, or ``positions`` of them in a seeded random order."""
    if count <= positions:
        return torch.arange(count)
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:positions]


def layer_features(model: nn.Module, layer: str, data: Data, *, positions: int = POSITIONS, limit: int | None = LIMIT,
                   seed: int = 0, consumers: dict[str, tuple[str, int]] | None = None) -> Features:
    """Features of the layer L+1 that reads ``layer``'s channels, on ``data`` (``positions`` rows sampled, seeded;
    ``limit`` calibration samples at most), in float64."""
    consumers = next_layers(model) if consumers is None else consumers
    if layer not in consumers:
        raise ValueError(f"layer {layer!r} has no single next Conv/Linear reading its channels; layers with one: "
                         f"{', '.join(consumers) or 'none'}")
    name, _ = consumers[layer]
    module = model.get_submodule(name)
    inputs, outputs = record_io(model, name, data, limit)
    return _features(module, inputs, outputs, model.get_submodule(layer).weight.shape[0], positions, seed)


def _features(module: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor, channels: int, positions: int,
              seed: int, keep: torch.Tensor | None = None) -> Features:
    """Features of ``module`` from its recorded input and output: ``positions`` rows sampled (seeded), the input
    channels in ``keep`` only (all by default), in float64, the output without bias."""
    weight = module.weight.detach().to(torch.float64)
    kept = torch.arange(channels) if keep is None else torch.as_tensor(keep, dtype=torch.bool).nonzero()[:, 0]
    if isinstance(module, nn.Linear):
        x = inputs.reshape(-1, module.in_features)
        y = outputs.reshape(-1, module.out_features)
        rows = _sample(len(x), positions, seed).to(x.device)
        x = x[rows].reshape(len(rows), channels, -1)[:, kept.to(x.device)]
        y = y[rows]
    elif isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.padding_mode == "zeros" and module.groups == 1:
        conv = module
        if isinstance(module, nn.Conv1d):  # a signal is an image one pixel high: the same patches
            conv, inputs, outputs = _one_pixel_high(module), inputs.unsqueeze(2), outputs.unsqueeze(2)
        per_image = outputs.shape[2] * outputs.shape[3]
        rows = _sample(len(outputs) * per_image, positions, seed).to(outputs.device)
        x = _patches(conv, inputs, rows, tuple(outputs.shape[2:]), kept.to(inputs.device))
        y = outputs.flatten(2)[rows // per_image, :, rows % per_image]  # [R, n_out]
    else:
        raise ValueError(f"regression pruning reconstructs Conv1d and Conv2d (zero padding, groups=1) and Linear "
                         f"layers, not {type(module).__name__}")
    x, y = x.to(torch.float64), y.to(torch.float64)
    if module.bias is not None:
        y = y - module.bias.detach().to(torch.float64)
    weight = weight.reshape(weight.shape[0], channels, -1)[:, kept.to(weight.device)]
    return Features(x, weight, y)


def lasso_coefficients(features: Features) -> tuple[np.ndarray, np.ndarray]:
    """The LASSO path of the per-channel coefficients: (alphas, decreasing to 0; coefs [C, len(alphas)]).

    The exact path (LARS with the LASSO modification, scikit-learn's ``lars_path_gram(method="lasso")``): between
    two of its penalties every coefficient is linear in alpha, so the path is continuous and drawn exactly by
    joining its points; coordinate descent on a grid of penalties stops short of convergence at tiny penalties
    (coefficients overshoot, the path jumps). A ConvergenceWarning from scikit-learn is let through: it means
    the path is not to be trusted there.

    ``alphas`` are on the scale of the objective 1/(2 M) ||y - Z beta||^2 + alpha ||beta||_1 over the M = N x
    n_out rows of the layer's outputs. At alpha = 0 every beta_c is 1 (the channels sum to y exactly)."""
    from sklearn.linear_model import lars_path_gram

    z = features.contributions().reshape(-1, features.x.shape[1])
    target = features.y.reshape(-1)
    channels = z.shape[1]
    gram, xy = z.T @ z, z.T @ target
    if not bool(xy.any()):  # nothing correlates with the output (e.g. all inputs zero): an all-zero path
        return np.zeros(2), np.zeros((channels, 2))
    # The LASSO sees the data only through Z^T Z and Z^T y; LARS takes those two directly (Gram and Xy), so
    # the M rows never enter the path's computation. Its alphas are divided by the sample count it is given.
    alphas, _, coefs = lars_path_gram(xy.numpy(), gram.numpy(), n_samples=len(target), method="lasso",
                                      alpha_min=0.0, max_iter=20 * channels)
    return alphas, coefs


def lasso_order(features: Features) -> torch.Tensor:
    """A score per input channel from the LASSO path: channels selected at a larger penalty score higher.

    Score = position in the order (0 = dropped first, C - 1 = kept longest) over C - 1; ties on the path
    (channels dropped between the same two penalties) are broken by |beta| where they were last selected.
    """
    alphas, coefs = lasso_coefficients(features)
    channels = coefs.shape[0]
    if not coefs.any():
        return torch.zeros(channels, dtype=torch.float64)
    n_alphas = coefs.shape[1]
    active = coefs != 0  # [C, n_alphas], alphas decreasing
    first = np.where(active.any(1), active.argmax(1), n_alphas)  # index of the largest penalty selecting it
    size_there = np.abs(coefs[np.arange(channels), np.minimum(first, n_alphas - 1)])
    order = np.lexsort((np.arange(channels), -size_there, first))  # most important first
    rank = np.empty(channels)
    rank[order] = np.arange(channels)[::-1]
    return torch.as_tensor(rank / max(1, channels - 1), dtype=torch.float64)


NORMAL_EQUATIONS_TOLERANCE = 1e-8  # relative size of a refinement step above which x is too ill-conditioned


def _solve(x: torch.Tensor, y: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """argmin_w ||y - x w||^2 [d, n_out] and its residual y - x w, with ``gram`` = x^T x and ``cross`` = x^T y.

    The normal equations by Cholesky. An all-zero column (a dead channel) gets weight exactly 0, the
    minimum-norm answer (an SVD over all columns gives it as rounding noise around 0). One step of refinement
    from the true residual says how far from the least-squares solution that is; when it is not tiny (x is close
    to rank-deficient, e.g. duplicated channels) or Cholesky fails, the minimum-norm solution by SVD
    (``torch.linalg.lstsq``, driver gelsd) on the other columns instead.
    """
    used = gram.diagonal() > 0
    if not bool(used.any()):
        return torch.zeros_like(cross), y
    every = bool(used.all())
    factor, info = torch.linalg.cholesky_ex(gram if every else gram[used][:, used])
    if int(info) == 0:
        x_used = x if every else x[:, used]
        weight = torch.cholesky_solve(cross if every else cross[used], factor)
        residual = y - x_used @ weight
        step = torch.cholesky_solve(x_used.T @ residual, factor)
        if float(step.norm()) <= NORMAL_EQUATIONS_TOLERANCE * float(weight.norm()):
            solution = torch.zeros_like(cross)
            solution[used] = weight
            return solution, residual
    solution = torch.zeros_like(cross)
    solution[used] = torch.linalg.lstsq(x[:, used], y, driver="gelsd").solution
    return solution, y - x @ solution


def least_squares(features: Features, keep: torch.Tensor) -> tuple[torch.Tensor, float]:
    """L+1's weight refitted on the kept input channels ([n_out, C, m], zero on the others) and the relative
    reconstruction error ||Y - Y'||^2 / ||Y||^2.

    Solved from the features' normal equations (computed once per ``features``, shared by every ``keep``)."""
    keep = torch.as_tensor(keep, dtype=torch.bool)
    n, _, m = features.x.shape
    fitted = torch.zeros_like(features.weight)
    every = bool(keep.all())
    x = (features.x if every else features.x[:, keep]).reshape(n, -1)
    if x.shape[1]:
        gram, cross = features.normal_equations()
        if not every:
            columns = keep.to(gram.device).repeat_interleave(m)
            gram, cross = gram[columns][:, columns], cross[columns]
        solution, residual = _solve(x, features.y, gram, cross)  # [k*m, n_out], [N, n_out]
        fitted[:, keep] = solution.T.reshape(features.weight.shape[0], -1, m)
    else:
        residual = features.y
    total = float(features.y.square().sum())
    return fitted, float(residual.square().sum()) / total if total else 0.0


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep mask of the k highest scores (ties: the lower index is kept, as the Pruner's stable order does)."""
    order = torch.sort(torch.as_tensor(scores).reshape(-1), stable=True).indices
    keep = torch.ones(order.numel(), dtype=torch.bool)
    keep[order[:order.numel() - k]] = False
    return keep


def reconstruct(pruner, data: Data, *, positions: int = POSITIONS, limit: int | None = LIMIT, seed: int = 0
                ) -> dict[str, float]:
    """He et al.'s second step on a channel-pruned model: refit each pruned layer's next layer by least squares
    on its kept input channels, so its outputs match the dense model's. Returns {next layer: relative error}.

    Layers are refitted in order, each on the inputs the already-reconstructed layers before it produce (as the
    paper does, so errors do not accumulate): one forward pass over the calibration data, as one batch, with a
    hook that refits each layer on its inputs just before it runs. The pruner keeps dense copies of the layers it
    rewrites:
    ``pruner.restore()`` gives the dense model back bit for bit, and a new ``pruner.prune(...)`` starts again
    from the dense weights (call ``reconstruct`` again after it).
    """
    if data is None:
        raise ValueError("reconstruct needs calibration data: a DataLoader, a Dataset or an (inputs, targets) pair")
    check_data(data, pruner.model, "calibration data")  # one NaN would turn every refitted layer into NaN
    with rolled_back(pruner.model, [pruner]):  # a refit that fails half-way leaves no layer half-refitted
        return _reconstruct(pruner, data, positions, limit, seed)[0]


def _reconstruct(pruner, data: Data, positions: int, limit: int | None, seed: int,
                 targets: dict[str, torch.Tensor] | None = None
                 ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """:func:`reconstruct`, and the dense outputs it aimed at: ``targets`` given back to the next call saves
    their forward pass while the dense model and the data stay the same (a sweep over ratios, one pruner)."""
    if pruner.granularity.name != "channel":
        raise ValueError(f"reconstruct needs a channel-granularity pruner, got {pruner.granularity.name!r}")
    if data is None:
        raise ValueError("reconstruct needs calibration data: a DataLoader, a Dataset or an (inputs, targets) pair")
    model = pruner.model
    consumers = next_layers(model)
    pairs = [(layer, consumers[layer][0]) for layer in pruner.layers if layer in consumers]
    for _, consumer in pairs:
        pruner.track(f"{consumer}.weight")
    masks = pruner.masks
    if targets is None:
        targets = _dense_outputs(pruner, [consumer for _, consumer in pairs], data, limit)
    errors: dict[str, float] = {}

    def refit(layer: str, consumer: str):
        keep = masks[layer].flatten(1).any(1).cpu()

        def hook(module: nn.Module, args: tuple) -> None:  # before the layer runs: its inputs are final now
            if consumer in errors:  # a module called twice in one forward is refitted once
                return
            feats = _features(module, args[0], targets[consumer], len(keep), positions, seed, keep=keep)
            fitted_kept, errors[consumer] = least_squares(feats, torch.ones(feats.x.shape[1], dtype=torch.bool))
            if not torch.isfinite(fitted_kept).all():
                raise FloatingPointError(f"the least-squares refit of {consumer} is not finite (NaN or infinite "
                                         "features from the calibration data or the layers before it)")
            fitted = torch.zeros(feats.weight.shape[0], len(keep), feats.weight.shape[2], dtype=torch.float64)
            fitted[:, keep] = fitted_kept.cpu()
            new = fitted.reshape(module.weight.shape).to(module.weight.device, module.weight.dtype)
            if consumer in masks:
                new = torch.where(masks[consumer], new, 0.0)
            module.weight.copy_(new)
        return hook

    # One forward pass refits every layer: a pre-hook fits each on the inputs that the layers before it, already
    # refitted, produce (what a pass per layer would record). A fit needs all calibration rows: one batch.
    inputs = torch.cat([x for x, _ in calibration_batches(model, data, limit)])
    modules = dict(model.named_modules())
    handles = [modules[consumer].register_forward_pre_hook(refit(layer, consumer)) for layer, consumer in pairs]
    try:
        with evaluating(model):
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {consumer: errors[consumer] for _, consumer in pairs}, targets


def _dense_outputs(pruner, consumers: list[str], data: Data, limit: int | None) -> dict[str, torch.Tensor]:
    """What the refits aim at: the dense model's outputs of ``consumers``, in one pass; the pruner's masks are
    written back after."""
    masks, ratios = pruner.masks, pruner.ratios
    pruner.restore()
    with torch.no_grad():
        targets = record(pruner.model, consumers, data, "output", limit)
    pruner.masks, pruner.ratios = masks, ratios
    pruner.apply_masks()
    return targets


@analysis
def reconstruction_sweep(model: nn.Module, data: Data, sparsities: Sequence[float], *, calibration: Data,
                         criterion: str = "regression", **pruner_options) -> pd.DataFrame:
    """Channel pruning at each sparsity, accuracy on ``data`` before and after :func:`reconstruct` (on
    ``calibration``): columns ``sparsity``, ``accuracy`` (selection only) and ``reconstructed`` (selection + least
    squares). The model is restored after."""
    from ..evaluation import evaluate
    from ..pruner import Pruner

    pruner = Pruner(model, criterion, "channel", data=calibration, **pruner_options)
    rows, targets = [], None  # the dense outputs: one pass for the whole sweep (every prune starts from dense)
    for sparsity in sparsities:
        pruner.prune(sparsity)
        row = {"sparsity": float(sparsity), "accuracy": evaluate(model, data)}
        if sparsity > 0:
            _, targets = _reconstruct(pruner, calibration, POSITIONS, LIMIT, 0, targets)
        row["reconstructed"] = evaluate(model, data) if sparsity > 0 else row["accuracy"]  # nothing refitted
        rows.append(row)
    return pd.DataFrame(rows)


@analysis
def random_bands(model: nn.Module, data: Data, sparsities: Sequence[float], *, calibration: Data,
                 seeds: Iterable[int] = range(5)) -> dict[str, pd.DataFrame]:
    """Random channel selection over several seeds, without and with the least-squares step: ``{"random": band,
    "random + LS": band}``, each with the columns of :func:`pruneviz.baselines.random_band`."""
    seeds = list(seeds)
    if len(seeds) < 2:
        raise ValueError(f"a band needs at least two seeds, got {seeds!r}")
    runs = pd.concat([reconstruction_sweep(model, data, sparsities, calibration=calibration, criterion="random",
                                           seed=seed) for seed in seeds])
    bands = {}
    for label, column in (("random", "accuracy"), ("random + LS", "reconstructed")):
        band = runs.groupby("sparsity", sort=True)[column].agg(["mean", "std", "min", "max"]).reset_index()
        bands[label] = band.assign(seeds=len(seeds))
    return bands


@dataclass
class Regression(Criterion):
    """He et al. 2017: a channel of layer L is as important as the LASSO finds it for reconstructing L+1."""

    name = "regression"
    needs_data = True
    granularities = ("channel",)
    description = "LASSO channel selection for the next layer's reconstruction (He et al. 2017)"
    positions: int = POSITIONS
    limit: int | None = LIMIT
    seed: int = 0

    def setup(self, model: nn.Module) -> None:
        self._next = next_layers(model)

    def covers(self, info: LayerInfo) -> str | None:
        if info.name not in getattr(self, "_next", {}):
            return "its channels do not feed exactly one next Conv/Linear (skip connection, output, or untraceable)"
        return None

    def covers_group(self, group, infos) -> str | None:
        if group.heads:
            return super().covers_group(group, infos)
        if group.coupled:
            return (f"its channels are coupled ({', '.join(group.producers)}): the LASSO reconstruction is "
                    "defined for one layer feeding one next layer, not for a coupled group")
        return self.covers(infos[group.producers[0]])

    def scores(self, model, layers, granularity, data=None):
        consumers = getattr(self, "_next", None) or next_layers(model)
        out = {}
        for name, info in layers.items():
            feats = layer_features(model, name, data, positions=self.positions, limit=self.limit, seed=self.seed,
                                   consumers=consumers)
            out[name] = lasso_order(feats).to(info.module.weight.device, info.module.weight.dtype)
        return out


register(Regression)
