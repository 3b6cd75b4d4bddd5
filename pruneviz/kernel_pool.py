"""Lecture mode's pool of preheated kernels kept usable: a kernel that died is taken out and replaced.

Voila keeps the kernels it ran the notebook in ahead of time in a list per notebook and hands the first to the
next visitor without looking at it. A kernel that died there (killed, out of memory, a crash) is restarted empty
by Jupyter's restarter, and the visitor who gets it sees the page's text but never its widgets: their models
lived in the kernel that died. Voila has no hook for this (0.5), so a :class:`PoolKeeper` looks at the pool twice
a second: it listens for each kernel's restart and takes out of the pool a kernel that restarted or whose start
or run failed, shuts it down and asks Voila to fill the pool again at once.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

CHECK_SECONDS = 0.5
# a notebook that cannot run at all would otherwise be replaced forever: after this many replacements in a row
# with no kernel run to the end in between, the keeper says so and stops
MAX_REPLACEMENTS_IN_A_ROW = 6


class PoolKeeper:
    """Watches ``manager._pools`` (Voila's ``VoilaKernelManager``: notebook -> list of futures of
    ``{"kernel_id", "task", ...}``) and replaces what a visitor could not use."""

    def __init__(self, manager: Any, log: logging.Logger | None = None):
        self.manager = manager
        self.log = log or logging.getLogger(__name__)
        self.replaced: list[str] = []  # why each replaced kernel was unusable, in order
        self._watched: set[str] = set()
        self._restarted: set[str] = set()
        self._replacements: set[asyncio.Future] = set()  # futures this keeper asked for
        self._in_a_row = 0
        self._shutdowns: set[asyncio.Task] = set()
        self.gave_up = False

    def watch_new_kernels(self) -> None:
        """Listen for the restart (and final death) of every kernel not seen yet."""
        for kernel_id in list(self.manager.list_kernel_ids()):
            if kernel_id in self._watched:
                continue
            self._watched.add(kernel_id)
            for event in ("restart", "dead"):
                self.manager.add_restart_callback(kernel_id, functools.partial(self._restarted.add, kernel_id), event)

    def problem(self, future: asyncio.Future) -> str | None:
        """Why the pool item behind ``future`` is unusable, or None (usable, or still being prepared)."""
        if not future.done():
            return None
        if future.cancelled():
            return "its preparation was cancelled"
        if future.exception() is not None:
            return f"the kernel did not start ({future.exception()!r})"
        content = future.result()
        kernel_id = content.get("kernel_id")
        if kernel_id in self._restarted:
            return f"kernel {kernel_id} died and was restarted empty (its widgets were gone)"
        if kernel_id not in self.manager.list_kernel_ids():
            return f"kernel {kernel_id} is gone"
        task = content.get("task")
        if task is not None and task.done() and not task.cancelled() and _dead_kernel(task.exception()):
            return f"kernel {kernel_id} died while running the notebook ({task.exception()!r})"
        return None

    def check(self) -> list[str]:
        """One look at every pool: take out what is unusable, shut it down, refill. Returns the reasons.
        Runs in the server's event loop (the shutdowns are tasks of it)."""
        if self.gave_up:
            return []
        self.watch_new_kernels()
        reasons = []
        for notebook, pool in list(self.manager._pools.items()):
            taken_out = []
            for future in list(pool):
                reason = self.problem(future)
                if reason is None:
                    if future in self._replacements and future.done() and _rendered(future):
                        self._replacements.discard(future)
                        self._in_a_row = 0  # a replacement ran the notebook: the failures were not for good
                    continue
                pool.remove(future)
                self._replacements.discard(future)
                taken_out.append(reason)
                self._shut_down(future)
                self.log.warning("a preheated kernel of %s was unusable: %s; starting another", notebook, reason)
            if not taken_out:
                continue
            reasons += taken_out
            self._in_a_row += len(taken_out)
            if self._in_a_row > MAX_REPLACEMENTS_IN_A_ROW:
                self.gave_up = True
                self.log.error("%d preheated kernels of %s in a row were unusable (last: %s): not replacing them "
                               "any more; a visitor now waits for a run of the notebook", self._in_a_row, notebook,
                               taken_out[-1])
                break
            before = set(pool)
            self.manager.fill_if_needed(delay=0, notebook_name=notebook)
            self._replacements.update(f for f in pool if f not in before)
        self.replaced.extend(reasons)
        return reasons

    def _shut_down(self, future: asyncio.Future) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        kernel_id = future.result().get("kernel_id")
        if kernel_id in self.manager.list_kernel_ids():
            # kept, so the task is not collected before it ran (asyncio holds tasks weakly)
            self._shutdowns.add(task := asyncio.get_running_loop().create_task(
                _quietly(self.manager.shutdown_kernel(kernel_id, now=True), self.log)))
            task.add_done_callback(self._shutdowns.discard)

    async def run(self) -> None:
        """Check the pools every CHECK_SECONDS until the server stops."""
        while True:
            try:
                self.check()
            except Exception:  # a bug here must not take the server down: say it and go on
                self.log.exception("checking the pool of preheated kernels failed")
            await asyncio.sleep(CHECK_SECONDS)


def _rendered(future: asyncio.Future) -> bool:
    task = future.result().get("task")
    return task is None or task.done()


def _dead_kernel(error: BaseException | None) -> bool:
    """nbclient's DeadKernelError (by name: nbclient is Voila's dependency, not the kit's)."""
    return error is not None and type(error).__name__ == "DeadKernelError"


async def _quietly(awaitable, log: logging.Logger) -> None:
    try:
        await awaitable
    except Exception as error:  # the kernel may be gone already
        log.debug("shutting down an unusable kernel: %r", error)
