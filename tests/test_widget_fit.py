"""Issue 19 item 6, inside the picture: what a widget draws lies on its canvas (the browser test,
tests/e2e/test_browser.py, checks that the canvas lies in the notebook)."""
import pytest
from matplotlib.text import Text

import pruneviz.widgets as widgets
from pruneviz.widgets.figure import MAX_WIDTH_INCHES

GRID = [0.0, 0.5, 0.9]


def drawn_outside(figure) -> list[str]:
    """The axes (with their tick labels, titles, labels) and figure texts that reach past the canvas."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    width, height = figure.bbox.width, figure.bbox.height
    boxes = [(f"axes {ax.get_title() or ax.get_label()!r}", ax.get_tightbbox(renderer)) for ax in figure.axes
             if ax.get_visible()]
    boxes += [(f"text {t.get_text()!r}", t.get_window_extent(renderer)) for t in figure.texts
              if isinstance(t, Text) and t.get_visible() and t.get_text().strip()]
    return [f"{name}: x {box.x0:.1f}..{box.x1:.1f} of {width:.0f}, y {box.y0:.1f}..{box.y1:.1f} of {height:.0f}"
            for name, box in boxes if box is not None and (box.x0 < -0.5 or box.y0 < -0.5 or
                                                           box.x1 > width + 0.5 or box.y1 > height + 0.5)]


@pytest.mark.parametrize("criteria", [["magnitude", "random"], ["magnitude", "random", ("magnitude", "channel")],
                                      [("magnitude", g) for g in ("element", "2:4", "kernel", "channel")]],
                         ids=["two", "three", "four"])
def test_compare_draws_nothing_past_its_canvas(criteria):
    view = widgets.compare("digits-cnn", criteria=criteria, layer="conv3", figure="agg", grid=GRID)
    assert view.figure.figure.bbox.width <= MAX_WIDTH_INCHES * 80
    assert not drawn_outside(view.figure.figure)


def test_explorer_draws_nothing_past_its_canvas():
    explorer = widgets.explore("digits-cnn", layer="conv3", figure="agg", grid=GRID, sparsity=0.5)
    assert explorer.figure.figure.bbox.width == MAX_WIDTH_INCHES * 80  # the widest figure a widget draws
    assert not drawn_outside(explorer.figure.figure)
