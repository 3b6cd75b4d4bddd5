"""Curves over sparsity or training steps: accuracy vs sparsity, per-layer sensitivity, pruning schedules.

Sparsity and accuracy are fractions in [0, 1] in the kit's data; the axes show them in percent.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from .base import axes, percent_axis, register
from .theme import ACCENT, series_style

GUIDE_GAP = 0.25  # a gap between measured sparsities wider than this is drawn dotted: nothing measured there
BAND_COLOR = "0.45"  # grey: a baseline, not one of the compared criteria
FLOOR_COLOR = "0.15"  # near black: a reference line, never the colour of a curve

Curve = tuple[Sequence[float], Sequence[float]]

# what a ratio counts at each granularity: the x-axis names it, so one axis never mixes two quantities
_UNITS = {"element": "weights", "vector": "kernel rows", "kernel": "kernels", "channel": "output channels",
          "input_channel": "input channels"}


def pruned_unit(granularity: str | None) -> str:
    """What a pruning ratio at ``granularity`` is a share of: 'weights' (element, N:M), 'kernels', 'output
    channels'... An unknown name is taken as the unit itself (``pruned_unit("neurons") == "neurons"``)."""
    if granularity is None:
        return "weights"
    from ..granularity import NMGranularity, get_granularity

    try:
        gran = get_granularity(granularity)
    except ValueError:
        return str(granularity)
    return "weights" if isinstance(gran, NMGranularity) else _UNITS.get(gran.name, "weights")


def ratio_label(granularity: str | None, where: str = "") -> str:
    """The x-axis label of accuracy against a ratio at ``granularity``: "output channels pruned (%)"."""
    return f"{pruned_unit(granularity)} pruned (%{' ' + where if where else ''})"


class AccuracyCurves:
    """The artists of accuracy-vs-sparsity curves: one line per label and a marker at the current point."""

    def __init__(self, ax: Axes, *, current_label: str | None = "current", pruned: str | None = "weights"):
        self.ax = ax
        self.lines: dict[str, Line2D] = {}
        self.units: dict[str, str] = {}  # label -> what its x counts
        self.gaps: dict[str, Line2D] = {}  # label -> its dotted guide over unmeasured gaps
        self.bands: dict[str, object] = {}
        self.markers: dict[str, Line2D] = {}  # the current point of each curve, when several are compared
        (self.current,) = ax.plot([], [], marker="o", markersize=9, linestyle="none", markerfacecolor="none",
                                  markeredgewidth=2.2, color=ACCENT, zorder=5,
                                  label=current_label if current_label else "_current")
        self.unit = pruned_unit(pruned)
        ax.set_xlabel(ratio_label(self.unit))
        ax.set_ylabel("accuracy (%)")
        ax.set_xlim(-2, 102)
        ax.set_ylim(-2, 102)
        percent_axis(ax, "x")
        percent_axis(ax, "y")
        register(ax, self)

    def set_pruned(self, granularity: str | None) -> bool:
        """The x quantity: the share of what ``granularity`` prunes (weights, kernels, channels...). Curves of
        another quantity are removed (one quantity per axis). True if the quantity changed (a full redraw)."""
        unit = pruned_unit(granularity)
        if unit == self.unit:
            return False
        self.unit = unit
        self.ax.set_xlabel(ratio_label(unit))
        for label in [k for k, u in self.units.items() if u != unit]:
            self.lines.pop(label).remove()
            del self.units[label]
            if label in self.gaps:
                self.gaps.pop(label).remove()
            if label in self.markers:
                self.markers.pop(label).remove()
        self._legend()
        return True

    def _legend(self) -> None:
        if self.lines:
            self.ax.legend(loc="lower left", fontsize="x-small", frameon=False)
        elif self.ax.get_legend() is not None:
            self.ax.get_legend().remove()

    def set_curve(self, label: str, sparsities: Sequence[float], accuracies: Sequence[float]) -> Line2D:
        """Add the curve ``label`` (or move it, if it is there already), in the axis's current quantity.

        Each measured point is a marker; the thin line between markers is only a guide to the eye, and it is
        dotted across a gap wider than :data:`GUIDE_GAP` (nothing was measured there)."""
        x = 100.0 * np.asarray(sparsities, dtype=float)
        y = 100.0 * np.asarray(accuracies, dtype=float)
        if label in self.lines:
            self.lines[label].set_data(x, y)
        else:
            style = series_style(len(self.lines))
            (self.lines[label],) = self.ax.plot(x, y, markersize=5, linewidth=1.2, label=label, **style)
            self._legend()
        self.units[label] = self.unit
        self._mark_gaps(label, x, y)
        return self.lines[label]

    def _mark_gaps(self, label: str, x: np.ndarray, y: np.ndarray) -> None:
        """Over gaps between measured points wider than GUIDE_GAP, no solid line: the curve's own line then
        shows its markers only, and a guide (its own artist, ``gaps[label]``) joins them, solid between near
        points and dotted across the wide gaps. The curve's data stay the measured points."""
        if label in self.gaps:
            self.gaps.pop(label).remove()
        line = self.lines[label]
        wide = np.diff(x) > 100 * GUIDE_GAP
        if not wide.any():
            if line.get_linestyle() in ("None", "none", ""):
                line.set_linestyle(getattr(line, "_pruneviz_linestyle", "-"))
            return
        if line.get_linestyle() not in ("None", "none", ""):
            line._pruneviz_linestyle = line.get_linestyle()
        line.set_linestyle("none")
        segments = [[(x[i], y[i]), (x[i + 1], y[i + 1])] for i in range(len(x) - 1)]
        styles = [":" if w else getattr(line, "_pruneviz_linestyle", "-") for w in wide]
        from matplotlib.collections import LineCollection

        self.gaps[label] = self.ax.add_collection(LineCollection(
            segments, colors=[line.get_color()], linestyles=styles, linewidths=1.2, label="_gap"))

    def measured(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """The measured points of curve ``label`` (percent): its markers."""
        x, y = (np.asarray(v, float) for v in self.lines[label].get_data())
        return x, y

    def set_band(self, label: str, band) -> None:
        """The mean of a baseline over seeds as a dashed line and its min-max range as a shaded band."""
        x = 100.0 * np.asarray(band["sparsity"], dtype=float)
        color = BAND_COLOR
        if label in self.bands:
            self.bands.pop(label).remove()
        self.bands[label] = self.ax.fill_between(x, 100.0 * np.asarray(band["min"], float),
                                                 100.0 * np.asarray(band["max"], float), color=color,
                                                 alpha=0.25, linewidth=0, label=f"{label}: min-max of "
                                                 f"{int(band['seeds'].iloc[0])} seeds")
        mean_label = f"{label}: mean"
        line = self.set_curve(mean_label, band["sparsity"], band["mean"])
        line.set_color(color)
        if mean_label in self.gaps:
            self.gaps[mean_label].set_color(color)
        line.set_linestyle("--")
        self.ax.legend(loc="lower left", fontsize="x-small", frameon=False)

    def set_current(self, sparsity: float | None, accuracy: float | None = None, label: str | None = None) -> None:
        """Mark the current (sparsity, accuracy); None hides the marker. With ``label``, the marker of that
        curve (in its colour), for several curves each at its own current point."""
        marker = self.current if label is None else self._marker(label)
        if sparsity is None or accuracy is None:
            marker.set_data([], [])
        else:
            marker.set_data([100.0 * sparsity], [100.0 * accuracy])

    def _marker(self, label: str) -> Line2D:
        if label not in self.markers:
            color = self.lines[label].get_color() if label in self.lines else ACCENT
            (self.markers[label],) = self.ax.plot([], [], marker="o", markersize=9, linestyle="none",
                                                  markerfacecolor="none", markeredgewidth=2.2, color=color,
                                                  zorder=5)
        return self.markers[label]

    def current_point(self, label: str | None = None) -> tuple[float, float] | None:
        """The marked point as fractions (sparsity, accuracy), or None."""
        marker = self.current if label is None else self.markers.get(label)
        x, y = marker.get_data() if marker is not None else ([], [])
        return (float(x[0]) / 100.0, float(y[0]) / 100.0) if len(x) else None


def _curves_from(data, hue: str | None, x: str, y: str) -> dict[str, Curve]:
    if isinstance(data, Mapping):
        return {str(k): (v[0], v[1]) for k, v in data.items()}
    if hasattr(data, "groupby"):  # a pandas DataFrame
        missing = [c for c in (x, y) + ((hue,) if hue else ()) if c not in data.columns]
        if missing:
            raise ValueError(f"the DataFrame has no column {missing[0]!r}; it has {list(data.columns)}")
        if hue is None:
            frame = data.sort_values(x)
            return {y: (frame[x].to_numpy(), frame[y].to_numpy())}
        return {str(k): (g.sort_values(x)[x].to_numpy(), g.sort_values(x)[y].to_numpy())
                for k, g in data.groupby(hue, sort=False)}
    raise TypeError(f"curves must be a dict {{label: (sparsities, accuracies)}} or a DataFrame, "
                    f"got {type(data).__name__}")


def accuracy_curve(curves, *, hue: str | None = None, current: tuple[float, float] | None = None,
                   band=None, band_label: str = "random", pruned: str | None = "weights", title: str | None = None,
                   ax: Axes | None = None) -> Axes:
    """Accuracy vs sparsity, several criteria or granularities on one Axes, the current point marked.

    Args:
        curves: ``{label: (sparsities, accuracies)}`` (fractions), or a DataFrame with columns ``sparsity``,
            ``accuracy`` and ``hue`` (e.g. hue="criterion").
        current: (sparsity, accuracy) to mark.
        band: a baseline over seeds (columns ``sparsity``, ``mean``, ``min``, ``max``, ``seeds``, as
            :func:`pruneviz.baselines.random_band` gives it), drawn as its mean and a min-max band.
        pruned: what the x values are a share of: a granularity ('channel': "output channels pruned (%)") or a
            unit ('neurons').
    """
    ax = axes(ax)
    plot = AccuracyCurves(ax, current_label="current" if current is not None else None, pruned=pruned)
    for label, (xs, ys) in _curves_from(curves, hue, "sparsity", "accuracy").items():
        plot.set_curve(label, xs, ys)
    if band is not None:
        plot.set_band(band_label, band)
    if current is not None:
        plot.set_current(*current)
    if title:
        ax.set_title(title)
    return ax


def sensitivity_curves(scan, *, floor: float | None = None, zoom: float | None = None,
                       zoom_ax: Axes | None = None, title: str | None = None, ax: Axes | None = None) -> Axes:
    """Accuracy of the model when one layer at a time is pruned, one curve per layer (a sensitivity scan).

    Args:
        scan: a DataFrame with columns ``layer``, ``sparsity``, ``accuracy`` (fractions), as
            ``pruneviz``'s sensitivity scan gives it; sparsity 0 rows give the dense accuracy. Its
            ``attrs["granularity"]`` (set by the scan) names what the x-axis counts.
        floor: an accuracy floor to draw (e.g. dense accuracy minus the loss you accept).
        zoom: a second panel, beside this one, showing only accuracies within ``zoom`` (a fraction, e.g. 0.02)
            below the dense accuracy: the drops of a point or less that decide the ratios (the lecture's lab
            draws it), on ``zoom_ax`` or else on a panel split off the right half of ``ax``. Returns the main
            Axes; the zoomed one is ``artists(ax)["zoom"]``.
    """
    ax = axes(ax)
    curves = _curves_from(scan, "layer", "sparsity", "accuracy")
    unit = pruned_unit(getattr(scan, "attrs", {}).get("granularity"))
    lines = _draw_sensitivity(ax, curves, floor, unit)
    ax.legend(title="pruned layer", fontsize="small", title_fontsize="small", frameon=False,
              loc="lower left", ncol=2 if len(lines) > 6 else 1)
    if zoom is not None:
        if not 0 < zoom < 1:
            raise ValueError(f"zoom is an accuracy range below the dense accuracy, a fraction in (0, 1); got {zoom!r}")
        dense = _dense_accuracy(scan, curves)
        if zoom_ax is None:  # half of ax's area, so the figure holds both panels
            from mpl_toolkits.axes_grid1 import make_axes_locatable

            zoom_ax = make_axes_locatable(ax).append_axes("right", size="100%", pad=0.7)
        inset = zoom_ax
        _draw_sensitivity(inset, curves, floor, unit)
        inset.set_ylim(100 * (dense - zoom), 100 * dense + 100 * zoom * 0.15)
        inset.set_title(f"zoom: within {100 * zoom:g} points of dense", fontsize="small")
        from matplotlib.ticker import PercentFormatter

        inset.yaxis.set_major_formatter(PercentFormatter(100, decimals=1))
        lines["zoom"] = inset
    if title:
        ax.set_title(title)
    register(ax, lines)
    return ax


def _dense_accuracy(scan, curves: dict[str, Curve]) -> float:
    dense = getattr(scan, "attrs", {}).get("dense_accuracy")
    if dense is not None:
        return float(dense)
    at_zero = [float(ys[0]) for xs, ys in curves.values() if len(xs) and float(xs[0]) == 0.0]
    return max(at_zero) if at_zero else max(float(max(ys)) for _, ys in curves.values())


def _draw_sensitivity(ax: Axes, curves: dict[str, Curve], floor: float | None, unit: str) -> dict:
    lines = {}
    for i, (layer, (xs, ys)) in enumerate(curves.items()):
        (lines[layer],) = ax.plot(100 * np.asarray(xs, float), 100 * np.asarray(ys, float), markersize=3.5,
                                  linewidth=1.4, label=layer, **series_style(i))
    if floor is not None:
        lines["floor"] = ax.axhline(100 * floor, color=FLOOR_COLOR, linestyle="--", linewidth=1.2,
                                    label="accuracy floor")
    ax.set_xlabel(f"sparsity of the layer (% of its {unit} pruned)")
    ax.set_ylabel("model accuracy (%)")
    percent_axis(ax, "x")
    percent_axis(ax, "y")
    return lines


def schedule_curve(schedules, *, current_step: int | None = None, title: str | None = None,
                   ax: Axes | None = None) -> Axes:
    """Target sparsity over training steps for one schedule or several (``{label: schedule}``).

    A schedule is any object with ``.points() -> (steps, sparsities)``; sparsity holds between steps, so the
    curve is drawn as steps.
    """
    ax = axes(ax)
    items = schedules.items() if isinstance(schedules, Mapping) else [(type(schedules).__name__, schedules)]
    lines = {}
    for i, (label, schedule) in enumerate(items):
        if not hasattr(schedule, "points"):
            raise TypeError(f"a schedule needs a .points() method returning (steps, sparsities); "
                            f"{label!r} is a {type(schedule).__name__}")
        steps, sparsities = schedule.points()
        (lines[label],) = ax.plot(list(steps), 100 * np.asarray(sparsities, float), drawstyle="steps-post",
                                  markersize=3.5, linewidth=1.6, **series_style(i),
                                  label=str(label))
    if current_step is not None:
        lines["current"] = ax.axvline(current_step, color=ACCENT, linestyle="--", linewidth=1.2, label="now")
    ax.set_xlabel("training step")
    ax.set_ylabel("target sparsity (% of weights pruned)")
    ax.set_ylim(-2, 102)
    percent_axis(ax, "y")
    ax.legend(fontsize="small", frameon=False, loc="lower right")
    if title:
        ax.set_title(title)
    register(ax, lines)
    return ax
