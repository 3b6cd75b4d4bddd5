"""Work a widget does when its controls rest: evaluation in slices, between which the kernel takes newer moves.

In Jupyter, a widget's observers run in the kernel's event loop (ipykernel runs asyncio's): a slider move that
evaluated a large model would hold the loop for seconds, and every move the page sent meanwhile would then run
in turn, each to its end. Here a move only re-prunes and draws (the first frame), then :meth:`Background.touch`
drops the work in flight and starts a rest timer; when no move came for :data:`REST_SECONDS`, the widget's
plan (a generator: the accuracy at the value shown, then the curve) runs one slice at a time, each slice a
callback of the loop, so a newer move is handled after at most one slice.

Cooperative slices in the loop's own thread rather than a worker thread: nothing evaluates while a cell or a
move changes the model, and a slice always ends with the model as the user left it (see
:meth:`~pruneviz.widgets.session.PruningSession.evaluation`), so no lock guards the model.

Where no loop runs (a script, a test, a benchmark), :class:`ManualScheduler` holds the work: nothing runs until
something reads a result (``readout_text()``, ``settle()``), which computes it at once in the foreground.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Protocol

REST_SECONDS = 0.3  # no move for this long: the slider rests, its value is evaluated
YIELD_SECONDS = 0.001  # between slices: a delay (not call_soon) so the loop reads the messages waiting first


class Handle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """What runs a callback later: ``call_later(delay, callback) -> handle`` with ``handle.cancel()``
    (asyncio's event loop has this shape)."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle: ...


class _Call:
    def __init__(self, scheduler: ManualScheduler, delay: float, callback: Callable[[], None]):
        self.scheduler, self.delay, self.callback, self.cancelled = scheduler, delay, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """Callbacks kept until :meth:`run` is called: the default outside an event loop, and the deterministic
    scheduler of tests (``explore(..., scheduler=ManualScheduler())``)."""

    def __init__(self):
        self.calls: list[_Call] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Call:
        call = _Call(self, delay, callback)
        self.calls.append(call)
        return call

    @property
    def pending(self) -> int:
        return sum(not c.cancelled for c in self.calls)

    def run(self, limit: int = 100_000) -> int:
        """Run the waiting callbacks, and those they schedule, until none is left (at most ``limit``); returns
        how many ran. Delays are not waited: only their order counts."""
        ran = 0
        while ran < limit:
            live = [c for c in self.calls if not c.cancelled]
            if not live:
                break
            call = min(live, key=lambda c: c.delay)  # a rest timer runs after the slices already due
            self.calls.remove(call)
            self.calls = [c for c in self.calls if not c.cancelled]
            call.cancelled = True
            call.callback()
            ran += 1
        return ran


def default_scheduler() -> Scheduler:
    """The running asyncio loop (ipykernel's, where widgets live), else a :class:`ManualScheduler`."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return ManualScheduler()


class Background:
    """Runs ``plan()`` (a generator yielding between slices, or None: nothing to do) when the controls rest.

    ``on_error``: called with an exception the plan raised (the plan is then dropped until the next touch)."""

    def __init__(self, plan: Callable[[], Iterator[None] | None], scheduler: Scheduler | None = None,
                 on_error: Callable[[BaseException], None] | None = None, rest: float = REST_SECONDS):
        self.plan = plan
        self.scheduler = scheduler if scheduler is not None else default_scheduler()
        self.on_error = on_error
        self.rest = rest
        self._work: Iterator[None] | None = None
        self._handle: Handle | None = None
        self.slices = 0  # slices run (tests)

    def touch(self) -> None:
        """A move: the work in flight is dropped (it kept its finished batches), the rest timer starts again."""
        self.cancel()
        self._handle = self.scheduler.call_later(self.rest, self._start)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._work is not None:
            self._work.close()
            self._work = None

    @property
    def busy(self) -> bool:
        """True while work waits for the rest timer or runs."""
        return self._handle is not None or self._work is not None

    def _start(self) -> None:
        self._handle = None
        self._work = self.plan()
        self._tick()

    def _tick(self) -> None:
        self._handle = None
        if self._work is None:
            return
        try:
            next(self._work)
        except StopIteration:
            self._work = None
            return
        except Exception as error:  # shown by the widget: a callback of the loop must not raise
            self._work = None
            if self.on_error is not None:
                self.on_error(error)
            return
        self.slices += 1
        self._handle = self.scheduler.call_later(YIELD_SECONDS, self._tick)
