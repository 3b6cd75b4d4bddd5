"""The Pruner: criterion -> scores (once) -> selection -> masks written into the model in place.

It keeps the dense weights on the side and writes ``dense * mask`` into the parameters: no forward hook, no
second copy inside the module, so inference runs at full speed and ``restore()`` is bit-exact.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .criteria import Criterion, get_criterion
from .errors import check_ratio, unknown_choice
from .granularity import CHANNEL, INPUT_CHANNEL, Granularity, get_granularity
from .graph import LayerInfo, build_graph
from .selection import SCOPES, GlobalSelector, LocalSelector

Ratio = float | Mapping[str, float]


class Pruner:
    """Prune a model's Linear and Conv layers by a criterion, at a granularity, locally or globally.

    >>> pruner = Pruner(model, criterion="magnitude", granularity="channel")
    >>> pruner.prune(0.5)          # half the channels of every layer in scope
    >>> pruner.prune({"features.0": 0.3})
    >>> pruner.restore()           # the dense model, bit for bit

    Attributes:
        layers: the layers in scope ({name: module}); ``skipped`` says why the others are left out.
        scores: the importance the masks are chosen from, per group ({name: tensor}); low = pruned first.
        masks: one bool per weight, True = kept ({name: tensor shaped like the weight}).
    """

    def __init__(self, model: nn.Module, criterion: str | Criterion = "magnitude",
                 granularity: str | Granularity = "element", scope: str = "local", *, data: object = None,
                 layers: Iterable[str] | None = None, max_layer_sparsity: float | None = None,
                 **criterion_options):
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
        self.model = model
        self.scope = scope
        self.data = data
        graph = build_graph(model)
        self.graph = graph
        self.skipped: dict[str, str] = {}
        self.criterion.setup(model)  # a criterion whose scope depends on the model's structure reads it here
        self._infos = self._select_layers(graph, layers)
        self.layers = {name: info.module for name, info in self._infos.items()}
        self._dense = self._snapshot()
        self._tracked: list[str] = []  # parameters outside the masks that a criterion rewrites (see track)
        self.masks = {name: torch.ones_like(m.weight, dtype=torch.bool) for name, m in self.layers.items()}
        self.ratios: dict[str, float] = {name: 0.0 for name in self.layers}
        self._score()

    # -- construction ------------------------------------------------------------------------------
    def _check_combination(self, data: object) -> None:
        crit, gran = self.criterion, self.granularity
        allowed = crit.granularities
        if allowed is not None and gran.name not in allowed:
            raise ValueError(f"criterion {crit.name!r} has no meaning at {gran.name!r} granularity; "
                             f"valid granularities for it: {', '.join(repr(g) for g in allowed)}")
        if crit.needs_data and data is None:
            raise ValueError(f"criterion {crit.name!r} needs calibration data: Pruner(model, "
                             f"criterion={crit.name!r}, data=loader); criteria that need none: "
                             "'magnitude', 'l2', 'random'")

    def _select_layers(self, graph, requested: Iterable[str] | None) -> dict[str, LayerInfo]:
        infos = graph.layers
        if requested is not None:
            requested = list(requested)
            unknown = [n for n in requested if n not in infos]
            if unknown:
                raise unknown_choice("layer", unknown[0], infos)
        chosen = {}
        for name, info in infos.items():
            if requested is not None and name not in requested:
                continue
            reason = self._scope_reason(info)
            if reason is None:
                chosen[name] = info
            else:
                self.skipped[name] = reason
        if not chosen:
            why = "; ".join(f"{n}: {r}" for n, r in self.skipped.items()) or "the model has no Linear or Conv layer"
            raise ValueError(f"no layer to prune with criterion {self.criterion.name!r} at "
                             f"{self.granularity.name!r} granularity ({why})")
        return chosen

    def _scope_reason(self, info: LayerInfo) -> str | None:
        reason = self.granularity.unsupported_reason(info.module.weight.shape)
        if reason:
            return reason
        if self.granularity is CHANNEL and info.is_output:
            return "its output channels are the model's outputs (the classes)"
        if self.granularity is INPUT_CHANNEL and info.is_input:
            return "its input channels are the model's input data"
        return self.criterion.covers(info)

    def _snapshot(self) -> dict[str, torch.Tensor]:
        """Dense copies of every tensor a prune may write: weights, and per channel biases and BatchNorm."""
        dense = {}
        for key, tensor in self._written_tensors():
            dense[key] = tensor.detach().clone()
        return dense

    def _written_tensors(self):
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

    def _score(self) -> None:
        scores = self.criterion.scores(self.model, self._infos, self.granularity, self.data)
        for name, s in scores.items():
            expected = self.granularity.group_shape(self.layers[name].weight.shape)
            if s.shape != expected:
                raise RuntimeError(f"criterion {self.criterion.name!r} gave scores of shape {tuple(s.shape)} "
                                   f"for {name}, expected {tuple(expected)}")
            if torch.isnan(s).any():
                raise RuntimeError(f"criterion {self.criterion.name!r} gave NaN scores for layer {name}")
        self.scores = {name: s.detach() for name, s in scores.items()}
        if self.scope == "global":
            sizes = {name: self.layers[name].weight.numel() // max(1, s.numel()) for name, s in scores.items()}
            self._selector = GlobalSelector(self.scores, self.granularity, sizes, self.max_layer_sparsity)
        else:
            self._selector = LocalSelector(self.scores, self.granularity)

    # -- pruning -----------------------------------------------------------------------------------
    def _parse(self, sparsity: Ratio) -> dict[str, float]:
        """Per-layer ratios from a float or a dict, every check done before anything changes."""
        if isinstance(sparsity, Mapping):
            if self.scope == "global":
                raise ValueError("a dict of per-layer ratios needs scope='local'; scope='global' takes one float")
            ratios = {name: 0.0 for name in self.layers}
            for name, value in sparsity.items():
                if name not in self.layers:
                    if name in self.skipped:
                        raise ValueError(f"layer {name!r} is not prunable here: {self.skipped[name]}; "
                                         f"layers in scope: {', '.join(self.layers)}")
                    raise unknown_choice("layer", name, self.layers)
                ratios[name] = check_ratio(value, f"sparsity of {name}")
            return ratios
        value = check_ratio(sparsity)
        return {name: value for name in self.layers}

    def prune(self, sparsity: Ratio) -> Pruner:
        """Prune to ``sparsity`` (a float for every layer, or {layer: ratio}); replaces the previous prune."""
        ratios = self._parse(sparsity)
        if self.scope == "global":
            group_masks = self._selector.group_masks(next(iter(ratios.values())))
        else:
            group_masks = self._selector.group_masks(ratios)
        for name, gmask in group_masks.items():
            self.masks[name] = self.granularity.expand(gmask, self.layers[name].weight.shape)
        self.ratios = ratios
        self._write()
        return self

    def _channel_extras(self):
        """(key, keep) for the bias and BatchNorm gamma/beta of each channel-pruned layer.

        A pruned channel goes as a whole: with its weights zero but beta still added, it would emit a constant
        that a physically smaller model cannot reproduce.
        """
        for name, info in self._infos.items():
            keep = self.masks[name].flatten(1).any(1)
            for key in (f"{name}.bias", f"{info.norm}.weight", f"{info.norm}.bias"):
                if key in self._dense:
                    yield key, keep

    @torch.no_grad()
    def _write(self) -> None:
        for name, module in self.layers.items():
            _masked_into(module.weight, self._dense[f"{name}.weight"], self.masks[name])
        if self.granularity is CHANNEL:
            for key, keep in self._channel_extras():
                _masked_into(self.model.get_parameter(key), self._dense[key], keep)
        for key in self._tracked:  # a new prune starts from the dense weights everywhere
            self.model.get_parameter(key).copy_(self._dense[key])

    def track(self, key: str) -> None:
        """Keep a dense copy of one more parameter (e.g. the next layer a least-squares reconstruction
        rewrites), so ``restore()`` and the next ``prune()`` give it back bit for bit."""
        if key not in self._dense:
            self._dense[key] = self.model.get_parameter(key).detach().clone()
            self._tracked.append(key)

    def restore(self) -> Pruner:
        """The dense weights back, bit for bit."""
        with torch.no_grad():
            for key, dense in self._dense.items():
                self.model.get_parameter(key).copy_(dense)
        self.masks = {name: torch.ones_like(m, dtype=torch.bool) for name, m in self.masks.items()}
        self.ratios = {name: 0.0 for name in self.layers}
        return self

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero the pruned weights again (after an optimizer step moved them): for fine-tuning."""
        for name, module in self.layers.items():
            module.weight.mul_(self.masks[name])
        if self.granularity is CHANNEL:
            for key, keep in self._channel_extras():
                self.model.get_parameter(key).mul_(keep)

    def mask_gradients(self) -> None:
        """Zero the gradients of pruned weights, so momentum never builds up on them."""
        for name, module in self.layers.items():
            if module.weight.grad is not None:
                module.weight.grad.mul_(self.masks[name])
        if self.granularity is CHANNEL:
            for key, keep in self._channel_extras():
                grad = self.model.get_parameter(key).grad
                if grad is not None:
                    grad.mul_(keep)

    def rescore(self) -> Pruner:
        """Adopt the model's current weights (e.g. after fine-tuning) as the dense ones and score them again.

        Weights pruned now stay at their earlier dense values in the copy, and score as the zeros they are in
        the model, so an iterative schedule keeps them pruned.
        """
        with torch.no_grad():
            for key, dense in self._dense.items():
                current = self.model.get_parameter(key).detach()
                name = key.rsplit(".", 1)[0]
                if key.endswith(".weight") and name in self.masks:
                    dense.copy_(torch.where(self.masks[name], current, dense))
                else:
                    dense.copy_(current)
        self._score()
        return self

    # -- reading -----------------------------------------------------------------------------------
    def sparsity(self) -> float:
        """Fraction of pruned weights over all layers in scope."""
        total = sum(m.numel() for m in self.masks.values())
        kept = sum(int(m.sum()) for m in self.masks.values())
        return 1.0 - kept / total

    def layer_sparsity(self) -> dict[str, float]:
        """Fraction of pruned weights, per layer in scope."""
        return {name: 1.0 - float(m.float().mean()) for name, m in self.masks.items()}

    def group_masks(self) -> dict[str, torch.Tensor]:
        """The current masks per group (e.g. one bool per channel), shaped like ``scores``."""
        return {name: _reduce_any(m, self.granularity) for name, m in self.masks.items()}

    def dense_weight(self, name: str) -> torch.Tensor:
        """The layer's dense weight as it was before pruning (a view: do not modify)."""
        return self._dense[f"{name}.weight"]

    # -- saving ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything to rebuild this pruner on the same model: tensors, strings and floats only,
        so ``torch.load(..., weights_only=True)`` reads it."""
        return {"criterion": self.criterion.name, "granularity": self.granularity.name, "scope": self.scope,
                "max_layer_sparsity": self.max_layer_sparsity,
                "layers": list(self.layers), "ratios": dict(self.ratios), "masks": dict(self.masks),
                "scores": dict(self.scores), "dense": dict(self._dense)}

    @classmethod
    def from_state_dict(cls, model: nn.Module, state: dict) -> Pruner:
        """A pruner with the saved dense weights, scores and masks, written into ``model``. No data needed."""
        self = cls.__new__(cls)
        self.granularity = get_granularity(state["granularity"])
        self.criterion = get_criterion(state["criterion"])
        self.scope, self.model, self.data = state["scope"], model, None
        self.max_layer_sparsity = state.get("max_layer_sparsity")
        self.graph = build_graph(model)
        self.skipped = {}
        missing = [n for n in state["layers"] if n not in self.graph.layers]
        if missing:
            raise ValueError(f"the saved pruner names layers this model does not have: {missing}")
        self._infos = {n: self.graph.layers[n] for n in state["layers"]}
        self.layers = {n: i.module for n, i in self._infos.items()}
        device = next(iter(self.layers.values())).weight.device
        self._dense = {k: v.to(device) for k, v in state["dense"].items()}
        written = {key for key, _ in self._written_tensors()}
        self._tracked = [key for key in self._dense if key not in written]
        self.masks = {k: v.to(device) for k, v in state["masks"].items()}
        self.ratios = dict(state["ratios"])
        self.scores = {k: v.to(device) for k, v in state["scores"].items()}
        sizes = {n: self.layers[n].weight.numel() // max(1, s.numel()) for n, s in self.scores.items()}
        self._selector = (GlobalSelector(self.scores, self.granularity, sizes, self.max_layer_sparsity)
                          if self.scope == "global" else LocalSelector(self.scores, self.granularity))
        self._write()
        return self

    def __repr__(self) -> str:
        return (f"Pruner(criterion={self.criterion.name!r}, granularity={self.granularity.name!r}, "
                f"scope={self.scope!r}, layers={len(self.layers)}, sparsity={self.sparsity():.3f})")


def _masked_into(target: torch.Tensor, dense: torch.Tensor, keep: torch.Tensor) -> None:
    """target = dense where kept, else 0, written straight into target: no temporary the size of the layer
    (the write is most of a re-prune's time on a large model)."""
    torch.where(keep, dense, torch.zeros((), dtype=dense.dtype, device=dense.device), out=target.data)


def _reduce_any(mask: torch.Tensor, granularity: Granularity) -> torch.Tensor:
    if granularity.group_dims is None:
        return mask
    dims = [d for d in range(mask.dim()) if d not in granularity.group_dims]
    return mask.amax(dim=dims) if dims else mask
