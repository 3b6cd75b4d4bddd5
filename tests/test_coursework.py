"""Student notebooks and nbgrader metadata: generated from the solutions, up to date, free of solutions, and
runnable with the stubs."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pruneviz.coursework.__main__ import main
from pruneviz.coursework.generate import (BEGIN, END, RAISES_TAG, expected_files, generate, render, solution_notebooks,
                                          stale, stamp, student_notebook, stub_source)
from pruneviz.coursework.stamp import checksum, nbgrader_metadata, stamp_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
STUDENT = sorted(p for p in expected_files(NOTEBOOKS) if p.parent.name == "student")


# -- the stub, on small sources -------------------------------------------------------------------------

def test_stub_is_nbgraders_own_at_the_marker_indentation():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\nprint(f)"
    result = stub_source(source)
    assert result.source == ("def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nprint(f)")
    assert result.solutions == ["    return x + y"]
    assert result.stubbed == ["f"] and not result.raises_at_top


def test_stub_finds_the_innermost_enclosing_function_and_its_classes():
    source = ("class Step:\n    def outer(self):\n        def inner():\n            ### BEGIN SOLUTION\n            pass\n"
              "            ### END SOLUTION\n        return inner")
    result = stub_source(source)
    assert "            raise NotImplementedError()" in result.source.split("\n")
    assert result.stubbed == ["inner"] and result.classes == ["Step"]


def test_a_solution_outside_any_function_makes_its_cell_raise():
    assert stub_source(f"{BEGIN}\nx = 3\n{END}").raises_at_top


@pytest.mark.parametrize("source, words", [
    (f"{BEGIN}\nx = 1", "without a matching"),
    (f"x = 1\n{END}", "without a"),
    (f"{BEGIN}\n{BEGIN}\n{END}\n{END}", "inside another"),
])
def test_unbalanced_markers_are_an_error(source, words):
    with pytest.raises(ValueError, match=words):
        stub_source(source, "nb, cell 3")


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    for i, cell in enumerate(nb.cells):
        cell.execution_count = i + 1
        cell.outputs = [nbformat.v4.new_output("stream", text="secret output\n")]
        cell.id = f"cell-{i}"
    return nb


def test_only_cells_that_call_a_stub_at_top_level_are_tagged():
    nb = _notebook(
        "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
        "def g(x):\n    return f(x) + 1",  # defines a caller: does not raise by itself
        "check(f)",  # not a check_*: f is only passed along
        "%matplotlib inline\ny = g(3)",  # calls f through g: raises
        "print(f(2))",  # calls f: raises
        "z = [f, g]",
        "from pruneviz.coursework import check_x\n\ncheck_x(g);",  # a graded check of a stub: raises CheckFailed
        "check_x(len)",  # a check of something the student does not write: neither graded nor raising
    )
    nb.cells[4].metadata["tags"] = ["keep-me"]
    nb.cells[7].metadata["tags"] = [RAISES_TAG]  # the solution shows a failing check on purpose
    student = student_notebook(nb)
    assert student.raising_cells == [3, 4, 6] and student.graded_cells == [6]
    assert [c.metadata.get("tags", []) for c in student.notebook.cells] == [
        [], [], [], [RAISES_TAG], ["keep-me", RAISES_TAG], [], [RAISES_TAG], [RAISES_TAG]]
    assert all(c.outputs == [] and c.execution_count is None for c in student.notebook.cells)
    assert "2 * x" not in render(student.notebook)
    assert nb.cells[0].source.count(BEGIN) == 1  # the solution notebook is not changed


def test_stamped_metadata_marks_solutions_graded_checks_and_locks_the_rest():
    nb = _notebook("import torch", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                   "check_f(f);", "# points: 3\ncheck_f(lambda x: f(x));", "print(1)")
    nb.cells.append(nbformat.v4.new_markdown_cell("# Title"))
    nb.cells[-1].id = "md-1"
    meta = nbgrader_metadata(nb)
    common = {"schema_version": 3, "task": False}
    assert meta == [
        {**common, "grade": False, "grade_id": "cell-cell-0", "locked": True, "solution": False},
        {**common, "grade": False, "grade_id": "f", "locked": False, "solution": True},
        {**common, "grade": True, "grade_id": "check_f", "locked": True, "solution": False, "points": 1},
        {**common, "grade": True, "grade_id": "check_f-2", "locked": True, "solution": False, "points": 3},
        {**common, "grade": False, "grade_id": "cell-cell-4", "locked": True, "solution": False},
        {**common, "grade": False, "grade_id": "cell-md-1", "locked": True, "solution": False},
    ]
    stamped = stamp_notebook(nb)
    assert [c.metadata["nbgrader"] for c in stamped.cells] == meta
    assert stamp_notebook(stamped) == stamped  # idempotent
    assert [c.source for c in stamped.cells] == [c.source for c in nb.cells]  # metadata only
    assert "nbgrader" not in nb.cells[0].metadata  # the input is not changed

    student = student_notebook(stamped).notebook
    for cell, source_meta in zip(student.cells, meta):
        assert {k: v for k, v in cell.metadata["nbgrader"].items() if k not in ("checksum", "cell_type")} == source_meta
        assert cell.metadata["nbgrader"]["checksum"] == checksum(cell)
        assert cell.metadata["deletable"] is False
        assert cell.metadata.get("editable", True) is source_meta["solution"]  # only the answer is editable


def test_a_solution_and_its_check_in_one_cell_are_refused():
    nb = _notebook("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\ncheck_f(f)")
    with pytest.raises(ValueError, match="put the check in a cell of its own"):
        nbgrader_metadata(nb, "03_x.ipynb")


def test_markers_in_markdown_are_refused():
    nb = _notebook("x = 1")
    nb.cells.append(nbformat.v4.new_markdown_cell(f"{BEGIN}\nanswer\n{END}"))
    with pytest.raises(ValueError, match="only supported in code cells"):
        student_notebook(nb, "01_x.ipynb")


def test_generate_and_check_on_a_folder(tmp_path, capsys):
    nb = _notebook("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", "check(f)")
    nbformat.write(nb, tmp_path / "07_topic.ipynb")
    nbformat.write(_notebook("print(1)"), tmp_path / "08_no_exercise.ipynb")
    assert main(["check", "--notebooks", str(tmp_path)]) == 1
    assert "07_topic.ipynb: missing" in capsys.readouterr().out

    solution = tmp_path / "07_topic.ipynb"
    assert stamp(tmp_path) == [solution]  # stamp: the solution notebook only
    assert not (tmp_path / "student").exists() and stamp(tmp_path) == []
    assert main(["generate", "--notebooks", str(tmp_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "student").iterdir()) == ["07_topic.ipynb"]
    assert main(["check", "--notebooks", str(tmp_path)]) == 0
    assert generate(tmp_path) == []  # a second run changes nothing

    edited = tmp_path / "student" / "07_topic.ipynb"
    orphan = tmp_path / "student" / "09_gone.ipynb"
    orphan.write_text(edited.read_text())  # a student notebook generate wrote, whose solution is gone
    edited.write_text(edited.read_text().replace("YOUR CODE HERE", "my answer"))
    theirs = [tmp_path / "student" / "Untitled.ipynb", tmp_path / "student" / "10_extra_handout.ipynb"]
    for path in theirs:  # notebooks generate did not write: an instructor's hand-out, Jupyter's Untitled
        nbformat.write(_notebook("print('mine')"), path)
    unstamped = nbformat.read(solution, as_version=4)
    del unstamped.cells[1].metadata["nbgrader"]  # e.g. a notebook re-executed by a tool that drops metadata
    nbformat.write(unstamped, solution)
    problems = stale(tmp_path)
    assert len(problems) == 3, problems
    assert "07_topic.ipynb: nbgrader metadata out of date" in problems[0]
    assert "differs" in problems[1] and "no solution notebook" in problems[2]
    assert main(["check", "--notebooks", str(tmp_path)]) == 1
    assert sorted(generate(tmp_path)) == [solution, edited, orphan]
    assert not orphan.exists() and stale(tmp_path) == []
    assert all(path.exists() for path in theirs)


# -- the project's own notebooks -------------------------------------------------------------------------

def test_there_are_exercises():
    assert len(solution_notebooks(NOTEBOOKS)) >= 2


def test_committed_notebooks_are_stamped_and_student_notebooks_up_to_date():
    assert stale(NOTEBOOKS) == [], "run: python -m pruneviz.coursework generate"


def test_generation_is_deterministic():
    assert expected_files(NOTEBOOKS) == expected_files(NOTEBOOKS)


def _outside_solutions(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.split("\n"):
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif not inside:
            lines.append(line)
    return lines


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.name)
def test_no_solution_leaks(path):
    if not path.exists():
        pytest.fail(f"{path} is missing: run python -m pruneviz.coursework generate")
    solution = nbformat.read(NOTEBOOKS / path.name, as_version=4)
    student = student_notebook(solution, path.name)
    text = path.read_text(encoding="utf-8")
    assert BEGIN not in text and END not in text
    assert student.solutions, "a solution notebook with markers yields solution code"
    # a line the notebook also shows outside the solutions (e.g. `pruner.prune(ratio)`) gives nothing away
    shown = {line.strip() for cell in solution.cells for line in _outside_solutions(cell.source)}
    for block in student.solutions:
        for line in block.split("\n"):
            if len(line.strip()) > 12 and line.strip() not in shown:  # long enough to be the answer
                assert line.strip() not in text, f"solution line leaked: {line.strip()!r}"
    assert '"outputs": []' in text and '"output_type"' not in text  # outputs (and what they show) are gone
    assert "widget-state" not in text  # nor the widget state saved when the solution ran


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.name)
def test_student_notebook_runs_with_stubs_failing_cleanly(path):
    if not path.exists():
        pytest.fail(f"{path} is missing: run python -m pruneviz.coursework generate")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = {i: o for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
              for o in cell.outputs if o.output_type == "error"}
    tagged = {i for i, cell in enumerate(nb.cells) if RAISES_TAG in cell.metadata.get("tags", [])}
    assert set(errors) == tagged, "exactly the tagged cells raise"
    student = student_notebook(nbformat.read(NOTEBOOKS / path.name, as_version=4))
    graded = set(student.graded_cells)
    assert graded, "every solution notebook grades its exercises"
    assert all(o.ename == ("CheckFailed" if i in graded else "NotImplementedError") for i, o in errors.items()), \
        {i: f"{o.ename}: {o.evalue}" for i, o in errors.items()}
    # each graded check says, once, that the stub is not implemented yet, and nothing else
    for i in graded:
        assert errors[i].evalue.count("not implemented yet") == 1 and "1 problem(s)" in errors[i].evalue, \
            errors[i].evalue
    printed = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "✓" not in printed
