"""How long each notebook takes top to bottom, as nbclient runs it (what nbval and nbconvert --execute do too).

Each notebook runs in a fresh kernel (the kernel's own torch thread count, not the benchmark's), from its own
folder, its stored outputs untouched (executed in memory). Rows: the whole run (kernel start included) and the
slowest cell with its index. ``--quick`` runs notebook 00 only.

Run: python benchmarks/bench_notebooks.py [--quick] [NN ...]
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def time_notebook(path: Path, timeout: int = 600) -> dict:
    """Seconds for the whole run and for each code cell ({index: seconds})."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    cells = {}
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            began = time.perf_counter()
            client.execute_cell(cell, index)
            cells[index] = time.perf_counter() - began
    return {"total": time.perf_counter() - start, "cells": cells}


def notebooks(selection: list[str] | None = None, quick: bool = False) -> list[Path]:
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if selection:
        chosen = [p for p in found if p.name[:2] in selection]
        unknown = set(selection) - {p.name[:2] for p in chosen}
        if unknown:
            raise ValueError(f"no notebook {sorted(unknown)}; valid choices: {', '.join(p.name[:2] for p in found)}")
        return chosen
    return found[:1] if quick else found


def run(quick: bool = False, selection: list[str] | None = None) -> list[dict]:
    """Rows {benchmark, case, measure, value, unit}: the run time of each notebook and its slowest cell."""
    rows = []
    for path in notebooks(selection, quick):
        result = time_notebook(path)
        slowest = max(result["cells"], key=result["cells"].get)
        rows.append({"benchmark": "notebooks", "case": path.stem, "measure": "top to bottom with nbclient",
                     "value": round(result["total"], 1), "unit": "s"})
        rows.append({"benchmark": "notebooks", "case": path.stem, "measure": f"slowest cell (cell {slowest})",
                     "value": round(result["cells"][slowest], 1), "unit": "s"})
    return rows


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--quick"]
    print(f"# notebook run times: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for row in run("--quick" in sys.argv, args or None):
        print(f"{row['case']:<28} {row['measure']:<30} {row['value']:>7.1f} {row['unit']}")


if __name__ == "__main__":
    main()
