"""The user's model as they left it: one snapshot that every analysis and every rollback puts back.

An analysis (a scan, a sweep, a timing, a Hessian) runs on the model as the user holds it, pruned or not, and
afterwards leaves it as it found it, bit for bit: parameter and buffer values, gradients, every module's
train/eval flag, the kit's shared dense copies (:mod:`pruneviz.dense`) and stamps, so the user's Pruners on the
model neither refuse their next call nor restore the wrong weights. Functions that build their own Pruners do so
inside :func:`as_found`: there the model's current weights are the dense ones (a scan of a pruned model scans the
pruned model), and nothing they adopt, rescore or write outlives the block.

One mechanism for every function, so a new analysis cannot forget one part of the state (the train/eval flag of
a nested BatchNorm, the dense copy, a Pruner's masks).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from . import dense as registry
from .errors import AlreadySparseWarning

PRUNER_STATE = ("masks", "ratios", "scores", "guarded", "_selector")


@dataclass
class _RecordState:
    """A dense record's fields, to put back into the same record object (the user's Pruners hold it)."""

    record: registry.DenseRecord
    values: dict
    dense: torch.Tensor
    held: bool  # the parameter held the kit's last write: stamp it again once its values are back


@dataclass
class Snapshot:
    """Everything of ``model`` (and of ``pruners`` on it) an analysis or a failed call could change."""

    model: nn.Module
    tensors: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    grads: list[tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=list)
    modes: list[tuple[nn.Module, bool]] = field(default_factory=list)
    records: list[tuple[torch.Tensor, _RecordState | None]] = field(default_factory=list)
    pruners: list[tuple[object, dict]] = field(default_factory=list)
    marks: list[tuple[torch.Tensor, object]] = field(default_factory=list)  # the kit's pruned mark per parameter

    @classmethod
    def of(cls, model: nn.Module, pruners: Iterable[object] = (), *, values: bool = True) -> Snapshot:
        """``values=False``: only modes, gradients and records (a read-only pass under no_grad in eval mode
        changes no value and no dense copy; cloning a large model's weights for every MAC count would cost more
        than the count)."""
        snap = cls(model)
        params = list(model.parameters())
        if values:
            snap.tensors = [(t, t.detach().clone()) for t in [*params, *model.buffers()]]
        snap.grads = [(p, p.grad) for p in params]
        snap.modes = [(m, m.training) for m in model.modules()]
        snap.records = [(p, _record_state(p)) for p in params] if values else []
        snap.marks = [(p, getattr(p, registry.PRUNED_MARK, None)) for p in params] if values else []
        for pruner in pruners:
            state = {name: _copied(getattr(pruner, name)) for name in PRUNER_STATE if hasattr(pruner, name)}
            state["_entries"] = {key: (e, e.record, e.generation, e.rewritten)
                                 for key, e in getattr(pruner, "_entries", {}).items()}
            snap.pruners.append((pruner, state))
            for entry in getattr(pruner, "_entries", {}).values():  # a tracked parameter of a submodule
                if all(entry.param is not p for p, _ in snap.records):
                    snap.records.append((entry.param, _record_state(entry.param)))
        return snap

    @torch.no_grad()
    def put_back(self) -> None:
        """The model, its dense records and the Pruners exactly as they were when the snapshot was taken."""
        for tensor, value in self.tensors:
            if tensor.shape == value.shape and tensor.dtype == value.dtype and tensor.device == value.device:
                tensor.copy_(value)
            else:  # converted inside the block (e.g. .double()): give it its old storage back
                tensor.data = value
        for param, grad in self.grads:
            param.grad = grad
        for module, mode in self.modes:
            module.training = mode
        for param, state in self.records:
            if state is None:
                registry.forget(param)
                continue
            for name, value in state.values.items():
                setattr(state.record, name, value)
            state.record.dense = state.dense
            registry.reinstate(param, state.record)
            if state.held:
                registry.stamp(param, state.record, is_dense=state.values["is_dense"], tuned=state.values["tuned"])
        for param, mark in self.marks:
            if mark is None:
                param.__dict__.pop(registry.PRUNED_MARK, None)
            else:
                setattr(param, registry.PRUNED_MARK, mark)
        for pruner, state in self.pruners:
            for name, value in state.items():
                if name == "_entries":
                    entries = {}
                    for key, (entry, record, generation, rewritten) in value.items():
                        entry.record, entry.generation, entry.rewritten = record, generation, rewritten
                        entries[key] = entry
                    value = entries
                setattr(pruner, name, value)

    def detach_records(self) -> None:
        """From here on the model's current values are its dense weights: the records the user's Pruners hold
        leave the registry until :meth:`put_back`, so a Pruner built now adopts what the model holds (it prunes
        the model as the user holds it) and nothing it adopts, rescores or writes reaches those records."""
        for param, state in self.records:
            if state is not None:
                registry.forget(param)


def _record_state(param: torch.Tensor) -> _RecordState | None:
    record = registry.record_in_registry(param)
    if record is None:
        return None
    values = {f.name: getattr(record, f.name) for f in fields(record) if f.name not in ("dense", "index")}
    return _RecordState(record, values, record.dense.clone(), registry.record_of(param) is record)


def _copied(value: object) -> object:
    """A copy deep enough that later writes to the Pruner's dicts or tensors do not reach it."""
    if isinstance(value, dict):
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in value.items()}
    return value  # the selector is replaced, never edited in place


@contextmanager
def as_found(model: nn.Module, *, writes: bool = True) -> Iterator[Snapshot]:
    """Run an analysis on ``model`` as the user holds it; afterwards it is as it was, bit for bit, however
    the block ends (an error, Ctrl-C): weights, buffers, gradients, every module's mode, the dense copies and
    stamps the user's Pruners rely on.

    ``writes=False`` for a pass that only reads the model (in eval mode, without gradients): its modes are
    put back, its values are not copied. Within the block a Pruner takes the model's current weights as dense
    without the already-sparse warning: analysing the model as held is the point.
    """
    snap = Snapshot.of(model, values=writes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlreadySparseWarning)
            if writes:
                snap.detach_records()
            yield snap
    finally:
        snap.put_back()


@contextmanager
def rolled_back(model: nn.Module, pruners: Iterable[object] = ()) -> Iterator[Snapshot]:
    """On any exception inside the block (KeyboardInterrupt included), put ``model`` and ``pruners`` back as
    they were, then re-raise; on success keep what the block did."""
    snap = Snapshot.of(model, pruners)
    try:
        yield snap
    except BaseException as err:
        snap.put_back()
        if hasattr(err, "add_note"):
            err.add_note("pruneviz: the model was put back as it was before the call (weights, buffers such as "
                         "BatchNorm statistics, train/eval mode, the Pruner's masks and dense copies)")
        raise


ANALYSES: list[Callable] = []  # every public function that promises to leave the model as it found it


def analysis(fn: Callable) -> Callable:
    """Decorate a public function whose first argument is the model: it runs inside :func:`as_found`.

    Listed in ``ANALYSES``, which the test of Promise 10 checks against its own list of calls."""
    @functools.wraps(fn)
    def wrapper(model, *args, **kwargs):
        with as_found(model):
            return fn(model, *args, **kwargs)

    ANALYSES.append(wrapper)
    return wrapper
