"""Lecture mode's pool keeper against a stand-in for Voila's kernel manager: every way a preheated kernel becomes
unusable (it died and was restarted empty, it is gone, its start failed, it died during the run) takes it out of
the pool and starts another at once; usable and still-running kernels stay; a notebook that can never run stops
the replacing with an error said once. The real thing (Voila, a killed kernel, two visitors in Chromium) is
tests/e2e/test_lecture.py."""
from __future__ import annotations

import asyncio
import logging

import pytest

from pruneviz import kernel_pool
from pruneviz.kernel_pool import PoolKeeper


class DeadKernelError(RuntimeError):
    """Named as nbclient's."""


class FakeManager:
    """The parts of Voila's VoilaKernelManager the keeper uses."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int = 2):
        self.loop, self.size = loop, size
        self._pools: dict[str, list[asyncio.Future]] = {"nb.ipynb": []}
        self.kernels: set[str] = set()
        self.callbacks: dict[tuple[str, str], list] = {}
        self.shut: list[str] = []
        self.fills = 0
        self.next_start_fails = False
        self._count = 0

    def list_kernel_ids(self) -> list[str]:
        return sorted(self.kernels)

    def add_restart_callback(self, kernel_id, callback, event="restart"):
        self.callbacks.setdefault((kernel_id, event), []).append(callback)

    def restart(self, kernel_id: str, event: str = "restart") -> None:
        for callback in self.callbacks.get((kernel_id, event), []):
            callback()

    async def shutdown_kernel(self, kernel_id, now=False):
        self.kernels.discard(kernel_id)
        self.shut.append(kernel_id)

    def get_pool_size(self, notebook: str) -> int:
        return len(self._pools.get(notebook, []))

    def item(self, *, rendered: bool = True, task_error: BaseException | None = None) -> asyncio.Future:
        """A pool item as Voila makes it: a future of {kernel_id, task}, the kernel started."""
        future = self.loop.create_future()
        if self.next_start_fails:
            future.set_exception(RuntimeError("no kernel spec"))
            return future
        self._count += 1
        kernel_id = f"k{self._count}"
        self.kernels.add(kernel_id)
        task = self.loop.create_future()
        if task_error is not None:
            task.set_exception(task_error)
        elif rendered:
            task.set_result(None)
        future.set_result({"kernel_id": kernel_id, "task": task})
        return future

    def fill_if_needed(self, delay=None, notebook_name=None, **kwargs):
        self.fills += 1
        pool = self._pools[notebook_name]
        while len(pool) < self.size:
            pool.append(self.item())


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def kernel_ids(manager: FakeManager) -> list:
    return [f.result()["kernel_id"] if f.done() and f.exception() is None else "failed"
            for f in manager._pools["nb.ipynb"]]


def check(keeper: PoolKeeper, loop) -> list[str]:
    """One look of the keeper in the event loop, as the server runs it, and the shutdowns it started."""
    async def look():
        reasons = keeper.check()
        await asyncio.sleep(0)
        return reasons
    return loop.run_until_complete(look())


@pytest.mark.parametrize("event", ["restart", "dead"])
def test_a_kernel_that_died_in_the_pool_is_replaced_and_shut_down(loop, event):
    manager = FakeManager(loop)
    manager.fill_if_needed(notebook_name="nb.ipynb")
    keeper = PoolKeeper(manager)
    assert check(keeper, loop) == [] and kernel_ids(manager) == ["k1", "k2"]
    manager.restart("k1", event)  # Jupyter's restarter brought it back empty
    reasons = check(keeper, loop)
    assert len(reasons) == 1 and "k1" in reasons[0] and "restarted empty" in reasons[0]
    assert kernel_ids(manager) == ["k2", "k3"], "the dead kernel stayed in the pool, or none replaced it"
    assert manager.shut == ["k1"] and manager.fills == 2
    assert check(keeper, loop) == [], "a second look replaced a usable kernel"


def test_a_kernel_gone_a_failed_start_and_a_dead_run_are_each_replaced(loop):
    manager = FakeManager(loop, size=3)
    pool = manager._pools["nb.ipynb"]
    pool.append(manager.item())  # k1: then shut down behind the pool's back
    manager.next_start_fails = True
    pool.append(manager.item())  # its start failed
    manager.next_start_fails = False
    pool.append(manager.item(task_error=DeadKernelError("Kernel died")))  # k2: died while running the notebook
    manager.kernels.discard("k1")
    keeper = PoolKeeper(manager)
    reasons = check(keeper, loop)
    assert len(reasons) == 3, reasons
    assert any("k1 is gone" in r for r in reasons)
    assert any("did not start" in r and "no kernel spec" in r for r in reasons)
    assert any("k2 died while running" in r for r in reasons)
    assert kernel_ids(manager) == ["k3", "k4", "k5"]
    assert manager.shut == ["k2"], "only a kernel that still exists is shut down"


def test_running_and_usable_kernels_and_a_notebook_error_stay(loop):
    """A kernel still running the notebook may become usable; an error in a cell is the notebook's own and shows
    on the page (replacing it would fail again): both stay."""
    manager = FakeManager(loop, size=3)
    pool = manager._pools["nb.ipynb"]
    running = loop.create_future()  # not started yet
    pool += [manager.item(), manager.item(rendered=False), running]
    pool.append(manager.item(task_error=ValueError("a cell raised")))
    keeper = PoolKeeper(manager)
    assert check(keeper, loop) == []
    assert len(pool) == 4 and manager.fills == 0 and manager.shut == []


def test_a_notebook_whose_kernels_always_fail_stops_the_replacing_with_one_error(loop, caplog):
    manager = FakeManager(loop)
    manager.next_start_fails = True
    manager.fill_if_needed(notebook_name="nb.ipynb")
    keeper = PoolKeeper(manager)
    with caplog.at_level(logging.WARNING, logger=kernel_pool.__name__):
        for _ in range(20):
            check(keeper, loop)
    assert keeper.gave_up
    assert manager.fills - 1 <= kernel_pool.MAX_REPLACEMENTS_IN_A_ROW
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "not replacing them any more" in errors[0].getMessage()
    assert "no kernel spec" in errors[0].getMessage()


def test_a_replacement_that_runs_the_notebook_resets_the_count(loop):
    """Failures spread over a long lecture are not a notebook that cannot run: a good replacement in between
    starts the count again."""
    manager = FakeManager(loop)
    manager.fill_if_needed(notebook_name="nb.ipynb")
    keeper = PoolKeeper(manager)
    check(keeper, loop)
    for _ in range(3 * kernel_pool.MAX_REPLACEMENTS_IN_A_ROW):
        manager.restart(kernel_ids(manager)[0])
        assert len(check(keeper, loop)) == 1
        check(keeper, loop)  # the replacement has run the notebook
    assert not keeper.gave_up and len(keeper.replaced) == 3 * kernel_pool.MAX_REPLACEMENTS_IN_A_ROW


def test_the_keeper_keeps_looking_after_its_own_error(loop, caplog, monkeypatch):
    manager = FakeManager(loop)
    keeper = PoolKeeper(manager)
    calls = []

    def failing_check():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        if len(calls) == 3:
            raise asyncio.CancelledError

    monkeypatch.setattr(keeper, "check", failing_check)
    monkeypatch.setattr(kernel_pool, "CHECK_SECONDS", 0)
    with caplog.at_level(logging.ERROR, logger=kernel_pool.__name__), pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(keeper.run())
    assert len(calls) == 3 and "checking the pool" in caplog.text
