"""Which files of the project's notebooks/ folder a pip user gets: the lecture notebooks (executed, with their
outputs) and the student copies; not the authors' README nor the test plumbing (conftest.py, sanitize.cfg).

No imports beyond pathlib: setup.py runs this file to copy the same files into the wheel.
"""
from __future__ import annotations

from pathlib import Path

PATTERNS = ("[0-9]*.ipynb", "student/[0-9]*.ipynb")


def shipped(folder: Path) -> list[Path]:
    """The files of ``folder`` that ship, relative to it, sorted."""
    folder = Path(folder)
    return sorted({path.relative_to(folder) for pattern in PATTERNS for path in folder.glob(pattern)
                   if path.is_file()})
