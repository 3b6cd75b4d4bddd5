"""Lecture mode without a browser: what Voila is given (the browser side is tests/e2e/test_lecture.py)."""
import json
from pathlib import Path

import pytest

from pruneviz.lecture import HIDE_TAG, lecture_copy, voila_arguments


def notebook(cells):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code(source, tags=(), outputs=()):
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)}, "outputs": list(outputs),
            "execution_count": 3}


def test_lecture_copy_drops_tagged_cells_and_outputs(tmp_path):
    shown = code("explorer", outputs=[{"output_type": "stream", "name": "stdout", "text": "old"}])
    source = tmp_path / "10_x.ipynb"
    source.write_text(json.dumps(notebook([
        {"cell_type": "markdown", "source": "# Title", "metadata": {}},
        shown, code("explorer.sparsity.value = 0.9", tags=[HIDE_TAG]),
        {"cell_type": "markdown", "source": "## Exercise", "metadata": {"tags": [HIDE_TAG, "other"]}}])))
    before = source.read_text()
    (tmp_path / "out").mkdir()
    copy = lecture_copy(source, tmp_path / "out")
    cells = json.loads(copy.read_text())["cells"]
    assert [c["source"] for c in cells] == ["# Title", "explorer"]
    assert cells[1]["outputs"] == [] and cells[1]["execution_count"] is None
    assert source.read_text() == before and copy.name == source.name


def test_lecture_copy_names_a_missing_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebook at .*missing.ipynb"):
        lecture_copy(tmp_path / "missing.ipynb", tmp_path)


def test_preheated_or_progressive_never_both():
    preheated = voila_arguments(Path("a.ipynb"), port=1, ip="127.0.0.1", progressive=False, refill_delay=60)
    progressive = voila_arguments(Path("a.ipynb"), port=1, ip="127.0.0.1", progressive=True, refill_delay=60)
    assert "--preheat_kernel=True" in preheated and not any("progressive" in a for a in preheated[1:])
    assert "--progressive_rendering=True" in progressive and not any("preheat" in a for a in progressive[1:])
    assert "--strip_sources=True" in preheated and "--VoilaKernelManager.fill_delay=60" in preheated
