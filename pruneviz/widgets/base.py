"""What the kit's widgets share: the sparsity slider, errors shown in the widget, the default model and data."""
from __future__ import annotations

import html
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import ipywidgets as widgets

from .accessible import Slider
from .session import ChangedOutside


class SparsitySlider(Slider):
    """A sparsity from 0 to 1 in steps of 0.01, shown (and announced to screen readers) with two decimals, named
    "sparsity" for them by its label. 0..1, not 0..0.99: every step lands on a two-decimal value."""


def sparsity_slider(value: float, css: str, **kwargs) -> SparsitySlider:
    """The sparsity slider of the kit's widgets, with the CSS class ``css`` (tests and pages find it by it)."""
    slider = SparsitySlider(value=value, min=0.0, max=1.0, step=0.01, decimals=2, description="sparsity",
                            continuous_update=True, tooltip="sparsity: the fraction of weights pruned",
                            layout=widgets.Layout(width="420px"), **kwargs)
    slider.add_class(css)
    return slider


class StatusLine:
    """A line that says the widget is working while it computes something slow (scores for a new criterion, a
    least-squares refit, the accuracy curve in the background): ipywidgets sends the text at once, so the page
    shows it before the work starts, and the line is emptied when the work ends. ``history`` keeps every text shown (tests, and the browser test)."""

    def __init__(self):
        self.widget = widgets.HTML(value="")
        self.widget.add_class("pruneviz-status")
        self.history: list[str] = []

    def show(self, text: str) -> None:
        """Say what runs in the background (the accuracy curve filling), until :meth:`clear`."""
        if not self.history or self.history[-1] != text:
            self.history.append(text)
        self.widget.value = f'<span role="status" aria-live="polite">⏳ {html.escape(text)}</span>'

    def clear(self) -> None:
        self.widget.value = ""

    @contextmanager
    def working(self, text: str) -> Iterator[None]:
        self.history.append(text)
        self.widget.value = f'<span role="status" aria-live="polite">⏳ {html.escape(text)}</span>'
        try:
            yield
        finally:
            self.widget.value = ""


class ErrorPanel:
    """Shows what went wrong in a callback inside the widget (ipywidgets would hide it in a log).

    A ValueError is the user's choice being refused (an invalid combination): its message is enough.
    Anything else is a bug: type, message and traceback.
    """

    def __init__(self):
        self.widget = widgets.HTML(value="")
        self.widget.add_class("pruneviz-message")
        self.errors: list[BaseException] = []

    def clear(self) -> None:
        self.widget.value = ""

    def show(self, error: BaseException) -> None:
        self.errors.append(error)
        message = html.escape(str(error))
        if isinstance(error, ValueError):
            body = f"<b>Not possible:</b> {message}"
        else:
            trace = html.escape("".join(traceback.format_exception(error)))
            body = (f"<b>{type(error).__name__}:</b> {message}"
                    f"<details><summary>traceback</summary><pre>{trace}</pre></details>")
        self.widget.value = f'<div class="pruneviz-error" style="color:#b35806">{body}</div>'

    def guard(self, action, *args) -> bool:
        """Run ``action(*args)``; on an exception show it here and return False."""
        try:
            action(*args)
        except Exception as error:  # shown in the widget, kept in self.errors: a callback must not raise
            self.show(error)
            return False
        self.clear()
        return True


def default_model_and_data(model, data, calibration, data_name: str | None = None):
    """What a widget was not given: a zoo name (``"mnist1d-cnn"``) is that model, on its own task's test set,
    calibrated on that task's validation set (held out from training, so OBD's curvature and APoZ's zeros are
    those of unseen examples); nothing at all is digits-cnn on the digits. Returns the model, data, calibration
    and the name of the data for titles ("the MNIST-1D test set"; None when the data was given unnamed)."""
    from .. import zoo

    if model is None:
        model = "digits-cnn"
    if isinstance(model, str):
        name = model
        model = zoo.load(name)  # an unknown name: the zoo's error, with the valid names
        if data is None:
            _, val, test = zoo.data(name)
            data, calibration = test, val if calibration is None else calibration
            data_name = data_name or f"the {TASK_NAMES.get(zoo.task(name), zoo.task(name))} test set"
    elif data is None:
        raise ValueError(f"a model of your own needs its data: pass data= (the examples to evaluate on, with "
                         f"their labels); got a {type(model).__name__} and no data. With a zoo name "
                         f"(e.g. 'digits-cnn', 'mnist1d-cnn') the widget takes that model's own test set")
    return model, data, calibration, data_name


TASK_NAMES = {"digits": "digits", "mnist1d": "MNIST-1D"}


def show_background_failure(error: BaseException, status: StatusLine, errors: ErrorPanel) -> None:
    """What a widget does when its background work (accuracy at rest, the curve) stops on an error: a model
    changed outside the widget is not a failure (the model is someone else's now), so it is said in the status
    line; anything else is shown in the error panel."""
    if isinstance(error, ChangedOutside):
        status.show(str(error))
        return
    status.clear()
    errors.show(error)
