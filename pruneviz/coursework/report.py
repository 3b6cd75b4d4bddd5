"""How every check speaks and judges: ✓ on a pass; on a fail, an AssertionError listing one problem per case.

A check is written with :class:`Check`::

    def check_fine_grained_prune(fn):
        check = Check("fine-grained pruning", forbid=[pruneviz.prune_tensor, pruneviz.tensor_mask])
        for case, tensor, sparsity in cases:
            with check.case(case):
                got = check.run(fn, tensor, sparsity,  # ends the case if fn raises (or is still a stub)
                                unchanged="changed the input tensor in place; work on a copy")
                if got is None:
                    check.fail("returned None; return the pruned tensor")  # records it, ends the case
                ...
        return check.done()  # prints ✓ and returns True, or raises CheckFailed with every problem

Why it is shaped this way:

- **Raises on failure.** nbgrader counts a graded cell as failed only if it raises; a check that printed ✗ and
  returned False gave an unsolved notebook full marks. :class:`CheckFailed` is an ``AssertionError`` whose message
  is the check's words, so the student (and nbgrader's feedback) read what is wrong.
- **One problem per case.** :meth:`Check.fail` records the problem and leaves the ``with check.case(...)`` block,
  so a case reports its first problem only; a stub is one problem for the whole check ("not implemented yet"),
  not also "returned None".
- **No delegating to a library's answer: one policy, for every check** (:data:`POLICY`). An exercise is
  written with torch (and numpy, or scikit-learn where its prompt names it). The student's function may not
  call pruneviz's pruning code (every module but the plumbing in :data:`PLUMBING`: data, models, evaluation,
  plots, widgets), public or private (``pruneviz.selection._ranks`` as much as ``pruneviz.prune_tensor``), nor
  ``torch.nn.utils.prune`` (PyTorch's own pruning). A check widens it only for what its exercise hands the
  student (``allow=``: 00's exercise is to *use* ``Pruner``); ``forbid=`` adds more. Calls are watched with a
  profiler in the calling thread and in every thread started while the function runs (a worker thread is
  still the student's function); a call made from inside an allowed function is that function's business.
"""
from __future__ import annotations

import copy
import functools
import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any, NoReturn

import torch
from torch import nn


POLICY = ("write it yourself with torch (numpy, or scikit-learn where the exercise names it): no pruneviz pruning "
          "code, public or private, nor the checker's own answers (pruneviz.coursework), and no "
          "torch.nn.utils.prune; the check cannot grade the library")

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../pruneviz
# pruneviz modules that compute no part of any exercise's answer: loading data and models, evaluating, drawing
PLUMBING = ("data.py", "device.py", "errors.py", "evaluation.py", "zoo", "plot", "widgets", "coursework",
            "notebooks", "lecture.py", "timing.py", "snapshot.py", "__init__.py")


_DECORATOR_WRAPPER = (os.path.join(_PACKAGE, "snapshot.py"), "wrapper")


def _transparent(code: CodeType) -> bool:
    """The kit's decorator wrapper (``snapshot.analysis``: one code object shared by every analysis), which
    is neither the answer nor its caller: the function it wraps is judged, by its own code."""
    return (os.path.abspath(code.co_filename), code.co_name) == _DECORATOR_WRAPPER


@functools.lru_cache(maxsize=4096)
def _plumbing_file(filename: str) -> bool:
    """True for a pruneviz plumbing module other than the checker itself (data, evaluation, zoo...)."""
    path = os.path.abspath(filename)
    if not path.startswith(_PACKAGE + os.sep):
        return False
    top = os.path.relpath(path, _PACKAGE).split(os.sep)[0]
    return top in PLUMBING and top != "coursework"


@functools.lru_cache(maxsize=4096)
def _checker_file(filename: str) -> str | None:
    """``pruneviz.coursework.<module>`` when ``filename`` is the checker's own code, else None."""
    path = os.path.abspath(filename)
    folder = os.path.join(_PACKAGE, "coursework") + os.sep
    return "pruneviz.coursework." + path[len(folder):-3].replace(os.sep, ".") if path.startswith(folder) else None


def _checker_answer(code: CodeType) -> str | None:
    """The name of a checker function a student's function must not call: a function at the top level of a
    ``pruneviz.coursework`` module (a check's reference answer: ``reference_apoz``, ``hessian_diagonal``...).
    What a check hands the student (a loss function, a model's forward) is defined inside the check, a nested
    function or a lambda, which the student's function may call."""
    module = _checker_file(code.co_filename)
    if module is None:
        return None
    top = getattr(sys.modules.get(module), code.co_name, None)
    return f"{module}.{code.co_name}" if getattr(inspect.unwrap(top), "__code__", None) is code else None


@functools.lru_cache(maxsize=4096)
def _library_file(filename: str) -> str | None:
    """``pruneviz.<module>`` (or ``torch.nn.utils.prune``) when ``filename`` holds answer code, else None."""
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE + os.sep):
        inner = os.path.relpath(path, _PACKAGE)
        if inner.split(os.sep)[0] in PLUMBING:
            return None
        return "pruneviz." + inner[:-3].replace(os.sep, ".") if inner.endswith(".py") else None
    if path.endswith(os.path.join("torch", "nn", "utils", "prune.py")):
        return "torch.nn.utils.prune"
    return None


class CheckFailed(AssertionError):
    """A check found problems; the message lists them in words (nbgrader shows it as the cell's feedback).

    Shown as the list only: IPython would print a traceback through the grader's own files above it; its
    ``_render_traceback_`` hook makes IPython (and so nbgrader's feedback) show the message alone."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook: what to print instead of a traceback
        return [str(self)]


class _CaseOver(Exception):
    """Ends the current case after its one problem was recorded (never escapes ``Check.case``)."""


def _public_name(fn: Callable) -> str:
    """``pruneviz.prune_tensor`` when the package exports it under that name, else ``module.qualname``."""
    import pruneviz

    name = getattr(fn, "__name__", repr(fn))
    if getattr(pruneviz, name, None) is fn:
        return f"pruneviz.{name}"
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', name)}"


def _public_alias(module: str, name: str) -> str | None:
    """``pruneviz.name`` when the package exports the function under that name."""
    import pruneviz

    fn = getattr(pruneviz, name, None)
    return f"pruneviz.{name}" if fn is not None and getattr(fn, "__module__", None) == module else None


def _codes(target: Any) -> Iterator[CodeType]:
    """The code objects that run when ``target`` (a function, method or class) is used."""
    if inspect.isclass(target):
        for value in vars(target).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            elif isinstance(value, property):
                value = value.fget
            if inspect.isfunction(value):
                yield from _codes(value)
        return
    target = inspect.unwrap(getattr(target, "__func__", target))
    code = getattr(target, "__code__", None)
    if code is None:
        raise TypeError(f"forbid= takes Python functions, methods or classes; got {target!r}")
    yield code


def _snapshot(value: Any) -> Any:
    """A copy of what a student's function could change in place."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, nn.Module):
        return {k: v.detach().clone() for k, v in value.state_dict().items()}
    if hasattr(value, "copy") and hasattr(value, "equals"):  # a pandas DataFrame or Series
        return value.copy()
    if type(value).__eq__ is object.__eq__:  # compared by identity: a copy would never be "equal"
        return None
    try:
        return copy.deepcopy(value)
    except Exception:  # not copyable (a generator, a lock...): nothing to compare
        return None


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:  # nothing that can be compared
        return True
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "equals"):
        return bool(a.equals(b))
    try:
        return bool(a == b)
    except Exception:
        return True


class Check:
    """One check of a student's function: its cases, their problems (one each), and the verdict."""

    def __init__(self, name: str, *, forbid: Iterable[Callable] = (), allow: Iterable[Callable] = ()):
        self.name = name
        self.problems: list[str] = []
        self._forbidden: dict[CodeType, str] = {code: _public_name(fn) for fn in forbid for code in _codes(fn)}
        self._allowed: set[CodeType] = {code for fn in allow for code in _codes(fn)}
        self._root: FrameType | None = None
        self._entries: list[tuple[str | None, str]] = []  # (case, message), for saying one cause once
        self._case: str | None = None
        self._open = False  # inside a `with check.case(...)` block
        self._stopped = False  # a stub or a delegation: nothing more to learn
        self._returned = 0  # calls of the student's function that returned

    @contextmanager
    def case(self, description: str) -> Iterator[None]:
        """One case: the first :meth:`fail` inside it is recorded and ends it; the check goes on."""
        self._case, self._open = description, True
        try:
            yield
        except _CaseOver:
            pass
        finally:
            self._case, self._open = None, False

    def fail(self, message: str) -> NoReturn:
        """Record what is wrong (prefixed with the case) and end the case."""
        self.problems.append(f"{self._case}: {message}" if self._case else message)
        self._entries.append((self._case, message))
        if not self._open:  # a mistake in the check, not in the student's code
            raise RuntimeError(f"check {self.name!r}: fail/expect/run outside a `with check.case(...)` block")
        raise _CaseOver

    def _end_case(self) -> NoReturn:
        if not self._open:
            raise RuntimeError(f"check {self.name!r}: run outside a `with check.case(...)` block")
        raise _CaseOver

    def expect(self, condition: object, message: str) -> None:
        """:meth:`fail` with ``message`` unless ``condition`` holds."""
        if not condition:
            self.fail(message)

    def run(self, fn: Callable, *args: Any, unchanged: str | None = None, **kwargs: Any) -> Any:
        """Call the student's function. A raised exception ends the case with one problem. Two answers end the
        whole check with one problem, since every other case would repeat it: a stub (NotImplementedError:
        "not implemented yet") and a call into a forbidden library function.

        ``unchanged="..."``: the arguments (tensors, modules' state, DataFrames, anything copyable) must come
        back as they were; if not, that message is the case's problem."""
        if self._stopped:
            self._end_case()  # already told; the other cases would only repeat it
        before = [_snapshot(a) for a in (*args, *kwargs.values())] if unchanged else []
        who = getattr(fn, "__name__", "")
        who = who if who.isidentifier() else "your function"
        result, error, used = self._traced(fn, args, kwargs)
        if used:  # said first: a delegation that then failed is still a delegation
            self._stopped = True
            message = f"{who} calls {used}, the library's own answer to this exercise: {POLICY}"
            self.problems.append(message)
            self._entries.append((None, message))
            self._end_case()
        if isinstance(error, NotImplementedError):
            self._stopped = True
            if not self._returned:  # a stub: the case it happened on does not matter
                self._case = None
                self.fail(f"{who} is not implemented yet (it still raises NotImplementedError)")
            self.fail(f"{who} raised NotImplementedError; the cases after this one were not run")
        if error is not None:  # any error in student code is a problem, with its type and message
            self.fail(f"raised {type(error).__name__}: {error}")
        if unchanged and not all(_same(b, _snapshot(a)) for b, a in zip(before, (*args, *kwargs.values()))):
            self.fail(unchanged)
        self._returned += 1
        return result

    def _forbidden_call(self, frame: FrameType) -> str | None:
        """The name of the forbidden code ``frame`` runs, unless an allowed function called it."""
        code = frame.f_code
        if code in self._allowed or _transparent(code):
            return None
        name = self._forbidden.get(code)
        if name is None:
            module = _library_file(code.co_filename)
            if module is None:
                name = _checker_answer(code)
                if name is None:
                    return None
            else:
                name = f"{module}.{code.co_qualname if hasattr(code, 'co_qualname') else code.co_name}"
                if module != "torch.nn.utils.prune" and not code.co_name.startswith("_"):
                    name = _public_alias(module, code.co_name) or name
        caller = frame.f_back
        while caller is not None and caller is not self._root:  # up to the checker's call of the function
            if _transparent(caller.f_code):
                caller = caller.f_back
                continue
            if (caller.f_code in self._allowed or _plumbing_file(caller.f_code.co_filename)
                    or _checker_file(caller.f_code.co_filename)):
                return None  # an allowed function's (or pruneviz.evaluate's, or the checker's) own business
            if _library_file(caller.f_code.co_filename) is not None or caller.f_code in self._forbidden:
                return None  # the outermost library call is the one to name; it was seen already
            caller = caller.f_back
        return name

    def _traced(self, fn: Callable, args: tuple, kwargs: dict) -> tuple[Any, Exception | None, str | None]:
        """``fn(*args, **kwargs)``: its result, the exception it raised (or None) and the first forbidden
        function it called (or None), in this thread or any thread started meanwhile."""
        seen: list[str] = []
        previous, previous_threads = sys.getprofile(), threading.getprofile()
        self._root = sys._getframe()  # the walk up from a library call stops here: above is the checker

        def profile(frame: FrameType, event: str, arg: Any) -> None:
            if event == "call" and not seen:
                name = self._forbidden_call(frame)
                if name is not None:
                    seen.append(name)

        def chained(frame: FrameType, event: str, arg: Any) -> None:
            profile(frame, event, arg)
            if previous is not None:
                previous(frame, event, arg)

        sys.setprofile(chained)
        threading.setprofile(profile)  # threads started by the student's function (a ThreadPoolExecutor...)
        try:
            return fn(*args, **kwargs), None, (seen[0] if seen else None)
        except Exception as err:  # the student's error, judged by run()
            return None, err, (seen[0] if seen else None)
        finally:
            sys.setprofile(previous)
            threading.setprofile(previous_threads)

    def _lines(self) -> list[str]:
        """The verdict's lines: a header counting the distinct causes, then one line per cause."""
        if len(self._entries) == len(self.problems):
            causes = _grouped(self._entries)
        else:  # problems set directly (report()): as given
            causes = list(self.problems)
        cases = len(self.problems)
        count = f"{len(causes)} problem(s)" + (f" in {cases} cases" if cases != len(causes) else "")
        return [f"✗ {self.name}: {count}"] + [f"  - {c}" for c in causes]

    def done(self) -> bool:
        """Print ``✓ name`` and return True, or raise :class:`CheckFailed` listing the problems."""
        __tracebackhide__ = True  # IPython and pytest hide this frame: the student sees the words, not us
        if self.problems:
            raise CheckFailed("\n".join(self._lines()))
        print(f"✓ {self.name}: all checks passed")
        return True


def _grouped(entries: list[tuple[str | None, str]]) -> list[str]:
    """One line per cause: a message repeated in several cases is said once, with how many and which (an
    in-place bug repeated over eight cases would hide the two other mistakes below it)."""
    order: dict[str, list[str | None]] = {}
    for case, message in entries:
        order.setdefault(message, []).append(case)
    lines = []
    for message, cases in order.items():
        named = [c for c in cases if c]
        if len(cases) == 1:
            lines.append(f"{named[0]}: {message}" if named else message)
        else:
            shown = "; ".join(named[:3]) + (f"; and {len(named) - 3} more" if len(named) > 3 else "")
            lines.append(f"in {len(cases)} cases ({shown}): {message}")
    return lines


def report(name: str, problems: list[str]) -> bool:
    """Print ``✓ name`` and return True when ``problems`` is empty, else raise :class:`CheckFailed` with them."""
    __tracebackhide__ = True
    check = Check(name)
    check.problems = list(problems)
    return check.done()


def call(fn: Callable, *args, problems: list[str], case: str, **kwargs):
    """Older form of :meth:`Check.run`: call a student's function; a raised exception becomes a problem in
    ``problems`` and the call returns None. New checks use :class:`Check`, which also ends the case."""
    check = Check("")
    with check.case(case):
        return check.run(fn, *args, **kwargs)
    problems += check.problems
    return None
