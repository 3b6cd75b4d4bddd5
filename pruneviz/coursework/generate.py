"""Student notebooks from solution notebooks: what ``nbgrader generate_assignment`` writes, plus two tags.

A solution notebook ``notebooks/NN_topic.ipynb`` holds each exercise's solution between nbgrader's markers (see
:mod:`.cells`); :mod:`.stamp` gives it nbgrader's cell metadata. Its student copy
``notebooks/student/NN_topic.ipynb`` has, where each solution was, nbgrader's own stub at the marker's
indentation (``# YOUR CODE HERE`` / ``raise NotImplementedError()``), no outputs, and the metadata nbgrader's
release carries (the same grade ids and points, checksums, locked cells read-only), so ``nbgrader autograde``
grades a submitted copy like one it released itself. Cells that raise when the copy runs top to bottom (a stubbed
function called at a cell's top level, or passed to a check, which then raises CheckFailed) are tagged
``raises-exception`` so nbval and nbclient run on past them.

The output is a pure function of the solution notebook, so ``check`` can tell whether the committed student
notebooks (and the solution notebooks' metadata) are up to date.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .cells import BEGIN, END, STUB, TEXT_STUB, exercises, stub_source
from .stamp import stamp_notebook, student_cell_metadata

__all__ = ["BEGIN", "END", "RAISES_TAG", "STUB", "StudentNotebook", "expected_files", "generate", "render",
           "solution_notebooks", "stale", "stub_source", "student_notebook", "student_path"]

RAISES_TAG = "raises-exception"
SOLUTION_NOTEBOOK = re.compile(r"^\d\d_\w+\.ipynb$")
STUDENT_DIR = "student"


@dataclass
class StudentNotebook:
    notebook: nbformat.NotebookNode
    solutions: list[str]
    stubbed: set[str]
    raising_cells: list[int]  # indices into notebook.cells
    graded_cells: list[int]


def student_notebook(solution: nbformat.NotebookNode, name: str = "notebook") -> StudentNotebook:
    """The student version of a solution notebook (the input is not changed; its nbgrader metadata is derived
    afresh, so an unstamped notebook gives the same copy as a stamped one)."""
    found = exercises(solution, name)
    nb = stamp_notebook(solution, name)
    for index, cell in enumerate(nb.cells):
        if index in found.solution_cells:
            cell.source = found.solution_cells[index].source
        elif index in found.answer_cells:  # a written answer: nbgrader's text stub in its place
            cell.source = TEXT_STUB
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)  # nbclient's timings: not the student's business
            tags = list(cell.metadata.get("tags", []))  # a cell the solution tags raises in the copy too
            if index in found.raising_cells and RAISES_TAG not in tags:
                cell.metadata["tags"] = tags + [RAISES_TAG]
        student_cell_metadata(cell)
    # the widget state nbclient saved when the solution ran is output too, and would show its results
    nb.metadata.pop("widgets", None)
    return StudentNotebook(nb, found.solutions, found.stubbed, sorted(found.raising_cells),
                           sorted(found.graded_cells))


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text written to disk (nbformat's own layout, one trailing newline)."""
    return nbformat.writes(nb) + "\n"


def solution_notebooks(folder: Path) -> list[Path]:
    """The numbered solution notebooks in ``folder`` that hold at least one exercise."""
    paths = sorted(p for p in folder.iterdir() if SOLUTION_NOTEBOOK.match(p.name))
    return [p for p in paths if BEGIN in p.read_text(encoding="utf-8")]


def student_path(solution: Path) -> Path:
    return solution.parent / STUDENT_DIR / solution.name


def expected_files(folder: Path) -> dict[Path, str]:
    """{path: the text it should hold}: every solution notebook stamped, and its student copy."""
    files = {}
    for path in solution_notebooks(folder):
        solution = nbformat.read(path, as_version=4)
        files[path] = render(stamp_notebook(solution, path.name))
        files[student_path(path)] = render(student_notebook(solution, path.name).notebook)
    return files


def _write_changed(files: dict[Path, str]) -> list[Path]:
    changed = []
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def stamp(folder: Path) -> list[Path]:
    """Write nbgrader's metadata into every solution notebook (metadata only). Returns the notebooks changed."""
    return _write_changed({path: text for path, text in expected_files(folder).items()
                           if path.parent == folder})


def written_by_generate(path: Path) -> bool:
    """Does ``path`` look like a student notebook :func:`generate` wrote (a numbered name, and every cell
    carrying the nbgrader checksum it adds)? An instructor's extra hand-out or Jupyter's Untitled.ipynb does not."""
    if not SOLUTION_NOTEBOOK.match(path.name):
        return False
    try:
        cells = nbformat.read(path, as_version=4).cells
    except Exception:  # not a notebook nbformat reads: certainly not one generate wrote
        return False
    return bool(cells) and all("checksum" in cell.metadata.get("nbgrader", {}) for cell in cells)


def orphans(folder: Path, files: dict[Path, str] | None = None) -> list[Path]:
    """Student notebooks generate wrote whose solution notebook is gone (others in student/ are not ours)."""
    files = expected_files(folder) if files is None else files
    return [p for p in sorted((folder / STUDENT_DIR).glob("*.ipynb")) if p not in files and written_by_generate(p)]


def generate(folder: Path) -> list[Path]:
    """Stamp the solution notebooks, write every student notebook, remove student notebooks it wrote whose
    solution is gone (any other file in student/ is left alone). Returns what changed."""
    files = expected_files(folder)
    (folder / STUDENT_DIR).mkdir(exist_ok=True)
    changed = _write_changed(files)
    for orphan in orphans(folder, files):
        orphan.unlink()
        changed.append(orphan)
    return changed


def stale(folder: Path) -> list[str]:
    """What is out of date, in words (empty when the solution notebooks are stamped and the committed student
    notebooks match them)."""
    files = expected_files(folder)
    problems = []
    for path, text in files.items():
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: nbgrader metadata out of date" if path.parent == folder
                            else f"{path}: differs from what its solution notebook generates")
    if (folder / STUDENT_DIR).is_dir():
        problems += [f"{p}: no solution notebook {folder / p.name} with exercises" for p in orphans(folder, files)]
    return problems
