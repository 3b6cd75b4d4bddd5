"""nbgrader configuration for a course built on the pruneviz notebooks (nbgrader 0.9).

Layout, relative to this folder (nbgrader's defaults, spelled out):
    source/<assignment>/NN_topic.ipynb      the instructor's copies of notebooks/NN_topic.ipynb (stamped)
    release/<assignment>/                   what `nbgrader generate_assignment <assignment>` writes for students
    submitted/<student>/<assignment>/       what students hand in (`nbgrader collect`, or copied there)
    autograded/, feedback/, gradebook.db    written by `nbgrader autograde` and `nbgrader generate_feedback`
See course/README.md for the commands.
"""
import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "pruneviz"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")

# Only the notebooks are the assignment (not checkpoints or caches next to them).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "student"]

# Some cells train or scan a network: nbgrader's default of 30 s per cell is too short (notebook 09's longest
# cells took over a minute on a loaded 2-core machine). Each cell, not each notebook, gets this long.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True

# The stub that replaces each ### BEGIN SOLUTION ... ### END SOLUTION region: nbgrader's default, written out
# because `python -m pruneviz.coursework generate` writes the same one into notebooks/student/.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# ... and the one that replaces a written answer (a markdown cell with <!-- answer; points: N -->)
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# The solution notebooks carry nbgrader's cell metadata (python -m pruneviz.coursework stamp): keep it enforced.
c.ClearSolutions.enforce_metadata = True
