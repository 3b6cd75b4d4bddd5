"""The benchmark report on stub benchmarks: it gathers rows, survives a broken benchmark and writes both files.
Nothing here times anything."""
import sys
from types import SimpleNamespace

import matplotlib.image
import pytest
import torch

from benchmarks import report

STUB_THREADS = 2 if torch.get_num_threads() == 1 else 1


def stub_rows(quick: bool) -> list[dict]:
    previous = torch.get_num_threads()
    torch.set_num_threads(STUB_THREADS)  # as the real benchmarks do; the report must state this, not the default
    torch.set_num_threads(previous)
    rows = []
    for case, macs, ms in (("dense", 4.0, 2.0), ("channel 50%", 1.0, 0.9), ("depth -2 blocks", 2.5, 1.4)):
        rows.append({"benchmark": "stub", "case": case, "measure": "MACs", "value": macs, "unit": "MMACs"})
        rows.append({"benchmark": "stub", "case": case, "measure": "latency batch 1", "value": ms, "unit": "ms"})
    rows.append({"benchmark": "stub", "case": "quick" if quick else "full", "measure": "speed-up", "value": 2.22,
                 "unit": "x"})
    # the form bench_surgery uses: MACs per case, latency per case and batch
    rows.append({"benchmark": "surgery", "case": "vgg/50%", "measure": "macs", "value": 3e8, "unit": "MAC"})
    rows.append({"benchmark": "surgery", "case": "vgg/50%", "measure": "sparse macs", "value": 1e8, "unit": "MAC"})
    rows.append({"benchmark": "surgery", "case": "vgg/50%/batch64", "measure": "latency", "value": 90.0,
                 "unit": "ms"})
    return rows


def broken(quick: bool) -> list[dict]:
    raise RuntimeError("no model here")


def test_report_quick_on_stubs_writes_table_and_plot(tmp_path, capsys):
    modules = {"bench_stub": lambda: SimpleNamespace(run=stub_rows),
               "bench_broken": lambda: SimpleNamespace(run=broken)}
    status = report.main(["--quick", "--out", str(tmp_path)], modules=modules)
    printed = capsys.readouterr().out
    assert status == 1  # a failed benchmark fails the command, after the others have reported
    assert "| stub | quick | speed-up | 2.22 | x |" in printed
    assert "FAILED: bench_broken: RuntimeError: no model here" in printed
    md = (tmp_path / "benchmarks.md").read_text()
    assert "| stub | channel 50% | latency batch 1 | 0.900 | ms |" in md
    assert md.index("## Ratios") < md.index("| stub | quick | speed-up | 2.22 | x |") < md.index("## All rows")
    assert report.machine()["torch"] in md and "`python -m benchmarks --quick`" in md
    assert f"| `bench_stub` | {STUB_THREADS} |" in md and f"bench_stub: {STUB_THREADS} torch threads" in printed
    assert "`bench_broken` failed" in md and "images/latency_vs_macs.png" in md
    image = matplotlib.image.imread(tmp_path / "images" / "latency_vs_macs.png")
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_points_pair_latency_with_macs_by_case():
    points = report.latency_vs_macs(stub_rows(quick=True))
    assert {(p["case"], p["macs"], p["ms"]) for p in points} == {
        ("dense", 4e6, 2.0), ("channel 50%", 1e6, 0.9), ("depth -2 blocks", 2.5e6, 1.4), ("vgg/50%", 3e8, 90.0)}
    assert {p["series"] for p in points} == {"latency batch 1", "batch 64"}


def test_rows_breaking_the_convention_name_the_module():
    with pytest.raises(ValueError, match="bench_x.*keys benchmark, case, measure, value, unit"):
        report.check_rows([{"benchmark": "b", "value": 1.0}], "bench_x")
    with pytest.raises(ValueError, match="finite"):
        report.check_rows([{"benchmark": "b", "case": "c", "measure": "m", "value": float("nan"), "unit": "ms"}],
                          "bench_x")


def test_table_formats_three_significant_digits():
    assert [report.format_value(v) for v in (1234.5, 8.912, 0.06123, 0.0)] == ["1,234", "8.91", "0.0612", "0.0"]


def test_missing_benchmarks_are_listed(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # discover() makes the folder importable
    (tmp_path / "bench_slider.py").write_text("")
    (tmp_path / "bench_extra.py").write_text("")
    modules, missing = report.discover(tmp_path)
    assert list(modules) == ["bench_slider", "bench_extra"]
    assert missing == ["bench_sensitivity", "bench_surgery", "bench_depth_vs_width", "bench_masked", "bench_browser",
                       "bench_notebooks"]


def test_coinciding_points_share_one_label():
    points = [{"case": "dense", "macs": 6e8, "ms": 11.6}, {"case": "element 90%", "macs": 6e8, "ms": 11.7},
              {"case": "compacted", "macs": 1.5e8, "ms": 3.5}]
    assert [names for _, names in report._label_groups(points)] == [["dense", "element 90%"], ["compacted"]]
