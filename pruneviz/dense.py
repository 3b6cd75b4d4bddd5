"""One dense copy per parameter, shared by every Pruner and widget, and a stamp of the kit's last write.

A Pruner writes ``dense * mask`` into a parameter in place. Were each Pruner to keep its own dense copy, a second
Pruner built on a pruned model would take the pruned weights for dense ones, and restoring both would leave the
model sparse. Here the dense copy belongs to the parameter (a registry keyed weakly by the parameter object), so
every Pruner on the model finds the same one, a replaced layer (a new parameter object) has none, and a deep
copy of the model starts without one (see :func:`dense_copy`).

After every write the kit stamps the parameter: its storage, dtype, shape, version counter and a few sampled
values. A parameter whose stamp no longer matches was changed outside the kit (edited, trained, converted,
loaded): a Pruner then refuses to write its old copy over it. The stamp costs a few dozen reads, not a copy,
so the slider's re-prune stays as fast as it was. (A write through ``.data`` skips the version counter; the
sampled values catch most of those.)
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

SAMPLES = 64  # values read back per stamp


def _sample_index(n: int) -> torch.Tensor:
    if n == 0:  # a layer with no weights (nn.Linear(0, 4)): nothing to read back
        return torch.zeros(0, dtype=torch.int64)
    count = min(n, SAMPLES)
    # evenly spread, with an odd stride so rows and kernels of a layer are not hit at the same offset each time
    return (torch.arange(count, dtype=torch.int64) * max(1, (n // count) | 1) + n // 7) % max(1, n)


@dataclass(eq=False)
class Stamp:
    """What a parameter held right after the kit's last write."""

    ptr: int
    version: int
    dtype: torch.dtype
    device: torch.device
    shape: torch.Size
    sample: torch.Tensor

    @classmethod
    def of(cls, param: torch.Tensor, index: torch.Tensor) -> Stamp:
        return cls(param.data_ptr(), param._version, param.dtype, param.device, param.shape,
                   _take(param, index))  # take makes a new tensor: no clone needed

    def mismatch(self, param: torch.Tensor, index: torch.Tensor) -> str | None:
        """Why ``param`` no longer holds what the kit wrote, or None."""
        if param.dtype != self.dtype:
            return f"converted from {self.dtype} to {param.dtype}"
        if param.device != self.device:
            return f"moved from {self.device} to {param.device}"
        if param.shape != self.shape:
            return f"reshaped from {tuple(self.shape)} to {tuple(param.shape)}"
        if param.data_ptr() != self.ptr or param._version != self.version:
            return "changed outside the Pruner (edited, trained or loaded)"
        now = _take(param, index)
        if not torch.equal(now, self.sample) and not torch.equal(now.nan_to_num(0.5), self.sample.nan_to_num(0.5)):
            return "changed outside the Pruner (written through .data)"
        return None


def _take(param: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The sampled values (one small gather on a plain tensor: a Parameter's own ops are slower)."""
    values = param.detach()
    if index.device != values.device:
        index = index.to(values.device)
    return torch.take(values, index) if values.numel() else values.reshape(-1)


@dataclass(eq=False)
class DenseRecord:
    """The dense values of one parameter and the stamp of the kit's last write into it.

    ``generation`` grows whenever the dense values are replaced (a Pruner adopted edited weights, ``rescore()``),
    so a Pruner scored on older ones can tell. ``tuned``: the parameter holds weights trained since the last
    prune (fine-tuning moved them, ``apply_masks`` zeroed the pruned ones again). ``is_dense``: it holds
    ``dense`` exactly.
    """

    dense: torch.Tensor
    stamp: Stamp
    index: torch.Tensor
    generation: int = 0
    tuned: bool = False
    is_dense: bool = True
    superseded: bool = False  # another record holds this parameter's dense values now


_RECORDS: WeakIdKeyDictionary = WeakIdKeyDictionary()


def record_of(param: torch.Tensor) -> DenseRecord | None:
    """The parameter's record if it still holds what the kit last wrote into it (else None)."""
    record = _RECORDS.get(param)
    if record is None or record.stamp.mismatch(param, record.index) is not None:
        return None
    return record


def mismatch(param: torch.Tensor) -> str | None:
    """Why the parameter no longer holds the kit's last write (None: it does, or the kit never wrote it)."""
    record = _RECORDS.get(param)
    return None if record is None else record.stamp.mismatch(param, record.index)


def adopt(param: torch.Tensor, values: torch.Tensor | None = None) -> DenseRecord:
    """Make ``values`` (default: what the parameter holds now) its dense values: a new generation."""
    old = _RECORDS.get(param)
    if old is not None:
        old.superseded = True
    index = _sample_index(param.numel()).to(param.device)
    dense = (param if values is None else values).detach().clone()
    record = DenseRecord(dense, Stamp.of(param, index), index,
                         generation=0 if old is None else old.generation + 1,
                         is_dense=values is None or torch.equal(dense, param.detach()))
    _RECORDS[param] = record
    return record


def claim(param: torch.Tensor) -> DenseRecord:
    """The shared record: the existing one if the parameter still holds the kit's last write, else a new one
    adopting what it holds (the user changed it: those are its dense weights now)."""
    return record_of(param) or adopt(param)


PRUNED_MARK = "_pruneviz_pruned"  # an attribute of the parameter itself: travels with pickle and torch.save


def stamp(param: torch.Tensor, record: DenseRecord, *, is_dense: bool, tuned: bool = False) -> None:
    """Note a write the kit just made into ``param``."""
    record.stamp = Stamp.of(param, record.index)
    record.is_dense, record.tuned = is_dense, tuned
    setattr(param, PRUNED_MARK, not is_dense)


def pruned_elsewhere(param: torch.Tensor) -> bool:
    """Is ``param``, unknown to the registry, a copy of weights the kit pruned? It carries the kit's mark (a
    pickle or torch.save of a pruned model), or it equals a pruned parameter the kit holds now (a deep copy)."""
    if _RECORDS.get(param) is not None:
        return False
    if getattr(param, PRUNED_MARK, False):
        return bool((param.detach() == 0).any())  # a prune at ratio 0 marks a parameter it left whole
    for other, record in list(_RECORDS.items()):
        if (not record.is_dense and other.shape == param.shape and other.dtype == param.dtype
                and other.device == param.device and record.stamp.mismatch(other, record.index) is None
                and torch.equal(_take(param, record.index), record.stamp.sample)
                and torch.equal(other.detach(), param.detach())
                and not torch.equal(record.dense, param.detach())):  # pruned values, not the dense ones
            return True
    return False


def dense_value(param: torch.Tensor) -> torch.Tensor:
    """The parameter's dense values: the kit's copy if it pruned it, else what it holds."""
    record = record_of(param)
    return param.detach() if record is None else record.dense


def dense_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` holding its dense weights, however the kit has pruned ``model``."""
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for (_, param), (_, twin_param) in zip(model.named_parameters(), twin.named_parameters()):
            record = record_of(param)
            if record is not None and not record.is_dense:
                twin_param.copy_(record.dense)
    return twin


def holding(params) -> list[tuple[torch.Tensor, DenseRecord, bool, bool]]:
    """The parameters that hold the kit's last write now, with their flags: to :func:`restamp` after putting
    their values back (e.g. a training run rolled back)."""
    held = []
    for param in params:
        record = record_of(param)
        if record is not None:
            held.append((param, record, record.is_dense, record.tuned))
    return held


def restamp(held: list[tuple[torch.Tensor, DenseRecord, bool, bool]]) -> None:
    """Stamp again parameters whose values were put back to what :func:`holding` saw."""
    for param, record, is_dense, tuned in held:
        if _RECORDS.get(param) is record:
            stamp(param, record, is_dense=is_dense, tuned=tuned)


def register_copy(param: torch.Tensor, record: DenseRecord, twin: torch.Tensor, twin_record: DenseRecord) -> None:
    """Give a deep copy of ``param`` (holding the same values) the copied record, stamped if the original held the
    kit's last write (else the copy is as stale as the original)."""
    _RECORDS[twin] = twin_record
    if record_of(param) is record:
        stamp(twin, twin_record, is_dense=record.is_dense, tuned=record.tuned)


def record_in_registry(param: torch.Tensor) -> DenseRecord | None:
    """The parameter's record whether or not the parameter still holds the kit's last write."""
    return _RECORDS.get(param)


def forget(param: torch.Tensor) -> None:
    """Drop the parameter's record (a snapshot put back a parameter that had none)."""
    _RECORDS.pop(param, None)


def reinstate(param: torch.Tensor, record: DenseRecord) -> None:
    """Make ``record`` the parameter's record again (a snapshot put back; the Pruners holding it still do)."""
    _RECORDS[param] = record
