"""Zeros in a dense tensor vs channels removed: what a CPU does with each, measured in one run.

The lecture lab's VGG (see bench_surgery) on 32x32 inputs, one torch thread, batch 1 and 64:
- dense;
- masked: fine-grained (element) 50 % and 90 %, 2:4 (N:M), and channel 50 % as zeros -- the weights keep their
  shape, so a dense kernel still multiplies every zero;
- compacted: the same channel 50 % masks made physical by :func:`pruneviz.compact` (smaller tensors).
For each: MACs a dense kernel executes, MACs a sparse kernel could skip to ("sparse MACs"), and latency from
:func:`pruneviz.timing.latency_table` (the models timed in turns, one thread; the speed-up is the median of
per-round ratios, printed with its spread). The claim it checks: only removing structure (channels, blocks)
speeds a CPU up. Notebook 09 shows the same table on digits-cnn.

Run: python benchmarks/bench_masked.py [--quick]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import pruneviz  # noqa: E402
from bench_surgery import LabVGG, cpu_name  # noqa: E402
from pruneviz.timing import latency_table, masked_and_compacted, verdict  # noqa: E402

def models() -> tuple[dict[str, torch.nn.Module], torch.Tensor]:
    """{case: model}: the lab VGG dense, with zeros (:data:`pruneviz.timing.MASKED_CASES`), and channel-compacted;
    and an example input of one image."""
    torch.manual_seed(0)
    return masked_and_compacted(LabVGG().eval()), torch.rand(1, 3, 32, 32)


def run(quick: bool = False) -> list[dict]:
    nets, example = models()
    speed = latency_table(nets, example, batches=(1, 64), rounds=1 if quick else 7,
                          runs={1: 1 if quick else 10, 64: 1 if quick else 2})
    rows = []
    for case, net in nets.items():
        rows.append(_row(case, "macs", pruneviz.macs(net, example), "MAC"))
        rows.append(_row(case, "sparse macs", pruneviz.macs(net, example, sparse=True), "MAC"))
    for r in speed.itertuples():
        rows.append(_row(f"{r.model}/batch{r.batch}", "latency", r.latency_ms, "ms"))
        if r.model != "dense":
            rows.append(_row(f"{r.model}/batch{r.batch}", "speedup", r.speedup, "x"))
            rows.append(_row(f"{r.model}/batch{r.batch}", "speedup spread", r.spread, "ratio"))
    print(verdict(speed))
    return rows


def _row(case: str, measure: str, value: float, unit: str) -> dict:
    return {"benchmark": "masked", "case": f"vgg/{case}", "measure": measure, "value": float(value), "unit": unit}


def main() -> None:
    print(f"# zeros vs removed channels: {cpu_name()}, torch {torch.__version__}, 1 thread")
    rows = run("--quick" in sys.argv)
    width = max(len(r["case"]) for r in rows)
    for r in rows:
        value = f"{r['value']:,.0f}" if r["unit"] == "MAC" else f"{r['value']:.3f}"
        print(f"{r['case']:<{width}}  {r['measure']:<12} {value:>14}  {r['unit']}")


if __name__ == "__main__":
    main()
