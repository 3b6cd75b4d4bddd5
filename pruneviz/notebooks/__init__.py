"""The kit's notebooks for a pip user: ``python -m pruneviz.notebooks copy DEST``.

A built wheel carries them inside this package (``files/``, put there by setup.py); a source checkout (an
editable install) reads the project's own notebooks/ folder.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .manifest import shipped

PACKAGED = Path(__file__).resolve().parent / "files"
CHECKOUT = Path(__file__).resolve().parents[2] / "notebooks"


def folder() -> Path:
    """Where this installation keeps the notebooks."""
    for candidate in (PACKAGED, CHECKOUT):
        if candidate.is_dir() and shipped(candidate):
            return candidate
    raise FileNotFoundError(f"no notebooks in {PACKAGED} nor in {CHECKOUT}: this installation was built without "
                            "them (build the wheel from a source checkout or an sdist)")


def available(student: bool = False) -> list[Path]:
    """The notebooks, relative to :func:`folder`: the lecture notebooks (with outputs) and the student copies
    in ``student/``; only the student copies with ``student=True``."""
    files = shipped(folder())
    return [f for f in files if f.parts[0] == "student"] if student else files


def copy(destination: str | Path, *, student: bool = False, overwrite: bool = False) -> list[Path]:
    """Copy the notebooks into ``destination`` (created if missing) and return the files written.

    Everything: ``NN_topic.ipynb`` (executed, the instructor's) and ``student/NN_topic.ipynb`` (the hand-outs).
    ``student=True``: only the hand-outs, straight into ``destination``. Files already there are kept unless
    ``overwrite``: if any would be replaced, nothing is written and a FileExistsError names them. A destination
    inside the folder the notebooks come from is refused (ValueError): in a clone that is ``notebooks/``, where
    the tests collect every notebook and compare its outputs, and git tracks them.
    """
    source, destination = folder(), Path(destination)
    if destination.exists() and not destination.is_dir():
        raise NotADirectoryError(f"{destination} is a file; give a folder to copy the notebooks into")
    if destination.resolve().is_relative_to(source.resolve()):
        raise ValueError(f"{destination} is inside {source}, where the kit's own notebooks are: copy them into a "
                         "folder of your own, e.g. my-course")
    plan = {source / f: destination / (Path(*f.parts[1:]) if student else f) for f in available(student)}
    same = [str(target) for origin, target in plan.items() if target.exists() and target.samefile(origin)]
    if same:
        raise ValueError(f"{destination} is where this installation keeps the notebooks ({same[0]} is the "
                         "original): copy them into another folder")
    clashes = sorted(str(target) for target in plan.values() if target.exists())
    if clashes and not overwrite:
        raise FileExistsError(f"{len(clashes)} notebook(s) already in {destination} ({', '.join(clashes[:3])}"
                              f"{', ...' if len(clashes) > 3 else ''}); pass overwrite=True (--force) to replace "
                              "them, or choose another folder")
    for origin, target in plan.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
    return list(plan.values())
