"""The engine behind the widgets, without any widget: the pruner shown, a move's counts, accuracy by the batch.

One :class:`~pruneviz.Pruner` per (criterion, granularity, scope), built on the dense model when chosen (a
pruner no longer shown is freed; a switch back builds it again). A slider move is ``pruner.prune(ratio)`` and a
readout counted from what the pruner wrote (:meth:`PruningSession.counts`: no pass over the model). The accuracy
is computed one bounded batch at a time (:meth:`PruningSession.evaluation`), so a widget can stop between
batches for a newer move; results are kept per (pruner, layer, ratio), and the accuracy curve is the same
results at the grid's ratios.
"""
from __future__ import annotations

import time
import warnings
import weakref
from collections.abc import Iterator
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
from .evaluator import CachedEvaluator, batch_size_for

Key = tuple[str, str, str]  # (criterion, granularity, scope)
State = tuple[Key, "str | None", float]  # what the model holds: a pruner's key, the one layer pruned (or None), ratio
SPARSITY_GRID = tuple(np.round(np.r_[np.arange(0.0, 0.91, 0.1), 0.95, 0.99], 2))  # 12 points: dense past 0.9
GRANULARITIES = ("element", "2:4", "vector", "kernel", "channel", "input_channel", "group")
SLICE_SECONDS = 0.1  # batches run back to back for at most this long before the widget may take a newer move


CHANGED_OUTSIDE = ("the model changed outside the widget (a cell trained, edited or pruned it): nothing is "
                   "evaluated in the background until the next move")


class ChangedOutside(RuntimeError):
    """Background evaluation stopped: the model is not as the session left it (see
    :meth:`PruningSession.evaluation`)."""


@dataclass(frozen=True)
class Readout:
    """What the explorer prints after a move. Sparsity is over the weights of all Linear and Conv layers.

    ``accuracy`` is None while nothing is known at this value yet; ``estimated``: it is read off the accuracy
    curve computed so far (interpolated), while the exact value is being evaluated."""

    accuracy: float | None
    sparsity: float
    nonzero_parameters: int
    parameters: int
    dense_bytes: int
    sparse_bytes: int
    macs: int
    sparse_macs: int
    estimated: bool = False

    def accuracy_text(self) -> str:
        if self.accuracy is None:
            return "accuracy … % (evaluating…)"
        if self.estimated:
            return f"accuracy ≈ {100 * self.accuracy:.1f} % (from the curve; evaluating…)"
        return f"accuracy {100 * self.accuracy:.1f} %"

    def text(self) -> str:
        """One line at a precision stable across machines (accuracy 1 decimal, sparsity 3 decimals).

        The size is that of the non-zero values alone: what a sparse format could reach if its indices were free.
        Stored dense, zeros make the file no smaller; CSR's indices make it smaller only past about 50 %.
        """
        return (f"{self.accuracy_text()} | sparsity {self.sparsity:.3f} | "
                f"nonzero parameters {self.nonzero_parameters:,} of {self.parameters:,} | "
                f"ideal size of the non-zeros {self.sparse_bytes / 1024:.1f} of {self.dense_bytes / 1024:.1f} KiB | "
                f"MACs {self.sparse_macs:,} of {self.macs:,}")


def valid_granularities(model: nn.Module, criterion: str, candidates=GRANULARITIES) -> list[str]:
    """Granularities the criterion allows that fit at least one layer of the model (e.g. no 'kernel' for an MLP;
    'group' where the model has a channel group that can be pruned and the criterion scores channels).

    The Pruner still has the last word (it raises ValueError naming the valid choices)."""
    allowed = get_criterion(criterion).granularities
    layers = prunable_layers(model)
    shapes = [m.weight.shape for m in layers.values()]
    names = []
    for name in candidates:
        if name == "group":
            if (allowed is None or "channel" in allowed) and _has_channel_group(model):
                names.append(name)
            continue
        gran = get_granularity(name)
        if allowed is not None and gran.name not in allowed:
            continue
        if any(gran.unsupported_reason(shape) is None for shape in shapes):
            names.append(name)
    return names


_GROUPS_SEEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (its layers, has a group)


def _has_channel_group(model: nn.Module) -> bool:
    """Whether the model has a coupled channel group that can be pruned: traced once per model (a criterion
    switch asks again), again only if its layers were replaced."""
    from ..coupling import coupled_groups

    layers = tuple(id(m) for m in prunable_layers(model).values())
    seen = _GROUPS_SEEN.get(model)
    if seen is not None and seen[0] == layers:
        return seen[1]
    try:
        found = any(not group.blockers for group in coupled_groups(model))
    except Exception:  # a model torch.fx cannot trace has no groups to offer (the Pruner says why if asked)
        found = False
    _GROUPS_SEEN[model] = (layers, found)
    return found


@dataclass(frozen=True)
class Counts:
    """What a readout counts besides the accuracy: nonzero parameters and their bytes, weight zeros per layer."""

    nonzero: int
    total: int
    dense_bytes: int
    sparse_bytes: int
    layer_nonzero: dict[str, int]  # every Linear/Conv weight's nonzeros

    def weight_sparsity(self, layer_sizes: dict[str, int]) -> float:
        weights = sum(layer_sizes.values())
        return (weights - sum(self.layer_nonzero.values())) / weights if weights else 0.0


class PruningSession:
    """A model, its test data, and the pruner shown on it.

    Args:
        model: pruned in place (the readout measures it); ``restore()`` gives it back dense.
        data: the evaluation data (e.g. the test set).
        calibration: data for criteria that need some (scaling, obd, apoz, regression); default ``data``.
        reconstruct: after every prune, refit each pruned layer's next layer by least squares on
            ``calibration`` (:func:`pruneviz.reconstruct`, regression pruning's second step; channel granularity).
        batch_size: examples per evaluation batch; default :func:`~pruneviz.widgets.evaluator.batch_size_for`
            the model's MACs (``evaluate``'s 1,024 for every zoo model, fewer for a large one).
    """

    def __init__(self, model: nn.Module, data: Data, *, calibration: Data | None = None,
                 grid: tuple[float, ...] = SPARSITY_GRID, reconstruct: bool = False, batch_size: int | None = None):
        check_model(model)
        check_data(data, model, "evaluation data")
        self.model = model
        self.data = data
        self.calibration = data if calibration is None else calibration
        self.reconstruct = reconstruct  # after every prune: least-squares refit of the next layers (channel only)
        self.grid = tuple(float(r) for r in grid)
        self.layer_names = list(build_graph(model).layers)
        example = as_tensors(data, limit=1)[0]
        # dense MACs, in all and per prunable layer: shapes only, counted once as pruneviz.macs counts them
        self._total_macs, self._macs = mac_counts(model, example)
        self.batch_size = batch_size or batch_size_for(self._total_macs)
        self.evaluator = CachedEvaluator(model, data, batch_size=self.batch_size)
        self._params = dict(model.named_parameters())
        self._layer_weights = {name: f"{name}.weight" for name in prunable_layers(model)}
        self._layer_sizes = {name: self._params[key].numel() for name, key in self._layer_weights.items()
                             if key in self._params}
        self._pruners: dict[Key, Pruner] = {}  # the pruner shown (the others are freed)
        self._accuracy: dict[State, float] = {}  # exact accuracies, by what the model held
        self._sparsity: dict[State, float] = {}  # the weight sparsity each state gave (curves against sparsity)
        self._partial: dict[State, list[torch.Tensor]] = {}  # predictions of the batches evaluated so far
        self._outside: dict[str, int] = {}  # nonzeros of the tensors the pruner does not write (counted once)
        self._signature: tuple | None = None  # the model's tensors as the session's last write left them
        self.pruner: Pruner | None = None
        self.key: Key | None = None
        self.readout_says_guard = False  # a widget whose readout names the guarded layers sets it
        self.ratio = 0.0
        self.layer: str | None = None  # prune only this layer (local scope), or every layer in scope
        self.batches_evaluated = 0  # batches run through the model, ever (tests count them)

    # -- choosing a pruner ---------------------------------------------------------------------------
    def knows(self, criterion: str, granularity: str, scope: str) -> bool:
        """True if that pruner is built (the one shown): a switch to it computes no scores."""
        return (criterion, granularity, scope) in self._pruners

    def use(self, criterion: str, granularity: str, scope: str) -> Pruner:
        """Switch to the pruner for (criterion, granularity, scope), built on the dense model if it is not the one
        shown, and prune it to the current ratio; the previous one is freed. On an invalid combination:
        ValueError, previous pruner kept."""
        key = (criterion, granularity, scope)
        previous = self.pruner
        pruner = self._pruners.get(key)
        if pruner is None:
            if previous is not None:
                previous.restore()  # a new pruner must see (and score) the dense weights
            try:
                needs_data = get_criterion(criterion).needs_data
                pruner = Pruner(self.model, criterion, granularity, scope,
                                data=self.calibration if needs_data else None)
            except Exception:
                if previous is not None:
                    self._apply(previous, self.ratio, self.layer)
                raise
        try:
            self._apply(pruner, self.ratio, self.layer)
        except Exception:
            pruner.restore()
            if previous is not None and previous is not pruner:
                self._apply(previous, self.ratio, self.layer)
            raise
        self.pruner, self.key = pruner, key
        self._pruners = {key: pruner}  # scores, masks and orders of the others freed: a switch back rebuilds
        self._count_outside()
        return pruner

    def _apply(self, pruner: Pruner, ratio: float, layer: str | None) -> None:
        with warnings.catch_warnings():
            if self.readout_says_guard:  # the widget's readout says it on every move (guarded_layers)
                warnings.filterwarnings("ignore", message="global pruning kept one", category=UserWarning)
            pruner.prune(ratio if layer is None else {layer: ratio})
        if self.reconstruct and pruner.sparsity() > 0:  # nothing pruned: nothing to refit
            from ..criteria.regression import reconstruct

            reconstruct(pruner, self.calibration)
        self._signature = self.evaluator.signature()

    # -- moving --------------------------------------------------------------------------------------
    def set_ratio(self, ratio: float, layer: str | None = None) -> None:
        """Re-prune from the cached scores: every layer in scope at ``ratio``, or only ``layer``."""
        if self.pruner is None:
            raise ValueError("choose a pruner first: session.use(criterion, granularity, scope)")
        ratio = check_ratio(ratio)
        if layer is not None and layer not in self.layer_names:
            raise ValueError(f"unknown layer {layer!r}; valid choices: {', '.join(map(repr, self.layer_names))}")
        self._notice_outside_changes()
        self._apply(self.pruner, ratio, layer)  # raises before changing anything on a bad ratio or layer
        self.ratio, self.layer = ratio, layer

    def step(self, ratio: float, layer: str | None = None) -> Readout:
        """A slider move with its exact readout: re-prune, evaluate, measure."""
        self.set_ratio(ratio, layer)
        return self.readout()

    @property
    def state(self) -> State:
        """What the model holds: (pruner key, the one layer pruned or None, ratio)."""
        return (self.key, self.layer, self.ratio)

    # -- counting ------------------------------------------------------------------------------------
    def _count_outside(self) -> None:
        """The nonzeros of every parameter the pruner does not write, counted once per pruner: a move leaves
        them as they are (a least-squares refit does not: then :meth:`counts` counts everything)."""
        written = self.pruner.nonzero_counts()
        self._outside = {key: int(torch.count_nonzero(p)) for key, p in self._params.items() if key not in written}

    def counts(self) -> Counts:
        """Nonzero parameters and weights per layer as the model holds them, from the pruner's own counts of what
        it wrote and the counts of the rest made when the pruner was chosen: no pass over the model."""
        if self.reconstruct or self.pruner is None:
            nonzero = {key: int(torch.count_nonzero(p)) for key, p in self._params.items()}
        else:
            nonzero = {**self._outside, **self.pruner.nonzero_counts()}
        total = dense_bytes = sparse_bytes = count = 0
        for key, p in self._params.items():
            nz = nonzero[key]
            count, total = count + nz, total + p.numel()
            dense_bytes, sparse_bytes = dense_bytes + p.numel() * p.element_size(), sparse_bytes + nz * p.element_size()
        layer_nonzero = {name: nonzero[key] for name, key in self._layer_weights.items() if key in nonzero}
        return Counts(count, total, dense_bytes, sparse_bytes, layer_nonzero)

    def weight_sparsity(self) -> float:
        """The share of zeros among the weights of all Linear and Conv layers (the readout's sparsity)."""
        return self.counts().weight_sparsity(self._layer_sizes)

    def _readout(self, accuracy: float | None, estimated: bool) -> Readout:
        counts = self.counts()
        density = {name: nz / self._layer_sizes[name] for name, nz in counts.layer_nonzero.items()}
        return Readout(accuracy, counts.weight_sparsity(self._layer_sizes), counts.nonzero, counts.total,
                       counts.dense_bytes, counts.sparse_bytes, self._total_macs,
                       sparse_macs(self._total_macs, self._macs, density), estimated)

    def first_readout(self) -> Readout:
        """A move's readout without evaluating: the exact accuracy if this value was evaluated before, else the
        accuracy interpolated from the curve computed so far (``estimated``), else None."""
        self._notice_outside_changes()
        known = self._accuracy.get(self.state)
        if known is not None:
            return self._readout(known, False)
        return self._readout(self.estimate(), True)

    def readout(self) -> Readout:
        """The exact readout: the accuracy evaluated (the remaining batches now), counted like pruneviz.metrics
        counts."""
        return self._readout(self.accuracy(), False)

    # -- evaluating ----------------------------------------------------------------------------------
    def _notice_outside_changes(self) -> bool:
        """A model changed outside the session (trained, edited, pruned by other code) makes every accuracy kept
        for it stale: forgotten, evaluated again. True if it had changed."""
        if self._signature is not None and self.evaluator.signature() != self._signature:
            self._accuracy.clear()
            self._sparsity.clear()
            self._partial.clear()
            self._signature = self.evaluator.signature()
            return True
        return False

    def known(self, ratio: float | None = None) -> float | None:
        """The exact accuracy at ``ratio`` (default: the current one) of the current pruner and layer, if
        evaluated."""
        return self._accuracy.get((self.key, self.layer, self.ratio if ratio is None else float(ratio)))

    def evaluation(self, ratio: float | None = None, *, background: bool = False) -> Iterator[None]:
        """Evaluate the current pruner (and layer) at ``ratio`` (default: the current one), yielding between
        slices of batches (a slice: :data:`SLICE_SECONDS`, at least one batch). At every yield the model holds
        the session's current state: a ratio away from it is written for the slice and written back after, so
        other code can run between slices. Predictions are kept per batch: closed early, a later evaluation of
        the same state goes on where this one stopped. Stops if the pruner or layer changes meanwhile.

        ``background``: work nobody asked for yet (a widget's rest, its curve) raises :class:`ChangedOutside`,
        writing nothing, when the model changed outside the session (a cell trained or pruned it)."""
        if self._notice_outside_changes() and background:
            raise ChangedOutside(CHANGED_OUTSIDE)
        state = (self.key, self.layer, self.ratio if ratio is None else float(ratio))
        n = len(self.evaluator.chunks)
        while state not in self._accuracy:
            if state[:2] != (self.key, self.layer):
                return  # another pruner or layer: this state is not what the user looks at any more
            if self._notice_outside_changes() and background:
                raise ChangedOutside(CHANGED_OUTSIDE)
            partial = self._partial.setdefault(state, [])
            away = state[2] != self.ratio
            if away:
                self._away(state[2])
            try:
                if state not in self._sparsity:
                    self._sparsity[state] = self.weight_sparsity()
                deadline = time.perf_counter() + SLICE_SECONDS  # scheduling only: the batches are fixed
                while len(partial) < n:
                    partial.append(self.evaluator.predict_batch(len(partial)))
                    self.batches_evaluated += 1
                    if time.perf_counter() >= deadline:
                        break
            finally:
                if away:
                    self._away(self.ratio)
            if len(partial) == n:
                self._accuracy[state] = self.evaluator.accuracy_of(partial)
                del self._partial[state]
            else:
                yield

    def _away(self, ratio: float) -> None:
        """A write the user did not ask for (a grid ratio of the curve, then back): it says nothing (a warning
        from it would surface wherever the background happened to run)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._apply(self.pruner, ratio, self.layer)

    def accuracy(self) -> float:
        """The exact accuracy of the model as the session left it (evaluated now if not known)."""
        for _ in self.evaluation():
            pass
        return self._accuracy[self.state]

    def estimate(self) -> float | None:
        """The accuracy at the current ratio read off the curve computed so far (linear between the two nearest
        measured ratios), or None outside the measured range."""
        ratios, accs = self.curve_so_far()
        if not ratios or not ratios[0] <= self.ratio <= ratios[-1]:
            return None
        return float(np.interp(self.ratio, ratios, accs))

    # -- what the plots show -------------------------------------------------------------------------
    def curve_so_far(self, x: str = "ratio") -> tuple[list[float], list[float]]:
        """The points of :meth:`curve` evaluated so far (a curve fills in the background)."""
        if x not in ("ratio", "sparsity"):
            raise ValueError(f"unknown curve x {x!r}; valid choices: 'ratio', 'sparsity'")
        points = [(r, self._accuracy[(self.key, self.layer, r)]) for r in sorted(set(self.grid))
                  if (self.key, self.layer, r) in self._accuracy]
        xs = [r if x == "ratio" else self._sparsity[(self.key, self.layer, r)] for r, _ in points]
        return xs, [a for _, a in points]

    def curve_progress(self) -> tuple[int, int]:
        """(grid points evaluated, grid points) of the current pruner and layer's curve."""
        grid = sorted(set(self.grid))
        return sum((self.key, self.layer, r) in self._accuracy for r in grid), len(grid)

    def curve_evaluation(self) -> Iterator[None]:
        """:meth:`evaluation` at every grid ratio not evaluated yet, coarse grid first (the ends, the middle, then
        halving the gaps), so the curve takes its shape early."""
        for ratio in coarse_first(self.grid):
            yield from self.evaluation(ratio)

    def curve(self, x: str = "ratio") -> tuple[list[float], list[float]]:
        """Accuracy at each ratio of the grid for the current pruner (and layer), every point evaluated now if
        not known.

        ``x="ratio"``: against the ratio (the slider's value: a share of the granularity's groups);
        ``x="sparsity"``: against the weight sparsity each ratio gave (the readout's sparsity)."""
        if x not in ("ratio", "sparsity"):
            raise ValueError(f"unknown curve x {x!r}; valid choices: 'ratio', 'sparsity'")
        for _ in self.curve_evaluation():
            pass
        return self.curve_so_far(x)

    def guarded_layers(self) -> list[str]:
        """The layers one global threshold would have emptied and the Pruner's guard kept a group in."""
        return list(getattr(self.pruner, "guarded", {}) or {}) if self.pruner is not None else []

    def emptied_layers(self) -> list[str]:
        """The layers the current pruning left with nothing: no weight (so no output channel) kept (from the
        pruner's counts: no pass over the masks)."""
        if self.pruner is None:
            return []
        counts = self.counts().layer_nonzero
        return [name for name in self.pruner.masks if counts.get(name, 1) == 0]

    def curve_label(self) -> str:
        criterion, granularity, scope = self.key
        return f"{criterion}, {granularity}, {scope}" + (f" ({self.layer} only)" if self.layer else "")

    def mask(self, layer: str) -> torch.Tensor:
        """The layer's current mask (all kept if the pruner leaves the layer out)."""
        if self.pruner is not None and layer in self.pruner.masks:
            return self.pruner.masks[layer]
        return torch.ones_like(self.model.get_submodule(layer).weight, dtype=torch.bool)

    def changed(self, layer: str) -> torch.Tensor | None:
        """The flat indices of ``layer``'s weights whose mask the last prune flipped, or None when the last
        prune rewrote everything (or the pruner does not say)."""
        changed = getattr(self.pruner, "changed", None) if self.pruner is not None else None
        if changed is None:
            return None
        return changed.get(layer, torch.empty(0, dtype=torch.long))

    def dense_weight(self, layer: str) -> torch.Tensor:
        if self.pruner is not None and layer in self.pruner.layers:
            return self.pruner.dense_weight(layer)
        return dense_value(self.model.get_submodule(layer).weight)  # dense even if another Pruner pruned it

    def threshold(self, layer: str) -> float | None:
        """The |w| below which the layer's weights went: only meaningful for magnitude (or l2: the same order)
        at element level. From the pruner's sorted scores: no pass over the layer."""
        if self.key is None or self.key[0] not in ("magnitude", "l2") or self.key[1] != "element":
            return None
        if self.pruner is None or layer not in self.pruner.masks:
            return None
        return self.pruner.threshold(layer)

    def groups_of(self, layer: str) -> list:
        """The coupled channel groups (granularity "group") that write or read ``layer``'s channels."""
        plan = getattr(self.pruner, "_plan", None) if self.pruner is not None else None
        if plan is None:
            return []
        return [g for g in plan.groups.values() if layer in g.producers or layer in g.consumers]

    def restore(self) -> None:
        """The dense model back, bit for bit (the accuracies kept stay valid)."""
        if self.pruner is not None:
            self.pruner.restore()
            self._signature = self.evaluator.signature()
        self.ratio, self.layer = 0.0, None

    def check(self) -> float:
        """evaluate() on the model as it is now (the slow, reference path)."""
        return evaluate(self.model, self.data)


def coarse_first(grid) -> list[float]:
    """The grid's ratios in the order that shapes a curve soonest: both ends, the middle, then the middles of
    the gaps left (0, 0.99, 0.5, 0.3, 0.9, ... for the default grid)."""
    ratios = sorted(set(float(r) for r in grid))
    if len(ratios) <= 2:
        return ratios
    order, spans = [0, len(ratios) - 1], [(0, len(ratios) - 1)]
    while spans:
        nxt = []
        for lo, hi in spans:
            if hi - lo > 1:
                mid = (lo + hi) // 2
                order.append(mid)
                nxt += [(lo, mid), (mid, hi)]
        spans = nxt
    return [ratios[i] for i in order]
