"""What pruning changed: zeros, parameters, bytes, MACs, and measured latency.

Zeros in a dense tensor make a model neither smaller on disk nor faster on a CPU: ``size_bytes(sparse=True)``
and ``macs(sparse=True)`` say what a sparse format or sparse hardware could save; ``latency`` says what a
dense kernel really does.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .device import input_cast, model_device, synchronize
from .errors import check_count, check_model, check_weights
from .graph import prunable_layers
from .snapshot import as_found


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exact zeros in the weight of each Linear and Conv layer."""
    check_model(model, parameters=False)
    check_weights(model, "counting zeros")
    return {name: float((m.weight == 0).float().mean()) for name, m in prunable_layers(model).items()}


def sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros over the weights of all Linear and Conv layers."""
    check_model(model, parameters=False)
    check_weights(model, "counting zeros")
    layers = prunable_layers(model).values()
    total = sum(m.weight.numel() for m in layers)
    zeros = sum(int((m.weight == 0).sum()) for m in layers)
    return zeros / total if total else 0.0


def count_parameters(model: nn.Module, nonzero: bool = False) -> int:
    """All parameters, or only the nonzero ones."""
    check_model(model, parameters=False)
    if nonzero:
        check_weights(model, "counting nonzero parameters")
    if nonzero:
        return sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return sum(p.numel() for p in model.parameters())


def size_bytes(model: nn.Module, sparse: bool = False) -> int:
    """Bytes of the parameters; ``sparse=True`` counts only nonzero values (as the lecture's lab does,
    leaving out the index overhead a real sparse format adds)."""
    check_model(model, parameters=False)
    if sparse:
        check_weights(model, "counting nonzero bytes")
    return sum((int(torch.count_nonzero(p)) if sparse else p.numel()) * p.element_size()
               for p in model.parameters())


def _example_input(example: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """``example`` on the model's device, as the kit hands it inputs (:func:`pruneviz.device.input_cast`);
    a model to measure and one input tensor, or a clear error."""
    check_model(model)
    if not isinstance(example, torch.Tensor):
        hint = " (convert it with torch.as_tensor(array))" if hasattr(example, "__array__") else ""
        raise TypeError(f"example must be one input tensor of the model (e.g. a batch x[:1]), got "
                        f"{type(example).__name__}{hint}")
    return input_cast(model)(example.to(model_device(model)))


@contextmanager
def _unfused_attention() -> Iterator[None]:
    """nn.MultiheadAttention and nn.TransformerEncoderLayer run a fused kernel in eval mode without gradients
    (their "fast path"), which torch.utils.flop_counter does not see (a transformer block counted 160 of its
    2,208 MACs); the unfused path computes the same thing with ops it counts."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    enabled = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(enabled)


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of scaled-dot-product attention, q k^T then the weights times v (as flop_counter counts them for
    the CUDA kernels; its registry has no formula for the CPU kernel, so attention counted 0 there)."""
    *batch, s_q, d_q = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    heads = math.prod(batch)
    return 2 * heads * s_q * s_k * d_q + 2 * heads * s_q * s_k * d_v


_UNCOUNTED = {op: _attention_flops for op in (getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu",
                                                      None),) if op is not None}


@torch.no_grad()
def _flop_counts(model: nn.Module, example: torch.Tensor) -> dict[str, dict]:
    """torch.utils.flop_counter's FLOPs of one eval-mode forward of ``example``, per module path and "Global"."""
    x = _example_input(example, model)
    counter = FlopCounterMode(display=False, custom_mapping=_UNCOUNTED)
    with as_found(model, writes=False), _unfused_attention(), counter:  # every module's mode put back
        model.eval()
        model(x)
    return counter.get_flop_counts()


def _macs_of(counts: dict) -> int:
    return int(sum(counts.values())) // 2  # a multiply-accumulate is two FLOPs


def layer_macs(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Dense multiply-accumulates of each Linear and Conv layer (the layers a Pruner prunes) for one forward
    pass of ``example``, summed over every call of the layer.

    Counted by torch.utils.flop_counter (FLOPs / 2) rather than by formulas of our own. What the rest of the
    model costs (a ConvTranspose, an ``x @ W`` written in ``forward``, attention) is ``macs(...)`` minus the sum.
    """
    return _per_layer(model, _flop_counts(model, example))


def _per_layer(model: nn.Module, counts: dict[str, dict]) -> dict[str, int]:
    root = type(model).__name__
    return {name: _macs_of(counts.get(f"{root}.{name}", {})) for name in prunable_layers(model)}


def macs(model: nn.Module, example: torch.Tensor, sparse: bool = False) -> int:
    """Multiply-accumulates of one forward pass: everything torch.utils.flop_counter counts (every matmul,
    linear, convolution and transposed convolution, whether a module or an op in ``forward``), FLOPs / 2.

    ``sparse=True`` scales each Linear and Conv layer's MACs by its weight density, the MACs a sparse kernel
    could skip (dense hardware still does them all); MACs outside those layers count in full.
    """
    return _macs(model, _flop_counts(model, example), sparse)


def _macs(model: nn.Module, counts: dict[str, dict], sparse: bool) -> int:
    total = _macs_of(counts.get("Global", {}))
    if not sparse:
        return total
    density = {name: 1.0 - s for name, s in layer_sparsity(model).items()}
    return sparse_macs(total, _per_layer(model, counts), density)


def mac_counts(model: nn.Module, example: torch.Tensor) -> tuple[int, dict[str, int]]:
    """``macs(model, example)`` and ``layer_macs(model, example)`` from one count: what a widget counts once
    and scales by the densities on every move (:func:`sparse_macs`), so its figure is ``macs(sparse=True)``'s."""
    counts = _flop_counts(model, example)
    return _macs_of(counts.get("Global", {})), _per_layer(model, counts)


def sparse_macs(total: int, per_layer: dict[str, int], density: dict[str, float]) -> int:
    """The MACs a sparse kernel could do: each pruned layer's scaled by its density, the rest in full."""
    return total - sum(per_layer.values()) + round(sum(m * density.get(name, 1.0) for name, m in per_layer.items()))


@torch.no_grad()
def latency(model: nn.Module, example: torch.Tensor, warmup: int = 10, runs: int = 50) -> float:
    """Median milliseconds of one forward pass on ``example`` after ``warmup`` untimed runs."""
    check_count(warmup, "warmup")
    check_count(runs, "runs", minimum=1)
    x = _example_input(example, model)  # checked before the mode changes
    device = model_device(model)
    times = []
    with as_found(model, writes=False):  # every module's mode put back
        model.eval()
        for i in range(warmup + runs):
            synchronize(device)
            start = time.perf_counter()
            model(x)
            synchronize(device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def summary(model: nn.Module, example: torch.Tensor) -> dict[str, float]:
    """One dict of the numbers a readout shows: sparsity, parameters, bytes, MACs (one counted forward)."""
    counts = _flop_counts(model, example)
    return {"sparsity": sparsity(model), "parameters": count_parameters(model),
            "nonzero_parameters": count_parameters(model, nonzero=True),
            "dense_bytes": size_bytes(model), "sparse_bytes": size_bytes(model, sparse=True),
            "macs": _macs(model, counts, False), "sparse_macs": _macs(model, counts, True)}
