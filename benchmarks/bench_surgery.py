"""Dense vs channel-pruned (compacted) models: parameters, MACs and measured CPU latency.

Models: the zoo's digits-cnn (8x8 inputs) and the lecture lab's VGG (conv3x3-BN-ReLU
[64, 128, M, 256, 256, M, 512, 512, M, 512, 512, M], mean over space, Linear 512->10) on 32x32 inputs with
random weights (latency does not depend on the values). Every conv whose channels can go alone loses 30 % or 50 %
of its channels by L1 magnitude, then :func:`pruneviz.compact` removes them.

Latency: :func:`pruneviz.timing.latency_table`, one torch thread (the machine is shared; more threads measure the
neighbours), batch 1 and 64, the models timed in turns so a burst of load hits all alike; speedup = the median
over rounds of dense time / pruned time, printed with its spread; mac_reduction = dense MACs / pruned MACs; their
ratio says how much of the MAC saving the CPU turns into time.
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import pruneviz  # noqa: E402
from pruneviz.timing import latency_table, verdict  # noqa: E402
from pruneviz.zoo.models import LabVGG  # noqa: E402 - the lab's VGG, one definition (bench_masked imports it here)

RATIOS = (0.3, 0.5)
BATCHES = (1, 64)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _models(name: str) -> tuple[nn.Module, torch.Tensor]:
    if name == "digits-cnn":
        return pruneviz.zoo.load("digits-cnn", device="cpu"), torch.rand(1, 1, 8, 8)
    torch.manual_seed(0)
    return LabVGG().eval(), torch.rand(1, 3, 32, 32)


def run(quick: bool = False) -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for net in ("digits-cnn", "vgg"):
            dense, example = _models(net)
            pruner = pruneviz.Pruner(dense, "magnitude", "channel",
                                     layers=pruneviz.channel_prunable_layers(dense))
            models = {"dense": dense}
            for ratio in RATIOS:
                models[f"{ratio:.0%}"] = pruneviz.compact(dense, pruner.prune(ratio).masks)
            pruner.restore()
            for case, m in models.items():
                rows.append(_row(net, case, "parameters", pruneviz.count_parameters(m), "count"))
                rows.append(_row(net, case, "macs", pruneviz.macs(m, example), "MAC"))
            runs = {1: 2 if quick else 20, 64: 2 if quick else (2 if net == "vgg" else 10)}
            speed = latency_table(models, example, batches=BATCHES, rounds=2 if quick else 7, runs=runs)
            for r in speed.itertuples():
                case = f"{r.model}/batch{r.batch}"
                rows.append(_row(net, case, "latency", r.latency_ms, "ms"))
                if r.model == "dense":
                    continue
                rows.append(_row(net, case, "speedup", r.speedup, "x"))
                rows.append(_row(net, case, "speedup spread", r.spread, "ratio"))
                rows.append(_row(net, case, "mac_reduction", r.mac_reduction, "x"))
                rows.append(_row(net, case, "speedup/mac_reduction", r.speedup / r.mac_reduction, "ratio"))
            print(f"{net}: {verdict(speed)}")
    finally:
        torch.set_num_threads(threads)
    return rows


def _row(net: str, case: str, measure: str, value: float, unit: str) -> dict:
    return {"benchmark": "surgery", "case": f"{net}/{case}", "measure": measure, "value": float(value),
            "unit": unit}


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"surgery benchmark: torch {torch.__version__}, 1 thread, CPU: {cpu_name()}"
          + (" (quick)" if quick else ""))
    print_rows(run(quick))


def print_rows(rows: list[dict]) -> None:
    """The rows as an aligned text table: counts whole, everything else to three decimals."""
    width = max(len("case"), *(len(r["case"]) for r in rows))
    measure = max(len("measure"), *(len(r["measure"]) for r in rows))
    print(f"{'case':<{width}}  {'measure':<{measure}} {'value':>14}  unit")
    for r in rows:
        value = f"{r['value']:,.0f}" if r["unit"] in ("count", "MAC") else f"{r['value']:.3f}"
        print(f"{r['case']:<{width}}  {r['measure']:<{measure}} {value:>14}  {r['unit']}")


if __name__ == "__main__":
    main()
