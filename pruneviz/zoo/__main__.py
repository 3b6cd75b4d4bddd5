"""Train the zoo again: ``python -m pruneviz.zoo train [names...]``.

Deterministic: fixed seeds, deterministic algorithms, one CPU thread, so a rerun on the same machine gives the
same weights. Prints each model's test accuracy and writes weights/<name>.pt and weights/accuracy.json.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from ..data import digits
from ..evaluation import evaluate
from ..training import train
from . import NAMES, WEIGHTS, build

EPOCHS = {"digits-mlp": 30, "digits-cnn": 30, "digits-resnet": 30}
SEED = 0


def train_one(name: str) -> float:
    torch.manual_seed(SEED)
    model = build(name)
    train_set, test_set = digits()
    start = time.perf_counter()
    train(model, train_set, epochs=EPOCHS[name], optimizer="adam", lr=1e-3, batch_size=64, seed=SEED,
          progress=False)
    accuracy = evaluate(model, test_set)
    torch.save(model.state_dict(), WEIGHTS / f"{name}.pt")
    print(f"{name}: {accuracy:.2%} test accuracy ({time.perf_counter() - start:.1f} s)")
    return accuracy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pruneviz.zoo")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("names", nargs="*", help=f"models to train (default: all of {', '.join(NAMES)})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; valid choices: {', '.join(NAMES)}")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    WEIGHTS.mkdir(exist_ok=True)
    path = WEIGHTS / "accuracy.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in args.names or NAMES:
        results[name] = round(train_one(name), 4)
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
