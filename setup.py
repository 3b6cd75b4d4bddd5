"""Everything is in pyproject.toml; this only copies the notebooks into the package when a wheel is built, so a
pip user gets them with ``python -m pruneviz.notebooks copy DEST`` (an editable install reads notebooks/)."""
import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
shipped = runpy.run_path(str(ROOT / "pruneviz" / "notebooks" / "manifest.py"))["shipped"]


class BuildPyWithNotebooks(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "pruneviz" / "notebooks" / "files"
        for relative in shipped(ROOT / "notebooks"):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / "notebooks" / relative, target / relative)


setup(cmdclass={"build_py": BuildPyWithNotebooks})
