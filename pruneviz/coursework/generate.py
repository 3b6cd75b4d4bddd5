"""Student notebooks from solution notebooks: solutions replaced by stubs, outputs cleared.

A solution notebook ``notebooks/NN_topic.ipynb`` holds each exercise's solution between the nbgrader markers::

    def fine_grained_prune(tensor, sparsity):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

The student copy ``notebooks/student/NN_topic.ipynb`` has, in their place, one line at the same indentation:
``raise NotImplementedError("fine_grained_prune: your code here")``. Cells that would then raise when run top to
bottom (a direct call of a stubbed function at the top level of a cell, or of a notebook function that calls
one) are tagged ``raises-exception`` so nbval and nbclient accept them. Check cells do not raise: the checks call
the student's function through :func:`pruneviz.coursework.report.call`, which reports NotImplementedError as ✗.

The output is a pure function of the solution notebook, so ``check`` can tell whether the committed student
notebooks are up to date.
"""
from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
RAISES_TAG = "raises-exception"
SOLUTION_NOTEBOOK = re.compile(r"^\d\d_\w+\.ipynb$")
STUDENT_DIR = "student"
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(")


def stub_line(indent: str, function: str | None) -> str:
    """The line that stands where a solution was."""
    where = f"{function}: " if function else ""
    return f'{indent}raise NotImplementedError("{where}your code here")'


@dataclass
class StubbedSource:
    source: str
    solutions: list[str]  # the solution code removed, to prove it does not leak
    stubbed: set[str]  # functions whose body now raises


def stub_source(source: str, where: str = "cell") -> StubbedSource:
    """Replace each BEGIN/END SOLUTION region of a cell's source by a stub at the marker's indentation."""
    out: list[str] = []
    solutions: list[str] = []
    stubbed: set[str] = set()
    region: list[str] | None = None
    defs: list[tuple[int, str]] = []  # enclosing defs seen so far: (indent width, name)
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if region is None:
            if marker == END:
                raise ValueError(f"{where}, line {number}: {END!r} without a {BEGIN!r} before it")
            if marker == BEGIN:
                indent = line[: len(line) - len(line.lstrip())]
                enclosing = [name for width, name in defs if width < len(indent)]
                function = enclosing[-1] if enclosing else None
                if function:
                    stubbed.add(function)
                out.append(stub_line(indent, function))
                region = []
                continue
            match = _DEF.match(line)
            if match:
                width = len(match.group(1))
                defs = [(w, n) for w, n in defs if w < width] + [(width, match.group(2))]
            out.append(line)
        else:
            if marker == BEGIN:
                raise ValueError(f"{where}, line {number}: {BEGIN!r} inside another solution region")
            if marker == END:
                solutions.append("\n".join(region))
                region = None
                continue
            region.append(line)
    if region is not None:
        raise ValueError(f"{where}: {BEGIN!r} without a matching {END!r}")
    return StubbedSource("\n".join(out), solutions, stubbed)


def _top_level_calls(source: str) -> tuple[set[str], dict[str, set[str]]]:
    """Names called at a cell's top level, and for each function the cell defines, the names it calls."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics (%matplotlib) are not Python: drop those lines and retry
        cleaned = "\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(cleaned)

    def called(nodes: list[ast.AST]) -> set[str]:
        names = set()
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                    names.add(sub.func.id)
        return names

    functions = {node.name: called(node.body) for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    top = [node for node in tree.body
           if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return called(top), functions


def _raising_cells(sources: list[str], stubbed: set[str]) -> set[int]:
    """Indices of the code cells that raise when run in order: they call, at their top level, a stubbed
    function or a notebook function that (transitively) calls one."""
    parsed = [_top_level_calls(src) for src in sources]
    raising_functions = set(stubbed)
    changed = True
    while changed:  # a function that calls a raising function raises too
        changed = False
        for _, functions in parsed:
            for name, calls in functions.items():
                if name not in raising_functions and calls & raising_functions:
                    raising_functions.add(name)
                    changed = True
    return {i for i, (calls, _) in enumerate(parsed) if calls & raising_functions}


@dataclass
class StudentNotebook:
    notebook: nbformat.NotebookNode
    solutions: list[str]
    stubbed: set[str]
    raising_cells: list[int]  # indices into notebook.cells


def student_notebook(solution: nbformat.NotebookNode, name: str = "notebook") -> StudentNotebook:
    """The student version of a solution notebook (the input is not changed)."""
    nb = copy.deepcopy(solution)
    solutions: list[str] = []
    stubbed: set[str] = set()
    code_cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            if BEGIN in cell.source or END in cell.source:
                raise ValueError(f"{name}, cell {index}: solution markers are only supported in code cells")
            continue
        result = stub_source(cell.source, f"{name}, cell {index}")
        cell.source = result.source
        solutions += result.solutions
        stubbed |= result.stubbed
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)  # nbclient's timings: not the student's business
        code_cells.append(index)

    sources = [nb.cells[i].source for i in code_cells]
    raising = sorted(code_cells[j] for j in _raising_cells(sources, stubbed))
    for index in code_cells:
        tags = [t for t in nb.cells[index].metadata.get("tags", []) if t != RAISES_TAG]
        if index in raising:
            tags.append(RAISES_TAG)
        if tags:
            nb.cells[index].metadata["tags"] = tags
        else:
            nb.cells[index].metadata.pop("tags", None)
    # the widget state nbclient saved when the solution ran is output too, and would show its results
    nb.metadata.pop("widgets", None)
    return StudentNotebook(nb, solutions, stubbed, raising)


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
    """{student notebook path: the text it should hold} for every solution notebook in ``folder``."""
    files = {}
    for path in solution_notebooks(folder):
        solution = nbformat.read(path, as_version=4)
        files[student_path(path)] = render(student_notebook(solution, path.name).notebook)
    return files


def generate(folder: Path) -> list[Path]:
    """Write every student notebook; remove student notebooks whose solution is gone. Returns what changed."""
    files = expected_files(folder)
    changed = []
    (folder / STUDENT_DIR).mkdir(exist_ok=True)
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for orphan in sorted((folder / STUDENT_DIR).glob("*.ipynb")):
        if orphan not in files:
            orphan.unlink()
            changed.append(orphan)
    return changed


def stale(folder: Path) -> list[str]:
    """What is out of date, in words (empty when the committed student notebooks match the solutions)."""
    files = expected_files(folder)
    problems = []
    for path, text in files.items():
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from what its solution notebook generates")
    student_dir = folder / STUDENT_DIR
    if student_dir.is_dir():
        problems += [f"{p}: no solution notebook {folder / p.name} with exercises"
                     for p in sorted(student_dir.glob("*.ipynb")) if p not in files]
    return problems
