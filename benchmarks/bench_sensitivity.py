"""Sensitivity scan time: cached (only the part after the pruned layer runs) vs naive (full forwards), one run.

Element-wise magnitude scan of every layer at 9 ratios on the digits validation split (360 images: a scan chooses
ratios, so it never sees test), for digits-cnn and digits-resnet. Both scans give identical accuracies (checked
here too). Alongside the measured speed-up, the bound that multiply-accumulates allow: caching can skip only
what lies upstream of the pruned layer, so bound = L K M / sum_l (M_up,l + K M_down,l) with M the model's MACs,
K ratios, L layers.

Medians of interleaved repeats after a warm-up. Run: python benchmarks/bench_sensitivity.py [--quick]
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import torch

import pruneviz
from pruneviz.sensitivity import DEFAULT_SPARSITIES, _changed_modules, _Downstream, _trace

THREADS = 1  # the machine is shared: one thread keeps timings steady (see shared notes)
MODELS = ("digits-cnn", "digits-resnet")


def _row(case: str, measure: str, value: float, unit: str) -> dict:
    return {"benchmark": "sensitivity", "case": case, "measure": measure, "value": round(value, 3), "unit": unit}


def mac_bound(model: torch.nn.Module, example: torch.Tensor, ratios: int = len(DEFAULT_SPARSITIES)) -> float:
    """The speed-up caching could give if time were proportional to MACs."""
    macs = pruneviz.layer_macs(model, example)
    total = sum(macs.values())
    pruner = pruneviz.Pruner(model)
    traced = _trace(model)
    cost = 0.0
    for layer in pruner.layers:
        split = _Downstream(traced, _changed_modules(pruner, layer))
        downstream = sum(macs.get(n.target, 0) for n in split.run_module.graph.nodes if n.op == "call_module")
        cost += (total - downstream) + ratios * downstream
    return len(pruner.layers) * ratios * total / cost


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name: str, repeats: int) -> list[dict]:
    val = pruneviz.data.digits().val  # a scan chooses ratios: it runs on the validation split
    model = pruneviz.zoo.load(name, device="cpu")
    scans = {}

    def scan(cached: bool):
        scans[cached] = pruneviz.sensitivity_scan(model, val, progress=False, cached=cached)

    scan(True), scan(False)  # warm-up
    times = {True: [], False: []}
    for _ in range(repeats):
        for cached in (True, False):
            times[cached].append(_time(lambda: scan(cached)))
    cached_s, naive_s = statistics.median(times[True]), statistics.median(times[False])
    same = scans[True].equals(scans[False])
    return [_row(name, "scan time, cached", cached_s, "s"), _row(name, "scan time, naive", naive_s, "s"),
            _row(name, "speed-up, cached vs naive", naive_s / cached_s, "x"),
            _row(name, "speed-up bound from MACs", mac_bound(model, val.tensors[0][:1]), "x"),
            _row(name, "identical accuracies (1 = yes)", float(same), "")]


def run(quick: bool = False) -> list[dict]:
    """Rows {benchmark, case, measure, value, unit}. quick: fewer repeats, for a smoke run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return [row for name in MODELS for row in bench(name, repeats=2 if quick else 7)]
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"# sensitivity scan benchmark: torch {torch.__version__}, {THREADS} thread, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), {len(DEFAULT_SPARSITIES)} ratios per layer")
    for r in run(quick):
        print(f"{r['case']:<14} {r['measure']:<34} {r['value']:>9.3f} {r['unit']}")


if __name__ == "__main__":
    main()
