"""Scaling-based: the BatchNorm gamma that scales a channel is its importance (Liu et al. 2017, network slimming).

After BatchNorm a channel is ``gamma * x_hat + beta`` with ``x_hat`` normalised: a channel with ``|gamma|`` near
zero carries (almost) nothing but a constant. Network slimming trains with an L1 penalty on every gamma so that
many of them go to zero, then prunes the channels of smallest ``|gamma|``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..data import Data
from ..graph import NORMS, LayerInfo
from .base import Criterion, register


@dataclass
class Scaling(Criterion):
    """|gamma| of the BatchNorm right after a layer, per output channel."""

    name = "scaling"
    granularities = ("channel",)
    description = "BatchNorm scaling factor |gamma| per channel (network slimming)"

    def covers(self, info: LayerInfo) -> str | None:
        if info.norm is None:
            return "no BatchNorm right after it, so no gamma scales its channels"
        return None

    def covers_group(self, group, infos) -> str | None:
        if not group.norms:
            return "no BatchNorm scales its channels, so no gamma to read"
        return None

    def group_scores(self, model, groups, data=None):
        """Sum of |gamma| over every BatchNorm the group's channels pass (at the group's offset there)."""
        modules = dict(model.named_modules())
        out = {}
        for group in groups:
            gammas = []
            for name, offset in group.norms.items():
                if getattr(modules[name], "weight", None) is None:
                    raise ValueError(f"BatchNorm {name!r} has no gamma (affine=False); the scaling criterion "
                                     "needs affine BatchNorm")
                gammas.append(modules[name].weight.detach()[offset:offset + group.size].abs().double())
            out[group.name] = torch.stack(gammas).sum(0).to(modules[group.producers[0]].weight.dtype)
        return out

    def scores(self, model, layers, granularity, data=None):
        modules = dict(model.named_modules())
        out = {}
        for name, info in layers.items():
            norm = modules[info.norm]
            if getattr(norm, "weight", None) is None:
                raise ValueError(f"BatchNorm {info.norm!r} after {name!r} has no gamma (affine=False); "
                                 "the scaling criterion needs affine BatchNorm")
            out[name] = norm.weight.detach().abs().to(info.module.weight.dtype).clone()
        return out


def slimming_penalty(model: nn.Module, strength: float) -> torch.Tensor:
    """``strength * sum |gamma|`` over every BatchNorm of the model: network slimming's sparsity term.

    Add it to the training loss (it is differentiable); its subgradient ``strength * sign(gamma)`` pulls every
    gamma toward zero at the same rate, so the channels the loss needs least reach zero first.
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
        raise ValueError(f"strength must be a number >= 0, got {strength!r}")
    gammas = [m.weight for m in model.modules() if isinstance(m, NORMS) and m.weight is not None]
    if not gammas:
        raise ValueError("the model has no affine BatchNorm layer: nothing for the slimming penalty to act on")
    return strength * sum(g.abs().sum() for g in gammas)


def slimming_loss(strength: float) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """A ``loss_fn(model, logits, targets)`` for :func:`pruneviz.train`: cross-entropy + the slimming penalty."""
    slimming_penalty(nn.BatchNorm1d(1), strength)  # check strength now, not at the first step

    def loss_fn(model: nn.Module, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, targets) + slimming_penalty(model, strength)

    return loss_fn


SLIMMING_EPOCHS = 15


def train_slimming(data: Data, strength: float, *, epochs: int = SLIMMING_EPOCHS, seed: int = 0) -> nn.Module:
    """A digits-cnn trained from its seeded initialisation by the zoo's recipe (SGD + Nesterov, weight decay,
    one-cycle learning rate, augmented digits; one thread, deterministic) with the slimming penalty of
    ``strength`` added to the loss: ``strength=0`` is the same training without it."""
    from ..data import augment_digits
    from ..training import one_cycle, train
    from ..zoo import recipe
    from ..zoo.models import digits_cnn

    torch.manual_seed(seed)
    model = digits_cnn()
    with recipe.deterministic():
        train(model, data, epochs=epochs, optimizer=recipe.sgd(recipe.WEIGHT_DECAY["digits-cnn"]),
              batch_size=recipe.BATCH_SIZE, seed=seed, loss_fn=slimming_loss(strength),
              augment=augment_digits, schedule=one_cycle(recipe.PEAK_LR), threads=1, progress=False)
    return model


def slimming_network(data: Data, strength: float, *, epochs: int = SLIMMING_EPOCHS, seed: int = 0,
                     live: bool = False) -> nn.Module:
    """:func:`train_slimming`'s network, read from the shipped artefact (trained once with the recorded
    kernels, :mod:`pruneviz.artefacts`) so that it is the same on every CPU; ``live=True`` trains it now,
    on this machine (about 20 s; its last digits then belong to this CPU)."""
    from .. import artefacts
    from ..zoo import recipe
    from ..zoo.models import digits_cnn

    slimming_penalty(nn.BatchNorm1d(1), strength)  # a bad strength fails before anything is read or trained
    # the seeded start is keyed by its seed and architecture, not by its values: torch's random init rounds
    # differently on other kernels, and a key must be the same on every CPU
    options = {"recipe": "train_slimming", "architecture": "digits-cnn", "strength": float(strength),
               "epochs": int(epochs), "seed": int(seed), "weight_decay": recipe.WEIGHT_DECAY["digits-cnn"], "peak_lr": recipe.PEAK_LR,
               "batch_size": recipe.BATCH_SIZE, "momentum": recipe.MOMENTUM}
    return artefacts.model(f"slimming-digits-cnn-{strength:g}-e{epochs}-s{seed}", digits_cnn,
                           lambda: train_slimming(data, strength, epochs=epochs, seed=seed),
                           inputs=(data,), options=options, live=live)


register(Scaling)
