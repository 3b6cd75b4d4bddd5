"""nbgrader's cell metadata, derived from the notebooks' own markers so nobody writes it by hand.

``python -m pruneviz.coursework stamp`` writes into each solution notebook (``metadata.nbgrader`` of every cell,
nothing else; idempotent):

- a cell with ``### BEGIN SOLUTION``: a **solution cell**, ``grade_id`` = the function(s) it defines;
- a cell that calls a ``check_*`` on a student function: a **locked, graded test cell**, ``grade_id`` = the check's
  name, 1 point (or N with a ``# points: N`` line in the cell);
- a markdown cell with ``<!-- answer; points: N -->``: a **manually graded answer** (solution and graded, N
  points, 1 without ``points:``), ``grade_id`` = ``answer-<cell id>``;
- every other cell, markdown too: **locked** (read-only), ``grade_id`` = ``cell-<cell id>``.

nbgrader's ``generate_assignment`` then accepts the notebooks as they are, and ``autograde`` overwrites the
locked cells with the instructor's source and counts the points of the graded cells whose check did not raise.
The student copies carry the same metadata plus what ``generate_assignment`` adds to its release (checksums, the
cell type, ``editable``/``deletable``): :func:`student_cell_metadata`.
"""
from __future__ import annotations

import copy
import hashlib

import nbformat

from .cells import exercises, points_of

SCHEMA_VERSION = 3  # nbgrader 0.9's cell metadata schema


def _metadata(grade_id: str, *, solution: bool = False, grade: bool = False, points: float = 0.0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = int(points) if float(points).is_integer() else points
    return meta


def nbgrader_metadata(nb: nbformat.NotebookNode, name: str = "notebook") -> list[dict]:
    """The ``metadata.nbgrader`` each cell of a solution notebook should carry, in cell order."""
    found = exercises(nb, name)
    taken: set[str] = set()

    def unique(grade_id: str) -> str:
        candidate, n = grade_id, 2
        while candidate in taken:
            candidate, n = f"{grade_id}-{n}", n + 1
        taken.add(candidate)
        return candidate

    out = []
    for index, cell in enumerate(nb.cells):
        own = f"cell-{cell.get('id') or index}"
        if index in found.solution_cells:
            names = found.solution_cells[index].stubbed or found.solution_cells[index].classes
            out.append(_metadata(unique("-".join(names) or own), solution=True))
        elif index in found.answer_cells:
            out.append(_metadata(unique(f"answer-{cell.get('id') or index}"), solution=True, grade=True,
                                 points=found.answer_cells[index]))
        elif index in found.graded_cells:
            out.append(_metadata(unique("-".join(found.graded_cells[index])), grade=True,
                                 points=points_of(cell.source)))
        else:
            out.append(_metadata(unique(own)))
    return out


def stamp_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of the solution notebook with every cell's nbgrader metadata derived afresh (the rest untouched)."""
    stamped = copy.deepcopy(nb)
    for cell, meta in zip(stamped.cells, nbgrader_metadata(nb, name)):
        cell.metadata["nbgrader"] = meta
    return stamped


def checksum(cell: nbformat.NotebookNode) -> str:
    """nbgrader's checksum of a cell (``nbgrader.utils.compute_checksum``, the same bytes in the same order)."""
    meta = cell.metadata["nbgrader"]
    digest = hashlib.md5()
    for part in (cell.source, cell.cell_type, str(meta.get("grade", False)), str(meta.get("solution", False)),
                 str(meta.get("locked", False)), meta["grade_id"]):
        digest.update(part.encode("utf-8"))
    if meta.get("grade", False):
        digest.update(str(float(meta["points"])).encode("utf-8"))
    return digest.hexdigest()


def student_cell_metadata(cell: nbformat.NotebookNode) -> None:
    """Give a student cell (its solution already stubbed) what nbgrader's release adds: LockCells' flags and
    ComputeChecksums' checksum and cell type."""
    meta = cell.metadata["nbgrader"]
    cell.metadata["deletable"] = False
    if not meta["solution"]:
        cell.metadata["editable"] = False
    meta["cell_type"] = cell.cell_type
    meta["checksum"] = checksum(cell)
