"""Fixtures for the real-browser tests: one JupyterLab and one headless Chromium per module, a fresh page
per test, and a subreaper that ends and reaps whatever the browser leaves behind."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .lab import CHROMIUM_ARGS, Lab, NotebookPage, Subreaper, find_chromium

VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("Chromium not found: the browser tests need Debian's chromium package "
                    "(`apt-get install -y chromium`, which .ci/run does) or PRUNEVIZ_CHROMIUM=/path/to/chrome")
    return path


@pytest.fixture(scope="module")
def subreaper() -> Iterator[Subreaper]:
    reaper = Subreaper()
    reaper.open()
    yield reaper
    reaper.close()


@pytest.fixture(scope="module")
def lab(subreaper, tmp_path_factory) -> Iterator[Lab]:
    server = Lab.start(tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium(subreaper, chromium_path, tmp_path_factory):
    """Headless Chromium driven by Playwright through ``executable_path`` (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the playwright "
                                   "package (pip install -e '.[test]')")
    home = tmp_path_factory.mktemp("chromium-home")
    # XDG_CONFIG_HOME keeps Chromium's crash reports and profile out of the user's home folder
    env = dict(os.environ, XDG_CONFIG_HOME=str(home), HOME=str(home))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS,
                                             env=env)
        yield browser
        browser.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives JupyterLab in headless Chromium (deselect with "
                            "-m 'not browser')")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when == "call":
        item.e2e_failed = outcome.get_result().failed


@pytest.fixture
def notebook_page(request, chromium, lab, tmp_path) -> Iterator[NotebookPage]:
    context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield NotebookPage(page, lab)
    if getattr(request.node, "e2e_failed", False):  # what the page showed when the test failed
        shot = tmp_path / "failure.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"page at failure: {shot}; JupyterLab log: {lab.log}")
    context.close()
    lab.shutdown_kernels()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path | None:
    """Where the README's screenshots go: docs/images/ when PRUNEVIZ_UPDATE_SCREENSHOTS=1, else nowhere (a
    plain test run leaves the work tree as it was)."""
    if os.environ.get("PRUNEVIZ_UPDATE_SCREENSHOTS") == "1":
        path = Path(__file__).resolve().parents[2] / "docs" / "images"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return None
