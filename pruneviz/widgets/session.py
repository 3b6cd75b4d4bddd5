"""The engine behind the widgets, without any widget: cached pruners, fast re-prune and evaluation, a readout.

One :class:`~pruneviz.Pruner` per (criterion, granularity, scope), built once (scores computed once) on the
dense model; a slider move is then ``pruner.prune(ratio)`` (a lookup in sorted scores and a masked write) and an
evaluation from cached activations.
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..criteria import get_criterion
from ..data import Data, as_tensors, check_data
from ..dense import dense_value
from ..errors import check_model, check_ratio
from ..evaluation import evaluate
from ..granularity import get_granularity
from ..graph import build_graph, prunable_layers
from ..metrics import mac_counts, sparse_macs
from ..pruner import Pruner
from .evaluator import CachedEvaluator

Key = tuple[str, str, str]  # (criterion, granularity, scope)
SPARSITY_GRID = tuple(np.round(np.r_[np.arange(0.0, 0.91, 0.1), 0.95, 0.99], 2))  # 12 points: dense past 0.9
GRANULARITIES = ("element", "2:4", "vector", "kernel", "channel", "input_channel")


@dataclass(frozen=True)
class Readout:
    """What the explorer prints after a move. Sparsity is over the weights of all Linear and Conv layers."""

    accuracy: float
    sparsity: float
    nonzero_parameters: int
    parameters: int
    dense_bytes: int
    sparse_bytes: int
    macs: int
    sparse_macs: int

    def text(self) -> str:
        """One line at a precision stable across machines (accuracy 1 decimal, sparsity 3 decimals).

        The size is that of the non-zero values alone: what a sparse format could reach if its indices were free.
        Stored dense, zeros make the file no smaller; CSR's indices make it smaller only past about 50 %.
        """
        return (f"accuracy {100 * self.accuracy:.1f} % | sparsity {self.sparsity:.3f} | "
                f"nonzero parameters {self.nonzero_parameters:,} of {self.parameters:,} | "
                f"ideal size of the non-zeros {self.sparse_bytes / 1024:.1f} of {self.dense_bytes / 1024:.1f} KiB | "
                f"MACs {self.sparse_macs:,} of {self.macs:,}")


def valid_granularities(model: nn.Module, criterion: str, candidates=GRANULARITIES) -> list[str]:
    """Granularities the criterion allows that fit at least one layer of the model (e.g. no 'kernel' for an MLP).

    The Pruner still has the last word (it raises ValueError naming the valid choices)."""
    allowed = get_criterion(criterion).granularities
    shapes = [m.weight.shape for m in prunable_layers(model).values()]
    names = []
    for name in candidates:
        gran = get_granularity(name)
        if allowed is not None and gran.name not in allowed:
            continue
        if any(gran.unsupported_reason(shape) is None for shape in shapes):
            names.append(name)
    return names


class PruningSession:
    """A model, its test data, and the pruners tried on it so far.

    Args:
        model: pruned in place (the readout measures it); ``restore()`` gives it back dense.
        data: the evaluation data (e.g. the test set).
        calibration: data for criteria that need some (scaling, obd, apoz, regression); default ``data``.
        reconstruct: after every prune, refit each pruned layer's next layer by least squares on
            ``calibration`` (:func:`pruneviz.reconstruct`, regression pruning's second step; channel granularity).
    """

    def __init__(self, model: nn.Module, data: Data, *, calibration: Data | None = None,
                 grid: tuple[float, ...] = SPARSITY_GRID, reconstruct: bool = False):
        check_model(model)
        check_data(data, model, "evaluation data")
        self.model = model
        self.data = data
        self.calibration = data if calibration is None else calibration
        self.reconstruct = reconstruct  # after every prune: least-squares refit of the next layers (channel only)
        self.grid = grid
        self.evaluator = CachedEvaluator(model, data)
        self.layer_names = list(build_graph(model).layers)
        example = as_tensors(data, limit=1)[0]
        # dense MACs, in all and per prunable layer: shapes only, counted once as pruneviz.macs counts them
        self._total_macs, self._macs = mac_counts(model, example)
        self._pruners: dict[Key, Pruner] = {}
        self._curves: dict[tuple[Key, str | None], tuple[list[float], list[float], list[float]]] = {}
        self.pruner: Pruner | None = None
        self.key: Key | None = None
        self.readout_says_guard = False  # a widget whose readout names the guarded layers sets it
        self.ratio = 0.0
        self.layer: str | None = None  # prune only this layer (local scope), or every layer in scope

    # -- choosing a pruner ---------------------------------------------------------------------------
    def knows(self, criterion: str, granularity: str, scope: str) -> bool:
        """True if that pruner was built already (a switch to it computes no scores)."""
        return (criterion, granularity, scope) in self._pruners

    def use(self, criterion: str, granularity: str, scope: str) -> Pruner:
        """Switch to the pruner for (criterion, granularity, scope), built on the dense model if new, and
        prune it to the current ratio. On an invalid combination: ValueError, previous pruner kept."""
        key = (criterion, granularity, scope)
        previous = self.pruner
        if key not in self._pruners:
            if previous is not None:
                previous.restore()  # a new pruner must see (and score) the dense weights
            try:
                needs_data = get_criterion(criterion).needs_data
                self._pruners[key] = Pruner(self.model, criterion, granularity, scope,
                                            data=self.calibration if needs_data else None)
            except Exception:
                if previous is not None:
                    self._apply(previous, self.ratio, self.layer)
                raise
        pruner = self._pruners[key]
        if previous is not None and previous is not pruner:
            previous.restore()
        try:
            self._apply(pruner, self.ratio, self.layer)
        except Exception:
            pruner.restore()
            if previous is not None:
                self._apply(previous, self.ratio, self.layer)
            raise
        self.pruner, self.key = pruner, key
        return pruner

    def _apply(self, pruner: Pruner, ratio: float, layer: str | None) -> None:
        with warnings.catch_warnings():
            if self.readout_says_guard:  # the widget's readout says it on every move (guarded_layers)
                warnings.filterwarnings("ignore", message="global pruning kept one", category=UserWarning)
            pruner.prune(ratio if layer is None else {layer: ratio})
        if self.reconstruct and pruner.sparsity() > 0:  # nothing pruned: nothing to refit
            from ..criteria.regression import reconstruct

            reconstruct(pruner, self.calibration)

    # -- moving --------------------------------------------------------------------------------------
    def set_ratio(self, ratio: float, layer: str | None = None) -> None:
        """Re-prune from the cached scores: every layer in scope at ``ratio``, or only ``layer``."""
        if self.pruner is None:
            raise ValueError("choose a pruner first: session.use(criterion, granularity, scope)")
        ratio = check_ratio(ratio)
        if layer is not None and layer not in self.layer_names:
            raise ValueError(f"unknown layer {layer!r}; valid choices: {', '.join(map(repr, self.layer_names))}")
        self._apply(self.pruner, ratio, layer)  # raises before changing anything on a bad ratio or layer
        self.ratio, self.layer = ratio, layer

    def step(self, ratio: float, layer: str | None = None) -> Readout:
        """What a slider move does: re-prune, evaluate, measure."""
        self.set_ratio(ratio, layer)
        return self.readout()

    def accuracy(self) -> float:
        return self.evaluator.accuracy()

    def readout(self) -> Readout:
        """Accuracy and what the zeros would save, counted like pruneviz.metrics counts them."""
        nonzero = total = dense_bytes = sparse_bytes = 0
        for p in self.model.parameters():
            nz = int(torch.count_nonzero(p))
            nonzero, total = nonzero + nz, total + p.numel()
            dense_bytes, sparse_bytes = dense_bytes + p.numel() * p.element_size(), sparse_bytes + nz * p.element_size()
        zeros = weights = 0
        density = {}
        for name, module in prunable_layers(self.model).items():
            nz = int(torch.count_nonzero(module.weight))
            zeros, weights = zeros + module.weight.numel() - nz, weights + module.weight.numel()
            density[name] = nz / module.weight.numel()
        return Readout(self.accuracy(), zeros / weights, nonzero, total, dense_bytes, sparse_bytes,
                       self._total_macs, sparse_macs(self._total_macs, self._macs, density))

    def restore(self) -> None:
        """The dense model back, bit for bit (the pruners stay cached)."""
        if self.pruner is not None:
            self.pruner.restore()
        self.ratio, self.layer = 0.0, None

    # -- what the plots show -------------------------------------------------------------------------
    def curve(self, x: str = "ratio") -> tuple[list[float], list[float]]:
        """Accuracy at each ratio of the grid for the current pruner (and layer), computed once.

        ``x="ratio"``: against the ratio (the slider's value: a share of the granularity's groups);
        ``x="sparsity"``: against the weight sparsity each ratio gave (the readout's sparsity)."""
        if x not in ("ratio", "sparsity"):
            raise ValueError(f"unknown curve x {x!r}; valid choices: 'ratio', 'sparsity'")
        cache_key = (self.key, self.layer)
        if cache_key not in self._curves:
            accs, sparsities = [], []
            for ratio in self.grid:
                self._apply(self.pruner, float(ratio), self.layer)
                accs.append(self.accuracy())
                sparsities.append(self.weight_sparsity())
            self._apply(self.pruner, self.ratio, self.layer)
            self._curves[cache_key] = ([float(r) for r in self.grid], accs, sparsities)
        ratios, accs, sparsities = self._curves[cache_key]
        return (ratios if x == "ratio" else sparsities), accs

    def weight_sparsity(self) -> float:
        """The share of zeros among the weights of all Linear and Conv layers (the readout's sparsity)."""
        zeros = weights = 0
        for module in prunable_layers(self.model).values():
            zeros += module.weight.numel() - int(torch.count_nonzero(module.weight))
            weights += module.weight.numel()
        return zeros / weights

    def guarded_layers(self) -> list[str]:
        """The layers one global threshold would have emptied and the Pruner's guard kept a group in."""
        return list(getattr(self.pruner, "guarded", {}) or {}) if self.pruner is not None else []

    def emptied_layers(self) -> list[str]:
        """The layers the current pruning left with nothing: no weight (so no output channel) kept."""
        if self.pruner is None:
            return []
        return [name for name, mask in self.pruner.masks.items() if not bool(mask.any())]

    def curve_label(self) -> str:
        criterion, granularity, scope = self.key
        return f"{criterion}, {granularity}, {scope}" + (f" ({self.layer} only)" if self.layer else "")

    def mask(self, layer: str) -> torch.Tensor:
        """The layer's current mask (all kept if the pruner leaves the layer out)."""
        if self.pruner is not None and layer in self.pruner.masks:
            return self.pruner.masks[layer]
        return torch.ones_like(self.model.get_submodule(layer).weight, dtype=torch.bool)

    def dense_weight(self, layer: str) -> torch.Tensor:
        if self.pruner is not None and layer in self.pruner.layers:
            return self.pruner.dense_weight(layer)
        return dense_value(self.model.get_submodule(layer).weight)  # dense even if another Pruner pruned it

    def threshold(self, layer: str) -> float | None:
        """The |w| below which the layer's weights went: only meaningful for magnitude at element level."""
        if self.key is None or self.key[0] not in ("magnitude", "l2") or self.key[1] != "element":
            return None
        mask = self.mask(layer)
        if bool(mask.all()):
            return None
        return float(self.dense_weight(layer)[~mask].abs().max())

    def check(self) -> float:
        """evaluate() on the model as it is now (the slow, reference path)."""
        return evaluate(self.model, self.data)
