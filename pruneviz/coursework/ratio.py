"""Check for the pruning-ratio exercise (notebook 07): a sensitivity-guided ratio dict that meets a size target
with an accuracy floor.

The student's function ``fn(scan, weights, target, floor) -> {layer: ratio}`` reads a sensitivity scan
(DataFrame: layer, sparsity, accuracy), the weights per layer, the fraction of weights to keep at most, and the
lowest accuracy any single layer's ratio may give in the scan. The check verifies, on the scan's own numbers,
that every ratio is one the scan measured, that the size target is met and that no layer falls below the floor,
and then judges the trade-off: the predicted drop (each layer's drop in the scan, added up) must be within
:data:`TOLERANCE` of the smallest any dict of scanned ratios reaches under the same target and floor (found by
trying them all: the scans are small). Feasible is not enough: every layer at its maximum meets the target too.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import itertools
import numbers

import pandas as pd

from ..ratios import kept_fraction, ratios_for_drop, ratios_for_size
from .report import Check

_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
TOLERANCE = 0.015  # predicted drop above the best the scan allows: 1.5 accuracy points, summed over the layers


def _number(value: object) -> float | None:
    """A ratio as a float: Python, numpy (float32 too) or a one-element tensor; None if it is no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        import torch

        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return float(value)
    except ImportError:  # pragma: no cover
        pass
    return None


def _drop(ratios: Mapping[str, float], scan: pd.DataFrame) -> float:
    """The predicted drop of a dict: each layer's dense accuracy minus its accuracy at its ratio, added up."""
    total = 0.0
    for layer, rows in scan.groupby("layer", sort=False):
        acc = dict(zip(rows.sparsity.round(9), rows.accuracy))
        total += acc[0.0] - acc[round(float(ratios.get(layer, 0.0)), 9)]
    return total


def best_drop(scan: pd.DataFrame, counts: Mapping[str, int], target: float, floor: float) -> float:
    """The smallest predicted drop of any dict of scanned ratios keeping at most ``target`` of the weights with
    every layer at or above ``floor``: every combination tried (a scan of a few layers has few)."""
    options = {layer: [r for r, a in zip(rows.sparsity, rows.accuracy) if a >= floor - 1e-9]
               for layer, rows in scan.groupby("layer", sort=False)}
    best = float("inf")
    for combo in itertools.product(*options.values()):
        ratios = dict(zip(options, combo))
        if kept_fraction(ratios, counts) <= target + 1e-9:
            best = min(best, _drop(ratios, scan))
    return best


def _scan(curves: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([(layer, r, a) for layer, accs in curves.items() for r, a in zip(_RATIOS, accs)],
                        columns=["layer", "sparsity", "accuracy"])


def _cases() -> list[tuple[str, pd.DataFrame, dict[str, int], float, float]]:
    """Scans shaped like the lecture's: a sensitive small first layer, robust large later ones."""
    vgg_like = _scan({
        "conv1": [.93, .93, .92, .91, .89, .85, .78, .62, .41, .20],
        "conv2": [.93, .93, .93, .93, .92, .92, .91, .89, .84, .70],
        "conv3": [.93, .93, .93, .93, .93, .93, .92, .92, .90, .86],
        "fc": [.93, .93, .93, .92, .92, .91, .88, .83, .74, .55],
    })
    vgg_counts = {"conv1": 1_728, "conv2": 73_728, "conv3": 294_912, "fc": 5_120}
    # a dip at 0.3 in conv_b: a ratio past a dip can still be fine, and the floor is checked per ratio
    bumpy = _scan({
        "conv_a": [.99, .99, .98, .97, .95, .90, .81, .60, .30, .10],
        "conv_b": [.99, .99, .99, .94, .98, .98, .97, .96, .92, .85],
        "linear": [.99, .99, .99, .99, .98, .98, .97, .95, .90, .80],
    })
    bumpy_counts = {"conv_a": 4_608, "conv_b": 18_432, "linear": 2_560}
    # the largest layer is the sensitive one: pruning the largest layers first loses points a robust, smaller
    # layer would have spared
    sensitive_big = _scan({
        "big": [.95, .94, .93, .91, .89, .86, .82, .77, .70, .60],
        "mid": [.95, .95, .95, .95, .95, .95, .95, .94, .94, .93],
        "small": [.95, .95, .94, .94, .93, .92, .90, .88, .85, .80],
    })
    sensitive_counts = {"big": 200_000, "mid": 120_000, "small": 10_000}
    return [("VGG-like scan, keep 35 %, floor 0.90", vgg_like, vgg_counts, 0.35, 0.90),
            ("VGG-like scan, keep 20 %, floor 0.85", vgg_like, vgg_counts, 0.20, 0.85),
            ("scan with a dip, keep 40 %, floor 0.95", bumpy, bumpy_counts, 0.40, 0.95),
            ("the largest layer is the sensitive one, keep 60 %, floor 0.85", sensitive_big, sensitive_counts,
             0.60, 0.85)]


def _problem(ratios: object, scan: pd.DataFrame, counts: dict[str, int], target: float,
             floor: float) -> str | None:
    """The first thing wrong with ``ratios`` for this case, in words (None when it is a valid answer)."""
    if not isinstance(ratios, Mapping):
        return f"returned {type(ratios).__name__}, expected a dict {{layer: ratio}}"
    for layer, ratio in ratios.items():
        rows = scan[scan.layer == layer]
        if rows.empty:
            return f"layer {layer!r} is not in the scan (layers: {', '.join(counts)})"
        value = _number(ratio)
        if value is None:
            return f"{layer}: the ratio {ratio!r} is a {type(ratio).__name__}, expected a number"
        match = rows[(rows.sparsity - value).abs() < 1e-6]  # float32 0.3 is 0.30000001: the scanned 0.3
        if match.empty:
            return (f"{layer}: ratio {value:g} was not scanned; choose among "
                    f"{', '.join(f'{r:g}' for r in rows.sparsity)}")
        ratio = float(match.sparsity.iloc[0])
        if float(match.accuracy.iloc[0]) < floor - 1e-9:
            return (f"{layer} at {float(ratio):g}: the scan's accuracy {float(match.accuracy.iloc[0]):.3f} is "
                    f"below the floor {floor:.3f}")
    scanned = {k: float(scan[(scan.layer == k) & ((scan.sparsity - _number(v)).abs() < 1e-6)].sparsity.iloc[0])
               for k, v in ratios.items()}
    kept = kept_fraction(scanned, counts)
    if kept > target + 1e-9:
        return (f"keeps {kept:.3f} of the weights, the target is at most {target:.3f}; prune the large, robust "
                "layers more")
    drop, best = _drop(scanned, scan), best_drop(scan, counts, target, floor)
    if drop > best + TOLERANCE:
        return (f"meets the target, but the scan predicts a drop of {drop:.3f} (each layer's drop added up) where "
                f"{best:.3f} is possible at this target: spend the pruning where the accuracy falls least per "
                "weight removed, not where the layers are largest or simply as far as the floor allows")
    return None


def check_ratio_dict(student_fn: Callable[[pd.DataFrame, dict[str, int], float, float], dict[str, float]]
                     ) -> bool:
    """Run ``student_fn(scan, weights, target, floor)`` on three scans; every case has a solution. A function
    that calls :func:`pruneviz.ratios_for_size` (or ``ratios_for_drop``) is refused."""
    check = Check("sensitivity-guided ratio dict", forbid=(ratios_for_size, ratios_for_drop))
    for case, scan, counts, target, floor in _cases():
        with check.case(case):
            ratios_for_size(scan, counts, target, floor=floor)  # our own answer: the case can be solved
            given = scan.copy()
            ratios = check.run(student_fn, given, dict(counts), target, floor)
            check.expect(given.equals(scan), "changed the scan DataFrame in place; work on a copy")
            problem = _problem(ratios, scan, counts, target, floor)
            if problem:
                check.fail(problem)
    return check.done()
