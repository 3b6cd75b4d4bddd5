"""Live feel in a real browser: milliseconds from a key press on the explorer's slider to the changed readout
and the changed figure, in JupyterLab with ipympl (``%matplotlib widget``) and with the inline fallback.

The page and the server are those of tests/e2e (headless Chromium from Debian's package, JupyterLab on
127.0.0.1, notebooks/00_welcome.ipynb with its figure magic set to each backend). Each press waits until the
page has settled after the previous one; the times are taken inside the page (keydown to the first animation
frame that shows the change). The goal is 150 ms to the figure on 2 quiet cores. ``--quick``: inline only,
four presses.

Run: python benchmarks/bench_browser.py [--quick]
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.lab import (CHROMIUM_ARGS, SLIDER, Lab, NotebookPage, Subreaper, find_chromium,  # noqa: E402
                           key_to_change_times, median_ms)
from tests.e2e.test_browser import NOTEBOOK, with_backend  # noqa: E402

LABELS = {"widget": "ipympl", "inline": "inline"}
WHAT = {"readout": "changed readout", "figure": "changed figure", "figure_done": "figure complete"}


def measure(browser, lab: Lab, backend: str, presses: int) -> dict[str, list[float | None]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    context.set_default_timeout(60_000)
    try:
        page = NotebookPage(context.new_page(), lab)
        page.open(with_backend(NOTEBOOK, backend, lab.root / f"{NOTEBOOK.stem}_{backend}.ipynb").name)
        page.run_all()
        explorer = page.panel.locator(".pruneviz-explorer").first
        handle = explorer.locator(SLIDER)
        explorer.scroll_into_view_if_needed()
        handle.focus()
        handle.press("Home")
        time.sleep(2.0)  # the move to 0 and its redraw are done
        return key_to_change_times(page.page, explorer, handle, presses=presses)
    finally:
        context.close()


def run(quick: bool = False) -> list[dict]:
    """Rows {benchmark, case, measure, value, unit}: median and worst key press -> readout / figure."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("Chromium not found: install Debian's chromium package or set PRUNEVIZ_CHROMIUM")
    from playwright.sync_api import sync_playwright

    presses = 4 if quick else 15
    rows = []
    reaper = Subreaper()
    reaper.open()
    with tempfile.TemporaryDirectory(prefix="pruneviz-bench-browser-") as home:
        env = dict(os.environ, XDG_CONFIG_HOME=home, HOME=home)
        lab = Lab.start(Path(home) / "lab")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
                                                     env=env)
                for backend in ("inline",) if quick else ("widget", "inline"):
                    times = measure(browser, lab, backend, presses)
                    case = f"00_welcome explorer, {LABELS[backend]}"
                    for what in ("readout", "figure", "figure_done"):
                        measured = [t for t in times[what] if t is not None]
                        if not measured:
                            raise RuntimeError(f"{case}: no key press changed the {what}")
                        rows.append({"benchmark": "browser", "case": case, "value": median_ms(measured),
                                     "measure": f"key press -> {WHAT[what]}, median of {len(measured)}",
                                     "unit": "ms"})
                    rows.append({"benchmark": "browser", "case": case, "measure": "key press -> changed figure, worst",
                                 "value": max(t for t in times["figure"] if t is not None), "unit": "ms"})
                browser.close()
        finally:
            lab.stop()
            reaper.close()
    return rows


def main() -> None:
    print(f"# browser benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for row in run("--quick" in sys.argv):
        print(f"{row['case']:<30} {row['measure']:<45} {row['value']:>8.0f} {row['unit']}")


if __name__ == "__main__":
    main()
