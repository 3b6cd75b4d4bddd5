"""Accuracy on a fixed data set, re-running only what a prune changed.

Pruning a layer leaves every activation before it as it was. For an ``nn.Sequential`` model the evaluator keeps
the input of each stage that holds parameters, notices the first stage whose parameters changed since the last
call, and runs the model from there. Other models run a full forward pass (the inputs still stay on the device).
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import Data, as_tensors
from ..device import input_cast, model_device
from ..evaluation import accuracy


def _sequential_stages(model: nn.Module) -> list[nn.Module] | None:
    """The modules ``model.forward`` runs one after the other, or None when that is not known.

    ``nn.Sequential.forward`` runs every entry of ``_modules`` in order, a module used twice twice;
    ``children()`` would name it once (it deduplicates), and the cached run would skip its second use. A subclass
    with its own ``forward`` may run its entries in any order: a full forward pass for it."""
    if not isinstance(model, nn.Sequential) or type(model).forward is not nn.Sequential.forward:
        return None
    return list(model._modules.values())


class CachedEvaluator:
    """``accuracy()`` equals ``pruneviz.evaluate(model, data)`` bit for bit, at a fraction of the cost.

    Args:
        max_cache_bytes: activations kept at most; beyond it later stages are not cached (they recompute).
    """

    def __init__(self, model: nn.Module, data: Data, batch_size: int = 1024, max_cache_bytes: int = 256 * 2**20):
        self.model = model
        x, y = as_tensors(data)
        device = model_device(model)
        x, y = input_cast(model)(x.to(device)), y.to(device)
        # the same batches as evaluate(), so every logit is computed exactly as it would be there
        self.chunks = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        self.max_cache_bytes = max_cache_bytes
        self.stages: list[nn.Module] | None = _sequential_stages(model)
        self._inputs: dict[int, list[torch.Tensor]] = {}
        self._seen: list[list[torch.Tensor]] = []
        self._last: float | None = None
        self.stages_run = 0  # stages executed by the last call (for tests and the benchmark)

    @staticmethod
    def _state(stage: nn.Module) -> list[torch.Tensor]:
        return [t.detach() for t in (*stage.parameters(), *stage.buffers())]

    def _first_changed(self) -> int:
        if not self._seen:
            return 0
        for i, (stage, seen) in enumerate(zip(self.stages, self._seen)):
            if any(not torch.equal(now, old) for now, old in zip(self._state(stage), seen)):
                return i
        return len(self.stages)

    @torch.no_grad()
    def accuracy(self) -> float:
        """Top-1 accuracy in [0, 1] of the model as it is now."""
        was_training = self.model.training
        self.model.eval()
        try:
            if self.stages is None:
                logits = [self.model(x) for x, _ in self.chunks]
                self.stages_run = -1
            else:
                first = self._first_changed()
                if first == len(self.stages) and self._last is not None:
                    self.stages_run = 0
                    return self._last
                logits = self._run_from(first)
        finally:
            self.model.train(was_training)
        targets = torch.cat([y for _, y in self.chunks])
        # the same reduction as evaluate(): a float32 mean, so the two agree exactly
        self._last = accuracy(torch.cat(logits), targets)
        return self._last

    def _run_from(self, first: int) -> list[torch.Tensor]:
        start = max((k for k in self._inputs if k <= first), default=0)
        if start == 0:
            self._inputs[0] = [x for x, _ in self.chunks]
        for k in [k for k in self._inputs if k > start]:
            del self._inputs[k]
        used = sum(t.numel() * t.element_size() for ts in self._inputs.values() for t in ts)
        hs = list(self._inputs[start])
        for i in range(start, len(self.stages)):
            stage = self.stages[i]
            if i > start and self._state(stage) and used < self.max_cache_bytes:
                self._inputs[i] = hs
                used += sum(h.numel() * h.element_size() for h in hs)
            hs = [stage(h) for h in hs]
        self.stages_run = len(self.stages) - start
        self._snapshot(first)
        return hs

    def _snapshot(self, first: int) -> None:
        if not self._seen:
            self._seen = [[t.clone() for t in self._state(s)] for s in self.stages]
            return
        for stage, seen in zip(self.stages[first:], self._seen[first:]):
            for old, now in zip(seen, self._state(stage)):
                old.copy_(now)
