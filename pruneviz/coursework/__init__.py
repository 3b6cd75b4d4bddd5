"""Coursework: autograder checks for the functions students write in the notebooks.

Each ``check_*`` function runs a student's function on cases with known answers and prints a clear pass, or
what is wrong; it returns True or False so a notebook (or a grader) can count passes.
"""
