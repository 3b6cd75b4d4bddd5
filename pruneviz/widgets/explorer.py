"""The explorer: one slider, the model re-pruned at every move, histogram, mask and accuracy moving at once."""
from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
from torch import nn

from ..criteria import REGISTRY
from ..data import Data, as_tensors
from ..plot import AccuracyCurves, MaskImage, WeightHistogram
from ..plot.weights import mask_pattern, nm_blocks
from ..selection import SCOPES
from ..plot.curves import pruned_unit
from .background import Background, Scheduler
from .base import ErrorPanel, StatusLine, default_model_and_data, show_background_failure, sparsity_slider
from .figure import MAX_WIDTH_INCHES, LiveFigure
from .session import SPARSITY_GRID, PruningSession, Readout, coarse_first, valid_granularities

ESTIMATE_ALPHA = 0.4  # the accuracy point while it is read off the curve (faint), then exact (full colour)


def _control(widget: widgets.Widget, css: str) -> widgets.Widget:
    widget.add_class(css)
    return widget


class Explorer(widgets.VBox):
    """The explorer's widget. Its controls are attributes, so a cell can move them as a user would:

    >>> explorer = explore()
    >>> explorer.sparsity.value = 0.8
    >>> print(explorer.readout_text())

    A move answers at once with what needs no evaluation (histogram, threshold, mask, sparsity, parameters,
    MACs; the accuracy read off the curve computed so far, marked "≈"); the accuracy at the value is evaluated
    when the slider rests, in bounded batches that a newer move stops (:mod:`pruneviz.widgets.background`), and
    the accuracy curve fills in the background, coarse grid first. ``readout_text()``, ``last_readout`` and
    ``settle()`` do the pending work at once: a cell that moves a control and prints gets the exact numbers.

    Attributes: sparsity, criterion, granularity, scope, layer, only_layer (controls); session (the engine);
    histogram, mask, curves (plot updaters); figure (LiveFigure); errors (ErrorPanel); status (StatusLine: what
    is being computed); notes (what the last move did besides pruning: a layer left empty, a granularity changed);
    shown_readout (the readout on screen, maybe estimated); background (the work waiting for the slider to rest).
    """

    def __init__(self, session: PruningSession, *, criterion: str = "magnitude", granularity: str = "element",
                 scope: str = "local", sparsity: float = 0.0, layer: str | None = None, figure: str = "auto",
                 data_name: str = "the evaluation data", scheduler: Scheduler | None = None):
        self.session = session
        self.background = Background(self._plan, scheduler,
                                     on_error=lambda error: show_background_failure(error, self.status, self.errors))
        self.shown_readout: Readout | None = None
        self._histogram_shows = None  # (pruner, state) whose mask the histogram's kept counts hold
        self.data_name = data_name
        self.status = StatusLine()
        self.notes: list[str] = []
        self._granularity_note: str | None = None
        model = session.model
        self.errors = ErrorPanel()
        criteria = list(REGISTRY)
        if criterion not in criteria:
            raise ValueError(f"unknown criterion {criterion!r}; valid choices: {', '.join(map(repr, criteria))}")
        layers = session.layer_names
        if layer is not None and layer not in layers:
            raise ValueError(f"unknown layer {layer!r}; valid choices: {', '.join(map(repr, layers))}")
        style = {"description_width": "80px"}
        self.sparsity = sparsity_slider(sparsity, "pruneviz-sparsity", description_width=style["description_width"])
        self.criterion = _control(widgets.Dropdown(options=criteria, value=criterion, description="criterion",
                                                   style=style), "pruneviz-criterion")
        self.granularity = _control(widgets.Dropdown(options=valid_granularities(model, criterion),
                                                     description="granularity", style=style),
                                    "pruneviz-granularity")
        if granularity in self.granularity.options:
            self.granularity.value = granularity
        # radio buttons: real <input type=radio>, so the chosen scope is announced as checked
        self.scope = _control(widgets.RadioButtons(options=list(SCOPES), value=scope, description="scope",
                                                   orientation="horizontal", style=style), "pruneviz-scope")
        self.layer = _control(widgets.Dropdown(options=layers, value=layer or layers[0], description="layer",
                                               style=style), "pruneviz-layer")
        self.only_layer = _control(widgets.Checkbox(value=False, description="prune only this layer",
                                                    indent=False), "pruneviz-only-layer")
        self.readout = _control(widgets.HTML(), "pruneviz-readout")

        self.figure = LiveFigure((MAX_WIDTH_INCHES, 3.5), mode=figure)
        ax_hist, ax_mask, ax_curve = self.figure.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.0, 1.1]})
        # a fixed layout (no tight/constrained layout): nothing moves or is measured again on a slider move
        self.figure.figure.subplots_adjust(left=0.065, right=0.975, bottom=0.17, top=0.85, wspace=0.3)
        self.histogram = WeightHistogram(ax_hist)
        self.mask = MaskImage(ax_mask, max_out=32, max_in=32)
        self.curves = AccuracyCurves(ax_curve, pruned=granularity)
        ax_curve.set_title(f"accuracy on {data_name}", fontsize=10)
        # the share pruned under the mask's title, drawn on each move: one short text (the layer's name above it
        # is background: text is most of a frame's drawing time)
        self.pruned_text = ax_mask.text(0.5, 1.02, "", transform=ax_mask.transAxes, ha="center", va="bottom",
                                        fontsize=10)
        self.figure.animate([self.histogram.after, *self.histogram.thresholds, self.mask.image, self.pruned_text,
                             self.curves.current])
        self._full = True  # the next draw redraws the background too

        wrap = widgets.Layout(flex_flow="row wrap")  # a narrow notebook puts controls on the next line, not off it
        controls = widgets.VBox([
            widgets.HBox([self.sparsity, self.scope], layout=wrap),
            widgets.HBox([self.criterion, self.granularity, self.layer, self.only_layer], layout=wrap),
        ])
        super().__init__([controls, self.status.widget, self.figure.widget, self.readout, self.errors.widget])
        self.add_class("pruneviz-explorer")

        self._show_layer()
        if not self.errors.guard(self._switch):
            raise self.errors.errors[-1]  # the starting choice itself is invalid: say so at once
        self._syncing = False
        for control, action in ((self.sparsity, self._move), (self.only_layer, self._move),
                                (self.criterion, self._criterion_changed), (self.granularity, self._switch),
                                (self.scope, self._switch), (self.layer, self._layer_changed)):
            control.observe(self._callback(action), "value")

    def _callback(self, action):
        def on_change(_change) -> None:
            if not self._syncing:  # a control we are setting ourselves: one update at the end is enough
                if not self.errors.guard(action):
                    self._show_what_the_model_holds()  # the error stays in the panel
        return on_change

    def _show_what_the_model_holds(self) -> None:
        """After a refused choice: every control back to the session's pruner, ratio and layer, and the plots
        and readout redrawn from the model, so nothing shows a choice the model does not hold."""
        session = self.session
        if session.key is None:
            return
        criterion, granularity, scope = session.key
        self._syncing = True
        try:
            self.criterion.value = criterion
            self.granularity.options = valid_granularities(session.model, criterion)
            self.granularity.value = granularity
            self.curves.set_pruned(granularity)
            self.scope.value = scope
            self.only_layer.disabled = scope == "global"
            self.only_layer.value = session.layer is not None
            if session.layer is not None:
                self.layer.value = session.layer
            self.sparsity.value = session.ratio
        finally:
            self._syncing = False
        self._show_layer()
        self._refresh()

    # -- callbacks ----------------------------------------------------------------------------------
    def _target_layer(self) -> str | None:
        return self.layer.value if self.only_layer.value else None

    def _move(self) -> None:
        """A slider move: the work in flight dropped, re-prune from cached scores, the first frame; the accuracy
        at this value when the slider rests."""
        self.background.touch()
        before = (self.session.pruner, self.session.state)
        self.session.set_ratio(self.sparsity.value, self._target_layer())
        if self.session.layer is not None:
            label = self.session.curve_label()
            self._full = self._full or label not in self.curves.lines
            self.curves.set_curve(label, *self.session.curve_so_far())
        # the histogram moves by the weights whose mask flipped when it shows the state this prune started from
        changed = self.session.changed(self.layer.value) if self._histogram_shows == before else None
        self._refresh(changed)

    def _criterion_changed(self) -> None:
        options = valid_granularities(self.session.model, self.criterion.value)
        current = self.granularity.value
        self._syncing = True
        try:
            self.granularity.options = options
            self.granularity.value = current if current in options else (options[0] if options else None)
        finally:
            self._syncing = False
        changed = self.granularity.value is not None and current != self.granularity.value
        self._switch(f"{self.criterion.value} scores whole {pruned_unit(self.granularity.value)}: the "
                     f"granularity changed from {current} to {self.granularity.value}" if changed else None)

    def _switch(self, note: str | None = None) -> None:
        """Another criterion, granularity or scope: its pruner (built now: scores computed once per choice
        shown), its curve (filled in the background), the same ratio.
        ``note``: what the switch changed besides the user's choice, said in the readout."""
        self._granularity_note = note
        if self.granularity.value is None:
            raise ValueError(f"criterion {self.criterion.value!r} fits no layer of this model")
        if self.scope.value == "global" and self.only_layer.value:
            self._syncing = True  # one layer alone is a local choice: global scope has one threshold for all
            self.only_layer.value = False
            self._syncing = False
        self.only_layer.disabled = self.scope.value == "global"
        choice = (self.criterion.value, self.granularity.value, self.scope.value)
        self.background.touch()
        if self.session.knows(*choice):
            self._use(choice)
        else:  # scores computed now (OBD's Hessian, APoZ's activations...): say so while it runs
            with self.status.working(f"computing the {choice[0]} scores ({choice[1]}, {choice[2]} scope): "
                                     f"once for this choice, later moves are fast"):
                self._use(choice)
        shape = tuple(self.session.dense_weight(self.layer.value).shape)
        if self.mask.blocks != nm_blocks(self.granularity.value, shape):
            self._show_layer()  # N:M in its blocks, the others in the kernel grid
        self._full = True
        self._refresh()

    def _use(self, choice) -> None:
        self.session.use(*choice)
        self.session.set_ratio(self.sparsity.value, self._target_layer())
        self.curves.set_pruned(self.granularity.value)  # one quantity on the x-axis: the slider's
        self.curves.set_curve(self.session.curve_label(), *self.session.curve_so_far())

    def _layer_changed(self) -> None:
        """Another layer shown: with "prune only this layer" a move; else display only (nothing evaluated)."""
        self._show_layer()
        if self.only_layer.value:
            self._move()
        else:
            self._refresh()

    # -- the work when the slider rests ---------------------------------------------------------------
    def _plan(self):
        """The accuracy at the value shown, then the curve's missing points, coarse grid first."""
        session = self.session
        if session.pruner is None:
            return
        if session.known() is None:
            yield from session.evaluation(background=True)
            self._show_accuracy()
            yield  # the exact accuracy goes out before the curve starts
        self._show_accuracy()
        label = session.curve_label()
        for ratio in coarse_first(session.grid):
            if session.known(ratio) is not None:
                continue
            done, total = session.curve_progress()
            self.status.show(f"accuracy curve of {label}: {done} of {total} points (in the background)")
            yield from session.evaluation(ratio, background=True)
            self._show_curve()
            yield  # each point drawn as it comes
        self.status.clear()

    def _show_accuracy(self) -> None:
        """The exact accuracy at the value shown: readout and curve point (a frame of the curve's Axes only)."""
        if self.shown_readout is not None and not self.shown_readout.estimated \
                and self.shown_readout.accuracy is not None:
            return
        self._show_readout(self.session.readout())
        self.figure.draw(only=self.curves.ax)

    def _show_curve(self) -> None:
        """The curve with the points evaluated so far (a new point: a full frame)."""
        self.curves.set_curve(self.session.curve_label(), *self.session.curve_so_far())
        if self.shown_readout is not None and self.shown_readout.estimated:
            self._show_readout(self.session.first_readout())  # a better estimate from the new point
        self.figure.draw(full=True)

    def settle(self) -> None:
        """Everything the rest would bring, now: the exact accuracy at the value shown and the whole curve."""
        self.background.cancel()
        self._show_accuracy()
        self.session.curve()
        self._show_curve()
        self.status.clear()

    # -- drawing ------------------------------------------------------------------------------------
    def _show_layer(self) -> None:
        name = self.layer.value
        weight = self.session.dense_weight(name)
        self.histogram.set_dense(weight)  # bins each weight once: a move then counts the mask into them
        self._histogram_shows = None
        self.histogram.ax.set_title(f"weights of {name} {tuple(weight.shape)}")
        self.mask.blocks = nm_blocks(self.granularity.value, tuple(weight.shape))  # N:M: in its blocks of M
        self.mask.set_weight(weight).set_mask(None)  # the layout (is it cropped?) before the first mask
        shown = " (first 32 channels)" if self.mask.cropped else ""
        self.mask.ax.set_title(f"mask of {name}{shown}", fontsize=10, pad=17)
        self._full = True

    def _refresh(self, changed=None) -> None:
        """The first frame of a move: histogram, threshold, mask and readout from the session, the accuracy
        known or read off the curve. ``changed``: the flat indices of the shown layer's weights whose mask the
        last prune flipped (the histogram moves by them), None to count the whole mask."""
        name = self.layer.value
        session = self.session
        mask = session.mask(name)
        self.histogram.set_kept(mask, session.threshold(name), changed=changed)
        self._histogram_shows = (session.pruner, session.state)
        self.mask.set_mask(mask)
        kept = float(self.histogram.kept_counts.sum()) / max(1, mask.numel())  # the histogram counts every weight
        pattern = mask_pattern(mask, self.mask.blocks)
        self.pruned_text.set_text(f"{100 * (1 - kept):.1f} % pruned" + (f", {pattern}" if pattern else ""))
        self.notes = self._notes()
        self._show_readout(session.first_readout())
        self.figure.draw(full=self._full)
        self._full = False

    def _show_readout(self, state: Readout) -> None:
        self.shown_readout = state
        self.curves.set_current(self.session.ratio, state.accuracy)
        self.curves.current.set_alpha(ESTIMATE_ALPHA if state.estimated else 1.0)
        self.readout.value = f"<code>{html.escape(state.text())}</code>" + "".join(
            f'<div class="pruneviz-note">⚠ {html.escape(note)}</div>' for note in self.notes)
        kept = 1 - float(self.histogram.kept_counts.sum()) / max(1, self.session.mask(self.layer.value).numel())
        self.figure.describe(f"Weight histogram of {self.layer.value} with the pruning threshold, its mask "
                             f"({100 * kept:.1f} % pruned) and accuracy against sparsity: "
                             f"{self.criterion.value}, {self.granularity.value}, {self.scope.value} scope; "
                             f"{state.text()}")

    def _notes(self) -> list[str]:
        """What the readout says besides the numbers: layers left with nothing or kept from it by the global
        guard, a granularity switched."""
        notes = [self._granularity_note] if self._granularity_note else []
        emptied = self.session.emptied_layers()
        if emptied:
            unit = pruned_unit(self.granularity.value)
            names = ", ".join(emptied)
            notes.append(f"{names} {'has' if len(emptied) == 1 else 'have'} no {unit} left: nothing passes "
                         f"through, the model is cut there"
                         + (" (one global threshold took all of it; pruneviz.Pruner(..., scope='global', "
                            "max_layer_sparsity=0.9) keeps a share of every layer)"
                            if self.scope.value == "global" else ""))
        if self.granularity.value == "group":
            notes += self._group_notes()
        guarded = self.session.guarded_layers()
        if guarded:
            unit = pruned_unit(self.granularity.value)
            notes.append(f"{', '.join(guarded)}: the one global threshold would have taken every {unit}; the kit "
                         f"keeps the most important one so the network still computes (Pruner.guarded; "
                         f"max_layer_sparsity=0.9 keeps a share of every layer)")
        return notes

    def _group_notes(self) -> list[str]:
        """Granularity "group": which layers the shown layer's channel group spans (its mask is pruned with them)."""
        name = self.layer.value
        groups = self.session.groups_of(name)
        if not groups:
            why = getattr(self.session.pruner, "skipped", {}).get(name)
            return [f"{name} is in no channel group pruned here" + (f": {why}" if why else "")]
        notes = []
        for group in groups:
            readers = [c for c in group.consumers if c not in group.producers]
            notes.append(f"{name}: the channel group {group.name} ({group.size} channels) spans "
                         f"{', '.join(group.layers())}: written by {', '.join(group.producers)}"
                         + (f", read by {', '.join(readers)}" if readers else "")
                         + "; its channels go together in all of them")
        return notes

    def __repr__(self) -> str:  # short and stable: notebooks show (and nbval compares) it as text/plain
        return (f"Explorer(criterion={self.criterion.value!r}, granularity={self.granularity.value!r}, "
                f"scope={self.scope.value!r}, layer={self.layer.value!r}, sparsity={self.sparsity.value:.2f})")

    @property
    def last_readout(self) -> Readout:
        """The exact readout at the value shown (the accuracy evaluated now if the slider has not rested yet)."""
        self._show_accuracy()
        return self.shown_readout

    def readout_text(self) -> str:
        """The readout as plain text (accuracy, sparsity, nonzero parameters, size, MACs), then its notes; the
        accuracy exact (evaluated now if it was still pending)."""
        return "\n".join([self.last_readout.text(), *self.notes])

    @property
    def last_error(self) -> BaseException | None:
        return self.errors.errors[-1] if self.errors.errors else None


def explore(model: nn.Module | str | None = None, data: Data | None = None, *, calibration: Data | None = None,
            criterion: str = "magnitude", granularity: str = "element", scope: str = "local",
            sparsity: float = 0.0, layer: str | None = None, figure: str = "auto",
            grid: Sequence[float] = SPARSITY_GRID, data_name: str | None = None,
            scheduler: Scheduler | None = None) -> Explorer:
    """The pruning explorer for a model and its test data; a zoo name (``"mnist1d-cnn"``) brings its own task's
    test set (calibration: that task's validation set); with no arguments, digits-cnn on the digits test set.

    The model is pruned in place as the slider moves (``explorer.session.restore()`` gives it back dense).
    Criteria that need data (scaling, obd, apoz, regression) get ``calibration`` (default: ``data``; with no
    arguments at all, the digits training set). ``figure``: 'auto' (ipympl under ``%matplotlib widget``, else
    a PNG image), 'ipympl' or 'inline'. ``grid``: the sparsities of the accuracy curves. ``data_name``: what
    ``data`` is, for the accuracy panel's title (e.g. "the validation set"); default: the digits test set when no
    data is given, else "the data given (N examples)". ``scheduler``: what runs the work when the slider rests
    (default: the running event loop, ipykernel's; outside one, nothing runs until a result is read:
    :class:`~pruneviz.widgets.background.ManualScheduler`).
    """
    model, data, calibration, data_name = default_model_and_data(model, data, calibration, data_name)
    session = PruningSession(model, data, calibration=calibration, grid=tuple(grid))
    session.readout_says_guard = True  # the explorer names the guarded layers in its readout
    if data_name is None:
        data_name = f"the data given ({len(as_tensors(data)[1]):,} examples)"
    return Explorer(session, criterion=criterion, granularity=granularity, scope=scope, sparsity=sparsity,
                    layer=layer, figure=figure, data_name=data_name, scheduler=scheduler)
