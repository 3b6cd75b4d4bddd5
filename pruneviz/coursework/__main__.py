"""``python -m pruneviz.coursework generate | stamp | check [--notebooks DIR]``: nbgrader metadata and student
notebooks, derived from the solution notebooks' markers."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .generate import generate, stale, stamp

_HELP = {"generate": "stamp the solution notebooks' nbgrader metadata and write notebooks/student/*.ipynb",
         "stamp": "write nbgrader's cell metadata into the solution notebooks only (metadata, nothing else)",
         "check": "fail if a solution notebook's metadata or a student notebook is out of date"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pruneviz.coursework",
                                     description="nbgrader metadata and student notebooks from the solution notebooks.",
                                     epilog="; ".join(f"{k}: {v}" for k, v in _HELP.items()))
    parser.add_argument("command", choices=tuple(_HELP))
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                        help="the folder of solution notebooks (default: notebooks)")
    args = parser.parse_args(argv)
    if not args.notebooks.is_dir():
        parser.error(f"no folder {args.notebooks}; run from the project root or pass --notebooks DIR")
    if args.command in ("generate", "stamp"):
        changed = (generate if args.command == "generate" else stamp)(args.notebooks)
        for path in changed:
            print(f"wrote {path}" if path.exists() else f"removed {path}")
        print(f"{len(changed)} notebook(s) changed")
        return 0
    problems = stale(args.notebooks)
    for problem in problems:
        print(problem)
    if problems:
        print("run: python -m pruneviz.coursework generate")
        return 1
    print("solution notebooks stamped and student notebooks up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
