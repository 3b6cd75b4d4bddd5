"""Coursework: autograder checks for the functions students write in the notebooks.

Each ``check_*`` function runs a student's function on cases with known answers and prints a clear pass, or
what is wrong; it returns True or False so a notebook (or a grader) can count passes.

``python -m pruneviz.coursework generate`` writes the student notebooks (solutions replaced by stubs);
``python -m pruneviz.coursework check`` says whether the committed ones are up to date.
"""
from .granularity import check_fine_grained_prune, check_nm_mask, check_row_importance

__all__ = ["check_fine_grained_prune", "check_nm_mask", "check_row_importance"]
