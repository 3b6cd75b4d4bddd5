"""notebooks/00_welcome.ipynb as a student sees it: JupyterLab in headless Chromium, Run All, move the sparsity
slider with the keyboard and the mouse, and the accuracy readout and the plot change.

Both figure paths of the explorer run: ipympl (``%matplotlib widget``) and the inline fallback (a PNG in an
Image widget). The notebook is copied to the server's temp folder with the magic set to each backend, so the
committed notebook is never touched (nor autosaved over).

Every widget of 00, 01 and 09 fits a notebook in a 1280 px window with the file browser open (issue 19, item 6):
each notebook is Run All in JupyterLab and every part of every widget output is measured in the page.

Screenshots for the README: ``PRUNEVIZ_UPDATE_SCREENSHOTS=1 pytest tests/e2e`` writes docs/images/browser_*.png.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .lab import SLIDER, SLIDER_VALUE, changed_fraction, is_blank, key_to_change_times, median_ms

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "00_welcome.ipynb"
MAGIC = re.compile(r"^%matplotlib\s+\S+", re.MULTILINE)
BACKENDS = {"widget": ".jupyter-matplotlib-canvas-div", "inline": "img"}  # what the figure holds in each
READOUT = re.compile(r"accuracy ([\d.]+) % \| sparsity ([\d.]+)")
pytestmark = pytest.mark.browser
TARGET = 0.6  # where the mouse takes the slider from 0: far enough that mask, histogram and accuracy move


def with_backend(source: Path, backend: str, target: Path) -> Path:
    """A copy of the notebook with every ``%matplotlib`` magic set to ``backend`` (one added at the top when
    there is none) and no stored outputs, so what the page shows comes from this run."""
    nb = json.loads(source.read_text())
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    found = False
    for cell in code:
        text = "".join(cell["source"])
        found |= bool(MAGIC.search(text))
        cell["source"] = MAGIC.sub(f"%matplotlib {backend}", text)
        cell["outputs"], cell["execution_count"] = [], None
    if not found:
        nb["cells"].insert(0, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                               "source": f"%matplotlib {backend}"})
    target.write_text(json.dumps(nb))
    return target


def own_backend(source: Path) -> str:
    """The backend the committed notebook asks for (inline when it names none)."""
    for cell in json.loads(source.read_text())["cells"]:
        match = MAGIC.search("".join(cell["source"])) if cell["cell_type"] == "code" else None
        if match:
            return "widget" if match.group().split()[1] in ("widget", "ipympl") else "inline"
    return "inline"


def parse_readout(text: str) -> tuple[float, float]:
    match = READOUT.search(text)
    assert match, f"the readout does not show accuracy and sparsity: {text!r}"
    return float(match.group(1)), float(match.group(2))


def settled_text(locator, until: Callable[[str], bool], timeout: float = 60.0, pause: float = 0.5) -> str:
    """The locator's text once ``until(text)`` holds and two reads ``pause`` apart agree (the kernel may still
    be working through earlier moves); whatever it shows at the timeout otherwise."""
    deadline = time.monotonic() + timeout
    previous = locator.inner_text()
    while True:
        time.sleep(pause)
        text = locator.inner_text()
        if (text == previous and until(text)) or time.monotonic() > deadline:
            return text
        previous = text


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_slider_moves_readout_and_plot(notebook_page, lab, backend, screenshot_dir):
    assert NOTEBOOK.exists(), f"{NOTEBOOK.relative_to(ROOT)} is missing: the browser test opens it"
    name = with_backend(NOTEBOOK, backend, lab.root / f"{NOTEBOOK.stem}_{backend}.ipynb").name
    notebook_page.open(name)
    notebook_page.run_all()

    explorer = notebook_page.panel.locator(".pruneviz-explorer").first
    explorer.wait_for(state="visible")
    figure = explorer.locator(".pruneviz-figure")
    explorer.scroll_into_view_if_needed()
    try:  # widget views render after the cell's output is in the page: on a busy machine, seconds after
        figure.locator(BACKENDS[backend]).first.wait_for(state="attached", timeout=60_000)
    except Exception:
        pass  # the assertion says what is missing
    assert figure.locator(BACKENDS[backend]).count() >= 1, f"the {backend} figure path is not the one on show"
    readout = explorer.locator(".pruneviz-readout")
    handle = explorer.locator(SLIDER)
    explorer.scroll_into_view_if_needed()
    # what a screen reader finds: a slider named by its label, its value in two decimals
    named = explorer.get_by_role("slider", name="sparsity")
    assert named.count() == 1, "the sparsity slider has no accessible name"
    for role, name in (("combobox", "criterion"), ("combobox", "granularity"), ("combobox", "layer"),
                       ("radio", "local"), ("radio", "global"), ("checkbox", "prune only this layer")):
        assert explorer.get_by_role(role, name=name).count() == 1, f"no {role} named {name!r} in the explorer"

    # A student's moves: the magnitude criterion from its dropdown, the slider to 0 with the keyboard (Home),
    # then a click on the track.
    explorer.locator(".pruneviz-criterion select").select_option("magnitude")
    handle.focus()
    handle.press("Home")
    start = float(handle.input_value())
    assert start == 0.0, f"Home left the slider at {start}"
    assert named.get_attribute("aria-valuetext") == "0.00", "the slider does not announce its value as shown"
    text_before = settled_text(readout, until=lambda text: READOUT.search(text) and
                               float(READOUT.search(text).group(2)) == start)
    plot_before = notebook_page.settled_screenshot(figure)
    whole_before = explorer.screenshot(animations="disabled")

    # one click on the track: one move (each costs the kernel a re-prune and an evaluation; keys pressed one
    # step at a time would queue many)
    track = handle
    box = track.bounding_box()
    track.click(position={"x": box["width"] * TARGET, "y": box["height"] / 2})
    text_after = settled_text(readout, until=lambda text: text != text_before)
    value = float(explorer.locator(SLIDER_VALUE).inner_text())
    assert named.get_attribute("aria-valuetext") == f"{value:.2f}"
    assert abs(value - TARGET) < 0.05, f"a click at {TARGET:.0%} of the track set the slider to {value}"
    plot_after = notebook_page.settled_screenshot(figure, differs_from=plot_before)

    accuracy_before, sparsity_before = parse_readout(text_before)
    accuracy_after, sparsity_after = parse_readout(text_after)
    assert abs(sparsity_before - start) < 0.01, (text_before, start)
    assert abs(sparsity_after - value) < 0.01, (text_after, value)  # the model really is pruned that far
    assert 0.0 <= accuracy_after <= 100.0 and 0.0 <= accuracy_before <= 100.0
    assert not is_blank(plot_before), "the figure never drew"
    assert changed_fraction(plot_before, plot_after) > 0.01, "the plot did not change when the slider moved"
    assert not notebook_page.errors()
    # the figure is described in words for screen readers: the picture's alt inline, a caption beside ipympl's
    described = (figure.locator("img").first.get_attribute("alt") if backend == "inline" else
                 explorer.locator(".pruneviz-figure-description [role=img]").get_attribute("aria-label"))
    assert READOUT.search(described or ""), f"the {backend} figure is not described in words: {described!r}"

    # Live feel: single key presses, each timed in the page from the keydown to the changed readout and figure
    # (printed, not asserted: the machine is shared; the goal is 150 ms to the figure on 2 quiet cores).
    times = key_to_change_times(notebook_page.page, explorer, handle, presses=8)
    assert all(t is not None for t in times["readout"]), f"a key press did not change the readout: {times}"
    assert all(t is not None for t in times["figure"]), f"a key press did not change the figure: {times}"
    print(f"\n{backend}: key press -> readout {median_ms(times['readout']):.0f} ms, -> figure "
          f"{median_ms(times['figure']):.0f} ms, -> figure complete {median_ms(times['figure_done']):.0f} ms "
          f"(medians of {len(times['figure'])}; max {max(times['figure']):.0f} ms; load average "
          f"{os.getloadavg()[0]:.1f})")

    if screenshot_dir is not None and backend == own_backend(NOTEBOOK):
        (screenshot_dir / "browser_before.png").write_bytes(whole_before)
        (screenshot_dir / "browser_after.png").write_bytes(explorer.screenshot(animations="disabled"))


# -- every widget fits a notebook in a 1280 px window (issue 19, item 6) -----------------------------------

FIT_NOTEBOOKS = ("00_welcome.ipynb", "01_granularity.ipynb", "09_depth_vs_width.ipynb")
NARROW = {"width": 1280, "height": 900}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# The widget outputs of the cells (not the outputs nested inside an Output widget), once each has drawn: its
# views laid out, every picture loaded, every canvas sized, and (``figures``) a figure in each.
_WIDGET_OUTPUTS_JS = r"""(panel) => [...panel.querySelectorAll('.jp-OutputArea-output')].filter(out =>
  !out.parentElement.closest('.jp-OutputArea-output') && out.querySelector('.jupyter-widgets'))"""
_ALL_DRAWN_JS = r"""([panel, expected, figures]) => {
  const outputs = (%s)(panel);
  return outputs.length >= expected && outputs.every(out =>
    out.getBoundingClientRect().height > 20 &&
    [...out.querySelectorAll('img')].every(img => img.complete && img.naturalWidth > 0) &&
    [...out.querySelectorAll('canvas')].every(canvas => canvas.width > 0) &&
    (!figures || out.querySelectorAll('img, canvas').length > 0));
}""" % _WIDGET_OUTPUTS_JS

# Every visible part of every widget output (its boxes, figures, pictures, canvases, controls and text), and how
# much of it is left visible: across, by the output area and every ancestor that clips (the notebook's scroller
# and the window included); down, by the clipping ancestors inside the cell (the page scrolls, a cell's output
# must not). A part cut off or sticking out is reported, and so is text cut short inside its own box ("…").
_CLIPPED_PARTS_JS = r"""(panel) => {
  const parts = '.jupyter-widgets, img, canvas, .pruneviz-figure, .pruneviz-slider-view, .widget-dropdown, '
              + '.widget-checkbox, .widget-radio, .widget-html, .widget-slider, .widget-button, .widget-readout, '
              + '.widget-label, label, select, input, output';
  const texts = '.widget-label, .widget-html, label, output, select';
  const name = el => {
    const cls = el.className && el.className.baseVal !== undefined ? el.className.baseVal : el.className;
    return [el.tagName.toLowerCase(), ...String(cls || '').split(' ').filter(Boolean)].join('.');
  };
  const report = [];
  const outputs = (%s)(panel);
  for (const out of outputs) {
    const area = out.getBoundingClientRect();
    const cell = out.closest('.jp-Cell');
    const prompt = (cell.querySelector('.jp-InputPrompt')?.textContent || '').trim();
    for (const el of [out, ...out.querySelectorAll(parts)]) {
      const r = el.getBoundingClientRect();
      if (r.width < 2 || r.height < 2) continue;  // visually hidden captions
      let left = r.left, right = r.right, top = r.top, bottom = r.bottom;
      if (el !== out) {
        left = Math.max(left, area.left); right = Math.min(right, area.right);
      }
      let inCell = true;
      for (let a = el.parentElement; a; a = a.parentElement) {
        if (a === cell) inCell = false;
        const style = getComputedStyle(a);
        const b = a.getBoundingClientRect();
        if (style.overflowX !== 'visible') { left = Math.max(left, b.left); right = Math.min(right, b.right); }
        if (inCell && style.overflowY !== 'visible') {
          top = Math.max(top, b.top); bottom = Math.min(bottom, b.bottom);
        }
      }
      left = Math.max(left, 0); right = Math.min(right, window.innerWidth);
      const across = Math.max(0, right - left), down = Math.max(0, bottom - top);
      if (across < r.width - 1 || down < r.height - 1) {
        report.push(`cell ${prompt} ${name(el)}: ${Math.round(across)} x ${Math.round(down)} of `
                    + `${Math.round(r.width)} x ${Math.round(r.height)} px visible (output area `
                    + `${Math.round(area.width)} px wide)`);
      } else if (el.matches(texts) && el.scrollWidth > el.clientWidth + 1) {
        report.push(`cell ${prompt} ${name(el)}: text cut short, ${el.scrollWidth} px of text in `
                    + `${el.clientWidth} px (${JSON.stringify(el.innerText.slice(0, 60))})`);
      }
    }
  }
  return {widgets: outputs.length, width: Math.round(panel.getBoundingClientRect().width), report};
}""" % _WIDGET_OUTPUTS_JS


def widget_cells(source: Path) -> int:
    """How many code cells of the committed notebook show a widget (its stored outputs hold a widget view)."""
    cells = json.loads(source.read_text())["cells"]
    return sum(any(WIDGET_VIEW in output.get("data", {}) for output in cell.get("outputs", []))
               for cell in cells if cell["cell_type"] == "code")


def measure_at_1280_px(chromium, lab, name: str, expected: int, figures: bool = True) -> dict:
    """Open ``name`` in a 1280 px window with the file browser open, Run All, wait until ``expected`` widget
    outputs have drawn (``figures``: a figure in each), and measure them (_CLIPPED_PARTS_JS's result, with the
    seconds each step took)."""
    from .lab import NotebookPage

    context = chromium.new_context(viewport=NARROW, device_scale_factor=1)
    context.set_default_timeout(30_000)
    page = NotebookPage(context.new_page(), lab)
    try:
        started = time.monotonic()
        page.open(name, fold_file_browser=False)  # a student at 1280 px has the file browser open
        assert page.page.locator(".jp-FileBrowser").first.is_visible(), "the file browser is not open"
        opened = time.monotonic()
        page.run_all(timeout=300.0)
        ran = time.monotonic()
        panel = page.panel.element_handle()
        try:
            page.page.wait_for_function(_ALL_DRAWN_JS, arg=[panel, expected, figures], timeout=60_000, polling=500)
        except Exception:
            pass  # the count of widgets measured says which did not draw
        drawn = time.monotonic()
        time.sleep(1.0)  # widget views lay out once more after their pictures arrive
        result = page.page.evaluate(_CLIPPED_PARTS_JS, panel)
        result["seconds"] = {"open": opened - started, "run all": ran - opened, "drawn": drawn - ran}
        if result["report"] or result["widgets"] != expected:
            result["screenshot"] = str(lab.root.parent / f"{Path(name).stem}_1280px.png")
            page.page.screenshot(path=result["screenshot"], full_page=True)
        return result
    finally:
        context.close()
        lab.shutdown_kernels()


@pytest.mark.parametrize("notebook", FIT_NOTEBOOKS)
def test_every_widget_fits_a_1280_px_notebook(chromium, lab, notebook):
    """JupyterLab in a 1280 px wide window, file browser open: no part of any widget of the notebook is cut
    off or overflows its output area (issue 19: the compare figure of 01 was cut in half at 1400 px).

    The whole notebook runs (Run All, as a student does: 10-26 s each here on two lightly loaded cores, a few
    minutes when six other jobs share them), so every widget is measured as it stands after the cells above it,
    and the count of widgets measured must be the count of cells whose committed outputs show one: a widget that
    did not render is a failure, not a pass."""
    source = ROOT / "notebooks" / notebook
    expected = widget_cells(source)
    assert expected >= 1, f"{notebook}: its committed outputs show no widget"
    name = with_backend(source, own_backend(source), lab.root / f"fit_{source.stem}.ipynb").name
    result = measure_at_1280_px(chromium, lab, name, expected)
    took = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in result["seconds"].items())
    print(f"\n{notebook}: {result['widgets']} widget outputs measured in a {result['width']} px notebook, 1280 px "
          f"window, file browser open ({took}; load average {os.getloadavg()[0]:.1f})")
    assert result["widgets"] == expected, (f"{notebook}: {result['widgets']} widget outputs drawn in the page, "
                                           f"{expected} in the committed notebook (screenshot "
                                           f"{result.get('screenshot')})")
    assert not result["report"], (f"{notebook} at 1280 px, file browser open: parts of widgets are cut off "
                                  f"(screenshot {result.get('screenshot')}):\n" + "\n".join(result["report"]))


# The widest figures the kit's widgets draw, under ipympl (``%matplotlib widget``), whose canvas cannot shrink as
# the inline picture does: the explorer, and compare with four masks (01's, in rows of two).
_WIDEST_UNDER_IPYMPL = [
    "%matplotlib widget\nimport pruneviz.widgets",
    "pruneviz.widgets.explore('digits-cnn', layer='conv3')",
    "pruneviz.widgets.compare('digits-cnn', criteria=[('magnitude', g) for g in ('element', '2:4', 'kernel', "
    "'channel')], layer='conv3')",
]


def notebook_of(cells: list[str], path: Path) -> str:
    """A notebook of these code cells at ``path`` (in the server's root); returns its name."""
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": source}
                    for source in cells],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path.name


def test_widest_widgets_fit_under_ipympl(chromium, lab):
    """The notebooks show inline pictures, which scale down to a narrow output; a student who turns on
    ``%matplotlib widget`` gets ipympl canvases, drawn at their size: those must fit 1280 px as well."""
    name = notebook_of(_WIDEST_UNDER_IPYMPL, lab.root / "widest_ipympl.ipynb")
    result = measure_at_1280_px(chromium, lab, name, expected=len(_WIDEST_UNDER_IPYMPL) - 1)
    assert result["widgets"] == len(_WIDEST_UNDER_IPYMPL) - 1, result
    assert not result["report"], ("under ipympl at 1280 px, file browser open: parts of widgets are cut off "
                                  f"(screenshot {result.get('screenshot')}):\n" + "\n".join(result["report"]))


# Widgets that do not fit, each as a student would see it: a fixed-width picture in a box that hides overflow
# (issue 19's compare figure), a text box wider than the output area, a button sticking out of its row, a label
# cut short. The first cell has no widget: it is not measured.
_MISFITS = [
    "import io\nimport ipywidgets as w\nfrom PIL import Image as PILImage\n"
    "buffer = io.BytesIO()\nPILImage.new('RGB', (4, 4), 'teal').save(buffer, format='png')\npng = buffer.getvalue()",
    "w.Box([w.Image(value=png, width=1400, height=80, layout=w.Layout(width='1400px', max_width='none'))],\n"
    "      layout=w.Layout(width='1400px', overflow='hidden'))",
    "w.VBox([w.HTML('wider than the notebook', layout=w.Layout(width='1300px'))])",
    "w.HBox([w.Button(description='wide', layout=w.Layout(width='1300px', flex='none'))])",
    "w.Dropdown(options=['a'], description='a description much longer than its box')",
]


def test_fit_measure_sees_cut_widgets(chromium, lab):
    """The measure of the test above reports each kind of misfit, cell by cell: it fails what it must fail."""
    name = notebook_of(_MISFITS, lab.root / "misfits.ipynb")
    result = measure_at_1280_px(chromium, lab, name, expected=len(_MISFITS) - 1, figures=False)
    assert result["widgets"] == len(_MISFITS) - 1, result
    cut = {int(re.match(r"cell \[(\d+)\]:", line).group(1)) for line in result["report"]}
    assert cut == set(range(2, len(_MISFITS) + 1)), "\n".join(result["report"])
