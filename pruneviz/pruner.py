"""The Pruner: criterion -> scores (once) -> selection -> masks written into the model in place.

It writes ``dense * mask`` into the parameters: no forward hook, no second copy inside the module, so inference
runs at full speed and ``restore()`` is bit-exact. The dense copies live in :mod:`pruneviz.dense`, one per
parameter, shared by every Pruner and widget on the model: a second Pruner built on a pruned model finds the true
dense weights. Before it writes, a Pruner checks that the model still holds its last write (a stamp, not a
copy); a model edited, trained, converted or re-wired behind its back is refused with :class:`ModelChangedError`.
"""
from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from . import dense as registry
from .criteria import Criterion, get_criterion
from .errors import AlreadySparseWarning, ModelChangedError, check_prunable, check_ratio, unknown_choice
from .granularity import CHANNEL, GROUP, INPUT_CHANNEL, Granularity, get_granularity
from .graph import LayerInfo, build_graph, untraced_reason
from .selection import SCOPES, GlobalSelector, LocalSelector

Ratio = float | Mapping[str, float]

STATE_KEYS = ("criterion", "granularity", "scope", "layers", "ratios", "masks", "scores", "dense")
NEW_PRUNER = "build a new Pruner on the model as it is now"
RESCORE = ("pruner.rescore() takes the model's current weights as the dense ones and scores them again; "
           "pruner.restore() writes the dense weights back; or " + NEW_PRUNER)


@dataclass(eq=False)
class _Entry:
    """One tensor a Pruner writes: the parameter, its shared dense record, the generation it was scored on."""

    param: nn.Parameter
    record: registry.DenseRecord
    generation: int
    path: tuple  # ((module, name, child, where the module keeps it), ...) from the model to the parameter
    rewritten: bool = False  # a criterion rewrites it outside the masks (see Pruner.track): any content allowed

    @property
    def dense(self) -> torch.Tensor:
        return self.record.dense

    def in_place(self) -> bool:
        """Whether the model still holds this parameter where it was (a few dict lookups: the hot path)."""
        return all(store(parent).get(name) is child for parent, name, child, store in self.path)

    @classmethod
    def of(cls, model: nn.Module, key: str, param: nn.Parameter, record: registry.DenseRecord,
           rewritten: bool = False) -> _Entry:
        *names, pname = key.split(".")
        path, module = [], model
        for name in names:
            child = module._modules[name]
            path.append((module, name, child, _submodules))
            module = child
        path.append((module, pname, param, _parameters))
        return cls(param, record, record.generation, tuple(path), rewritten)


@dataclass(eq=False)
class _Held:
    """The selection this Pruner last wrote into the model, for a re-prune that writes only what flips: valid
    while the selector, the masks (the dict and each tensor) and the stamp of every tensor are the ones it
    left (each kit write makes a new stamp object, so another Pruner's write, a restore or a snapshot put back
    ends it)."""

    selector: object
    masks: dict
    tensors: dict[str, torch.Tensor]
    stamps: dict[str, registry.Stamp]
    counts: dict[str, int] | int  # groups pruned: per layer (local), or the count of the one order (global)


def _submodules(module: nn.Module) -> dict:
    return module._modules


def _parameters(module: nn.Module) -> dict:
    return module._parameters


class Pruner:
    """Prune a model's Linear and Conv layers by a criterion, at a granularity, locally or globally.

    >>> pruner = Pruner(model, criterion="magnitude", granularity="channel")
    >>> pruner.prune(0.5)          # half the channels of every layer in scope
    >>> pruner.prune({"features.0": 0.3})
    >>> pruner.restore()           # the dense model, bit for bit

    A re-prune to new ratios, while the model still holds this Pruner's last prune, writes only the weights
    (and for channels the biases and BatchNorm entries) whose keep flipped, and updates ``masks`` in place:
    clone a mask to keep an earlier one.

    Attributes:
        layers: the layers in scope ({name: module}); ``skipped`` says why the others are left out.
        scores: the importance the masks are chosen from, per group ({name: tensor}); low = pruned first.
        masks: this Pruner's last prune, one bool per weight, True = kept ({name: tensor shaped like the weight}).
        last_write_count: elements the last ``prune()`` or ``restore()`` wrote into the model.
        changed: {layer: 1-D LongTensor of the flat weight indices (sorted) whose mask flipped} after a re-prune
            that wrote only those, or None after a write of every tensor.
    """

    last_write_count: int = 0
    changed: dict[str, torch.Tensor] | None = None
    _held: _Held | None = None

    def __init__(self, model: nn.Module, criterion: str | Criterion = "magnitude",
                 granularity: str | Granularity = "element", scope: str = "local", *, data: object = None,
                 layers: Iterable[str] | None = None, max_layer_sparsity: float | None = None,
                 **criterion_options):
        check_prunable(model)
        self.granularity = get_granularity(granularity)
        self.criterion = get_criterion(criterion, **criterion_options)
        if scope not in SCOPES:
            raise unknown_choice("scope", scope, SCOPES)
        if max_layer_sparsity is not None:
            if scope != "global":
                raise ValueError("max_layer_sparsity guards scope='global' (a local ratio is already per layer)")
            max_layer_sparsity = check_ratio(max_layer_sparsity, "max_layer_sparsity")
        self.max_layer_sparsity = max_layer_sparsity
        self._check_combination(data)
        if data is not None and self.criterion.needs_data:
            from .data import check_data
            check_data(data, model, "calibration data")
        self.model = model
        self.scope = scope
        self.data = data
        graph = build_graph(model)
        self.graph = graph
        self.skipped: dict[str, str] = {}
        self.guarded: dict[str, str] = {}  # layers the global guard kept from being emptied, and why
        self.criterion.setup(model)  # a criterion whose scope depends on the model's structure reads it here
        self._plan = None  # granularity "group": the coupled groups in scope (pruneviz.group_masks.GroupPlan)
        if self.granularity is GROUP:
            self._infos = self._select_groups(graph, layers)
        else:
            self._infos = self._select_layers(graph, layers)
        self.layers = {name: info.module for name, info in self._infos.items()}
        self._start_counting()
        self._entries = self._claim()
        self._reset_masks()
        with self._dense_in_model():  # scores of the dense weights, whatever another Pruner left in the model
            self._score()

    # -- construction ------------------------------------------------------------------------------
    def _check_combination(self, data: object) -> None:
        crit, gran = self.criterion, self.granularity
        allowed = crit.granularities
        # a group is channels scored per member layer: every channel criterion scores groups
        if allowed is not None and gran.name not in allowed and not (gran is GROUP and "channel" in allowed):
            raise ValueError(f"criterion {crit.name!r} has no meaning at {gran.name!r} granularity; "
                             f"valid granularities for it: {', '.join(repr(g) for g in allowed)}")
        if crit.needs_data and data is None:
            raise ValueError(f"criterion {crit.name!r} needs calibration data: Pruner(model, "
                             f"criterion={crit.name!r}, data=loader); criteria that need none: "
                             "'magnitude', 'l2', 'random'")

    def _select_layers(self, graph, requested: Iterable[str] | None) -> dict[str, LayerInfo]:
        infos = graph.layers
        if requested is not None:
            requested = _layer_list(requested, infos)
        chosen: dict[str, LayerInfo] = {}
        owner: dict[int, str] = {}  # id(weight) -> the first layer in scope holding it
        for name, info in infos.items():
            if requested is not None and name not in requested:
                continue
            _refuse_hooks(name, info.module)
            reason = self._scope_reason(info)
            tied = owner.get(id(info.module.weight))
            if reason is None and tied is not None:
                reason = f"its weight is {tied}'s (tied parameters): pruned once, with {tied}"
            if reason is None:
                chosen[name] = info
                owner[id(info.module.weight)] = name
            else:
                self.skipped[name] = reason
        if not chosen:
            why = "; ".join(f"{n}: {r}" for n, r in self.skipped.items()) or "the model has no Linear or Conv layer"
            raise ValueError(f"no layer to prune with criterion {self.criterion.name!r} at "
                             f"{self.granularity.name!r} granularity ({why})")
        return chosen

    def _select_groups(self, graph, requested: Iterable[str] | None) -> dict[str, LayerInfo]:
        """Granularity "group": the coupled groups in scope; the layers they touch (every member and reader)."""
        from .coupling import coupled_groups
        from .group_masks import GroupPlan

        if requested is not None:
            requested = set(_layer_list(requested, graph.layers))
        chosen, seen = [], set()
        for group in coupled_groups(self.model):
            seen.update(group.producers)
            members = ", ".join(repr(p) for p in group.producers)
            outside = [p for p in group.producers if requested is not None and p not in requested]
            reason = None
            if requested is not None and len(outside) == len(group.producers):
                continue
            if outside:
                reason = f"its channels are coupled with {outside[0]!r}, which layers= leaves out"
            elif group.blockers:
                reason = group.blockers[0]
            else:
                reason = self.criterion.covers_group(group, graph.layers)
                if reason is None:
                    chosen.append(group)
            if reason is not None:
                coupled = f" (its group: {members})" if group.coupled else ""
                for name in group.members():
                    self.skipped[name] = reason + coupled
        for name in graph.layers:
            if name not in seen and (requested is None or name in requested):
                self.skipped[name] = _unseen(self.model, name)
        if not chosen:
            why = "; ".join(f"{n}: {r}" for n, r in self.skipped.items()) or "the model has no Linear or Conv layer"
            raise ValueError(f"no channel group to prune with criterion {self.criterion.name!r} ({why})")
        self._plan = GroupPlan(self.model, chosen)
        for name in self._plan.layers:
            _refuse_hooks(name, graph.layers[name].module)
        self._members = {p: graph.layers[p] for g in chosen for p in g.producers
                         if self.criterion.covers(graph.layers[p]) is None}
        return {name: graph.layers[name] for name in self._plan.layers}

    @property
    def _units(self) -> list[str]:
        """What a ratio names: layers, or groups (granularity "group", named by their first layer)."""
        return list(self._plan.groups) if self._plan is not None else list(self.layers)

    def _reset_masks(self) -> None:
        self.masks = {name: torch.ones_like(m.weight, dtype=torch.bool) for name, m in self.layers.items()}
        self.ratios: dict[str, float] = {name: 0.0 for name in self._units}
        if self._plan is not None:
            self._keep = self._plan.keep_all()
            self.masks = self._plan.weight_masks(self._keep)
        self._held = None
        self._pruned = {name: (mask, 0) for name, mask in self.masks.items()}

    def _start_counting(self) -> None:
        """The counts a re-prune keeps up to date instead of reading the model: weights pruned per layer (for
        the masks they were counted on) and nonzero entries per tensor (for the stamp they were counted at)."""
        self._pruned: dict[str, tuple[torch.Tensor, int]] = {}
        self._nonzero: dict[str, tuple[registry.Stamp, int]] = {}
        self._zeros: dict[str, tuple[tuple, int]] = {}  # key -> (version of the dense copy, its zeros)
        self._created: set[str] = set()  # tensors whose dense copy this Pruner made (memory_bytes)

    def _scope_reason(self, info: LayerInfo) -> str | None:
        reason = self.granularity.unsupported_reason(info.module.weight.shape, getattr(info.module, "groups", 1))
        if reason:
            return reason
        if self.granularity is CHANNEL and info.is_output:
            return "its output channels are the model's outputs (the classes)"
        if self.granularity is CHANNEL and info.channel_leak:
            return f"a pruned channel would not be gone: {info.channel_leak}"
        if self.granularity is INPUT_CHANNEL and info.is_input:
            return "its input channels are the model's input data"
        return self.criterion.covers(info)

    def _written_tensors(self):
        """(key, parameter) for every tensor a prune may write: weights, and per channel biases and BatchNorm."""
        if self._plan is not None:
            yield from self._plan.written()
            return
        modules = dict(self.model.named_modules())
        for name, info in self._infos.items():
            yield f"{name}.weight", info.module.weight
            if self.granularity is CHANNEL:
                if info.module.bias is not None:
                    yield f"{name}.bias", info.module.bias
                if info.norm is not None:
                    norm = modules[info.norm]
                    for pname in ("weight", "bias"):
                        if getattr(norm, pname, None) is not None:
                            yield f"{info.norm}.{pname}", getattr(norm, pname)

    def _claim(self, values: Mapping[str, torch.Tensor] | None = None) -> dict[str, _Entry]:
        """The shared dense record of every tensor this Pruner writes (``values``: adopt these as dense)."""
        entries: dict[str, _Entry] = {}
        seen: dict[int, str] = {}
        adopted: list[str] = []
        for key, param in self._written_tensors():
            if id(param) in seen:  # e.g. one BatchNorm after two layers: two masks for one tensor
                raise ValueError(f"{key} and {seen[id(param)]} are one tensor (tied parameters), which the "
                                 f"layers in scope would mask differently; leave one of their layers out "
                                 f"with layers=[...]")
            seen[id(param)] = key
            if not isinstance(param, nn.Parameter):
                raise ValueError(f"{key} is not an nn.Parameter ({type(param).__name__}): the Pruner writes "
                                 "parameters in place")
            if values is not None:
                record = registry.adopt(param, values[key])
                self._created.add(key)
            else:
                record = registry.record_of(param)
                if record is None:
                    if registry.pruned_elsewhere(param):
                        adopted.append(key)
                    record = registry.adopt(param)
                    self._created.add(key)
            entries[key] = _Entry.of(self.model, key, param, record)
        _warn_if_copy_of_pruned(adopted)
        return entries

    @contextmanager
    def _dense_in_model(self):
        """Within the block the model holds the dense weights; after it, exactly what it held before."""
        held = {key: (e.param.detach().clone(), e.record.tuned) for key, e in self._entries.items()
                if not e.record.is_dense}
        try:
            with torch.no_grad():
                for key in held:
                    entry = self._entries[key]
                    entry.param.copy_(entry.dense)
                    registry.stamp(entry.param, entry.record, is_dense=True)
            yield
        finally:
            with torch.no_grad():
                for key, (values, tuned) in held.items():
                    entry = self._entries[key]
                    entry.param.copy_(values)
                    registry.stamp(entry.param, entry.record, is_dense=False, tuned=tuned)

    def _score(self) -> None:
        if self._plan is not None:
            self._score_groups()
            return
        scores = self.criterion.scores(self.model, self._infos, self.granularity, self.data)
        missing = [name for name in self.layers if name not in scores]
        if missing:
            raise RuntimeError(f"criterion {self.criterion.name!r} gave no scores for {', '.join(missing)}")
        for name, s in scores.items():
            expected = self.granularity.group_shape(self.layers[name].weight.shape)
            if s.shape != expected:
                raise RuntimeError(f"criterion {self.criterion.name!r} gave scores of shape {tuple(s.shape)} "
                                   f"for {name}, expected {tuple(expected)}")
            if torch.isnan(s).any():
                raise RuntimeError(f"criterion {self.criterion.name!r} gave NaN scores for layer {name}")
        self.scores = {name: s.detach() for name, s in scores.items() if name in self.layers}
        self._make_selector()

    def _score_groups(self) -> None:
        """Each member scored as a channel, a group's score the sum over its scored members."""
        scores = self.criterion.group_scores(self.model, list(self._plan.groups.values()), self.data)
        if scores is None:
            member = self.criterion.scores(self.model, self._members, CHANNEL, self.data)
            scores = self._plan.group_scores({n: s.detach() for n, s in member.items()}, self.criterion)
        for name, s in scores.items():
            if torch.isnan(s).any():
                raise RuntimeError(f"criterion {self.criterion.name!r} gave NaN scores for the group {name!r}")
        for name, group in self._plan.groups.items():
            if name not in scores or scores[name].shape != (group.size,):
                raise RuntimeError(f"criterion {self.criterion.name!r} gave no scores of shape ({group.size},) "
                                   f"for the group {name!r}")
        self.scores = scores
        self._make_selector()

    def _make_selector(self) -> None:
        if self.scope == "global" and self._plan is not None:
            # a ratio of channels, as locally: a weight lies in the row of one group and the column of another,
            # so a ratio of weights would count it twice
            sizes = {n: 1 for n in self.scores}
            self._selector = GlobalSelector(self.scores, self.granularity, sizes, self.max_layer_sparsity)
        elif self.scope == "global":
            sizes = {n: self.layers[n].weight.numel() // max(1, s.numel()) for n, s in self.scores.items()}
            # a layer without channels computes a constant; at finer granularities one threshold empties a layer
            # only at ratios near 1, which then mean what they say
            keep_one = self.granularity in (CHANNEL, INPUT_CHANNEL)
            self._selector = GlobalSelector(self.scores, self.granularity, sizes, self.max_layer_sparsity, keep_one)
        else:
            self._selector = LocalSelector(self.scores, self.granularity)

    # -- the model as this Pruner left it --------------------------------------------------------------
    def _check(self, *, content: bool) -> None:
        """Refuse (ModelChangedError, nothing written) unless the model's tensors are the ones this Pruner wrote.

        ``content``: also refuse tensors whose values changed since the kit last wrote them (prune() would
        write the old dense copy over them); restore() writes the dense copy back whatever the values.
        """
        for key, entry in self._entries.items():
            problem = self._problem(key, entry, content)
            if problem is not None:
                raise ModelChangedError(f"{key}: {problem}")

    def _problem(self, key: str, entry: _Entry, content: bool) -> str | None:
        if not entry.in_place():
            try:
                self.model.get_parameter(key)
            except AttributeError:
                return (f"no longer a parameter of the model (its layer was replaced or removed, or a hook such as "
                        f"torch.nn.utils.prune's turned it into {key}_orig); {NEW_PRUNER}")
            return f"the model holds another tensor there (the layer or parameter was replaced); {NEW_PRUNER}"
        now = entry.param
        if entry.record.superseded or entry.record.generation != entry.generation:
            return ("its dense weights were replaced since this Pruner scored them (another Pruner was built on "
                    f"the edited model, or called rescore()); {RESCORE}")
        why = entry.record.stamp.mismatch(now, entry.record.index)
        if why is not None and (content and not entry.rewritten or not why.startswith("changed")):
            if not why.startswith("changed"):
                return f"{why} after this Pruner was built; {NEW_PRUNER}"
            return f"{why} since the Pruner last wrote it; {RESCORE}"
        if content and entry.record.tuned and not entry.rewritten:
            return ("fine-tuned since the last prune, so pruning again from the dense copy would throw the "
                    f"fine-tuned weights away; {RESCORE}")
        return None

    # -- pruning -----------------------------------------------------------------------------------
    def _parse(self, sparsity: Ratio) -> dict[str, float]:
        """Per-layer ratios from a float or a dict, every check done before anything changes."""
        if isinstance(sparsity, Mapping):
            if self.scope == "global":
                raise ValueError("a dict of per-layer ratios needs scope='local'; scope='global' takes one float")
            units = self._units
            kind = "group" if self._plan is not None else "layer"
            ratios = {name: 0.0 for name in units}
            for name, value in sparsity.items():
                if name not in units:
                    if name in self.skipped:
                        raise ValueError(f"layer {name!r} is not prunable here: {self.skipped[name]}; "
                                         f"{kind}s in scope: {', '.join(units)}")
                    raise unknown_choice(kind, name, units)
                ratios[name] = check_ratio(value, f"sparsity of {name}")
            return ratios
        value = check_ratio(sparsity)
        return {name: value for name in self._units}

    def prune(self, sparsity: Ratio) -> Pruner:
        """Prune to ``sparsity`` (a float for every layer, or {layer: ratio}); replaces the previous prune.

        Refused (ModelChangedError, the model untouched) when the model no longer holds what the kit last wrote:
        weights edited or trained outside the Pruner (call ``rescore()``), a layer replaced or the model
        converted (build a new Pruner).
        """
        ratios = self._parse(sparsity)
        self._check(content=True)
        selector, ratio = self._selector, next(iter(ratios.values()))
        counts = selector.k(ratio) if self.scope == "global" else selector.counts(ratios)
        if self._can_reprune() and self._small_move(counts):
            self._reprune(counts)
            kept = None
        else:
            group_masks = kept = selector.masks_at(counts, self.scores)
            if self._plan is not None:
                group_masks = self._plan.even_slices(group_masks, self.scores)
                self._keep = group_masks
                self.masks = self._plan.weight_masks(group_masks)
            for name, gmask in group_masks.items() if self._plan is None else ():
                self.masks[name] = self.granularity.expand(gmask, self.layers[name].weight.shape)
            self._write()
            if self._plan is None:
                self._held = _Held(selector, self.masks, dict(self.masks),
                                   {key: e.record.stamp for key, e in self._entries.items()},
                                   counts if isinstance(counts, int) else dict(counts))
                if isinstance(counts, dict):  # every group of a layer has as many weights
                    self._pruned = {name: (mask, counts[name] * (mask.numel() // max(1, selector.orders[name].numel())))
                                    for name, mask in self.masks.items()}
        guarded = []
        if self.scope == "global":
            if kept is None:  # groups kept per layer, from the counts a re-prune keeps
                pruned = self._pruned_weights()
                kept = {name: self.scores[name].numel() - pruned[name] // self._group_size(name)
                        for name in self.layers}
            guarded = selector.guarded_layers(ratio, kept)
        self.ratios = ratios
        self._note_guard(guarded)
        return self

    def _group_size(self, name: str) -> int:
        return self.masks[name].numel() // max(1, self.scores[name].numel())

    def _can_reprune(self) -> bool:
        """Whether the model holds this Pruner's last prune as it wrote it (the content check has passed), so a
        new selection can be written as the difference: the same selector, masks and stamps, no tracked tensor
        (a criterion rewrites those whole), plain contiguous tensors."""
        held = self._held
        if not self._holds_selection() or len(held.stamps) != len(self._entries):
            return False
        return all(not e.rewritten and held.stamps.get(key) is e.record.stamp and e.param.is_contiguous()
                   and e.dense.is_contiguous() for key, e in self._entries.items())

    def _small_move(self, counts: dict[str, int] | int) -> bool:
        """Whether few enough groups flip for the difference to pay: the difference sorts the flipped groups, so
        past about an eighth of them (a jump of the slider, not a drag) one full masked write is cheaper."""
        held = self._held
        if isinstance(counts, int):
            flipped, total = abs(counts - held.counts), self._selector.groups
        else:
            moved = [abs(k - held.counts.get(name, 0)) for name, k in counts.items()]
            if not all(moved):  # a layer left as it is keeps its tensors unwritten (cached activations stay valid)
                return True
            flipped, total = sum(moved), sum(order.numel() for order in self._selector.orders.values())
        return flipped * 8 <= max(1, total)

    def _holds_selection(self) -> bool:
        """Whether ``masks`` are still the selection of ``_held`` (nobody replaced the dict or a tensor)."""
        held = self._held
        return (held is not None and self._plan is None and held.selector is self._selector
                and held.masks is self.masks and len(held.tensors) == len(self.masks)
                and all(held.tensors.get(name) is mask for name, mask in self.masks.items()))

    @torch.no_grad()
    def _reprune(self, counts: dict[str, int] | int) -> None:
        """Write the new selection as the difference from the held one: the groups of the order between the old
        count and the new, expanded to their weights (and channels' biases and BatchNorm entries)."""
        held, selector = self._held, self._selector
        flips = {}  # layer -> (its group indices that flip, True: they are pruned now)
        if isinstance(counts, int):
            lo, hi = sorted((held.counts, counts))
            if lo < hi:  # sorted, the flat group indices fall into layers (each holds one range of them)
                groups = torch.sort(selector.order[lo:hi].to(torch.int64)).values
                bounds = torch.searchsorted(groups, selector._starts).tolist() + [groups.numel()]
                for i, name in enumerate(selector.names):
                    if bounds[i] < bounds[i + 1]:
                        flips[name] = (groups[bounds[i]:bounds[i + 1]] - selector.starts[i], counts > held.counts)
        else:
            for name, k in counts.items():
                if k != held.counts[name]:
                    lo, hi = sorted((held.counts[name], k))
                    groups = torch.sort(selector.orders[name][lo:hi].to(torch.int64)).values
                    flips[name] = (groups, k > held.counts[name])
        pruned = self._pruned_weights()
        deltas: dict[str, int] = {}
        written = 0
        changed = {name: torch.empty(0, dtype=torch.int64, device=m.weight.device) for name, m in self.layers.items()}
        for name, (groups, pruning) in flips.items():
            flat = self._weight_index(name, groups)
            mask = self.masks[name]
            if not mask.is_contiguous():  # an expanded group mask (channel, kernel, vector): made writable once
                mask = self.masks[name] = held.tensors[name] = mask.contiguous()
            mask.view(-1).index_fill_(0, flat, not pruning)
            targets = [(f"{name}.weight", flat)]
            if self.granularity is CHANNEL:
                norm = self._infos[name].norm
                targets += [(key, groups) for key in (f"{name}.bias", f"{norm}.weight", f"{norm}.bias")
                            if key in self._entries]
            for key, index in targets:
                written += self._write_part(key, index, pruning, deltas)
            self._pruned[name] = (mask, pruned[name] + (flat.numel() if pruning else -flat.numel()))
            changed[name] = flat
        for key, delta in deltas.items():
            entry = self._entries[key]
            before = entry.record.stamp
            registry.stamp(entry.param, entry.record, is_dense=False)
            known = self._nonzero.get(key)
            if known is not None and known[0] is before:
                self._nonzero[key] = (entry.record.stamp, known[1] + delta)
            held.stamps[key] = entry.record.stamp
        held.counts = counts if isinstance(counts, int) else dict(counts)
        self.last_write_count, self.changed = written, changed

    def _write_part(self, key: str, index: torch.Tensor, pruning: bool, deltas: dict[str, int]) -> int:
        """Zero (pruning) or put back the dense values of the flat ``index`` of one tensor; the elements written."""
        entry = self._entries[key]
        param, dense = entry.param.detach().view(-1), entry.dense.view(-1)  # a view shares the version counter
        values = dense.index_select(0, index)
        nonzero = int(torch.count_nonzero(values))
        if pruning:
            param.index_fill_(0, index, 0)
        else:
            param.index_copy_(0, index, values)
        deltas[key] = deltas.get(key, 0) + (-nonzero if pruning else nonzero)
        return index.numel()

    def _weight_index(self, name: str, groups: torch.Tensor) -> torch.Tensor:
        """The flat indices (sorted) of the weights of ``groups`` (sorted flat group indices) in the layer's weight."""
        dims = self.granularity.group_dims
        if dims is None:
            return groups
        shape = self.layers[name].weight.shape
        strides = [1] * len(shape)
        for d in range(len(shape) - 2, -1, -1):
            strides[d] = strides[d + 1] * shape[d + 1]
        base, rest = torch.zeros_like(groups), groups
        for d in reversed(dims):  # the group's coordinates, last group dim first
            base = base + (rest % shape[d]) * strides[d]
            rest = rest // shape[d]
        inside = torch.zeros(1, dtype=torch.int64, device=groups.device)  # offsets of a group's weights
        for d in range(len(shape)):
            if d not in dims:
                steps = torch.arange(shape[d], device=groups.device) * strides[d]
                inside = (inside[:, None] + steps[None, :]).reshape(-1)
        flat = (base[:, None] + inside[None, :]).reshape(-1)
        # groups on the leading dims (channel, kernel, vector) own consecutive ranges: already sorted
        return flat if tuple(dims) == tuple(range(len(dims))) else torch.sort(flat).values

    def _note_guard(self, layers: list[str]) -> None:
        """Say which layers the global guard kept from being emptied: ``guarded`` after every prune, and a warning
        the first time (a slider re-prunes many times)."""
        group = "channel" if self.granularity is CHANNEL else "group"
        self.guarded = {}
        for name in layers:
            count = self.scores[name].numel()
            self.guarded[name] = (f"kept its most important {group} of {count}: the one global threshold would "
                                  f"have pruned them all, and an emptied layer makes the network compute a constant")
        if layers and not getattr(self, "_guard_said", False):
            self._guard_said = True
            warnings.warn(f"global pruning kept one {group} in {', '.join(layers)}, which the one threshold would "
                          f"have emptied (a network with an emptied layer computes a constant); the sparsity "
                          f"reached is {self.sparsity():.3f}; pruner.guarded says which layers after each prune, "
                          f"max_layer_sparsity caps layers more strictly", UserWarning, stacklevel=3)

    def _keeps(self):
        """(key, keep) for every masked tensor: a weight's mask, and for a channel-pruned layer the channel's keep
        vector for its bias and the following BatchNorm's gamma and beta.

        A pruned channel goes as a whole: with its weights zero but beta still added, it would emit a constant
        that a physically smaller model cannot reproduce.
        """
        if self._plan is not None:
            yield from self._plan.tensor_keeps(self._keep, self.masks)
            return
        for name, info in self._infos.items():
            yield f"{name}.weight", self.masks[name]
            if self.granularity is CHANNEL:
                keep = self.masks[name].flatten(1).any(1)
                for key in (f"{name}.bias", f"{info.norm}.weight", f"{info.norm}.bias"):
                    if key in self._entries:
                        yield key, keep

    @torch.no_grad()
    def _write(self) -> None:
        masked = set()
        for key, keep in self._keeps():
            entry = self._entries[key]
            _masked_into(entry.param, entry.dense, keep)
            registry.stamp(entry.param, entry.record, is_dense=False)
            masked.add(key)
            if keep.shape == entry.param.shape and self._dense_zeros(key) == 0:  # nonzero = kept: a pass over bools
                self._nonzero[key] = (entry.record.stamp, int(torch.count_nonzero(keep)))
        for key, entry in self._entries.items():  # a new prune starts from the dense weights everywhere
            if key not in masked:
                entry.param.copy_(entry.dense)
                registry.stamp(entry.param, entry.record, is_dense=True)
                self._nonzero[key] = (entry.record.stamp, entry.param.numel() - self._dense_zeros(key))
        self._held = None
        self.last_write_count = sum(entry.param.numel() for entry in self._entries.values())
        self.changed = None

    def _dense_zeros(self, key: str) -> int:
        """Zeros in the dense copy of a tensor, counted once per version of the copy: with none, a masked write
        leaves as many nonzero entries as the mask keeps, counted on the bool mask (5 ms for 23.5M) rather than
        on the written floats (88 ms)."""
        record = self._entries[key].record
        version = (id(record), record.generation, record.dense.data_ptr())  # a snapshot may swap the tensor
        known = self._zeros.get(key)
        if known is None or known[0] != version:
            known = self._zeros[key] = (version, record.dense.numel() - int(torch.count_nonzero(record.dense)))
        return known[1]

    def track(self, key: str) -> None:
        """Let a criterion rewrite one more parameter outside the masks (e.g. the next layer a least-squares
        reconstruction refits): ``restore()`` and the next ``prune()`` write its dense values back, bit for bit,
        whatever it holds then."""
        if key not in self._entries:
            param = self.model.get_parameter(key)
            self._entries[key] = _Entry.of(self.model, key, param, registry.claim(param))
        self._entries[key].rewritten = True

    def restore(self) -> Pruner:
        """The dense weights back, bit for bit (any change to these tensors since the last prune is discarded).

        Refused, with nothing written, when a layer was replaced or the model converted since the Pruner was built.
        """
        self._check(content=False)
        with torch.no_grad():
            for key, entry in self._entries.items():
                entry.param.copy_(entry.dense)
                registry.stamp(entry.param, entry.record, is_dense=True)
                self._nonzero[key] = (entry.record.stamp, entry.param.numel() - self._dense_zeros(key))
        self._reset_masks()
        self.last_write_count = sum(entry.param.numel() for entry in self._entries.values())
        self.changed = None
        return self

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero the pruned weights again after an optimizer step moved them: for a fine-tuning loop.

        The Pruner takes the model's weights as fine-tuned ones from here: a later ``prune()`` asks for
        ``rescore()`` (prune the fine-tuned weights) or ``restore()`` first.
        """
        self._check(content=False)
        for key, keep in self._keeps():
            entry = self._entries[key]
            moved = entry.record.stamp.mismatch(entry.param, entry.record.index) is not None
            entry.param.mul_(keep)
            registry.stamp(entry.param, entry.record, is_dense=False, tuned=entry.record.tuned or moved)
        self._held = None

    def mask_gradients(self) -> None:
        """Zero the gradients of pruned weights, so momentum never builds up on them."""
        for key, keep in self._keeps():
            grad = self._entries[key].param.grad
            if grad is not None:
                grad.mul_(keep)

    def rescore(self) -> Pruner:
        """Adopt the model's current weights (e.g. after fine-tuning) as the dense ones and score them again.

        Weights pruned now keep their earlier dense values in the copy (for a pruned channel: its bias and
        BatchNorm too), and score as the zeros they are in the model, so an iterative schedule keeps them pruned.
        The dense copy is shared: other Pruners on these tensors then ask for their own ``rescore()``.
        """
        self._check(content=False)
        keeps = dict(self._keeps())
        with torch.no_grad():
            for key, entry in self._entries.items():
                if entry.record.superseded:  # another Pruner adopted edits: take its record
                    entry.record = registry.claim(entry.param)
                current = entry.param.detach()
                keep = keeps.get(key)
                entry.dense.copy_(current if keep is None else torch.where(keep, current, entry.dense))
                entry.record.generation += 1
                entry.generation = entry.record.generation
                registry.stamp(entry.param, entry.record, is_dense=keep is None or bool(keep.all()))
        self._score()
        return self

    # -- reading -----------------------------------------------------------------------------------
    def sparsity(self) -> float:
        """Fraction of pruned weights over all layers in scope (from counts a re-prune keeps: no pass)."""
        pruned = self._pruned_weights()
        total = sum(m.numel() for m in self.masks.values())
        kept = total - sum(pruned.values())
        return 1.0 - kept / total

    def layer_sparsity(self) -> dict[str, float]:
        """Fraction of pruned weights, per layer in scope."""
        pruned = self._pruned_weights()
        return {name: 1.0 - (m.numel() - pruned[name]) / m.numel() for name, m in self.masks.items()}

    def _pruned_weights(self) -> dict[str, int]:
        """Weights pruned per layer: the counts kept with each mask, counted again for a mask replaced since."""
        out = {}
        for name, mask in self.masks.items():
            known = self._pruned.get(name)
            if known is None or known[0] is not mask:
                known = self._pruned[name] = (mask, mask.numel() - int(torch.count_nonzero(mask)))
            out[name] = known[1]
        return out

    def nonzero_counts(self) -> dict[str, int]:
        """Nonzero entries of every tensor the Pruner writes, by parameter key (e.g. "features.0.weight"):
        exactly ``torch.count_nonzero`` of each. Counted once after a full write, then kept up to date by each
        re-prune from the entries it wrote; a tensor changed since the kit wrote it is counted again."""
        out = {}
        for key, entry in self._entries.items():
            known, stamp = self._nonzero.get(key), entry.record.stamp
            current = registry.record_of(entry.param) is entry.record  # holds the kit's last write (a stamp check)
            if known is not None and known[0] is stamp and current:
                out[key] = known[1]
                continue
            out[key] = int(torch.count_nonzero(entry.param.detach()))
            if current:
                self._nonzero[key] = (stamp, out[key])
        return out

    def threshold(self, layer: str) -> float | None:
        """The largest score among the layer's pruned groups (magnitude, element: the |w| below which weights
        went), or None when none is pruned. Read from the sorted order: O(1) locally (O(tiers) for N:M), at
        global scope a scan of the order between this call's count and the last one's; a pass over the layer's
        group mask only for a selection the Pruner did not make itself (masks set by hand, a state dict,
        granularity "group", N:M at global scope)."""
        if layer not in self.layers:
            raise unknown_choice("layer", layer, self.layers)
        selector = self._selector
        if self._holds_selection() and not (self.scope == "global" and selector.tiered):
            held = self._held
            count = held.counts if isinstance(held.counts, int) else held.counts[layer]
            return selector.threshold(layer, count, self.scores)
        if self._plan is not None:
            pruned = [self.scores[name][~keep] for name, keep in self._keep.items()
                      if layer in self._plan.groups[name].producers]
        else:
            pruned = [self.scores[layer][~_reduce_any(self.masks[layer], self.granularity)]]
        pruned = [p for p in pruned if p.numel()]
        return max(float(p.max()) for p in pruned) if pruned else None

    def memory_bytes(self) -> int:
        """Bytes of the tensors this Pruner holds: the dense copies it made, scores, masks, the selection's order.

        At rest, for magnitude at element granularity, local or global: 13 bytes per weight (dense copy 4,
        scores 4, int32 order 4, mask 1). Building peaks higher for a moment: see :class:`GlobalSelector`."""
        tensors = [self._entries[key].dense for key in self._created if key in self._entries]
        tensors += [*self.scores.values(), *self.masks.values(), *getattr(self, "_keep", {}).values()]
        for value in vars(self._selector).values():
            tensors += list(value.values()) if isinstance(value, dict) else [value]
        storages = {}
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
        return sum(storages.values())

    def group_masks(self) -> dict[str, torch.Tensor]:
        """The current masks per group (e.g. one bool per channel), shaped like ``scores``."""
        if self._plan is not None:
            return dict(self._keep)
        return {name: _reduce_any(m, self.granularity) for name, m in self.masks.items()}

    def dense_weight(self, name: str) -> torch.Tensor:
        """The layer's dense weight as it was before pruning (a view: do not modify)."""
        return self._entries[f"{name}.weight"].dense

    @property
    def _dense(self) -> dict[str, torch.Tensor]:
        return {key: entry.dense for key, entry in self._entries.items()}

    # -- saving ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything to rebuild this pruner on the same model: tensors, strings and floats only,
        so ``torch.load(..., weights_only=True)`` reads it."""
        return {"criterion": self.criterion.name, "granularity": self.granularity.name, "scope": self.scope,
                "max_layer_sparsity": self.max_layer_sparsity,
                "layers": list(self.layers), "ratios": dict(self.ratios), "masks": dict(self.masks),
                "scores": dict(self.scores), "dense": self._dense,
                "tracked": [key for key, entry in self._entries.items() if entry.rewritten],
                **({"group_keeps": dict(self._keep)} if self._plan is not None else {})}

    @classmethod
    def from_state_dict(cls, model: nn.Module, state: Mapping) -> Pruner:
        """A pruner with the saved dense weights, scores and masks, written into ``model``. No data needed.

        It replaces the model's weights in scope with the saved ones (pruned by the saved masks); a model whose
        weights are neither those dense weights nor them pruned (another model's, or fine-tuned after the save)
        gets a warning naming the layers whose weights it replaced.

        Every name, shape and dtype is checked before anything is written; a mismatch is a ValueError naming
        the tensor, and the model is left as it was.
        """
        check_prunable(model)
        _check_state(state)
        self = cls.__new__(cls)
        self.granularity = get_granularity(state["granularity"])
        self.criterion = get_criterion(state["criterion"])
        if state["scope"] not in SCOPES:
            raise unknown_choice("scope", state["scope"], SCOPES)
        self.scope, self.model, self.data = state["scope"], model, None
        self.max_layer_sparsity = state.get("max_layer_sparsity")
        self.graph = build_graph(model)
        self.skipped, self.guarded = {}, {}
        self._plan = None
        self._start_counting()
        missing = [n for n in state["layers"] if n not in self.graph.layers]
        if missing:
            raise ValueError(f"the saved pruner names layers this model does not have: {missing}; the model's "
                             f"layers: {', '.join(self.graph.layers) or 'none'}")
        if self.granularity is GROUP:
            self._load_groups(state)
        self._infos = {n: self.graph.layers[n] for n in state["layers"]}
        self.layers = {n: i.module for n, i in self._infos.items()}
        for name, module in self.layers.items():
            _refuse_hooks(name, module)
        written = {key for key, _ in self._written_tensors()}
        dense = _checked_dense(model, state["dense"], written)
        _check_saved(state["masks"], {n: (m.weight.shape, torch.bool) for n, m in self.layers.items()}, "mask")
        if self._plan is None:
            _check_saved(state["scores"], {n: (self.granularity.group_shape(m.weight.shape), None)
                                           for n, m in self.layers.items()}, "scores")
        device = next(iter(self.layers.values())).weight.device
        self.masks = {k: v.to(device) for k, v in state["masks"].items()}
        if self._plan is not None:
            self._keep = {k: v.to(device) for k, v in state["group_keeps"].items()}
            self.masks = self._plan.weight_masks(self._keep)
        self.ratios = {n: float(state["ratios"].get(n, 0.0)) for n in self._units}
        self.scores = {k: v.to(device) for k, v in state["scores"].items()}
        self._make_selector()
        _warn_if_replaced(self.layers, self.masks, dense)
        self._entries = self._claim({key: dense[key] for key in written})
        for key in dense.keys() - written:  # parameters a criterion rewrote (Pruner.track)
            param = model.get_parameter(key)
            self._entries[key] = _Entry.of(model, key, param, registry.adopt(param, dense[key]), rewritten=True)
        self._write()
        return self

    def _load_groups(self, state: Mapping) -> None:
        """Granularity "group" from a state dict: the saved groups, found again on the model, checked."""
        from .coupling import coupled_groups
        from .group_masks import GroupPlan

        found = {g.name: g for g in coupled_groups(self.model) if not g.blockers}
        keeps = state.get("group_keeps")
        if not isinstance(keeps, Mapping):
            raise ValueError("the saved group pruner has no 'group_keeps' (one bool per channel of each group)")
        for name, keep in keeps.items():
            group = found.get(name)
            if group is None or not isinstance(keep, torch.Tensor) or keep.shape != (group.size,):
                raise ValueError(f"the saved pruner prunes a channel group {name!r} that this model does not have "
                                 f"(prunable groups: {', '.join(found) or 'none'})")
        self._plan = GroupPlan(self.model, [found[name] for name in keeps])
        if list(state["layers"]) != self._plan.layers:
            raise ValueError(f"the saved group pruner touches layers {list(state['layers'])}, this model's groups "
                             f"{self._plan.layers}: not the model the pruner was saved from")
        _check_saved(state["scores"], {n: (torch.Size([g.size]), None) for n, g in self._plan.groups.items()},
                     "scores")

    def __getstate__(self) -> dict:
        """Pickled with its model (multiprocessing, joblib): which tensors held the kit's last write travels
        along, so the unpickled Pruner finds its own model's weights as it left them."""
        state = dict(self.__dict__)
        state["_held"] = [key for key, e in self._entries.items() if registry.record_of(e.param) is e.record]
        return state

    def __setstate__(self, state: dict) -> None:
        held = set(state.pop("_held", ()))
        self.__dict__.update(state)
        for key, entry in self._entries.items():  # the unpickled tensors are new objects: register them
            registry.reinstate(entry.param, entry.record)
            if key in held:
                registry.stamp(entry.param, entry.record, is_dense=entry.record.is_dense, tuned=entry.record.tuned)

    def __deepcopy__(self, memo: dict) -> Pruner:
        """A copy on a copy of the model (deepcopy copies the model too), with its own dense records."""
        twin = type(self).__new__(type(self))
        memo[id(self)] = twin
        for name, value in self.__dict__.items():
            setattr(twin, name, copy.deepcopy(value, memo))
        for key, entry in self._entries.items():
            copied = twin._entries[key]
            registry.register_copy(entry.param, entry.record, copied.param, copied.record)
        return twin

    def __repr__(self) -> str:
        return (f"Pruner(criterion={self.criterion.name!r}, granularity={self.granularity.name!r}, "
                f"scope={self.scope!r}, layers={len(self.layers)}, sparsity={self.sparsity():.3f})")


def _warn_if_copy_of_pruned(copied: list[str]) -> None:
    """Warn when weights the Pruner takes as dense (the kit holds no copy of them) are a copy of weights the kit
    pruned (:func:`pruneviz.dense.pruned_elsewhere`: by the kit's mark or by equal values, never by counting
    zeros: a hand-made identity kernel is full of zeros and is dense)."""
    if copied:
        warnings.warn(f"the Pruner takes the model's weights as the dense ones, but {', '.join(copied)} are a copy "
                      f"of weights the kit pruned (a copy.deepcopy, pickle or torch.save/torch.load of a pruned "
                      f"model carries no dense copy), so restore() gives these zeros back. Rebuild the first "
                      f"Pruner with Pruner.from_state_dict(model, pruner.state_dict()), or copy the dense model "
                      f"with pruneviz.dense.dense_copy(original)", AlreadySparseWarning, stacklevel=4)


def _warn_if_replaced(layers: Mapping[str, nn.Module], masks: Mapping[str, torch.Tensor],
                      dense: Mapping[str, torch.Tensor]) -> None:
    """Say which layers held weights other than the saved ones (dense or pruned) before they are written over."""
    other = []
    for name, module in layers.items():
        now, saved = module.weight.detach(), dense[f"{name}.weight"]
        if not (torch.equal(now, saved) or torch.equal(now, torch.where(masks[name], saved, _zero(saved.dtype,
                                                                                                 saved.device)))):
            other.append(name)
    if other:
        warnings.warn(f"Pruner.from_state_dict replaces the weights of {', '.join(other)} with the saved "
                      f"pruner's (pruned by its masks): they held other values (another model's weights, or "
                      f"trained after the pruner was saved); load the model's own state_dict first to keep "
                      f"it whole", UserWarning, stacklevel=3)


def _layer_list(requested: object, infos: Mapping[str, LayerInfo]) -> list[str]:
    """``layers=`` as a list of known layer names, or a ValueError saying what was given and what is valid."""
    valid = ", ".join(repr(n) for n in infos)
    if isinstance(requested, str):
        raise ValueError(f"layers must be a list of layer names, got the string {requested!r} "
                         f"(for one layer: layers=[{requested!r}]); layers: {valid}")
    try:
        names = list(requested)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(f"layers must be a list of layer names, got {type(requested).__name__}; "
                         f"layers: {valid}") from None
    if not names:
        raise ValueError(f"layers=[] names no layer; give some of: {valid} (or layers=None for all)")
    for name in names:
        if name not in infos:
            raise unknown_choice("layer", name, infos)
    return names


def _unseen(model: nn.Module, name: str) -> str:
    """Why a layer is left out of channel pruning: torch.fx never shows who reads its channels."""
    return f"{untraced_reason(model, name)}, so the kit cannot see what reads its channels"


def _refuse_hooks(name: str, module: nn.Module) -> None:
    """A layer whose weight another mechanism computes cannot take the Pruner's in-place writes."""
    if torch_prune.is_pruned(module):
        raise ValueError(f"layer {name!r} is pruned by torch.nn.utils.prune (weight_orig, weight_mask and a "
                         "forward pre-hook), which would override the Pruner's masks; read its masks with "
                         "pruneviz.from_torch_prune(model, remove=True) (that also makes them permanent), then "
                         "build the Pruner")
    if parametrize.is_parametrized(module):
        raise ValueError(f"layer {name!r} has a parametrization (torch.nn.utils.parametrize) computing its weight; "
                         "remove it first (parametrize.remove_parametrizations(module, 'weight'))")


def _check_state(state: object) -> None:
    if not isinstance(state, Mapping) or any(key not in state for key in STATE_KEYS):
        tensors = isinstance(state, Mapping) and state and all(isinstance(v, torch.Tensor) for v in state.values())
        hint = (" (this looks like a model's state_dict: load it with model.load_state_dict(state))"
                if tensors else "")
        given = sorted(map(str, state))[:4] if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"from_state_dict needs a Pruner.state_dict() with keys {', '.join(STATE_KEYS)}; "
                         f"got {given}{hint}")


def _checked_dense(model: nn.Module, dense: Mapping[str, torch.Tensor], written: set[str]
                   ) -> dict[str, torch.Tensor]:
    """The saved dense tensors, each checked against the model's parameter of that name."""
    missing = sorted(written - dense.keys())
    if missing:
        raise ValueError(f"the saved pruner has no dense copy of {', '.join(missing)}")
    out = {}
    for key, value in dense.items():
        try:
            param = model.get_parameter(key)
        except AttributeError:
            raise ValueError(f"the saved pruner has a dense copy of {key}, which this model does not have") from None
        if not isinstance(value, torch.Tensor) or value.shape != param.shape or value.dtype != param.dtype:
            got = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"the saved dense copy of {key} is {got}, the model's {key} is "
                             f"{tuple(param.shape)} {param.dtype}: not the model the pruner was saved from")
        out[key] = value.to(param.device)
    return out


def _check_saved(saved: Mapping, expected: Mapping[str, tuple[torch.Size, torch.dtype | None]], what: str) -> None:
    for name, (shape, dtype) in expected.items():
        value = saved.get(name)
        if not isinstance(value, torch.Tensor) or value.shape != shape or (dtype is not None and value.dtype != dtype):
            got = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else repr(value)
            raise ValueError(f"the saved {what} of layer {name} is {got}; this model's layer needs "
                             f"{tuple(shape)}{' ' + str(dtype) if dtype else ''}")


def _masked_into(target: torch.Tensor, dense: torch.Tensor, keep: torch.Tensor) -> None:
    """target = dense where kept, else 0, written straight into target: no temporary the size of the layer
    (the write is most of a re-prune's time on a large model). Written into the parameter itself (under
    no_grad), so its version counter records the write."""
    torch.where(keep, dense, _zero(dense.dtype, dense.device), out=target)


@functools.lru_cache(maxsize=None)
def _zero(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """One 0-d zero per dtype and device, made once (a new one per write cost as much as the check before it)."""
    return torch.zeros((), dtype=dtype, device=device)


def _reduce_any(mask: torch.Tensor, granularity: Granularity) -> torch.Tensor:
    if granularity.group_dims is None:
        return mask
    dims = [d for d in range(mask.dim()) if d not in granularity.group_dims]
    return mask.amax(dim=dims) if dims else mask
