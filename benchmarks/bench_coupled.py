"""Width pruning on the networks people use: MACs kept after compaction, layers pruned alone vs coupled groups.

Models: the kit's hand-written copies of torchvision's structures (benchmarks/coupled_models.py; torchvision
itself cannot be imported on this CPU-only torch), torchvision's sizes, random seeded weights, 3x32x32 inputs,
10 classes. Each is pruned at ratio 0.5 by L1 magnitude, the classifier left out (its channels are the classes):

- "alone": the layers whose channels can go alone, ``Pruner(model, "magnitude", "channel",
  layers=channel_prunable_layers(model))`` (what the kit did before coupled groups);
- "groups": coupled channel groups, ``Pruner(model, "magnitude", "group")``.

then :func:`pruneviz.compact` removes the pruned channels, and the compacted model is checked against the masked
one (max |difference| of the outputs). Torch-Pruning 1.6's figures (DepGraph, torchvision's models, same
setting) are quoted from issue 21, not measured here: it is not a dependency.

Latency: :func:`pruneviz.timing.compare_latency`, one torch thread, batch 1, dense / alone / groups timed in
turns; speed-up = median over rounds of dense time / pruned time.

Then a small ViT (benchmarks/coupled_models.TinyViT at ViT-Tiny's width: 192 features, 3 heads, 12 encoder layers,
16 tokens of 8x8 patches embedded by a conv): the residual stream (through LayerNorms and the attention layers'
q, k, v input columns), the attention heads and the MLP hidden channels pruned as groups; Torch-Pruning's 30-80 %
on a TransformerEncoder ViT quoted from issue 21.

Then the zoo's digits-resnet (trained weights): MACs, parameters, test accuracy without fine-tuning and the
batch 1 / 64 speed-ups at 30 % and 50 %, alone vs groups (what notebook 09 can show).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import pruneviz  # noqa: E402
from benchmarks.coupled_models import ARCHITECTURES, TinyViT, randomized  # noqa: E402
from pruneviz.timing import compare_latency, latency_table  # noqa: E402

RATIO = 0.5
# MACs kept after compaction by Torch-Pruning 1.6 on torchvision's models (issue 21's table), and what the kit
# kept there before coupled groups
TORCH_PRUNING = {"resnet18": 0.27, "resnet50": 0.26, "mobilenet_v2": 0.28, "efficientnet_b0": 0.28,
                 "regnet_y_400mf": 0.26, "densenet121": 0.26, "convnext_tiny": 0.26, "vgg11_bn": 0.25}
ISSUE_ALONE = {"resnet18": 0.54, "resnet50": 0.42, "mobilenet_v2": 0.88, "efficientnet_b0": 0.87,
               "regnet_y_400mf": 0.92, "densenet121": 0.58, "convnext_tiny": 0.53, "vgg11_bn": 0.25}


def pruned(model: torch.nn.Module, granularity: str) -> tuple[torch.nn.Module, pruneviz.Pruner]:
    """The compacted model at RATIO and the Pruner that masked ``model`` (restored by the caller)."""
    if granularity == "channel":
        layers = pruneviz.channel_prunable_layers(model)
        if not layers:
            return model, None
        pruner = pruneviz.Pruner(model, "magnitude", "channel", layers=layers)
    else:
        pruner = pruneviz.Pruner(model, "magnitude", "group")
    return pruneviz.compact(model, pruner.prune(RATIO).masks), pruner


def measure(name: str, example: torch.Tensor, quick: bool) -> list[dict]:
    torch.manual_seed(0)
    dense = randomized(ARCHITECTURES[name]())
    dense_macs = pruneviz.macs(dense, example)
    rows, models = [], {"dense": dense}
    for case, granularity in (("alone", "channel"), ("groups", "group")):
        small, pruner = pruned(dense, granularity)
        with torch.no_grad():
            error = float((small(example) - dense(example)).abs().max())
        if pruner is not None:
            pruner.restore()
        models[case] = small
        rows.append(_row(name, case, "macs kept", pruneviz.macs(small, example) / dense_macs, "ratio"))
        rows.append(_row(name, case, "max |compacted - masked|", error, "abs"))
        if pruner is not None and granularity == "group":
            rows.append(_row(name, case, "groups pruned", len(pruner.scores), "count"))
            rows.append(_row(name, case, "layers left out", len(pruner.skipped), "count"))
    speed = compare_latency(models, example, rounds=3 if quick else 9, runs=2 if quick else 10)
    for r in speed.itertuples():
        rows.append(_row(name, r.model, "latency batch 1", r.latency_ms, "ms"))
        if r.model != "dense":
            rows.append(_row(name, r.model, "speedup batch 1", r.speedup, "x"))
            rows.append(_row(name, r.model, "speedup spread", r.spread, "ratio"))
    return rows


def vit(example: torch.Tensor, quick: bool) -> list[dict]:
    """The small ViT: MACs kept, max |compacted - masked| and the batch-1 speed-up of coupled groups."""
    torch.manual_seed(0)
    dense = randomized(TinyViT(dim=192, heads=3, depth=12))
    small, pruner = pruned(dense, "group")
    with torch.no_grad():
        error = float((small(example) - dense(example)).abs().max())
    pruner.restore()
    rows = [_row("tiny_vit", "groups", "macs kept", pruneviz.macs(small, example) / pruneviz.macs(dense, example),
                 "ratio"),
            _row("tiny_vit", "groups", "max |compacted - masked|", error, "abs"),
            _row("tiny_vit", "groups", "groups pruned", len(pruner.scores), "count")]
    speed = compare_latency({"dense": dense, "groups": small}, example, rounds=3 if quick else 9,
                            runs=2 if quick else 10)
    for r in speed.itertuples():
        if r.model != "dense":
            rows.append(_row("tiny_vit", r.model, "speedup batch 1", r.speedup, "x"))
    return rows


def digits_resnet(quick: bool) -> list[dict]:
    """The zoo's digits-resnet (trained, shipped weights): MACs, test accuracy (no fine-tuning) and latency of the
    compacted model, channels inside the blocks only vs coupled groups, at 30 % and 50 %."""
    model = pruneviz.zoo.load("digits-resnet", device="cpu")
    _, _, test = pruneviz.data.digits()
    x1 = test.tensors[0][:1]
    dense_macs = pruneviz.macs(model, x1)
    rows = [_row("digits-resnet", "dense", "test accuracy", pruneviz.evaluate(model, test), "ratio")]
    models = {"dense": model}
    for ratio in (0.3, 0.5):
        for case, pruner in (("alone", pruneviz.Pruner(model, "magnitude", "channel",
                                                        layers=pruneviz.channel_prunable_layers(model))),
                             ("groups", pruneviz.Pruner(model, "magnitude", "group"))):
            small = pruneviz.compact(model, pruner.prune(ratio).masks)
            pruner.restore()
            name = f"{case} {ratio:.0%}"
            models[name] = small
            rows.append(_row("digits-resnet", name, "macs kept", pruneviz.macs(small, x1) / dense_macs, "ratio"))
            rows.append(_row("digits-resnet", name, "parameters", pruneviz.count_parameters(small), "count"))
            rows.append(_row("digits-resnet", name, "test accuracy", pruneviz.evaluate(small, test), "ratio"))
    speed = latency_table(models, x1, batches=(1, 64), rounds=3 if quick else 9,
                          runs={1: 2, 64: 1} if quick else {1: 15, 64: 3})
    for r in speed.itertuples():
        if r.model != "dense":
            rows.append(_row("digits-resnet", f"{r.model}/batch{r.batch}", "speedup", r.speedup, "x"))
            rows.append(_row("digits-resnet", f"{r.model}/batch{r.batch}", "speedup spread", r.spread, "ratio"))
    return rows


def run(quick: bool = False, names=tuple(ARCHITECTURES), zoo: bool = True) -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    example = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    try:
        rows = [row for name in names if name in ARCHITECTURES for row in measure(name, example, quick)]
        rows += vit(example, quick) if "tiny_vit" in names else []
        return rows + (digits_resnet(quick) if zoo else [])
    finally:
        torch.set_num_threads(threads)


def _row(net: str, case: str, measure: str, value: float, unit: str) -> dict:
    return {"benchmark": "coupled", "case": f"{net}/{case}", "measure": measure, "value": float(value),
            "unit": unit}


def table(rows: list[dict]) -> str:
    """The issue's table: MACs kept (alone, groups, Torch-Pruning quoted) and the measured batch-1 speed-ups."""
    value = {(r["case"], r["measure"]): r["value"] for r in rows}
    nets = list(dict.fromkeys(r["case"].split("/")[0] for r in rows))
    nets = [n for n in nets if n in TORCH_PRUNING]
    lines = ["| model | alone (issue) | alone | groups | Torch-Pruning (quoted) | speed-up alone | speed-up groups |"
             " max error |",
             "|---|---|---|---|---|---|---|---|"]
    for net in nets:
        error = max(value[(f"{net}/{c}", "max |compacted - masked|")] for c in ("alone", "groups"))
        lines.append(f"| {net} | {ISSUE_ALONE[net]:.0%} | {value[(f'{net}/alone', 'macs kept')]:.1%} | "
                     f"{value[(f'{net}/groups', 'macs kept')]:.1%} | {TORCH_PRUNING[net]:.0%} | "
                     f"{value[(f'{net}/alone', 'speedup batch 1')]:.2f}x | "
                     f"{value[(f'{net}/groups', 'speedup batch 1')]:.2f}x | {error:.1e} |")
    return "\n".join(lines)


def main() -> None:
    quick = "--quick" in sys.argv
    known = list(ARCHITECTURES) + ["tiny_vit"]
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown model {unknown[0]!r}; models: {', '.join(known)}")
    print(f"coupled benchmark: torch {torch.__version__}, 1 thread, 3x32x32, L1 magnitude at {RATIO}"
          + (" (quick)" if quick else ""))
    rows = run(quick, names, zoo="--no-zoo" not in sys.argv)
    print(table(rows))
    value = {(r["case"], r["measure"]): r["value"] for r in rows}
    if ("tiny_vit/groups", "macs kept") in value:
        print(f"\ntiny_vit (192 features, 3 heads, 12 layers, 16 tokens): groups keep "
              f"{value[('tiny_vit/groups', 'macs kept')]:.1%} of the MACs (Torch-Pruning, quoted: 30-80 %), "
              f"speed-up {value[('tiny_vit/groups', 'speedup batch 1')]:.2f}x, max error "
              f"{value[('tiny_vit/groups', 'max |compacted - masked|')]:.1e}")
    zoo = [r for r in rows if r["case"].startswith("digits-resnet/")]
    if zoo:
        print("\nthe zoo's digits-resnet (shipped weights, 8x8 digits, no fine-tuning):")
        for r in zoo:
            value = f"{r['value']:,.0f}" if r["unit"] == "count" else f"{r['value']:.3f}"
            print(f"  {r['case'][len('digits-resnet/'):]:<22} {r['measure']:<15} {value}")


if __name__ == "__main__":
    main()
