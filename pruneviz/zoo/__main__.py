"""Train the zoo again, or measure it: ``python -m pruneviz.zoo train [names...]`` / ``python -m pruneviz.zoo stats``.

``train`` follows the recipe of recipe.py on one CPU thread with deterministic algorithms, so a rerun gives the
shipped weights bit for bit; it writes weights/<name>.pt and weights/accuracy.json (test accuracy) and prints
the validation and test accuracy of each model. ``stats`` prints what shows that training shaped the weights.
"""
from __future__ import annotations

import argparse
import json

import torch

from . import NAMES, WEIGHTS
from .recipe import train_recipe


def train_all(names: list[str]) -> None:
    WEIGHTS.mkdir(exist_ok=True)
    path = WEIGHTS / "accuracy.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        model, result = train_recipe(name)
        torch.save(model.state_dict(), WEIGHTS / f"{name}.pt")
        results[name] = round(result["test"], 4)
        print(f"{name}: {result['val']:.1%} validation, {result['test']:.1%} test accuracy "
              f"({result['seconds']:.0f} s)")
    path.write_text(json.dumps(results, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pruneviz.zoo")
    parser.add_argument("command", choices=["train", "stats"])
    parser.add_argument("names", nargs="*", help=f"models (default: all of {', '.join(NAMES)})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; valid choices: {', '.join(NAMES)}")
    names = args.names or list(NAMES)
    if args.command == "train":
        train_all(names)
    else:
        from .stats import print_stats

        print_stats(names)


if __name__ == "__main__":
    main()
