"""Coursework: the checks of the functions students write in the notebooks, and the notebooks nbgrader grades.

**Writing a check** (in ``pruneviz/coursework/<topic>.py``) with :class:`Check`::

    from .report import Check

    def check_channel_apoz(student_fn):
        check = Check("APoZ of a channel", forbid=[pruneviz.apoz])  # the library's answer: refused
        for case, acts, expected in cases:                           # the lecture's / lab's examples + random
            with check.case(case):
                got = check.run(student_fn, acts,          # a stub or an error ends the case, in words
                                unchanged="changed the activations in place")  # optional purity check
                check.expect(got is not None, "returned None; return one APoZ per channel")
                check.expect(got.shape == expected.shape, f"returned shape {tuple(got.shape)}, ...")
        return check.done()                                # ✓ and True, or raises CheckFailed

The first :meth:`Check.fail` / failed :meth:`Check.expect` of a case is its one problem and ends the case; a stub
(NotImplementedError) or a call into a ``forbid`` function (functions, methods or whole classes; traced with
``sys.setprofile`` while the student's function runs, however deep the call) is one problem for the whole
check. Test each new check with the library's own answer (``tests/test_coursework_report.py``, LIBRARY_ANSWERS). A failed check raises :class:`CheckFailed` (an ``AssertionError``) whose message lists the problems: a
notebook cell ``check_x(student_fn);`` then fails, which is what nbgrader grades. To show a failing check in
prose, catch it: ``try: check_x(wrong) except CheckFailed as e: print(e)``.

**In a solution notebook** ``notebooks/NN_topic.ipynb``: the answer sits between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` inside the function the student writes; a later cell calls ``check_<something>(that_fn)`` at
its top level. Then run ``python -m pruneviz.coursework generate``, which

1. stamps nbgrader's cell metadata into the solution notebooks (metadata only; :mod:`.stamp`): a cell with the
   markers is a solution cell, a cell calling a ``check_*`` on a student function is a locked, graded test cell
   (1 point, or ``# points: N`` in the cell), every other cell is locked (read-only);
2. writes ``notebooks/student/NN_topic.ipynb`` (solutions replaced by stubs, outputs cleared, the same nbgrader
   metadata, cells that raise with the stubs tagged ``raises-exception``; :mod:`.generate`).

``python -m pruneviz.coursework stamp`` does step 1 alone; ``python -m pruneviz.coursework check`` fails when a
solution notebook's metadata or a student copy is out of date. Both are idempotent. ``course/`` holds an
nbgrader course configuration that grades these notebooks.
"""
from .apoz import check_apoz
from .granularity import check_fine_grained_prune, check_nm_mask, check_row_prune
from .obd import check_obd_saliency
from .ratio import check_ratio_dict
from .report import Check, CheckFailed
from .surgery import check_channel_slice, check_mlp_parameters

__all__ = [
    "Check", "CheckFailed",
    "check_apoz", "check_channel_slice", "check_fine_grained_prune", "check_mlp_parameters", "check_nm_mask",
    "check_obd_saliency", "check_ratio_dict", "check_row_prune",
]
