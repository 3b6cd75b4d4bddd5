"""benchmarks/bench_scale.py in --quick mode on tiny models: it runs every measure and prints its table.
Nothing here asserts a time."""
import math

import pytest

from benchmarks import bench_scale, report
from pruneviz.zoo.models import LabVGG

TINY = (bench_scale.CASES[0],  # digits-cnn, as in the real run
        bench_scale.Case("tiny-vgg", lambda: LabVGG((8, "M", 16, "M")), (3, 32, 32)))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(bench_scale, "CASES", TINY)
    monkeypatch.setattr(bench_scale, "QUICK_IMAGES", 8)
    monkeypatch.setattr(bench_scale, "MOVES_PER_ROUND", 2)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_quick_run_prints_one_row_per_model_under_the_columns(tiny, capsys):
    bench_scale.main(["--quick"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert _cells(lines[0]) == list(bench_scale.COLUMNS)
    rows = [dict(zip(bench_scale.COLUMNS, _cells(line))) for line in lines[2:]]
    assert [(r["model"], r["device"]) for r in rows] == [(case.name, "cpu") for case in TINY]
    for row in rows:
        for column in ("build ms", "re-prune ms", "torch.prune ms", "first frame ms", "drag first frame ms",
                       "move-to-readout ms"):
            assert float(row[column].replace(",", "")) > 0
        assert row["re-prune speed-up"].endswith("x") and float(row["re-prune speed-up"][:-1]) > 0
        assert row["bytes/weight"] == "n/a" or float(row["bytes/weight"]) > 0
        assert row["re-prune writes"] == "n/a" or 0 <= float(row["re-prune writes"].rstrip(" %")) <= 100
    assert rows[0]["weights"] == "0.06M"  # digits-cnn's 63k weights


def test_rows_for_the_report_follow_its_convention(tiny):
    rows = report.check_rows(bench_scale.run(quick=True), "bench_scale")
    cases = {row["case"] for row in rows}
    assert cases == {f"{case.name} cpu" for case in TINY}
    measures = {row["measure"] for row in rows}
    assert {"Pruner build (global magnitude element)", "re-prune of a +0.01 move (median)",
            "explorer move to first frame (median)", "explorer move to readout with accuracy (median)",
            "speed-up re-prune (torch / cached)"} <= measures
    assert all(math.isfinite(row["value"]) for row in rows)
