"""Check for the pruning-ratio exercise (notebook 07): a sensitivity-guided ratio dict that meets a size target
with an accuracy floor.

The student's function ``fn(scan, weights, target, floor) -> {layer: ratio}`` reads a sensitivity scan
(DataFrame: layer, sparsity, accuracy), the weights per layer, the fraction of weights to keep at most, and the
lowest accuracy any single layer's ratio may give in the scan. The check verifies, on the scan's own numbers,
that every ratio is one the scan measured, that the size target is met and that no layer falls below the floor.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from ..ratios import kept_fraction, ratios_for_drop, ratios_for_size
from .report import Check

_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


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
    return [("VGG-like scan, keep 35 %, floor 0.90", vgg_like, vgg_counts, 0.35, 0.90),
            ("VGG-like scan, keep 20 %, floor 0.85", vgg_like, vgg_counts, 0.20, 0.85),
            ("scan with a dip, keep 40 %, floor 0.95", bumpy, bumpy_counts, 0.40, 0.95)]


def _problem(ratios: object, scan: pd.DataFrame, counts: dict[str, int], target: float,
             floor: float) -> str | None:
    """The first thing wrong with ``ratios`` for this case, in words (None when it is a valid answer)."""
    if not isinstance(ratios, Mapping):
        return f"returned {type(ratios).__name__}, expected a dict {{layer: ratio}}"
    for layer, ratio in ratios.items():
        rows = scan[scan.layer == layer]
        if rows.empty:
            return f"layer {layer!r} is not in the scan (layers: {', '.join(counts)})"
        match = rows[(rows.sparsity - float(ratio)).abs() < 1e-9] if isinstance(ratio, (int, float)) else rows[:0]
        if match.empty:
            return (f"{layer}: ratio {ratio!r} was not scanned; choose among "
                    f"{', '.join(f'{r:g}' for r in rows.sparsity)}")
        if float(match.accuracy.iloc[0]) < floor - 1e-9:
            return (f"{layer} at {float(ratio):g}: the scan's accuracy {float(match.accuracy.iloc[0]):.3f} is "
                    f"below the floor {floor:.3f}")
    kept = kept_fraction({k: float(v) for k, v in ratios.items()}, counts)
    if kept > target + 1e-9:
        return (f"keeps {kept:.3f} of the weights, the target is at most {target:.3f}; prune the large, robust "
                "layers more")
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
