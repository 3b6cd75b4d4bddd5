"""How fast the explorer answers a slider move, against a naive implementation, in the same run.

digits-cnn on the digits test set (360 images):
- cached: the explorer's path. Scores computed once per pruner; a move re-prunes from the sorted scores,
  evaluates from cached activations, moves the plot artists in place and draws the Agg canvas.
- naive: a new Pruner per move (scores and sort recomputed), evaluate() from scratch, the readout through
  pruneviz.metrics, and a new figure drawn with the same plots.
Then an 11.7M-parameter ResNet-18-shaped model (ImageNet layout, built here: torchvision is not needed):
re-prune of a cached global magnitude Pruner vs torch.nn.utils.prune.global_unstructured + remove.

Medians over random moves, after warm-up. Run: python benchmarks/bench_slider.py [--quick]
"""
from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
import torch.nn.utils.prune as torch_prune  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

import pruneviz  # noqa: E402
from pruneviz import metrics, plot  # noqa: E402
from pruneviz.widgets import explore  # noqa: E402
from pruneviz.zoo.models import BasicBlock  # noqa: E402

THREADS = 1  # the machine is shared: one thread keeps timings steady (see shared notes)


def _ms(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1e3


def _row(case: str, measure: str, value: float, unit: str = "ms") -> dict:
    return {"benchmark": "slider", "case": case, "measure": measure, "value": round(value, 3), "unit": unit}


def resnet18_shaped(num_classes: int = 1000) -> nn.Sequential:
    """ResNet-18's layout for 224x224 ImageNet images (11.69M parameters), from the zoo's BasicBlock."""
    layers = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
              nn.MaxPool2d(3, stride=2, padding=1)]
    cin = 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, width, stride), BasicBlock(width, width)]
        cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


# -- digits-cnn: the explorer vs naive ------------------------------------------------------------------
def _naive_move(model, test, ratio, criterion="magnitude", granularity="element", scope="local"):
    """What a widget without caches does on every move; returns the time to pruned + evaluated."""
    start = time.perf_counter()
    pruner = pruneviz.Pruner(model, criterion, granularity, scope)
    pruner.prune(ratio)
    accuracy = pruneviz.evaluate(model, test)
    example = test.tensors[0][:1]
    readout = (metrics.sparsity(model), metrics.count_parameters(model, nonzero=True),
               metrics.size_bytes(model, sparse=True), metrics.macs(model, example, sparse=True))
    evaluated = (time.perf_counter() - start) * 1e3
    return pruner, accuracy, readout, evaluated


def _naive_figure(pruner, accuracy, ratio, curve, layer="conv3"):
    with plot.theme():
        fig = Figure(figsize=(12.0, 3.4), dpi=80)
        axes = fig.subplots(1, 3)
    plot.weight_histogram(pruner.dense_weight(layer), mask=pruner.masks[layer], ax=axes[0])
    plot.mask_heatmap(pruner.masks[layer], max_out=32, max_in=32, ax=axes[1])
    plot.accuracy_curve({"magnitude, element, local": curve}, current=(ratio, accuracy), ax=axes[2])
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.17, top=0.86, wspace=0.28)
    fig.canvas.draw()


def bench_cnn(moves: int) -> list[dict]:
    rng = random.Random(0)
    ratios = [round(rng.uniform(0.0, 0.99), 2) for _ in range(moves)]
    test = pruneviz.data.digits().test

    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    explorer = explore(model, test, figure="agg", layer="conv3")
    session = explorer.session
    curve = session.curve()
    for r in ratios[:5]:  # warm-up
        explorer.sparsity.value = r
    evaluated = [_ms(session.step, r) for r in ratios]
    redrawn = []
    for r in ratios:
        if explorer.sparsity.value == r:
            explorer.sparsity.value = 0.0
        redrawn.append(_ms(setattr, explorer.sparsity, "value", r))
    assert not explorer.errors.errors, explorer.errors.errors
    stages = []
    for r in ratios:
        session.step(r, "fc")
        stages.append(session.evaluator.stages_run)
    one_layer = [_ms(session.step, r, "conv4") for r in ratios]
    session.restore()

    naive_model = pruneviz.zoo.load("digits-cnn", device="cpu")
    naive_eval, naive_draw = [], []
    for i, r in enumerate(ratios[:5] + ratios):
        pruner, acc, _, ms = _naive_move(naive_model, test, r)
        ms_draw = ms + _ms(_naive_figure, pruner, acc, r, curve)
        pruner.restore()
        if i >= 5:
            naive_eval.append(ms)
            naive_draw.append(ms_draw)

    med = statistics.median
    rows = [
        _row("digits-cnn cached", "slider move to re-pruned + evaluated (median)", med(evaluated)),
        _row("digits-cnn cached", "slider move to figure redrawn (median)", med(redrawn)),
        _row("digits-cnn cached", "one layer (conv4) re-pruned + evaluated from cached activations (median)",
             med(one_layer)),
        _row("digits-cnn naive", "slider move to re-pruned + evaluated (median)", med(naive_eval)),
        _row("digits-cnn naive", "slider move to figure redrawn (median)", med(naive_draw)),
        _row("digits-cnn", "speed-up re-pruned + evaluated (naive / cached)", med(naive_eval) / med(evaluated), "x"),
        _row("digits-cnn", "speed-up redrawn (naive / cached)", med(naive_draw) / med(redrawn), "x"),
        _row("digits-cnn", "moves timed", len(ratios), "moves"),
    ]
    return rows


# -- ResNet-18-sized: cached re-prune vs torch.nn.utils.prune --------------------------------------------
def bench_resnet(moves: int, torch_runs: int) -> list[dict]:
    rng = random.Random(1)
    torch.manual_seed(0)
    model = resnet18_shaped().eval()
    n_params = sum(p.numel() for p in model.parameters())
    setup = _ms(lambda: setattr(bench_resnet, "_pruner",
                                pruneviz.Pruner(model, "magnitude", "element", "global")))
    pruner = bench_resnet._pruner
    del bench_resnet._pruner
    ratios = [round(rng.uniform(0.05, 0.95), 3) for _ in range(moves + 2)]
    for r in ratios[:2]:
        pruner.prune(r)
    ours = [_ms(pruner.prune, r) for r in ratios[2:]]
    pruner.restore()

    modules = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    dense = [m.weight.detach().clone() for m in modules]

    def torch_global(ratio):
        torch_prune.global_unstructured([(m, "weight") for m in modules], torch_prune.L1Unstructured,
                                        amount=ratio)
        for m in modules:
            torch_prune.remove(m, "weight")

    theirs = []
    for i, r in enumerate(ratios[:1 + torch_runs]):
        with torch.no_grad():
            for m, w in zip(modules, dense):
                m.weight.copy_(w)
        ms = _ms(torch_global, r)
        if i:
            theirs.append(ms)
    med = statistics.median
    return [
        _row("resnet18-shaped", "parameters", n_params, "params"),
        _row("resnet18-shaped cached", "Pruner built once (scores + sort)", setup),
        _row("resnet18-shaped cached", "global magnitude re-prune (median)", med(ours)),
        _row("resnet18-shaped torch.nn.utils.prune", "global_unstructured + remove (median)", med(theirs)),
        _row("resnet18-shaped", "speed-up re-prune (torch / cached)", med(theirs) / med(ours), "x"),
    ]


def run(quick: bool = False) -> list[dict]:
    """Rows {benchmark, case, measure, value, unit}. quick: fewer moves, for a smoke run."""
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        rows = bench_cnn(moves=12 if quick else 60)
        rows += bench_resnet(moves=5 if quick else 21, torch_runs=2 if quick else 5)
    finally:
        torch.set_num_threads(previous)
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"# slider benchmark: torch {torch.__version__}, {THREADS} thread, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), load average {os.getloadavg()[0]:.1f}")
    rows = run(quick)
    width = max(len(r["case"]) for r in rows)
    for r in rows:
        print(f"{r['case']:<{width}}  {r['measure']:<78} {r['value']:>12,.3f} {r['unit']}")


if __name__ == "__main__":
    main()
