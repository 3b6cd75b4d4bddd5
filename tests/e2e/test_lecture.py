"""Lecture mode as an instructor uses it: ``python -m pruneviz.lecture notebooks/00_welcome.ipynb``, then the
page in headless Chromium: the first widget shows within seconds of opening, in the state the notebook's text
describes, the cells tagged ``lecture-hide`` are not on the page, and the slider moves the readout and the plot.

The times (server ready, page open -> first widget, key press -> readout / figure) are printed, not asserted:
the machine is shared.
"""
from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

import pytest

from pruneviz.lecture import HIDE_TAG

from .lab import SLIDER, SLIDER_VALUE, LectureServer, changed_fraction, key_to_change_times, median_ms
from .test_browser import READOUT, parse_readout

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "00_welcome.ipynb"
pytestmark = pytest.mark.browser


def cells() -> list[dict]:
    return json.loads(NOTEBOOK.read_text())["cells"]


def hidden_texts() -> list[str]:
    """A line of each hidden cell that the page would show if the cell were there: a markdown cell's first line
    of prose, a code cell's first line of stored printed output."""
    texts = []
    for cell in cells():
        if HIDE_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        if cell["cell_type"] == "markdown":
            lines = "".join(cell["source"]).splitlines()
        else:
            lines = "".join("".join(o.get("text", "")) for o in cell.get("outputs", [])
                            if o.get("output_type") == "stream").splitlines()
        lines = [re.sub(r"[#*`$]", "", line).strip() for line in lines]
        lines = [line for line in lines if len(line) > 12]
        if lines:
            texts.append(lines[0][:60])
    return texts


def explore_call() -> dict:
    """The keyword arguments of the notebook's ``explore(...)`` call: the state the text describes."""
    for cell in cells():
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "explore(" in source and HIDE_TAG not in cell["metadata"].get("tags", []):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "explore":
                    return {k.arg: ast.literal_eval(k.value) for k in node.keywords
                            if k.arg in ("criterion", "scope", "sparsity", "layer", "granularity")}
    raise AssertionError(f"{NOTEBOOK.name} has no visible explore(...) call")


@pytest.fixture(scope="module")
def lecture(subreaper, tmp_path_factory):
    assert NOTEBOOK.exists(), f"{NOTEBOOK.relative_to(ROOT)} is missing"
    pytest.importorskip("voila", reason="lecture mode needs voila (pip install -e '.[test]')")
    server = LectureServer.start(NOTEBOOK, tmp_path_factory.mktemp("lecture"))
    print(f"\nlecture mode ready {server.ready_after:.1f} s after the command started (notebook run ahead)")
    yield server
    server.stop()


def test_lecture_mode_shows_the_explorer_at_once_in_its_described_state(lecture, chromium):
    assert hidden_texts(), f"no cell of {NOTEBOOK.name} is tagged {HIDE_TAG!r}: nothing to check"
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        opened = time.monotonic()
        page.goto(lecture.url, timeout=120_000)
        explorer = page.locator(".pruneviz-explorer").first
        handle = explorer.locator(SLIDER)
        handle.wait_for(state="visible")
        first_widget = time.monotonic() - opened
        print(f"page open -> first widget (the explorer's slider): {first_widget:.1f} s")

        # Opens as the text describes: the controls as the explore(...) call sets them, the model pruned that far.
        described = explore_call()
        readout = explorer.locator(".pruneviz-readout")
        text = readout.inner_text()
        accuracy, sparsity = parse_readout(text)
        slider_value = float(explorer.locator(SLIDER_VALUE).inner_text())
        assert slider_value == pytest.approx(described.get("sparsity", 0.0)), (slider_value, described)
        assert sparsity == pytest.approx(slider_value, abs=0.01), text
        assert explorer.locator(".pruneviz-criterion select").input_value() == described.get("criterion", "magnitude")
        if "layer" in described:
            assert explorer.locator(".pruneviz-layer select").input_value() == described["layer"]
        checked = explorer.locator(".pruneviz-scope input[type=radio]:checked")  # a radio: its state is exposed
        assert checked.count() == 1 and checked.get_attribute("data-value") == described.get("scope", "local")
        assert handle.get_attribute("aria-valuetext") == f"{slider_value:.2f}", "the slider announces float noise"
        assert explorer.get_by_role("slider", name="sparsity").count() == 1, "the slider has no accessible name"

        # Test-only cells, the exercises and the run time are not on the page; the code is not either.
        # (the widgets' hidden figure descriptions repeat their readouts in words: left out of this check)
        body = page.evaluate("""() => { const copy = document.body.cloneNode(true);
            copy.querySelectorAll('.pruneviz-figure-description').forEach(e => e.remove());
            document.body.appendChild(copy); const text = copy.innerText; copy.remove(); return text; }""")
        for hidden in hidden_texts():
            assert hidden not in body, f"a cell tagged {HIDE_TAG!r} is on the lecture page: {hidden!r}"
        assert "import pruneviz" not in body

        # The slider works: each key press moves the readout and the plot.
        explorer.scroll_into_view_if_needed()
        figure = explorer.locator(".pruneviz-figure")
        before = figure.screenshot(animations="disabled")
        times = key_to_change_times(page, explorer, handle, presses=6)
        after_text = readout.inner_text()
        _, sparsity_after = parse_readout(after_text)
        value_after = float(explorer.locator(SLIDER_VALUE).inner_text())
        assert value_after == pytest.approx(slider_value + 0.06, abs=1e-9)
        assert handle.get_attribute("aria-valuetext") == f"{value_after:.2f}", "the slider announces float noise"
        assert sparsity_after == pytest.approx(value_after, abs=0.01), after_text
        assert all(t is not None for t in times["readout"]), f"a key press did not change the readout: {times}"
        assert changed_fraction(before, figure.screenshot(animations="disabled")) > 0.001
        print(f"lecture mode, key press -> readout {median_ms(times['readout']):.0f} ms, -> figure "
              f"{median_ms(times['figure']):.0f} ms (medians of {len(times['figure'])}; machine shared)")
        assert READOUT.search(after_text)
    finally:
        context.close()
