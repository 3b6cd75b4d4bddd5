"""Zeros in a dense tensor vs channels removed: what a CPU does with each, measured in one run.

The lecture lab's VGG (see bench_surgery) on 32x32 inputs, one torch thread, batch 1 and 64:
- dense;
- masked: fine-grained (element) 50 % and 90 %, 2:4 (N:M), and channel 50 % as zeros -- the weights keep their
  shape, so a dense kernel still multiplies every zero;
- compacted: the same channel 50 % masks made physical by :func:`pruneviz.compact` (smaller tensors).
For each: MACs a dense kernel executes, MACs a sparse kernel could skip to ("sparse MACs"), and latency
(median over rounds that visit the models forwards and backwards in turn). The claim it checks: only removing structure (channels, blocks) speeds a CPU up.

Run: python benchmarks/bench_masked.py [--quick]
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import pruneviz  # noqa: E402
from bench_surgery import LabVGG, cpu_name  # noqa: E402

CASES = (("element 50%", "element", 0.5), ("element 90%", "element", 0.9), ("2:4", "2:4", 0.5),
         ("channel 50% (zeros)", "channel", 0.5))


def models() -> tuple[dict[str, torch.nn.Module], torch.Tensor]:
    """{case: model} with the masked variants as independent copies, and an example input of one image."""
    torch.manual_seed(0)
    dense = LabVGG().eval()
    out = {"dense": dense}
    for case, granularity, ratio in CASES:
        model = LabVGG().eval()
        model.load_state_dict(dense.state_dict())
        layers = pruneviz.channel_prunable_layers(model) if granularity == "channel" else None
        pruneviz.Pruner(model, "magnitude", granularity, layers=layers).prune(ratio)
        out[case] = model
    channel = pruneviz.Pruner(dense, "magnitude", "channel", layers=pruneviz.channel_prunable_layers(dense))
    out["channel 50% (compacted)"] = pruneviz.compact(dense, channel.prune(0.5).masks)
    channel.restore()
    return out, torch.rand(1, 3, 32, 32)


def alternating_latency(nets: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int, runs: int
                        ) -> dict[str, float]:
    """Median ms per forward of each model over rounds that visit the models forwards, then backwards: a drift
    in the machine's load (other processes) then favours no model by its place in the order."""
    times: dict[str, list[float]] = {name: [] for name in nets}
    names = list(nets)
    for i in range(rounds):
        for name in (names if i % 2 == 0 else names[::-1]):
            times[name].append(pruneviz.latency(nets[name], x, warmup=1, runs=runs))
    return {name: statistics.median(t) for name, t in times.items()}


def run(quick: bool = False) -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared machine: more threads would measure the neighbours
    rows = []
    try:
        nets, example = models()
        for case, net in nets.items():
            rows.append(_row(case, "macs", pruneviz.macs(net, example), "MAC"))
            rows.append(_row(case, "sparse macs", pruneviz.macs(net, example, sparse=True), "MAC"))
        for batch in (1, 64):
            x = example.expand(batch, -1, -1, -1).contiguous()
            rounds, runs = (1, 1) if quick else ((10, 10) if batch == 1 else (6, 2))
            lat = alternating_latency(nets, x, rounds=rounds, runs=runs)
            for case in nets:
                rows.append(_row(f"{case}/batch{batch}", "latency", lat[case], "ms"))
                if case != "dense":
                    rows.append(_row(f"{case}/batch{batch}", "speedup", lat["dense"] / lat[case], "x"))
    finally:
        torch.set_num_threads(threads)
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
