"""The lecture's claim at an equal budget, as notebook 08 measures it on digits-mlp: prune only < one-shot +
fine-tune ~ iterative prune + fine-tune < gradual pruning (AGP) at 95 %.

Global magnitude pruning (element-wise) to 90 %, 95 % and 97 % of the weights, fine-tuned with Adam (lr 1e-3,
batch 64, seed 0) on the digits training split, accuracy on the test split (360 images: one image is 0.28 %).
Every schedule that fine-tunes trains the same 69 steps in all (about four epochs): one-shot 69 steps after its
prune, iterative 3 geometric rounds (a fixed fraction of the survivors each) of 23 steps, AGP 10 prunes over 40
steps then 29 steps at the target (`pruneviz.schedules.lecture_schedules`, `schedule_sweep`).

Accuracies are deterministic (seeds fixed, one training thread; the same in every repeat); times are medians.
Run: python benchmarks/bench_finetune.py [--quick]
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import torch

import pruneviz
from pruneviz.schedules import schedule_sweep

THREADS = 1  # the machine is shared: one thread keeps timings steady (see shared notes)
SPARSITIES = (0.9, 0.95, 0.97)
BUDGET = 69  # training steps of every schedule that fine-tunes (23 per iterative round)
MODEL = "digits-mlp"  # notebook 08's model


def _row(case: str, measure: str, value: float, unit: str) -> dict:
    return {"benchmark": "finetune", "case": case, "measure": measure, "value": round(value, 3), "unit": unit}


def bench(repeats: int) -> list[dict]:
    splits = pruneviz.data.digits()
    model = pruneviz.zoo.load(MODEL, device="cpu")
    runs, times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        runs.append(schedule_sweep(model, SPARSITIES, splits.train, splits.test, budget=BUDGET, optimizer="adam",
                                   progress=False))
        times.append(time.perf_counter() - start)
    if any(not run.accuracy.equals(runs[0].accuracy) for run in runs):
        raise RuntimeError("accuracy changed between repeats: the sweep is not deterministic")
    rows = []
    for record in runs[0].itertuples():
        case = f"{record.target:.0%} {record.schedule}"
        rows += [_row(case, "accuracy", 100 * record.accuracy, "%"),
                 _row(case, "training steps", record.steps, "steps")]
    return rows + [_row(f"{MODEL}, {len(runs[0])} runs", "run time", statistics.median(times), "s")]


def run(quick: bool = False) -> list[dict]:
    """Rows {benchmark, case, measure, value, unit}. quick: one repeat instead of three."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return bench(repeats=1 if quick else 3)
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"# fine-tuning benchmark: {MODEL}, {BUDGET} steps per schedule, torch {torch.__version__}, {THREADS} "
          f"thread, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    rows = run(quick)
    print(f"{'case':<28} {'accuracy':>9} {'steps':>6}")
    for case in dict.fromkeys(r["case"] for r in rows if r["measure"] == "accuracy"):
        got = {r["measure"]: r["value"] for r in rows if r["case"] == case}
        print(f"{case:<28} {got['accuracy']:>8.1f}% {got['training steps']:>6.0f}")
    timing = next(r for r in rows if r["measure"] == "run time")
    print(f"run time ({timing['case']}): {timing['value']:.2f} s")


if __name__ == "__main__":
    main()
