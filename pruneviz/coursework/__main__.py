"""``python -m pruneviz.coursework generate | check [--notebooks DIR]``: the student notebooks."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .generate import generate, stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pruneviz.coursework",
                                     description="Student notebooks from the solution notebooks.")
    parser.add_argument("command", choices=("generate", "check"),
                        help="generate: write notebooks/student/*.ipynb; check: fail if they are out of date")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                        help="the folder of solution notebooks (default: notebooks)")
    args = parser.parse_args(argv)
    if not args.notebooks.is_dir():
        parser.error(f"no folder {args.notebooks}; run from the project root or pass --notebooks DIR")
    if args.command == "generate":
        changed = generate(args.notebooks)
        for path in changed:
            print(f"wrote {path}" if path.exists() else f"removed {path}")
        print(f"{len(changed)} student notebook(s) changed")
        return 0
    problems = stale(args.notebooks)
    for problem in problems:
        print(problem)
    if problems:
        print("run: python -m pruneviz.coursework generate")
        return 1
    print("student notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
