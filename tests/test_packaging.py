"""The package as a pip user gets it: the wheel built from this tree, installed (not editable) in a fresh venv.

The venv reuses this environment's installed dependencies (torch, matplotlib, ...) through a path entry, so
nothing is downloaded; its own site-packages comes first, so ``import pruneviz`` finds the wheel's copy and not
the checkout (an editable install's hooks live in .pth files of this environment, which a plain path entry
does not run). About 20 s.
"""
from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from pruneviz.notebooks.manifest import shipped

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE", "README.md", "pruneviz", "notebooks")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints", "files")


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of the tree to build from: the work tree gets no build/ or egg-info, and what the wheel should
    hold stays fixed while other work edits the notebooks."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=IGNORE)
        else:
            shutil.copy2(origin, source / name)
    return source


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", dist, source)
    (path,) = dist.glob("pruneviz-*.whl")
    return path


@pytest.fixture(scope="module")
def venv_python(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (no dependencies: they come from this environment)."""
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (purelib / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel)
    return python


def test_wheel_holds_data_license_and_notebooks(wheel, source):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    data_files = {str(p.relative_to(source)) for p in (source / "pruneviz").rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert data_files <= names, f"files of the package missing from the wheel: {sorted(data_files - names)}"
    assert "pruneviz/zoo/weights/accuracy.json" in names
    notebooks = {f"pruneviz/notebooks/files/{p}" for p in shipped(source / "notebooks")}
    assert len(notebooks) >= 11 and notebooks <= names, sorted(notebooks - names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata  # the SPDX form, not the deprecated {text = ...}


CHECKS = textwrap.dedent("""
    import json, sys
    import pruneviz, pruneviz.notebooks
    from pruneviz import zoo
    measured = {name: pruneviz.evaluate(zoo.load(name, device="cpu"), zoo.data(name).test) for name in zoo.NAMES}
    print(json.dumps({"file": pruneviz.__file__, "accuracies": zoo.accuracies(), "measured": measured,
                      "notebooks": str(pruneviz.notebooks.folder())}))
""")


def test_installed_wheel_loads_the_zoo_and_its_accuracies(venv_python, source, tmp_path):
    out = json.loads(run(venv_python, "-c", CHECKS, cwd=tmp_path).stdout.strip().splitlines()[-1])
    site_packages = venv_python.parents[1]
    assert Path(out["file"]).is_relative_to(site_packages), f"imported {out['file']}, not the installed wheel"
    assert Path(out["notebooks"]).is_relative_to(site_packages)
    recorded = json.loads((source / "pruneviz" / "zoo" / "weights" / "accuracy.json").read_text())
    assert recorded and out["accuracies"] == recorded
    for name, accuracy in out["measured"].items():  # the shipped weights are the ones the json describes
        assert accuracy == pytest.approx(recorded[name], abs=1e-4), name


def test_installed_wheel_copies_the_notebooks_out(venv_python, source, tmp_path):
    expected = shipped(source / "notebooks")
    run(venv_python, "-m", "pruneviz.notebooks", "copy", tmp_path / "course", cwd=tmp_path)
    copied = sorted(p.relative_to(tmp_path / "course") for p in (tmp_path / "course").rglob("*.ipynb"))
    assert copied == expected
    assert all((tmp_path / "course" / p).read_bytes() == (source / "notebooks" / p).read_bytes() for p in expected)

    run(venv_python, "-m", "pruneviz.notebooks", "copy", "--student", tmp_path / "handout", cwd=tmp_path)
    handout = sorted(p.name for p in (tmp_path / "handout").iterdir())
    assert handout == sorted(p.name for p in expected if p.parts[0] == "student")

    again = subprocess.run([str(venv_python), "-m", "pruneviz.notebooks", "copy", "--student",
                            str(tmp_path / "handout")], capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 1 and "already in" in again.stderr and "--force" in again.stderr
