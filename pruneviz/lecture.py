"""Lecture mode: a notebook served as a Voila dashboard, ready before the class looks at it.

    python -m pruneviz.lecture notebooks/00_welcome.ipynb

Cells tagged ``lecture-hide`` (the cells that exist for the tests, such as programmatic widget moves and
printed checks, the exercises and the run time) are removed before Voila sees the notebook: they are neither
shown nor run, so every widget opens in the state the text describes. Code is hidden, outputs are shown.

By default the kernel is preheated: Voila runs the notebook as soon as the server starts, and this command says
"ready" (and opens the browser) only once that run has finished, so the page shows its widgets at once when
opened. The next visitor's kernel is prepared ``refill_delay`` seconds later (preparing it costs a whole run of
the notebook: not while the instructor is dragging the first slider). ``--progressive`` instead runs the
notebook for each visitor and shows the cells as they finish. Needs Voila: ``pip install "pruneviz[lecture]"``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import webbrowser
from pathlib import Path

HIDE_TAG = "lecture-hide"


def lecture_copy(notebook: str | Path, folder: str | Path) -> Path:
    """The notebook as the lecture shows it, written into ``folder``: cells tagged ``lecture-hide`` removed,
    outputs cleared (Voila runs it afresh). Returns the path of the copy."""
    notebook = Path(notebook)
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook} (give a .ipynb file, e.g. notebooks/00_welcome.ipynb)")
    try:
        content = json.loads(notebook.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{notebook} is not a readable notebook (not valid JSON: {error}); open it in Jupyter "
                         "to repair it, or give another .ipynb") from None
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        raise ValueError(f"{notebook} is JSON but not a notebook (no list of cells)")
    kept = [cell for cell in content["cells"] if HIDE_TAG not in cell.get("metadata", {}).get("tags", [])]
    for cell in kept:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    content["cells"] = kept
    target = Path(folder) / notebook.name
    target.write_text(json.dumps(content, indent=1), encoding="utf-8")
    return target


def voila_arguments(notebook: Path, *, port: int, ip: str, progressive: bool, refill_delay: float) -> list[str]:
    """Voila's command line for lecture mode."""
    mode = (["--progressive_rendering=True"] if progressive else
            ["--preheat_kernel=True", "--pool_size=1", f"--VoilaKernelManager.fill_delay={refill_delay}"])
    return [str(notebook), f"--port={port}", f"--Voila.ip={ip}", "--Voila.port_retries=0", "--strip_sources=True",
            "--VoilaExecutor.timeout=600", "--show_tracebacks=True", *mode]


def _lecture_app(open_browser: bool):
    """A Voila application that announces (and opens the page) when the preheated notebook has been run."""
    try:
        from voila.app import Voila
    except ImportError:
        raise SystemExit("lecture mode needs Voila: pip install \"pruneviz[lecture]\" (or pip install voila)") from None
    from tornado.ioloop import IOLoop

    class LectureVoila(Voila):
        def launch_browser(self):  # Voila calls it just before its event loop starts (open_browser is forced on)
            IOLoop.current().add_callback(self._announce_when_rendered)

        def _rendered(self) -> bool:
            pools = getattr(self.kernel_manager, "_pools", None)
            if not self.voila_configuration.preheat_kernel or pools is None:
                return True  # nothing is prepared ahead: each visitor's run starts when they open the page
            prepared = [future for pool in pools.values() for future in pool]
            if not prepared or not all(future.done() for future in prepared):
                return False
            return all(future.exception() is not None or future.result()["task"].done() for future in prepared)

        async def _announce_when_rendered(self):
            started = time.monotonic()
            while not self._rendered():
                await asyncio.sleep(0.2)
            how = "run ahead" if self.voila_configuration.preheat_kernel else "runs when opened"
            print(f"pruneviz lecture ready ({how}, {time.monotonic() - started:.0f} s): {self.display_url}"
                  "  (Ctrl-C stops it)", flush=True)
            if open_browser:
                super().launch_browser()

    app = LectureVoila()
    app.open_browser = True
    return app


def serve(notebook: str | Path, *, port: int = 8866, ip: str = "127.0.0.1", open_browser: bool = True,
          progressive: bool = False, refill_delay: float = 60.0) -> None:
    """Serve ``notebook`` in lecture mode until interrupted (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="pruneviz-lecture-") as folder:
        copy = lecture_copy(notebook, folder)
        app = _lecture_app(open_browser)
        app.initialize(voila_arguments(copy, port=port, ip=ip, progressive=progressive, refill_delay=refill_delay))
        app.open_browser = True  # the command line set it off; the announcement opens the page itself
        app.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pruneviz.lecture", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path, help="e.g. notebooks/00_welcome.ipynb")
    parser.add_argument("--port", type=int, default=8866)
    parser.add_argument("--ip", default="127.0.0.1", help="0.0.0.0 to serve other machines (default: this one)")
    parser.add_argument("--no-browser", action="store_true", help="print the address, do not open a browser")
    parser.add_argument("--progressive", action="store_true",
                        help="run the notebook for each visitor, showing cells as they finish (no preheated kernel)")
    parser.add_argument("--refill-delay", type=float, default=60.0,
                        help="seconds before a kernel is prepared for the next visitor (default: 60)")
    args = parser.parse_args(argv)
    try:
        serve(args.notebook, port=args.port, ip=args.ip, open_browser=not args.no_browser,
              progressive=args.progressive, refill_delay=args.refill_delay)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
