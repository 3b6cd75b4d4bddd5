"""Coursework: autograder checks for the functions students write in the notebooks.

Each ``check_*`` function runs a student's function on cases with known answers and prints a clear pass, or
what is wrong; it returns True or False so a notebook (or a grader) can count passes.

``python -m pruneviz.coursework generate`` writes the student notebooks (solutions replaced by stubs);
``python -m pruneviz.coursework check`` says whether the committed ones are up to date.
"""
from .criteria import check_apoz, check_obd_saliency
from .granularity import check_fine_grained_prune, check_nm_mask, check_row_importance
from .ratio import check_ratio_dict
from .surgery import check_channel_slice, check_mlp_parameters

__all__ = [
    "check_apoz", "check_channel_slice", "check_fine_grained_prune", "check_mlp_parameters", "check_nm_mask",
    "check_obd_saliency", "check_ratio_dict", "check_row_importance",
]
