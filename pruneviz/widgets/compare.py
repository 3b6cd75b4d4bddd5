"""Criteria side by side: the same model, the same sparsity, one mask per criterion and all accuracy curves."""
from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
from torch import nn

from ..data import Data
from ..dense import dense_copy
from ..plot import AccuracyCurves, MaskImage
from ..plot.curves import pruned_unit
from ..plot.theme import theme
from ..plot.weights import mask_pattern, nm_blocks
from .background import Background, Scheduler
from .base import ErrorPanel, StatusLine, default_model_and_data, show_background_failure, sparsity_slider
from .explorer import ESTIMATE_ALPHA
from .figure import MAX_WIDTH_INCHES, LiveFigure
from .session import SPARSITY_GRID, PruningSession, Readout, coarse_first

Config = str | tuple[str, str]  # a criterion (at the common granularity) or (criterion, granularity)


def _family(granularity: str) -> str:
    """A granularity's name for a curve over many ratios: an N:M granularity is "N:4" (it holds 2:4 only at
    50 %, a balanced mix of patterns between), the others their own name."""
    m = nm_blocks(granularity)
    return f"N:{m}" if m else granularity


class Comparison(widgets.VBox):
    """The comparison widget. Attributes: sparsity, layer (controls); sessions ({label: PruningSession}, each on
    its own copy of the model); masks ({label: MaskImage}); curves (AccuracyCurves); errors (ErrorPanel); status
    (StatusLine: shown while a move refits, with ``reconstruct=True``).

    The curves' x-axis is one quantity: the ratio of what the granularity prunes (weights, kernels, channels)
    when all share one granularity, else the weight sparsity each ratio gave (the readout's sparsity).
    The figure fits :data:`~pruneviz.widgets.figure.MAX_WIDTH_INCHES`: past two masks, they go in rows of two.

    As in the explorer, a move shows the masks at once and each accuracy read off its curve (marked "≈"); the
    accuracies are evaluated when the slider rests, a newer move stopping them between batches, and the curves
    fill in the background. ``readouts``, ``readout_text()`` and ``settle()`` do the pending work at once."""

    def __init__(self, model: nn.Module, data: Data, configs: Sequence[Config], *, granularity: str = "element",
                 scope: str = "local", sparsity: float = 0.5, layer: str | None = None,
                 calibration: Data | None = None, figure: str = "auto", grid: Sequence[float] = SPARSITY_GRID,
                 reconstruct: bool = False, scheduler: Scheduler | None = None):
        if len(configs) < 2:
            raise ValueError(f"compare needs two or more criteria, got {list(configs)}")
        pairs = [(c, granularity) if isinstance(c, str) else tuple(c) for c in configs]
        self.errors = ErrorPanel()
        self.background = Background(self._plan, scheduler,
                                     on_error=lambda error: show_background_failure(error, self.status, self.errors))
        self.shown_readouts: dict[str, Readout] = {}
        self.sessions: dict[str, PruningSession] = {}
        for criterion, gran in pairs:
            label = f"{criterion}, {_family(gran)}" + (" + LS" if reconstruct else "")
            session = PruningSession(dense_copy(model), data, calibration=calibration, grid=tuple(grid),
                                     reconstruct=reconstruct)
            session.readout_says_guard = True  # the readout names the guarded layers (see _guard_notes)
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
        self.status = StatusLine()
        self.reconstruct = reconstruct

        n = len(self.sessions)
        granularities = {gran for _, gran in pairs}
        # one quantity per axis: the shared granularity's ratio, or (mixed) the weight sparsity each ratio gave
        self.x = "ratio" if len({pruned_unit(g) for g in granularities}) == 1 else "sparsity"
        cols = n if n <= 2 else 2
        rows = -(-n // cols)
        width = min(MAX_WIDTH_INCHES, 3.2 * cols + 4.4)
        self.figure = LiveFigure((width, 3.4 * rows), mode=figure)
        grid = self.figure.figure.add_gridspec(rows, cols + 1, width_ratios=[1.0] * cols + [1.35])
        with theme():
            mask_axes = [self.figure.figure.add_subplot(grid[i // cols, i % cols]) for i in range(n)]
            curve_ax = self.figure.figure.add_subplot(grid[:, cols])
        self.figure.figure.subplots_adjust(left=0.04, right=0.99, bottom=0.17 / rows, top=1 - 0.16 / rows,
                                           wspace=0.3, hspace=0.45)
        self.masks = {label: MaskImage(ax, max_out=32, max_in=32) for label, ax in zip(self.sessions, mask_axes)}
        self.curves = AccuracyCurves(curve_ax, current_label="_nolegend_",
                                     pruned=next(iter(granularities)) if self.x == "ratio" else "weights")
        if self.x == "sparsity":
            curve_ax.set_xlabel("weights pruned (% of all weights)")
        for label, session in self.sessions.items():
            self.curves.set_curve(label, *session.curve_so_far(self.x))  # filled in the background
            self.curves.set_current(session.ratio, None, label=label)  # creates the marker, hidden
        self.figure.animate([*(m.image for m in self.masks.values()), *(m.ax.title for m in self.masks.values()),
                             *self.curves.markers.values()])
        self._full = True
        super().__init__([widgets.HBox([self.sparsity, self.layer], layout=widgets.Layout(flex_flow="row wrap")), self.status.widget, self.figure.widget,
                          self.readout, self.errors.widget])
        self.add_class("pruneviz-compare")
        self._show_layer()
        self._move()
        self.sparsity.observe(lambda _: self.errors.guard(self._move), "value")
        self.layer.observe(lambda _: self.errors.guard(self._layer_changed), "value")

    def _show_layer(self) -> None:
        for label, session in self.sessions.items():
            weight = session.dense_weight(self.layer.value)
            # an N:M mask in its blocks of M (where the layer takes the pattern), the others in the kernel grid
            self.masks[label].blocks = nm_blocks(session.key[1], tuple(weight.shape))
            self.masks[label].set_weight(weight)

    def _layer_changed(self) -> None:
        """Another layer shown: display only, nothing evaluated."""
        self._full = True
        self._show_layer()
        self._draw_masks()
        self._draw()

    def _move(self) -> None:
        """A move: the work in flight dropped, every copy re-pruned, the masks and each accuracy read off its curve
        in one frame; the accuracies themselves when the slider rests."""
        self.background.touch()
        for label, session in self.sessions.items():
            if self.reconstruct:  # a least-squares refit per move: seconds, so say it is working
                with self.status.working(f"{label}: pruning and refitting the next layers by least squares"):
                    session.set_ratio(self.sparsity.value)
            else:
                session.set_ratio(self.sparsity.value)
            self.shown_readouts[label] = session.first_readout()
        self._draw_masks()
        self._draw()

    def _draw_masks(self) -> None:
        for label, session in self.sessions.items():
            mask = session.mask(self.layer.value)
            image = self.masks[label]
            image.set_mask(mask)
            pattern = mask_pattern(mask, image.blocks)  # what this mask holds: "2:4", "1 or 2 of every 4"
            drawn = label if not pattern else label.replace(_family(session.key[1]), pattern)
            image.ax.set_title(f"{drawn}\n{self.layer.value}: "
                               f"{100 * (1 - int(mask.sum()) / max(1, mask.numel())):.1f} % pruned", fontsize=9)

    def _draw(self, only=None) -> None:
        """Readout table, accuracy points and the frame from ``shown_readouts``."""
        rows = []
        for label, state in self.shown_readouts.items():
            x = self.sparsity.value if self.x == "ratio" else state.sparsity
            self.curves.set_current(x, state.accuracy, label=label)
            self.curves.markers[label].set_alpha(ESTIMATE_ALPHA if state.estimated else 1.0)
            accuracy = state.accuracy_text().removeprefix("accuracy ")
            rows.append(f"<tr><td>{html.escape(label)}</td><td>{html.escape(accuracy)}</td>"
                        f"<td>{state.sparsity:.3f}</td><td>{state.nonzero_parameters:,}</td></tr>")
        self.readout.value = ("<table><tr><th>criterion</th><th>accuracy</th><th>sparsity</th>"
                              "<th>nonzero parameters</th></tr>" + "".join(rows) + "</table>" + self._guard_notes())
        if only is not None and not self._full:
            self.figure.draw(only=only)
        else:
            self.figure.draw(full=self._full)  # the frame first: it is what the eye waits for
        self.figure.describe(f"Masks of {self.layer.value} side by side and accuracy against sparsity, at "
                             f"sparsity {self.sparsity.value:.2f}: " + "; ".join(
                                 f"{label}: {s.accuracy_text()}, sparsity {s.sparsity:.3f}"
                                 for label, s in self.shown_readouts.items()))
        self._full = False

    def _guard_notes(self) -> str:
        """The layers the global guard kept a group in, per criterion: said here, so no warning is printed."""
        notes = []
        for label, session in self.sessions.items():
            guarded = session.guarded_layers()
            if guarded:
                unit = pruned_unit(session.key[1])
                notes.append(f"<p>{html.escape(label)}: {html.escape(', '.join(guarded))} kept the most "
                             f"important of its {unit}, all of which the one global threshold would have taken (a layer with nothing left makes the "
                             f"network compute a constant; Pruner.guarded, max_layer_sparsity)</p>")
        return "".join(notes)

    # -- the work when the slider rests ---------------------------------------------------------------
    def _plan(self):
        """Each criterion's accuracy at the value shown, then the curves' missing points, coarse grid first."""
        for label, session in self.sessions.items():
            if session.known() is None:
                yield from session.evaluation(background=True)
                self._show_accuracy(label)
                yield
        self._show_accuracy()
        for ratio in coarse_first(next(iter(self.sessions.values())).grid):
            for label, session in self.sessions.items():
                if session.known(ratio) is not None:
                    continue
                done = sum(s.curve_progress()[0] for s in self.sessions.values())
                total = sum(s.curve_progress()[1] for s in self.sessions.values())
                self.status.show(f"accuracy curves: {done} of {total} points (in the background)")
                yield from session.evaluation(ratio, background=True)
                self.curves.set_curve(label, *session.curve_so_far(self.x))
                self._full = True
                self._draw()
                yield
        self.status.clear()

    def _show_accuracy(self, label: str | None = None) -> None:
        """The exact accuracy of ``label`` (default: every one) at the value shown."""
        changed = False
        for name, session in self.sessions.items():
            if label is not None and name != label:
                continue
            shown = self.shown_readouts.get(name)
            if shown is None or shown.estimated or shown.accuracy is None:
                self.shown_readouts[name] = session.readout()
                changed = True
        if changed:
            self._draw(only=self.curves.ax)

    def settle(self) -> None:
        """Everything the rest would bring, now: the exact accuracies and every curve."""
        self.background.cancel()
        self._show_accuracy()
        for label, session in self.sessions.items():
            self.curves.set_curve(label, *session.curve(self.x))
        self._full = True
        self._draw()
        self.status.clear()

    @property
    def readouts(self) -> dict[str, Readout]:
        """The exact readout of each criterion at the value shown (evaluated now if still pending)."""
        self._show_accuracy()
        return dict(self.shown_readouts)

    def __repr__(self) -> str:  # short and stable: notebooks show (and nbval compares) it as text/plain
        return f"Comparison({list(self.sessions)}, layer={self.layer.value!r}, sparsity={self.sparsity.value:.2f})"

    def readout_text(self) -> str:
        return "\n".join(f"{label}: accuracy {100 * s.accuracy:.1f} %, sparsity {s.sparsity:.3f}"
                         for label, s in self.readouts.items())


def compare(model: nn.Module | str | None = None, data: Data | None = None, criteria: Sequence[Config] = (
        "magnitude", "random"), *, granularity: str = "element", scope: str = "local", sparsity: float = 0.5,
        layer: str | None = None, calibration: Data | None = None, figure: str = "auto",
        grid: Sequence[float] = SPARSITY_GRID, reconstruct: bool = False,
        scheduler: Scheduler | None = None) -> Comparison:
    """Two or more criteria (or ``(criterion, granularity)`` pairs) side by side at the same sparsity.

    ``reconstruct=True`` (channel granularity) refits each pruned layer's next layer by least squares on the
    calibration data after every move (:func:`pruneviz.reconstruct`); the labels say "+ LS".

    Each gets its own copy of the model holding its dense weights (even if a Pruner or an explorer has pruned the
    model passed in), and the model passed in stays as it is. A zoo name (``"mnist1d-cnn"``) brings its own
    task's test set (calibration: its validation set); with no model and data: digits-cnn on the digits.
    ``scheduler``: what runs the evaluation when the slider rests (see :func:`~pruneviz.widgets.explore`).
    """
    model, data, calibration, _ = default_model_and_data(model, data, calibration)
    return Comparison(model, data, criteria, granularity=granularity, scope=scope, sparsity=sparsity, layer=layer,
                      calibration=calibration, figure=figure, grid=grid, reconstruct=reconstruct, scheduler=scheduler)
