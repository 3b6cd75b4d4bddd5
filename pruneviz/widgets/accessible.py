"""Two widgets that stock ipywidgets cannot make accessible: a slider with an accessible name and a spoken value,
and a picture with alt text. Both are anywidget front ends (an ES module each, in ``static/``): no JupyterLab
extension of our own to install, and they run wherever ipywidgets do (JupyterLab, Notebook 7, Voila, VS Code).
"""
from __future__ import annotations

from pathlib import Path

import anywidget
import ipywidgets as widgets
import traitlets

STATIC = Path(__file__).parent / "static"


class Slider(anywidget.AnyWidget, widgets.ValueWidget):
    """A float slider (``value``, ``min``, ``max``, ``step``, ``description``, ``disabled``,
    ``continuous_update`` like ipywidgets' FloatSlider) drawn as a native ``<input type="range">``: its label is
    its accessible name and it announces the value with ``decimals`` decimals. A ValueWidget, so
    ``ipywidgets.interact`` takes it as a control."""

    _esm = STATIC / "slider.js"
    _css = STATIC / "slider.css"
    value = traitlets.Float(0.0).tag(sync=True)
    min = traitlets.Float(0.0).tag(sync=True)
    max = traitlets.Float(1.0).tag(sync=True)
    step = traitlets.Float(0.01).tag(sync=True)
    decimals = traitlets.Int(2).tag(sync=True)
    description = traitlets.Unicode("").tag(sync=True)
    description_width = traitlets.Unicode("80px").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)
    continuous_update = traitlets.Bool(True).tag(sync=True)

    def __init__(self, value: float | None = None, **kwargs):
        low, high = kwargs.get("min", 0.0), kwargs.get("max", 1.0)
        if not low < high:
            raise ValueError(f"slider range min={low!r}, max={high!r}: min must be below max")
        if kwargs.get("step", 0.01) <= 0:
            raise ValueError(f"slider step={kwargs['step']!r}: the step must be positive")
        super().__init__(**kwargs)
        if value is not None:
            self.value = value

    @traitlets.validate("value")
    def _validate_value(self, proposal) -> float:
        """Clamped to the range; float noise (0.9000000000000001 from step arithmetic) rounded away, so it never
        reaches a readout. A value off the step grid set from code is kept (the page shows it rounded)."""
        value = min(max(float(proposal["value"]), self.min), self.max)
        return round(value, 10)

    def __repr__(self) -> str:  # stable text/plain for notebooks (nbval compares it)
        return (f"Slider(value={self.value}, min={self.min}, max={self.max}, step={self.step}, "
                f"description={self.description!r})")


class Picture(anywidget.AnyWidget):
    """A PNG (``value``, bytes) shown at ``width`` x ``height`` CSS pixels, with ``alt`` text."""

    _esm = STATIC / "picture.js"
    value = traitlets.Bytes(b"").tag(sync=True)
    alt = traitlets.Unicode("").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)

    def __repr__(self) -> str:
        return f"Picture(width={self.width}, height={self.height}, alt={self.alt!r})"
