"""Depth pruning (remove residual blocks) vs width pruning (remove channels) of digits-resnet at the same MACs.

Depth: the two removable blocks the model misses least (accuracy drop when skipped, on the training data) go.
Width: the first conv of every block loses the same fraction of channels (L1 magnitude), the fraction chosen so
the compacted model's MACs come closest to the depth-pruned one's. Both are fine-tuned for a few epochs (Adam,
plain training: they are physically smaller models); accuracy on the digits test split before and after.
Latency: :func:`pruneviz.timing.latency_table` at batch 1 and 64 (one torch thread, warm-up first, the models
timed in turns, the speed-up the median of per-round ratios, with its spread).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pruneviz  # noqa: E402
from pruneviz.depth import depth_vs_width  # noqa: E402
from pruneviz.timing import latency_table, verdict  # noqa: E402

from bench_surgery import cpu_name, print_rows  # noqa: E402


def run(quick: bool = False) -> list[dict]:
    train, val, test = pruneviz.data.digits()
    model = pruneviz.zoo.load("digits-resnet", device="cpu")
    table, models = depth_vs_width(model, train, test, blocks=2, epochs=1 if quick else 3, calibration=val,
                                   measure_latency=False, return_models=True)
    speed = latency_table(models, train.tensors[0][:1], batches=(1, 64), rounds=2 if quick else 9,
                          runs={1: 3 if quick else 20, 64: 1 if quick else 4})
    rows = []
    for r in speed.itertuples():
        case = f"{r.model}/batch{r.batch}"
        rows.append(_row(case, "latency", r.latency_ms, "ms"))
        if r.model != "dense":
            rows.append(_row(case, "speedup", r.speedup, "x"))
            rows.append(_row(case, "speedup spread", r.spread, "ratio"))
    for r in table.itertuples():
        rows.append(_row(r.method, "parameters", r.parameters, "count"))
        rows.append(_row(r.method, "macs", r.macs, "MAC"))
        rows.append(_row(r.method, "accuracy", 100 * r.accuracy, "%"))
        rows.append(_row(r.method, "accuracy_finetuned", 100 * r.accuracy_finetuned, "%"))
    print("removed:", "; ".join(f"{r.method}: {r.removed}" for r in table.itertuples()))
    print(verdict(speed))
    return rows


def _row(case: str, measure: str, value: float, unit: str) -> dict:
    return {"benchmark": "depth_vs_width", "case": f"digits-resnet/{case}", "measure": measure,
            "value": float(value), "unit": unit}


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"depth vs width benchmark: torch {torch.__version__}, 1 thread, CPU: {cpu_name()}"
          + (" (quick)" if quick else ""))
    print_rows(run(quick))


if __name__ == "__main__":
    main()
