"""The lecture's claim on digits-cnn: prune only < prune + fine-tune <= iterative prune + fine-tune (or AGP).

Global magnitude pruning (element-wise) to 90 % and 95 % of the weights, fine-tuned with Adam (lr 1e-3, batch 64,
seed 0) on the digits training split, accuracy on the test split (360 images). Every method that fine-tunes
gets 23 steps (1 epoch) after its last prune; iterative (3 rounds, 69 steps) and AGP (10 prunes over 40 steps,
63 in all) train about three times as long, so a one-shot run with 69 steps is listed too.

Accuracies are deterministic (seeds fixed; the same in every repeat); times are medians of repeats.
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
from pruneviz.schedules import OneShot, compare_schedules, lecture_schedules

THREADS = 1  # the machine is shared: one thread keeps timings steady (see shared notes)
SPARSITIES = (0.9, 0.95)
STEPS = 23  # one epoch of the digits training split at batch 64


def _row(case: str, measure: str, value: float, unit: str) -> dict:
    return {"benchmark": "finetune", "case": case, "measure": measure, "value": round(value, 3), "unit": unit}


def schedules(final: float) -> dict:
    out = lecture_schedules(final, STEPS)
    out["one-shot + fine-tune, same total steps"] = OneShot(final, 3 * STEPS)
    return out


def bench(repeats: int) -> list[dict]:
    train, test = pruneviz.data.digits().test
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    rows = []
    for final in SPARSITIES:
        for name, schedule in schedules(final).items():
            times, accuracies = [], set()
            for _ in range(repeats):
                start = time.perf_counter()
                table = compare_schedules(model, {name: schedule}, train, test, progress=False)
                times.append(time.perf_counter() - start)
                accuracies.add(float(table.accuracy.iloc[0]))
            if len(accuracies) != 1:
                raise RuntimeError(f"{name} at {final}: accuracy changed between repeats: {accuracies}")
            case = f"{final:.0%} {name}"
            rows += [_row(case, "accuracy", 100 * accuracies.pop(), "%"),
                     _row(case, "training steps", schedule.total_steps, "steps"),
                     _row(case, "run time", statistics.median(times), "s")]
    return rows


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
    print(f"# fine-tuning benchmark: digits-cnn, torch {torch.__version__}, {THREADS} thread, {os.cpu_count()} "
          f"CPUs ({platform.processor() or platform.machine()})")
    rows = run(quick)
    cases = list(dict.fromkeys(r["case"] for r in rows))
    print(f"{'case':<46} {'accuracy':>9} {'steps':>6} {'time':>8}")
    for case in cases:
        got = {r["measure"]: r["value"] for r in rows if r["case"] == case}
        print(f"{case:<46} {got['accuracy']:>8.1f}% {got['training steps']:>6.0f} {got['run time']:>7.2f}s")


if __name__ == "__main__":
    main()
