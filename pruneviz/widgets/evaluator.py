"""Accuracy on a fixed data set, one bounded batch at a time, re-running only what a prune changed.

The data are cut into batches once (:func:`batch_size_for` bounds the work, so the memory and the time of one
batch); :meth:`CachedEvaluator.predict_batch` classifies one of them, so a caller can stop between batches (a
newer slider move) and come back later. Pruning a layer leaves every activation before it as it was: for an
``nn.Sequential`` model the evaluator keeps, per batch, the input of each stage that holds parameters (from the
first move that leaves the first stage alone), finds the first stage whose tensors changed since that batch last ran, and
runs from there. Other models run a full
forward pass (the inputs still stay on the device).
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import Data, as_tensors, check_class_targets
from ..device import input_cast, model_device

EVALUATE_BATCH = 1024  # pruneviz.evaluate's batch: a model cheap enough gets exactly its batches
MACS_PER_BATCH = 4e9  # about 0.1-0.3 s of one CPU core: the longest a newer move waits for the batch in flight
MIN_BATCH = 16


def batch_size_for(macs_per_example: int) -> int:
    """The evaluation batch: ``pruneviz.evaluate``'s 1,024 examples when that is cheap (every zoo model), else as
    many as :data:`MACS_PER_BATCH` multiply-accumulates allow (a power of two, at least 16), so one batch is a
    bounded piece of work and memory whatever the model. Set by the model's size, never by a timing, so the
    batches (and so every logit) are the same on every machine."""
    fit = int(MACS_PER_BATCH // max(1, macs_per_example))
    if fit >= EVALUATE_BATCH:
        return EVALUATE_BATCH
    return max(MIN_BATCH, 1 << max(0, fit.bit_length() - 1))


def _sequential_stages(model: nn.Module) -> list[nn.Module] | None:
    """The modules ``model.forward`` runs one after the other, or None when that is not known.

    ``nn.Sequential.forward`` runs every entry of ``_modules`` in order, a module used twice twice;
    ``children()`` would name it once (it deduplicates), and the cached run would skip its second use. A subclass
    with its own ``forward`` may run its entries in any order: a full forward pass for it."""
    if not isinstance(model, nn.Sequential) or type(model).forward is not nn.Sequential.forward:
        return None
    return list(model._modules.values())


def tensor_signature(tensors) -> tuple:
    """Where each tensor lives and how often it was written in place (its version counter): equal signatures,
    same tensors. O(number of tensors), not of their size: the change test of every move. The kit writes
    weights in place under no_grad (version counted); a write through ``.data`` bypasses the counter, as it does
    autograd's, and the Pruner refuses such a model at its next prune (:class:`pruneviz.dense.Stamp`)."""
    return tuple((id(t), t.data_ptr(), t._version) for t in tensors)


class CachedEvaluator:
    """``accuracy()`` equals ``pruneviz.evaluate(model, data)`` bit for bit, at a fraction of the cost.

    Args:
        batch_size: examples per batch (default 1,024, ``evaluate``'s); :func:`batch_size_for` picks a bounded one.
        max_cache_bytes: activations kept at most; beyond it later stages are not cached (they recompute).
    """

    def __init__(self, model: nn.Module, data: Data, batch_size: int = EVALUATE_BATCH,
                 max_cache_bytes: int = 256 * 2**20):
        self.model = model
        x, y = as_tensors(data)
        device = model_device(model)
        x, y = input_cast(model)(x.to(device)), y.to(device)
        self.batch_size = batch_size
        self.chunks = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        self.targets = y
        self.max_cache_bytes = max_cache_bytes
        self.stages: list[nn.Module] | None = _sequential_stages(model)
        self._inputs: list[dict[int, torch.Tensor]] = [{} for _ in self.chunks]  # per batch: stage -> valid input
        self._buffers: list[dict[int, torch.Tensor]] = [{} for _ in self.chunks]  # the memory they live in
        self._seen: list[list[tuple] | None] = [None for _ in self.chunks]  # per batch: stage signatures it ran
        self._cached_bytes = 0
        self._last: tuple[tuple, float] | None = None
        self._checked = False
        self.stages_run = 0  # stages executed by the last batch (for tests and the benchmark); -1: full forward

    def _stage_signatures(self) -> list[tuple]:
        return [tensor_signature([*s.parameters(), *s.buffers()]) for s in self.stages]

    def signature(self) -> tuple:
        """The model's tensors as they are now (see :func:`tensor_signature`)."""
        return tensor_signature([*self.model.parameters(), *self.model.buffers()])

    @torch.no_grad()
    def predict_batch(self, index: int) -> torch.Tensor:
        """The predicted classes of batch ``index`` by the model as it is now (eval mode, every module's mode
        put back after)."""
        x, y = self.chunks[index]
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        try:
            if self.stages is None:
                logits = self.model(x)
                self.stages_run = -1
            else:
                logits = self._run_batch(index, x)
        finally:
            for module, mode in modes:
                module.training = mode
        if not self._checked:  # labels the model cannot output are an error, as in pruneviz.evaluate
            check_class_targets(self.targets, logits.shape[1])
            self._checked = True
        return logits.argmax(1)

    def accuracy_of(self, predictions: list[torch.Tensor]) -> float:
        """Top-1 accuracy from every batch's predictions: the float32 mean of ``pruneviz.evaluation.accuracy``,
        so the two agree exactly."""
        return float((torch.cat(predictions) == self.targets).float().mean())

    def accuracy(self) -> float:
        """Top-1 accuracy in [0, 1] of the model as it is now (every batch; nothing run if nothing changed)."""
        signature = self.signature()
        if self._last is not None and self._last[0] == signature:
            self.stages_run = 0
            return self._last[1]
        value = self.accuracy_of([self.predict_batch(i) for i in range(len(self.chunks))])
        self._last = (signature, value)
        return value

    def _run_batch(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Batch ``index`` from the last stage whose input is still valid. Inputs are kept only on a run that
        starts past the first stage (a move that left the early layers alone: the next one likely does too), and
        copied into buffers kept from run to run: keeping the activations themselves made every run's activations
        new memory, whose first touch cost more than the copy (the main slider ran 1.13x slower than evaluate;
        copying on every run, 1.07x)."""
        now = self._stage_signatures()
        seen, valid, buffers = self._seen[index], self._inputs[index], self._buffers[index]
        first = 0 if seen is None else next((i for i, (a, b) in enumerate(zip(now, seen)) if a != b), len(now))
        start = max((k for k in valid if k <= first), default=0)
        for k in [k for k in valid if k > start]:  # computed from tensors that changed: recomputed below
            del valid[k]
        keep = first > 0  # a move that changed the first stage (the main slider) copies nothing: plain speed
        h = valid.get(start, x)
        for i in range(start, len(self.stages)):
            if keep and i > start and now[i]:
                buffer = buffers.get(i)
                if buffer is None or buffer.shape != h.shape or buffer.dtype != h.dtype:
                    size = h.numel() * h.element_size()
                    if self._cached_bytes + size <= self.max_cache_bytes:
                        buffers[i] = buffer = h.clone()
                        self._cached_bytes += size
                    else:
                        buffer = None
                else:
                    buffer.copy_(h)
                if buffer is not None:
                    valid[i] = buffer
            h = self.stages[i](h)
        self.stages_run = len(self.stages) - start
        self._seen[index] = now
        return h
