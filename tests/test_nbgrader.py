"""The real nbgrader, end to end, on two of the notebooks: generate the assignment from the stamped solution
notebooks with the shipped course configuration, autograde a solved, an unsolved and a wrong submission, assert
the points. Five notebook runs: about a minute and a half on 2 quiet cores, up to 4 minutes under load (02 and
05 are the quickest notebooks with exercises)."""
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from pruneviz.coursework.generate import render, solution_notebooks, student_notebook
from pruneviz.coursework.stamp import checksum, stamp_notebook

pytest.importorskip("nbgrader")
from nbgrader.api import Gradebook  # noqa: E402
from nbgrader.nbgraderformat import MetadataValidator  # noqa: E402
from nbgrader.utils import compute_checksum  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("02_magnitude", "05_apoz")
ASSIGNMENT = "pruning"


def nbgrader(course: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def submit(course: Path, student: str, notebooks: dict[str, nbformat.NotebookNode]) -> None:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    for name, nb in notebooks.items():
        (folder / f"{name}.ipynb").write_text(render(nb), encoding="utf-8")


FORGOT_ABS = '''def fine_grained_prune(tensor, sparsity):
    """Forgets abs(): prunes the most negative weights, not the smallest magnitudes."""
    k = round(sparsity * tensor.numel())
    if k == 0:
        return tensor.clone()
    threshold = tensor.flatten().kthvalue(k).values
    return torch.where(tensor > threshold, tensor, torch.zeros_like(tensor))'''


def forget_abs(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The solved notebook, but with a fine_grained_prune that forgets the absolute value."""
    nb = copy.deepcopy(solution)
    answers = [cell for cell in nb.cells if cell.metadata["nbgrader"]["grade_id"] == "fine_grained_prune"]
    assert len(answers) == 1, "notebook 02 has no fine_grained_prune exercise any more: update this test"
    answers[0].source = FORGOT_ABS
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course)
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    solutions = {name: stamp_notebook(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4), name)
                 for name in NOTEBOOKS}
    for name, nb in solutions.items():
        (source / f"{name}.ipynb").write_text(render(nb), encoding="utf-8")

    nbgrader(course, "generate_assignment", ASSIGNMENT)
    submit(course, "solved", solutions)
    submit(course, "unsolved", {name: student_notebook(nb).notebook for name, nb in solutions.items()})
    submit(course, "wrong", {"02_magnitude": forget_abs(solutions["02_magnitude"])})  # 05 not handed in
    nbgrader(course, "autograde", ASSIGNMENT)
    return course, solutions


def scores(course: Path, student: str) -> dict[str, tuple[float, float]]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        return {nb.name: (nb.score, nb.max_score) for nb in submission.notebooks}


def assert_released_as_ours(released_dir: Path, solutions: dict[str, nbformat.NotebookNode]) -> None:
    for name, solution in solutions.items():
        released = nbformat.read(released_dir / f"{name}.ipynb", as_version=4)
        ours = student_notebook(solution).notebook
        assert len(released.cells) == len(ours.cells), name
        for theirs, mine in zip(released.cells, ours.cells):
            assert theirs.source == mine.source, name
            assert theirs.metadata["nbgrader"] == mine.metadata["nbgrader"], name  # ids, points, checksums
            for flag in ("editable", "deletable"):
                assert theirs.metadata.get(flag) == mine.metadata.get(flag), (name, flag, mine.source[:60])


def test_the_release_is_our_student_copy(graded):
    course, solutions = graded
    assert_released_as_ours(course / "release" / ASSIGNMENT, solutions)


def test_every_notebook_is_accepted_by_nbgrader_and_released_as_our_student_copy(tmp_path):
    """generate_assignment on all the solution notebooks (no execution: seconds), and nbgrader's own metadata
    validator and checksum on every stamped and student notebook."""
    shutil.copy(ROOT / "course" / "nbgrader_config.py", tmp_path)
    source = tmp_path / "source" / "all"
    source.mkdir(parents=True)
    solutions = {}
    for path in solution_notebooks(ROOT / "notebooks"):
        solutions[path.stem] = stamp_notebook(nbformat.read(path, as_version=4), path.name)
        (source / path.name).write_text(render(solutions[path.stem]), encoding="utf-8")
        student = student_notebook(solutions[path.stem], path.name).notebook
        for nb in (solutions[path.stem], student):
            MetadataValidator().validate_nb(nb)  # raises on a missing grade_id, points, a duplicate id...
        for cell in student.cells:
            assert cell.metadata["nbgrader"]["checksum"] == checksum(cell) == compute_checksum(cell)
    assert len(solutions) >= 2
    nbgrader(tmp_path, "generate_assignment", "all")
    assert_released_as_ours(tmp_path / "release" / "all", solutions)


def points(solutions: dict[str, nbformat.NotebookNode]) -> dict[str, float]:
    """Each notebook's total: the points of its graded cells, as stamped."""
    return {name: sum(float(c.metadata["nbgrader"].get("points", 0)) for c in nb.cells
                      if c.metadata["nbgrader"]["grade"]) for name, nb in solutions.items()}


def test_a_solved_submission_gets_full_marks(graded):
    course, solutions = graded
    total = points(solutions)
    assert all(total.values())
    assert scores(course, "solved") == {name: (total[name], total[name]) for name in NOTEBOOKS}


def test_an_unsolved_submission_gets_nothing(graded):
    course, solutions = graded
    total = points(solutions)
    assert scores(course, "unsolved") == {name: (0.0, total[name]) for name in NOTEBOOKS}


def test_a_wrong_answer_loses_its_point_and_is_told_why(graded):
    course, solutions = graded
    total = points(solutions)
    # only fine_grained_prune's check fails (it loses that cell's points); 05 was not handed in
    lost = sum(float(c.metadata["nbgrader"].get("points", 0)) for c in solutions["02_magnitude"].cells
               if c.metadata["nbgrader"]["grade"] and "check_fine_grained_prune(" in c.source)
    assert lost >= 1
    assert scores(course, "wrong") == {"02_magnitude": (total["02_magnitude"] - lost, total["02_magnitude"]),
                                       "05_apoz": (0.0, total["05_apoz"])}
    nb = nbformat.read(course / "autograded" / "wrong" / ASSIGNMENT / "02_magnitude.ipynb", as_version=4)
    errors = [o for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade")
              for o in cell.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "CheckFailed"
    assert "prune the smallest |w| first" in errors[0].evalue, errors[0].evalue
