"""``python -m pruneviz.notebooks copy DEST [--student] [--force]`` | ``list``: the notebooks out of the package."""
from __future__ import annotations

import argparse
import sys

from . import available, copy, folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pruneviz.notebooks",
                                     description="Copy the kit's notebooks out of the installed package.")
    commands = parser.add_subparsers(dest="command", required=True)
    to = commands.add_parser("copy", help="copy the notebooks into a folder")
    to.add_argument("destination", help="the folder to copy into (created if missing)")
    to.add_argument("--student", action="store_true", help="only the student copies (exercises to solve)")
    to.add_argument("--force", action="store_true", help="replace notebooks already in the folder")
    listing = commands.add_parser("list", help="where the notebooks are, and their names")
    listing.add_argument("--student", action="store_true", help="only the student copies")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(folder())
            for name in available(args.student):
                print(f"  {name}")
            return 0
        written = copy(args.destination, student=args.student, overwrite=args.force)
    except (OSError, ValueError) as error:  # a folder that exists, is missing, is a file, cannot be written
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"copied {len(written)} notebooks into {args.destination}; open them with: "
          f"jupyter lab {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
