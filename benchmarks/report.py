"""Run every benchmark of the kit and report them in one table, with the machine they ran on.

    python -m benchmarks            # all of them, full length (a few minutes on 2 cores)
    python -m benchmarks --quick    # fewer repeats, to check that everything runs

Each ``benchmarks/bench_<topic>.py`` exposes ``run(quick: bool = False) -> list[dict]`` with rows
``{"benchmark", "case", "measure", "value", "unit"}`` (medians after warm-up; ratios measured in the same run).
The report prints the rows, writes them to docs/benchmarks.md and plots latency against MACs for every case
that reports both, to docs/images/latency_vs_macs.png.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import math
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("benchmark", "case", "measure", "value", "unit")

# What the kit promises to measure (issue 7), and the module that measures it. Any other bench_*.py found in
# the folder runs too.
EXPECTED = {
    "bench_slider": "slider latency (re-prune+evaluate, redraw); re-prune vs torch.nn.utils.prune, 11.7M params",
    "bench_sensitivity": "sensitivity scan, cached vs naive",
    "bench_surgery": "dense vs channel-pruned latency, batch 1 and 64",
    "bench_depth_vs_width": "dense vs channel-pruned vs depth-pruned latency, batch 1 and 64",
    "bench_masked": "zeros in dense tensors (element, 2:4, channel) vs removed channels, batch 1 and 64",
    "bench_browser": "key press -> changed readout and figure in JupyterLab, ipympl and inline (issue 12)",
    "bench_notebooks": "each notebook's run time top to bottom with nbclient, and its slowest cell (issue 12)",
}

# Multipliers to plain MACs and to milliseconds, for the latency-vs-MACs plot.
_MAC_UNITS = {"macs": 1.0, "mac": 1.0, "kmacs": 1e3, "mmacs": 1e6, "mmac": 1e6, "m": 1e6, "gmacs": 1e9,
              "gmac": 1e9, "g": 1e9}
_TIME_UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3}

Row = dict


@dataclass
class Report:
    """What one run of the report gathered."""
    rows: list[Row] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)     # expected modules not in the folder
    failed: dict[str, str] = field(default_factory=dict)  # module -> last line of its error
    seconds: dict[str, float] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)  # torch threads each benchmark ran with
    machine: dict[str, str] = field(default_factory=dict)


def machine() -> dict[str, str]:
    """CPU model and cores, torch threads, GPU (or none), torch and Python versions: what the numbers depend on."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "load": load, "torch threads": str(torch.get_num_threads()),
            "gpu": gpu, "torch": torch.__version__, "python": platform.python_version(),
            "date": datetime.date.today().isoformat()}


def discover(folder: Path = Path(__file__).resolve().parent) -> tuple[dict[str, Callable[[], ModuleType]], list[str]]:
    """{module name: importer} for every bench_*.py in ``folder``, and the expected ones that are missing."""
    names = sorted(p.stem for p in folder.glob("bench_*.py"))
    ordered = [n for n in EXPECTED if n in names] + [n for n in names if n not in EXPECTED]
    # bench modules are also run as scripts from their folder: let their own sibling imports work here too
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    importers = {n: (lambda n=n: importlib.import_module(f"benchmarks.{n}")) for n in ordered}
    return importers, [n for n in EXPECTED if n not in names]


def check_rows(rows: object, source: str) -> list[Row]:
    """The rows of one benchmark, checked against the shared convention (a clear error naming the module)."""
    if not isinstance(rows, list):
        raise ValueError(f"{source}.run() returned {type(rows).__name__}, expected a list of row dicts")
    for row in rows:
        if not isinstance(row, dict) or set(FIELDS) - set(row):
            raise ValueError(f"{source}.run() gave a row {row!r}: each row needs the keys {', '.join(FIELDS)}")
        if not isinstance(row["value"], (int, float)) or not math.isfinite(row["value"]):
            raise ValueError(f"{source}.run() gave a value that is not a finite number: {row!r}")
    return [{k: row[k] for k in FIELDS} for row in rows]


def _run_counting_threads(load: Callable[[], ModuleType], quick: bool) -> tuple[object, int]:
    """Run one benchmark and tell the torch thread count it ran with: the first it set, else the default.

    Benchmarks set their own (one thread keeps timings steady on a shared machine) and put the old one back;
    the table must state what they used, not what the report started with."""
    import torch
    chosen: list[int] = []
    original = torch.set_num_threads

    def recording(n: int) -> None:
        chosen.append(n)
        original(n)

    default = torch.get_num_threads()
    torch.set_num_threads = recording
    try:
        return load().run(quick=quick), (chosen[0] if chosen else default)
    finally:
        torch.set_num_threads = original


def collect(modules: dict[str, Callable[[], ModuleType]], quick: bool = False,
            log: Callable[[str], None] = print) -> Report:
    """Import and run each module in turn; one failing benchmark is recorded and the others still run."""
    report = Report(machine=machine())
    for name, load in modules.items():
        log(f"running {name}{' (quick)' if quick else ''} ...")
        start = time.perf_counter()
        try:
            rows, report.threads[name] = _run_counting_threads(load, quick)
            report.rows += check_rows(rows, name)
        except Exception as error:  # noqa: BLE001 - a broken benchmark must not hide the others' numbers
            traceback.print_exc()
            report.failed[name] = f"{type(error).__name__}: {error}".splitlines()[0]
        report.seconds[name] = time.perf_counter() - start
    return report


def format_value(value: float) -> str:
    """Three significant digits, no scientific notation for the sizes a table here holds."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return f"{value:,.{digits}f}"


def table(rows: Iterable[Row]) -> str:
    """The rows as one Markdown table."""
    lines = ["| benchmark | case | measure | value | unit |", "|---|---|---|---:|---|"]
    lines += [f"| {r['benchmark']} | {r['case']} | {r['measure']} | {format_value(float(r['value']))} | {r['unit']} |"
              for r in rows]
    return "\n".join(lines)


def markdown(report: Report, command: str, plot: str | None = None) -> str:
    """docs/benchmarks.md: how it was made, on what, the table, and what did not run."""
    m = report.machine
    gpu = "no GPU" if m["gpu"] == "none" else f"GPU {m['gpu']}"
    parts = [
        "# Benchmarks",
        "",
        f"Made by `{command}` on {m['date']}: {m['cpu']}, {m['cores']} cores, {gpu}, torch {m['torch']} "
        f"({m['torch threads']} threads by default), Python {m['python']}; load average {m['load']} when it "
        "started (other processes sharing the cores slow the timings down).",
        "Each value is a median over repeated runs after warm-up; ratios come from the same run as the times "
        "they compare. Timings move with the machine and its load: compare rows of one table, not across tables.",
        "",
    ]
    if report.seconds:
        parts += ["| module | torch threads | run time |", "|---|---:|---:|"]
        parts += [f"| `{n}` | {report.threads.get(n, '-')} | {s:.0f} s |" for n, s in report.seconds.items()]
        parts += [""]
    ratios = [r for r in report.rows if r["unit"] == "x"]
    if ratios:
        parts += ["## Ratios (each from one run)", "", table(ratios), ""]
    if plot:
        parts += [f"![latency against MACs]({plot})", ""]
    parts += ["## All rows", "", table(report.rows) if report.rows else "No benchmark produced rows."]
    if report.missing or report.failed:
        parts += ["", "## Not measured here", ""]
        parts += [f"- `{n}` ({EXPECTED[n]}): not in benchmarks/ yet" for n in report.missing]
        parts += [f"- `{n}` failed: {err}" for n, err in report.failed.items()]
    return "\n".join(parts) + "\n"


def _to(unit: str, scale: dict[str, float]) -> float | None:
    return scale.get(unit.strip().lower())


_BATCH = re.compile(r"^(?P<base>.*?)[/ ,_-]*batch[ =_]?(?P<n>\d+)$")


def latency_vs_macs(rows: Sequence[Row]) -> list[dict]:
    """Points (benchmark, case, series, macs, ms) for each case that reports MACs and a latency.

    A case's MACs row has a measure starting with "mac" and a MAC unit (the MACs a dense kernel executes); its latencies have "latency" in the measure and a
    time unit. A latency case may name its batch ("vgg/50%/batch64"): it is then paired with the MACs of the
    case without it ("vgg/50%") and goes into the series "batch 64"; otherwise the series is the measure.
    """
    macs, points = {}, []
    for r in rows:
        factor = _to(r["unit"], _MAC_UNITS)
        if r["measure"].lower().startswith("mac") and factor is not None:  # not "sparse macs": executed MACs
            macs[(r["benchmark"], r["case"])] = float(r["value"]) * factor
    for r in rows:
        factor = _to(r["unit"], _TIME_UNITS)
        if "latency" not in r["measure"].lower() or factor is None:
            continue
        case, series = r["case"], r["measure"]
        batch = _BATCH.match(case)
        if (r["benchmark"], case) not in macs and batch:
            case, series = batch["base"], f"batch {batch['n']}"
        if (r["benchmark"], case) in macs:
            points.append({"benchmark": r["benchmark"], "case": case, "series": series,
                           "macs": macs[(r["benchmark"], case)], "ms": float(r["value"]) * factor})
    return points


def _label_groups(points: Sequence[dict], tolerance: float = 0.03) -> list[tuple[tuple[float, float], list[str]]]:
    """Cases whose points nearly coincide on the log axes (masked models: same MACs, same time) share one label."""
    groups: list[tuple[tuple[float, float], list[str]]] = []
    for p in points:
        for (x, y), names in groups:
            if abs(math.log10(p["macs"] / x)) < tolerance and abs(math.log10(p["ms"] / y)) < tolerance:
                if p["case"] not in names:
                    names.append(p["case"])
                break
        else:
            groups.append(((p["macs"], p["ms"]), [p["case"]]))
    return groups


def plot_latency_vs_macs(rows: Sequence[Row], path: Path) -> bool:
    """Scatter of latency against MACs, one colour per series (batch size), one marker per benchmark, each case
    labelled once; False if no case reports both (then no file is written)."""
    points = latency_vs_macs(rows)
    if not points:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    data = pd.DataFrame(points)
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.scatterplot(data=data, x="macs", y="ms", hue="series", style="benchmark", s=60, ax=ax)
    first = data["series"].iloc[0]
    for (x, y), names in _label_groups([p for p in points if p["series"] == first]):
        ax.annotate("\n".join(names), (x, y), textcoords="offset points", xytext=(5, -3), fontsize=7, va="top")
    ax.set(xscale="log", yscale="log", xlabel="MACs a dense kernel executes per sample",
           ylabel="latency per forward pass (ms, median)",
           title="Latency against MACs on this machine's CPU")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(report: Report, out_dir: Path, command: str) -> tuple[Path, Path | None]:
    """docs/benchmarks.md and docs/images/latency_vs_macs.png under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "images" / "latency_vs_macs.png"
    plotted = plot_latency_vs_macs(report.rows, png)
    md = out_dir / "benchmarks.md"
    md.write_text(markdown(report, command, plot="images/latency_vs_macs.png" if plotted else None))
    return md, (png if plotted else None)


def main(argv: Sequence[str] | None = None,
         modules: dict[str, Callable[[], ModuleType]] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: check that everything runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs",
                        help="folder for benchmarks.md and images/latency_vs_macs.png (default: docs/)")
    args = parser.parse_args(argv)
    missing: list[str] = []
    if modules is None:
        modules, missing = discover()
    report = collect(modules, quick=args.quick)
    report.missing = missing
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    m = report.machine
    print(f"\n{m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['torch threads']} threads, GPU: {m['gpu']}\n")
    print(table(report.rows))
    for name, seconds in report.seconds.items():
        print(f"{name}: {report.threads.get(name, '-')} torch threads, {seconds:.0f} s")
    for name in missing:
        print(f"missing: {name} ({EXPECTED[name]})")
    for name, error in report.failed.items():
        print(f"FAILED: {name}: {error}")
    md, png = write(report, args.out, command)
    print(f"\nwrote {md}" + (f" and {png}" if png else " (no case reports both MACs and latency: no plot)"))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # run as a script: make the benchmarks package importable
    sys.exit(main())
