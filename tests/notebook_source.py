"""A function as a solution notebook defines it: its solution cell, run on its own (for the coursework tests)."""
import json
from pathlib import Path

import torch

import pruneviz

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_function(notebook: str, name: str):
    """The function ``name`` from the code cell of ``notebooks/<notebook>`` that starts with ``def name(``."""
    for cell in json.loads((NOTEBOOKS / notebook).read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and source.startswith(f"def {name}("):
            namespace = {"torch": torch, "pruneviz": pruneviz}
            exec(source, namespace)
            return namespace[name]
    raise LookupError(f"no cell of {notebook} defines {name}")
