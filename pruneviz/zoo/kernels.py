"""Which CPU kernels made a set of weights, and how far two sets of weights are apart.

PyTorch picks vector kernels by CPU (ATen: AVX2, AVX-512, NEON...; oneDNN and MKL pick their own), and float
sums in another order drift over thousands of training steps into other weights. So a model is reproducible bit
for bit only under the kernels it was made with. Those are forced by environment variables read when torch
starts: ``ATEN_CPU_CAPABILITY`` (ATen's kernels), ``DNNL_MAX_CPU_ISA`` (oneDNN's, convolutions) and
``MKL_ENABLE_INSTRUCTIONS`` (MKL's, matrix products). The zoo records them per model in weights/provenance.json.
"""
from __future__ import annotations

import os
import platform

import torch

KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
NATIVE = "native"  # a library left to pick by CPU: not reproducible elsewhere


def current_kernels() -> dict[str, str]:
    """The kernel set of this process: ATen's capability as torch reports it (the variable is only a request,
    which a CPU without those instructions cannot honour), the other two as set (``native`` if unset)."""
    kernels = {"ATEN_CPU_CAPABILITY": torch.backends.cpu.get_cpu_capability().lower()}
    for variable in KERNEL_VARIABLES[1:]:
        kernels[variable] = os.environ.get(variable) or NATIVE
    return kernels


def run_record() -> dict:
    """What provenance.json keeps of a training run: kernels, torch version, machine, threads."""
    return {"kernels": current_kernels(), "torch": torch.__version__, "machine": platform.machine(), "threads": 1}


def pinned(kernels: dict[str, str]) -> bool:
    """Does the kernel set name every library's kernels (so that another CPU can be told to run them)?"""
    return all(kernels.get(v, NATIVE) != NATIVE for v in KERNEL_VARIABLES)


def as_command(kernels: dict[str, str]) -> str:
    """The kernels as the environment assignments of a shell command."""
    return " ".join(f"{v}={kernels[v]}" for v in KERNEL_VARIABLES if v in kernels)


def weight_difference(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> tuple[float, str]:
    """The largest absolute difference between two state dicts of one architecture, and the tensor it is in
    (0.0 and '' when they are equal bit for bit)."""
    if state.keys() != reference.keys():
        raise ValueError(f"the state dicts hold different tensors: {sorted(set(state) ^ set(reference))}")
    worst, where = 0.0, ""
    for key, ref in reference.items():
        if torch.equal(state[key], ref):
            continue
        diff = float((state[key].double() - ref.double()).abs().max()) if ref.is_floating_point() else \
            float((state[key] != ref).sum())
        if not where or not diff <= worst:  # the first difference, a larger one, or NaN
            worst, where = diff, key
    return worst, where
