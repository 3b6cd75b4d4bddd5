"""Train the zoo again, or measure it: ``python -m pruneviz.zoo train [names...]`` / ``python -m pruneviz.zoo stats``.

``train`` follows each model's recipe (recipe.py) on one CPU thread with deterministic algorithms. It writes the
weights, accuracy.json and provenance.json (the kernels of the run) into ``--out`` (default ./zoo-weights), never
over the shipped weights unless asked with ``--overwrite-shipped`` (maintainers), and says per model whether the
result equals the shipped weights bit for bit, or how far it is. Under the kernels recorded for the shipped
weights (``--recorded-kernels`` sets them) a rerun gives them bit for bit; on other kernels it lands within
bounds (tests/test_zoo.py). ``stats`` prints what shows that training shaped the weights.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from . import NAMES, WEIGHTS, provenance
from .kernels import as_command, current_kernels, pinned, run_record, weight_difference

DEFAULT_OUT = Path("zoo-weights")


def _update_json(path: Path, entries: dict) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(entries)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def shipped_state(name: str) -> dict[str, torch.Tensor] | None:
    path = WEIGHTS / f"{name}.pt"
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def compare_with_shipped(name: str, state: dict[str, torch.Tensor], test_accuracy: float,
                         shipped: dict[str, torch.Tensor] | None) -> str:
    """One line: equal to the ``shipped`` weights bit for bit, or how far from them (weights and accuracy)."""
    if shipped is None:
        return "no shipped weights to compare with"
    worst, where = weight_difference(state, shipped)
    if not where:
        return "equal to the shipped weights bit for bit"
    recorded = json.loads((WEIGHTS / "accuracy.json").read_text()).get(name) \
        if (WEIGHTS / "accuracy.json").exists() else None
    shipped_acc = f" (shipped: {recorded:.1%})" if recorded is not None else ""
    return (f"differs from the shipped weights: largest |difference| {worst:.3g} (in {where}); "
            f"test accuracy {test_accuracy:.1%}{shipped_acc}")


def train_all(names: list[str], out: Path) -> None:
    from .recipe import train_recipe

    record = run_record()
    print(f"kernels of this run: {as_command(record['kernels'])} (torch {record['torch']})")
    recorded = _shipped_provenance()
    shipped_kernels = {as_command(recorded[n]["kernels"]) for n in names if n in recorded}
    if shipped_kernels and shipped_kernels != {as_command(record["kernels"])}:
        print(f"the shipped weights were made with {' / '.join(sorted(shipped_kernels))}: to reproduce them bit "
              "for bit, add --recorded-kernels")
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        model, result = train_recipe(name, progress=False)
        state = model.state_dict()
        line = compare_with_shipped(name, state, result["test"], shipped_state(name))  # before any overwrite
        torch.save(state, out / f"{name}.pt")
        _update_json(out / "accuracy.json", {name: round(result["test"], 4)})
        _update_json(out / "provenance.json", {name: record})
        print(f"{name}: {result['val']:.1%} validation, {result['test']:.1%} test accuracy "
              f"({result['seconds']:.0f} s) -> {out / (name + '.pt')}")
        print(f"  {line}", flush=True)


def _shipped_provenance() -> dict:
    return provenance() if (WEIGHTS / "provenance.json").exists() else {}


def rerun_with_recorded_kernels(names: list[str], options: list[str]) -> int:
    """Run this command again in a child process per recorded kernel set (they must be set before torch
    starts, so this process cannot switch); returns the first failing exit code, or 0."""
    recorded = _shipped_provenance()
    missing = [n for n in names if n not in recorded]
    if missing:
        raise SystemExit(f"no recorded kernels for {', '.join(missing)} (weights/provenance.json)")
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(json.dumps(recorded[name]["kernels"], sort_keys=True), []).append(name)
    code = 0
    for kernels, group in groups.items():
        env = {**os.environ, **json.loads(kernels)}
        print(f"running {as_command(json.loads(kernels))} python -m pruneviz.zoo train {' '.join(group)}",
              flush=True)
        done = subprocess.run([sys.executable, "-m", "pruneviz.zoo", "train", *options, *group], env=env)
        code = code or done.returncode
    return code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pruneviz.zoo")
    parser.add_argument("command", choices=["train", "stats"])
    parser.add_argument("names", nargs="*", help=f"models (default: all of {', '.join(NAMES)})")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--out", type=Path, default=None,
                        help=f"train: directory for the weights (default: ./{DEFAULT_OUT})")
    target.add_argument("--overwrite-shipped", action="store_true",
                        help="train: write over the package's shipped weights (maintainers; needs pinned kernels)")
    parser.add_argument("--recorded-kernels", action="store_true",
                        help="train: run under the kernels recorded for the shipped weights (bit for bit)")
    args = parser.parse_intermixed_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; valid choices: {', '.join(NAMES)}")
    names = args.names or list(NAMES)
    if args.command == "stats":
        if args.out or args.overwrite_shipped or args.recorded_kernels:
            parser.error("--out, --overwrite-shipped and --recorded-kernels are options of train")
        from .stats import print_stats

        print_stats(names)
        return
    if args.recorded_kernels and any(current_kernels()[v] != k for n in names
                                     for v, k in _shipped_provenance().get(n, {}).get("kernels", {}).items()):
        options = ["--overwrite-shipped"] if args.overwrite_shipped else ["--out", str(args.out)] if args.out else []
        raise SystemExit(rerun_with_recorded_kernels(names, options))
    if args.overwrite_shipped:
        if not pinned(current_kernels()):
            parser.error(f"the shipped weights must record kernels another machine can force, and this run has "
                         f"{as_command(current_kernels())}; set all three, e.g. ATEN_CPU_CAPABILITY=avx2 "
                         "DNNL_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python -m pruneviz.zoo train "
                         "--overwrite-shipped")
        out = WEIGHTS
    else:
        out = args.out or DEFAULT_OUT
        if out.resolve() == WEIGHTS.resolve():
            parser.error(f"--out {out} is the package's shipped weights; to replace them, use --overwrite-shipped")
    train_all(names, out)


if __name__ == "__main__":
    main()
