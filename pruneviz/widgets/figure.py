"""A matplotlib Figure inside an ipywidgets layout, redrawn in place.

With ipympl (``%matplotlib widget``) the figure's own canvas is the widget: ``draw()`` asks it to redraw.
Otherwise (``%matplotlib inline``, or no Jupyter at all) the figure renders to PNG into an ``ipywidgets.Image``
of fixed size: the picture is swapped, the layout never collapses, so nothing flickers.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..plot.theme import theme

MODES = ("auto", "ipympl", "inline")


def ipympl_active() -> bool:
    """True when matplotlib's backend is ipympl's (``%matplotlib widget`` / ``ipympl``)."""
    backend = matplotlib.get_backend().lower()
    return "ipympl" in backend or backend == "widget"


class LiveFigure:
    """A figure and the widget that shows it. ``mode``: 'auto' (ipympl if active), 'ipympl' or 'inline'."""

    def __init__(self, figsize: tuple[float, float], *, mode: str = "auto", dpi: int = 80):
        if mode not in MODES:
            raise ValueError(f"unknown figure mode {mode!r}; valid choices: {', '.join(map(repr, MODES))}")
        self.mode = ("ipympl" if ipympl_active() else "inline") if mode == "auto" else mode
        self.dpi = dpi
        width, height = round(figsize[0] * dpi), round(figsize[1] * dpi)
        with theme():
            if self.mode == "ipympl":
                with plt.ioff():  # shown inside our layout, not on its own at the end of the cell
                    self.figure = plt.figure(figsize=figsize, dpi=dpi)
                canvas = self.figure.canvas
                canvas.header_visible = False
                canvas.toolbar_visible = False
                canvas.resizable = False
                self.widget = canvas
            else:
                # not through pyplot: the inline backend would show it again at the end of the cell
                self.figure = Figure(figsize=figsize, dpi=dpi)
                FigureCanvasAgg(self.figure)
                self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px",
                                                                                height=f"{height}px"))
                self.widget = widgets.Box([self.image], layout=widgets.Layout(height=f"{height + 4}px",
                                                                               overflow="hidden"))
        self.widget.add_class("pruneviz-figure")

    def subplots(self, *args, **kwargs):
        with theme():
            return self.figure.subplots(*args, **kwargs)

    def draw(self) -> None:
        """Show the artists as they are now."""
        if self.mode == "ipympl":
            self.figure.canvas.draw_idle()
        else:
            buffer = io.BytesIO()
            self.figure.savefig(buffer, format="png", dpi=self.dpi)
            self.image.value = buffer.getvalue()
