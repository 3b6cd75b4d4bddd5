"""What a solution notebook's cells are, read from their source: solution regions, graded checks, stubs that raise.

A solution notebook marks each answer with nbgrader's markers inside the function the student writes::

    def fine_grained_prune(tensor, sparsity):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

and a later cell grades it by calling a check on that function at its top level: ``check_fine_grained_prune(
fine_grained_prune);``. Both :mod:`.stamp` (nbgrader's metadata) and :mod:`.generate` (the student copies) derive
everything from this reading, so the two always agree.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
# nbgrader's own stub (ClearSolutions.code_stub["python"]): the student copy is what generate_assignment writes
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
_DEF = re.compile(r"^(\s*)(?:async\s+)?(def|class)\s+(\w+)\s*[(:]")
_POINTS = re.compile(r"^\s*#\s*points:\s*(\d+(?:\.\d+)?)\s*$", re.MULTILINE)
# a written answer, graded by hand: a markdown cell holding this comment (invisible when rendered), e.g.
# "<!-- answer; points: 2 -->" then the model answer; the student copy gets nbgrader's text stub instead
ANSWER = re.compile(r"<!--\s*answer\s*(?:;\s*points:\s*(\d+(?:\.\d+)?)\s*)?-->")
TEXT_STUB = "YOUR ANSWER HERE"  # nbgrader's ClearSolutions.text_stub


@dataclass
class StubbedSource:
    source: str
    solutions: list[str]  # the solution code removed, to prove it does not leak
    stubbed: list[str]  # functions whose body now raises, in order of appearance
    classes: list[str] = field(default_factory=list)  # classes holding such a function (a check may take one)
    raises_at_top: bool = False  # a region outside any def: running the cell itself raises


def stub_source(source: str, where: str = "cell") -> StubbedSource:
    """Replace each BEGIN/END SOLUTION region of a cell's source by nbgrader's stub at the marker's indentation."""
    out: list[str] = []
    result = StubbedSource("", [], [])
    region: list[str] | None = None
    scopes: list[tuple[int, str, str]] = []  # enclosing defs and classes so far: (indent width, kind, name)
    for number, line in enumerate(source.split("\n"), start=1):
        if region is None:
            if END in line:
                raise ValueError(f"{where}, line {number}: {END!r} without a {BEGIN!r} before it")
            if BEGIN in line:
                indent = line[: len(line) - len(line.lstrip())]
                enclosing = [(kind, name) for width, kind, name in scopes if width < len(indent)]
                functions = [name for kind, name in enclosing if kind == "def"]
                classes = [name for kind, name in enclosing if kind == "class"]
                result.stubbed += [name for name in functions[-1:] if name not in result.stubbed]
                result.classes += [name for name in classes if name not in result.classes]
                result.raises_at_top |= not functions
                out += [indent + stub for stub in STUB]
                region = []
                continue
            match = _DEF.match(line)
            if match:
                width = len(match.group(1))
                scopes = [s for s in scopes if s[0] < width] + [(width, match.group(2), match.group(3))]
            out.append(line)
        else:
            if BEGIN in line:
                raise ValueError(f"{where}, line {number}: {BEGIN!r} inside another solution region")
            if END in line:
                result.solutions.append("\n".join(region))
                region = None
                continue
            region.append(line)
    if region is not None:
        raise ValueError(f"{where}: {BEGIN!r} without a matching {END!r}")
    result.source = "\n".join(out)
    return result


@dataclass
class _Calls:
    top: set[str]  # names called at the cell's top level
    functions: dict[str, set[str]]  # for each function the cell defines, the names it calls
    checks: list[tuple[str, set[str]]]  # top-level calls of check_*: (check name, names in its arguments)


def _parse(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError:  # IPython magics (%matplotlib) are not Python: drop those lines and retry
        return ast.parse("\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!"))))


def _calls(source: str) -> _Calls:
    tree = _parse(source)

    def called(nodes: list[ast.AST]) -> set[str]:
        return {sub.func.id for node in nodes for sub in ast.walk(node)
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name)}

    functions = {node.name: called(node.body) for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    classes = {node.name: called(node.body) for node in tree.body if isinstance(node, ast.ClassDef)}
    top = [node for node in tree.body
           if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    checks = []
    for node in top:
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Call):
                continue
            name = sub.func.id if isinstance(sub.func, ast.Name) else getattr(sub.func, "attr", "")
            if name.startswith("check_"):
                args = list(sub.args) + [k.value for k in sub.keywords]
                checks.append((name, {n.id for a in args for n in ast.walk(a) if isinstance(n, ast.Name)}))
    return _Calls(called(top), {**functions, **classes}, checks)


def points_of(source: str) -> float:
    """A graded cell's points: 1, or the N of a ``# points: N`` line in it."""
    match = _POINTS.search(source)
    return float(match.group(1)) if match else 1.0


@dataclass
class Exercises:
    """The exercise structure of one notebook, by cell index."""

    solution_cells: dict[int, StubbedSource] = field(default_factory=dict)
    graded_cells: dict[int, list[str]] = field(default_factory=dict)  # the check_* names each one calls
    answer_cells: dict[int, float] = field(default_factory=dict)  # written answers graded by hand: their points
    raising_cells: set[int] = field(default_factory=set)  # cells that raise once the solutions are stubs
    stubbed: set[str] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)

    answers: list[str] = field(default_factory=list)  # the model answers removed from the student copy

    @property
    def solutions(self) -> list[str]:
        return [code for stub in self.solution_cells.values() for code in stub.solutions] + self.answers


def exercises(nb: nbformat.NotebookNode, name: str = "notebook") -> Exercises:
    """Read a solution notebook: where the solutions are, which cells grade them, which raise with stubs.

    A cell raises with the stubs if, at its top level, it calls a stubbed function or a notebook function that
    (transitively) calls one, or passes one to a ``check_*`` (a graded cell: the check raises CheckFailed)."""
    found = Exercises()
    parsed: dict[int, _Calls] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            if BEGIN in cell.source or END in cell.source:
                raise ValueError(f"{name}, cell {index}: solution markers are only supported in code cells")
            answer = ANSWER.search(cell.source) if cell.cell_type == "markdown" else None
            if answer:
                found.answer_cells[index] = float(answer.group(1) or 1)
                found.answers.append(cell.source)
            continue
        stubbed = stub_source(cell.source, f"{name}, cell {index}")
        if stubbed.solutions:
            found.solution_cells[index] = stubbed
            found.stubbed |= set(stubbed.stubbed)
            found.classes |= set(stubbed.classes)
            if stubbed.raises_at_top:
                found.raising_cells.add(index)
        parsed[index] = _calls(cell.source)

    raising = set(found.stubbed)
    changed = True
    while changed:  # a function that calls a raising function raises too
        changed = False
        for calls in parsed.values():
            for function, called in calls.functions.items():
                if function not in raising and called & raising:
                    raising.add(function)
                    changed = True
    for index, calls in parsed.items():
        graded = [check for check, names in calls.checks if names & (raising | found.classes)]
        if graded:
            if index in found.solution_cells:
                raise ValueError(f"{name}, cell {index}: a solution and its check {graded[0]}(...) share a cell; "
                                 "put the check in a cell of its own (nbgrader locks and grades it)")
            found.graded_cells[index] = graded
        if calls.top & raising or graded:
            found.raising_cells.add(index)
    return found
