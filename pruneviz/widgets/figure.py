"""A matplotlib Figure inside an ipywidgets layout, redrawn in place.

With ipympl (``%matplotlib widget``) the figure's own canvas is the widget. Otherwise (``%matplotlib inline``,
or no Jupyter at all) the figure renders to PNG into a :class:`~pruneviz.widgets.accessible.Picture` of fixed
size, whose alt text says what it shows: each frame is decoded before it replaces the last, the layout never
collapses, so nothing flickers.

Both blit: the artists a move changes are drawn over a kept background (axes, ticks, labels: most of the drawing
time), and the frame goes out at once. With ipympl that also skips ``draw_idle``'s round trip (the kernel asks
the browser to ask for a draw) and its full redraw; ipympl sends only the pixels that changed.
"""
from __future__ import annotations

import html
import io
from collections.abc import Iterable

import ipywidgets as widgets
import matplotlib
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from ..plot.theme import theme
from .accessible import Picture

MODES = ("auto", "ipympl", "inline", "agg")  # agg: drawn, never shown (benchmarks, tests)
# The widest figure a widget draws, at the default 80 dpi: 840 px. JupyterLab 4 in a 1280 px window, file browser
# open, leaves 848 px for a cell's output (measured: tests/e2e/test_browser.py), and ipympl puts its canvas in a
# container 4 px wider; an ipympl canvas cannot shrink, so it must fit as drawn.
MAX_WIDTH_INCHES = 10.5


def ipympl_active() -> bool:
    """True when matplotlib's backend is ipympl's (``%matplotlib widget`` / ``ipympl``)."""
    backend = matplotlib.get_backend().lower()
    return "ipympl" in backend or backend == "widget"


class LiveFigure:
    """A figure and the widget that shows it. ``mode``: 'auto' (ipympl if active, else inline), 'ipympl',
    'inline' (PNG into an Image widget) or 'agg' (drawn on an Agg canvas, shown nowhere: benchmarks, tests)."""

    def __init__(self, figsize: tuple[float, float], *, mode: str = "auto", dpi: int = 80):
        if mode not in MODES:
            raise ValueError(f"unknown figure mode {mode!r}; valid choices: {', '.join(map(repr, MODES))}")
        if figsize[0] * dpi > MAX_WIDTH_INCHES * 80 + 0.5:
            raise ValueError(f"a widget figure {figsize[0]} in wide at {dpi} dpi is {figsize[0] * dpi:.0f} px: more "
                             f"than the {MAX_WIDTH_INCHES * 80:.0f} px a notebook in a 1280 px window shows")
        self.mode = ("ipympl" if ipympl_active() else "inline") if mode == "auto" else mode
        self.dpi = dpi
        width, height = round(figsize[0] * dpi), round(figsize[1] * dpi)
        with theme():
            if self.mode == "ipympl":
                with plt.ioff():  # shown inside our layout, not on its own at the end of the cell
                    self.figure = plt.figure(figsize=figsize, dpi=dpi)
                # pyplot redraws a stale figure (one whose artists changed) in interactive mode, which
                # %matplotlib widget turns on: at once, and after every comm message (a slider move is one). That is
                # draw_idle, the page asks back, a full draw at ~4x a blit's cost, after every move: work done
                # twice, and the lag behind a burst of keys. This figure draws itself (draw() marks it fresh).
                self.figure.stale_callback = None
                canvas = self.figure.canvas
                canvas.header_visible = False
                canvas.footer_visible = False  # the cursor's coordinates, in a line wider than the canvas
                canvas.toolbar_visible = False
                canvas.resizable = False
            else:
                # not through pyplot: the inline backend would show it again at the end of the cell
                self.figure = Figure(figsize=figsize, dpi=dpi)
                FigureCanvasAgg(self.figure)
            if self.mode == "agg":
                self.widget = widgets.Box()
            elif self.mode == "inline":
                self.image = Picture(width=width, height=height)  # sized in the page by these two
                # no fixed height or hidden overflow: the picture scales down to a narrower output (max-width)
                self.widget = widgets.Box([self.image], layout=widgets.Layout(max_width="100%"))
            else:
                # ipympl's canvas takes no alt text: a visually hidden caption (1 px, clipped) beside it says
                # what it shows, in words, for screen readers
                self.caption = widgets.HTML(layout=widgets.Layout(width="1px", height="1px", overflow="hidden",
                                                                  margin="0"))
                self.caption.add_class("pruneviz-figure-description")
                self.widget = widgets.Box([canvas, self.caption])
        self.widget.add_class("pruneviz-figure")
        self._animated: list[Artist] = []
        self._background = None
        self.description = ""
        # any full draw (ours, or ipympl's own when the page shows the canvas or resizes it) becomes the
        # background, with the animated artists put back on top (a full draw leaves them out)
        self.figure.canvas.mpl_connect("draw_event", self._on_full_draw)

    def animate(self, artists: Iterable[Artist]) -> None:
        """The artists a slider move changes: drawn over the kept background on each :meth:`draw`."""
        self._animated = list(artists)
        for artist in self._animated:
            artist.set_animated(True)
        self._background = None

    def subplots(self, *args, **kwargs):
        with theme():
            return self.figure.subplots(*args, **kwargs)

    def describe(self, text: str) -> None:
        """What the figure shows, in words, for those who cannot see it: the picture's alt text inline, a hidden
        caption beside ipympl's canvas."""
        self.description = text
        if self.mode == "inline":
            self.image.alt = text
        elif self.mode == "ipympl":
            self.caption.value = f'<p role="img" aria-label="{html.escape(text)}">{html.escape(text)}</p>'

    def _on_full_draw(self, _event) -> None:
        self._background = self.figure.canvas.copy_from_bbox(self.figure.bbox)
        self._draw_animated()

    def _draw_animated(self, only: Axes | None = None) -> None:
        for artist in self._animated:
            if only is None or artist.axes is only:
                self.figure.draw_artist(artist)

    def _restore(self, only: Axes | None) -> None:
        """The kept background, everywhere or (``only``) around one Axes: its box and a margin for markers that
        sit on its edge, so the other Axes' artists stay as they were drawn."""
        canvas = self.figure.canvas
        if only is None:
            canvas.restore_region(self._background)
            return
        margin = 12  # px: more than the largest marker's radius
        x0, y0, x1, y1 = only.bbox.extents
        width, height = self.figure.bbox.width, self.figure.bbox.height
        box = (max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin))
        x, y = self._background.get_extents()[:2]
        canvas.restore_region(self._background, bbox=box, xy=(x, y))  # xy: where the whole kept region goes

    def draw(self, full: bool = False, only: Axes | None = None) -> None:
        """Show the artists as they are now. ``full``: something outside the animated artists changed
        (limits, a new line, a title), so the background is drawn again. ``only``: just the animated artists of
        that Axes changed since the last draw (the accuracy point after the masks were shown)."""
        canvas = self.figure.canvas
        if self.mode == "ipympl" and getattr(canvas, "syncing_data_url", False):
            # no browser view has set up yet, and ipympl 0.10 sends a broken frame until one has: ask for a draw,
            # which the view requests once it is ready
            canvas.draw_idle()
            return
        if full or self._background is None:
            canvas.draw()  # draw_event: the new background, the animated artists on it; ipympl sends the frame
        else:
            self._restore(only)
            self._draw_animated(only)
            if self.mode == "ipympl":
                canvas.blit(self.figure.bbox)  # sends the frame (the pixels that changed) now
        self.figure.stale = False  # what is shown is what the artists hold: nothing for pyplot to redraw
        if self.mode == "inline":
            self.image.value = self.png()

    def png(self) -> bytes:
        """The canvas as it is now, as PNG bytes (fast compression: it is sent, not stored)."""
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(self.figure.canvas.buffer_rgba())).save(buffer, format="png", compress_level=1)
        return buffer.getvalue()
