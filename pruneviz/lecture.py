"""Lecture mode: a notebook served as a Voila dashboard, ready before the class looks at it.

    python -m pruneviz.lecture notebooks/00_welcome.ipynb

Cells tagged ``lecture-hide`` (the cells that exist for the tests, such as programmatic widget moves and
printed checks, the exercises and the run time) are removed before Voila sees the notebook: they are neither
shown nor run, so every widget opens in the state the text describes. Code is hidden, outputs are shown.

By default a pool of kernels is preheated: Voila runs the notebook in ``pool_size`` kernels as soon as the
server starts, and this command says "ready" (and opens the browser) only once every one has finished, so the
first ``pool_size`` visitors (the projector, a reload, a student opening the link) see their widgets within
seconds. Each kernel taken from the pool is replaced ``refill_delay`` seconds later, which costs a whole run of
the notebook in the background; a visitor who comes while the pool is empty waits for that run. A kernel that
dies in the pool is taken out and replaced at once (:mod:`pruneviz.kernel_pool`). A visitor's
kernel is shut down when the page is closed or reloaded; one whose page vanished without saying so (a crashed
browser, a laptop gone to sleep) is culled after ``cull_idle`` seconds without activity. ``--progressive``
instead runs the notebook for each visitor and shows the cells as they finish.
Needs Voila: ``pip install -e ".[lecture]"`` from a clone.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .kernel_pool import PoolKeeper

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


TEMPLATE = "pruneviz-lecture"

# Voila's "lab" template links FontAwesome's CSS from a CDN (cdn.jsdelivr.net), which an offline classroom cannot
# reach and which makes every page wait on the network. voila-style.js, served by Voila itself, already carries
# FontAwesome 5's CSS and fonts, so the template below is "lab" with every stylesheet link to another host dropped.
_TEMPLATE_INDEX = """{%- extends 'lab/index.html.j2' -%}
{%- block notebook_css -%}
{%- for line in super().split('\\n') if not ('<link' in line and 'href="http' in line) -%}
{{ line }}
{% endfor -%}
{%- endblock notebook_css -%}
"""


def write_template(folder: str | Path) -> Path:
    """Write the lecture's Voila template under ``folder`` and return the data folder that holds it (to go on
    JUPYTER_PATH, where Voila looks for templates)."""
    root = Path(folder) / "share"
    template = root / "voila" / "templates" / TEMPLATE
    template.mkdir(parents=True, exist_ok=True)
    (template / "conf.json").write_text(json.dumps({"base_template": "lab"}), encoding="utf-8")
    (template / "index.html.j2").write_text(_TEMPLATE_INDEX, encoding="utf-8")
    return root


def voila_arguments(notebook: Path, *, port: int, ip: str, progressive: bool, pool_size: int = 2,
                    refill_delay: float = 5.0, cull_idle: int = 1800) -> list[str]:
    """Voila's command line for lecture mode (the template must be on JUPYTER_PATH: :func:`write_template`)."""
    if pool_size < 1 and not progressive:
        raise ValueError(f"pool_size={pool_size}: at least one kernel must be preheated (or use progressive=True)")
    if refill_delay < 0 or cull_idle < 0:
        raise ValueError(f"refill_delay={refill_delay}, cull_idle={cull_idle}: both must be >= 0 (cull_idle 0: never)")
    mode = (["--progressive_rendering=True"] if progressive else
            ["--preheat_kernel=True", f"--pool_size={pool_size}", f"--VoilaKernelManager.fill_delay={refill_delay}"])
    # A kernel is culled only when no page is connected to it (cull_connected is off), and Voila never culls the
    # preheated kernels waiting in its pool.
    culling = [f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
               f"--MappingKernelManager.cull_interval={max(1, min(60, cull_idle))}"] if cull_idle else []
    return [str(notebook), f"--port={port}", f"--Voila.ip={ip}", "--Voila.port_retries=0", "--strip_sources=True",
            f"--template={TEMPLATE}", "--VoilaExecutor.timeout=600", "--show_tracebacks=True", *mode, *culling]


def _lecture_app(open_browser: bool):
    """A Voila application that announces (and opens the page) when the preheated notebook has been run."""
    try:
        from voila.app import Voila
    except ImportError:
        raise SystemExit("lecture mode needs Voila: pip install -e \".[lecture]\" from a clone "
                         "(or pip install voila)") from None
    from tornado.ioloop import IOLoop

    class LectureVoila(Voila):
        def launch_browser(self):  # Voila calls it just before its event loop starts (open_browser is forced on)
            if self.voila_configuration.preheat_kernel and hasattr(self.kernel_manager, "_pools"):
                self.pool_keeper = PoolKeeper(self.kernel_manager, self.log)
                IOLoop.current().add_callback(self.pool_keeper.run)
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
            pool = self.voila_configuration.default_pool_size
            how = (f"{pool} kernel{'s' * (pool != 1)} run ahead" if self.voila_configuration.preheat_kernel
                   else "runs when opened")
            print(f"pruneviz lecture ready ({how}, {time.monotonic() - started:.0f} s): {self.display_url}"
                  "  (Ctrl-C stops it)", flush=True)
            if open_browser:
                super().launch_browser()

    app = LectureVoila()
    app.open_browser = True
    return app


def serve(notebook: str | Path, *, port: int = 8866, ip: str = "127.0.0.1", open_browser: bool = True,
          progressive: bool = False, pool_size: int = 2, refill_delay: float = 5.0, cull_idle: int = 1800) -> None:
    """Serve ``notebook`` in lecture mode until interrupted (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="pruneviz-lecture-") as folder:
        copy = lecture_copy(notebook, folder)
        arguments = voila_arguments(copy, port=port, ip=ip, progressive=progressive, pool_size=pool_size,
                                    refill_delay=refill_delay, cull_idle=cull_idle)
        templates = write_template(folder)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(templates), os.environ.get("JUPYTER_PATH")]))
        app = _lecture_app(open_browser)
        app.initialize(arguments)
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
    parser.add_argument("--pool-size", type=int, default=2,
                        help="kernels kept run ahead, one per visitor who should find a ready page (default: 2)")
    parser.add_argument("--refill-delay", type=float, default=5.0,
                        help="seconds before a kernel taken from the pool is replaced (default: 5)")
    parser.add_argument("--cull-idle", type=int, default=1800,
                        help="seconds of inactivity after which a kernel whose page is gone is shut down "
                             "(default: 1800; 0: kept until the server stops)")
    args = parser.parse_args(argv)
    try:
        serve(args.notebook, port=args.port, ip=args.ip, open_browser=not args.no_browser,
              progressive=args.progressive, pool_size=args.pool_size, refill_delay=args.refill_delay,
              cull_idle=args.cull_idle)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
