"""Criteria side by side: the same model, the same sparsity, one mask per criterion and all accuracy curves."""
from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
from torch import nn

from ..data import Data
from ..dense import dense_copy
from ..plot import AccuracyCurves, MaskImage
from .base import ErrorPanel, default_model_and_data, sparsity_slider
from .figure import LiveFigure
from .session import SPARSITY_GRID, PruningSession

Config = str | tuple[str, str]  # a criterion (at the common granularity) or (criterion, granularity)


class Comparison(widgets.VBox):
    """The comparison widget. Attributes: sparsity, layer (controls); sessions ({label: PruningSession}, each on
    its own copy of the model); masks ({label: MaskImage}); curves (AccuracyCurves); errors (ErrorPanel)."""

    def __init__(self, model: nn.Module, data: Data, configs: Sequence[Config], *, granularity: str = "element",
                 scope: str = "local", sparsity: float = 0.5, layer: str | None = None,
                 calibration: Data | None = None, figure: str = "auto", grid: Sequence[float] = SPARSITY_GRID,
                 reconstruct: bool = False):
        if len(configs) < 2:
            raise ValueError(f"compare needs two or more criteria, got {list(configs)}")
        pairs = [(c, granularity) if isinstance(c, str) else tuple(c) for c in configs]
        self.errors = ErrorPanel()
        self.sessions: dict[str, PruningSession] = {}
        for criterion, gran in pairs:
            label = f"{criterion}, {gran}" + (" + LS" if reconstruct else "")
            session = PruningSession(dense_copy(model), data, calibration=calibration, grid=tuple(grid),
                                     reconstruct=reconstruct)
            session.use(criterion, gran, scope)  # an invalid pair raises here, before any widget exists
            self.sessions[label] = session
        first = next(iter(self.sessions.values()))
        layers = first.layer_names
        if layer is not None and layer not in layers:
            raise ValueError(f"unknown layer {layer!r}; valid choices: {', '.join(map(repr, layers))}")
        self.sparsity = sparsity_slider(sparsity, "pruneviz-compare-sparsity")
        self.layer = widgets.Dropdown(options=layers, value=layer or layers[len(layers) // 2], description="layer")
        self.layer.add_class("pruneviz-compare-layer")
        self.readout = widgets.HTML()
        self.readout.add_class("pruneviz-compare-readout")

        n = len(self.sessions)
        self.figure = LiveFigure((3.2 * n + 4.0, 3.4), mode=figure)
        axes = self.figure.subplots(1, n + 1, gridspec_kw={"width_ratios": [1.0] * n + [1.3]})
        self.figure.figure.subplots_adjust(left=0.04, right=0.99, bottom=0.17, top=0.84, wspace=0.3)
        self.masks = {label: MaskImage(ax, max_out=32, max_in=32) for label, ax in zip(self.sessions, axes[:n])}
        self.curves = AccuracyCurves(axes[n], current_label="_nolegend_")
        for label, session in self.sessions.items():
            self.curves.set_curve(label, *session.curve())
            self.curves.set_current(session.ratio, None, label=label)  # creates the marker, hidden
        self.figure.animate([*(m.image for m in self.masks.values()), *(m.ax.title for m in self.masks.values()),
                             *self.curves.markers.values()])
        self._full = True
        super().__init__([widgets.HBox([self.sparsity, self.layer]), self.figure.widget, self.readout,
                          self.errors.widget])
        self.add_class("pruneviz-compare")
        self._show_layer()
        self._move()
        self.sparsity.observe(lambda _: self.errors.guard(self._move), "value")
        self.layer.observe(lambda _: self.errors.guard(self._layer_changed), "value")

    def _show_layer(self) -> None:
        for label, session in self.sessions.items():
            self.masks[label].set_weight(session.dense_weight(self.layer.value))

    def _layer_changed(self) -> None:
        self._full = True
        self._show_layer()
        self._move()

    def _move(self) -> None:
        rows = []
        self.readouts = {}
        for label, session in self.sessions.items():
            state = session.step(self.sparsity.value)
            self.readouts[label] = state
            mask = session.mask(self.layer.value)
            self.masks[label].set_mask(mask)
            self.masks[label].ax.set_title(f"{label}\n{self.layer.value}: "
                                           f"{100 * (1 - float(mask.float().mean())):.1f} % pruned", fontsize=9)
            self.curves.set_current(self.sparsity.value, state.accuracy, label=label)
            rows.append(f"<tr><td>{html.escape(label)}</td><td>{100 * state.accuracy:.1f} %</td>"
                        f"<td>{state.sparsity:.3f}</td><td>{state.nonzero_parameters:,}</td></tr>")
        self.readout.value = ("<table><tr><th>criterion</th><th>accuracy</th><th>sparsity</th>"
                              "<th>nonzero parameters</th></tr>" + "".join(rows) + "</table>")
        self.figure.draw(full=self._full)  # the frame first: it is what the eye waits for
        self.figure.describe(f"Masks of {self.layer.value} side by side and accuracy against sparsity, at "
                             f"sparsity {self.sparsity.value:.2f}: " + "; ".join(self.readout_text().splitlines()))
        self._full = False

    def __repr__(self) -> str:  # short and stable: notebooks show (and nbval compares) it as text/plain
        return f"Comparison({list(self.sessions)}, layer={self.layer.value!r}, sparsity={self.sparsity.value:.2f})"

    def readout_text(self) -> str:
        return "\n".join(f"{label}: accuracy {100 * s.accuracy:.1f} %, sparsity {s.sparsity:.3f}"
                         for label, s in self.readouts.items())


def compare(model: nn.Module | None = None, data: Data | None = None, criteria: Sequence[Config] = (
        "magnitude", "random"), *, granularity: str = "element", scope: str = "local", sparsity: float = 0.5,
        layer: str | None = None, calibration: Data | None = None, figure: str = "auto",
        grid: Sequence[float] = SPARSITY_GRID, reconstruct: bool = False) -> Comparison:
    """Two or more criteria (or ``(criterion, granularity)`` pairs) side by side at the same sparsity.

    ``reconstruct=True`` (channel granularity) refits each pruned layer's next layer by least squares on the
    calibration data after every move (:func:`pruneviz.reconstruct`); the labels say "+ LS".

    Each gets its own copy of the model holding its dense weights (even if a Pruner or an explorer has pruned the
    model passed in), and the model passed in stays as it is. With no model and data:
    digits-cnn on the digits test set (calibration: the training set).
    """
    model, data, calibration = default_model_and_data(model, data, calibration)
    return Comparison(model, data, criteria, granularity=granularity, scope=scope, sparsity=sparsity, layer=layer,
                      calibration=calibration, figure=figure, grid=grid, reconstruct=reconstruct)
