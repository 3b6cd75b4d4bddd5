"""Pick one figure from each executed notebook for the README's table: docs/images/notebooks/NN.png.

Run after re-executing notebooks: python docs/make_notebook_images.py
Which figure: the one named in a notebook's metadata ("pruneviz": {"readme_figure": k}, the k-th figure),
else the first.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "notebooks"


def figures(notebook: dict) -> list[bytes]:
    return [base64.b64decode(output["data"]["image/png"])
            for cell in notebook["cells"] if cell["cell_type"] == "code"
            for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        pngs = figures(notebook)
        if not pngs:
            print(f"{path.name}: no figure")
            continue
        index = notebook.get("metadata", {}).get("pruneviz", {}).get("readme_figure", 0)
        target = OUT / f"{path.name[:2]}.png"
        target.write_bytes(pngs[min(index, len(pngs) - 1)])
        print(f"{path.name}: figure {index} of {len(pngs)} -> {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
