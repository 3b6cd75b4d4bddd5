"""Drive JupyterLab in headless Chromium: the server, the browser, a notebook page, and process hygiene.

Facts this relies on were measured on these machines (see the shared browser-testing notes): Debian's chromium
driven by the Python playwright package through ``executable_path`` (never a downloaded browser), JupyterLab
4.6 selectors, and orphaned Chromium processes that nobody reaps unless the test process does.
"""
from __future__ import annotations

import ctypes
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Debian's package puts the real binary here; /usr/bin/chromium is a wrapper script that adds flags and warns.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]

# Settings that keep the page still and complete: no news pop-up over the notebook, every cell in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

PR_SET_CHILD_SUBREAPER = 36


def find_chromium() -> str | None:
    """The Chromium binary to drive: $PRUNEVIZ_CHROMIUM, else Debian's real binary, else one on the PATH."""
    for candidate in (os.environ.get("PRUNEVIZ_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if not candidate:
            continue
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    return None


# --- processes --------------------------------------------------------------------------------------------

def _children(pid: int) -> dict[int, str]:
    """{child pid: state letter} of the processes whose parent is ``pid``, read from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields after the last ")" are fixed
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out[int(entry.name)] = fields[0]
    return out


class Subreaper:
    """Make this process the reaper of orphans of its descendants, and end and reap them on ``close``.

    Chromium leaves helper processes behind when its parent goes; on these machines PID 1 does not reap them.
    Only children that appeared after ``open`` are touched: they are the orphans of what the tests started.
    """

    def __init__(self) -> None:
        self._before: set[int] = set()
        self.enabled = False

    def open(self) -> None:
        self._before = set(_children(os.getpid()))
        libc = ctypes.CDLL(None, use_errno=True)
        self.enabled = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0

    def close(self, grace: float = 3.0) -> list[int]:
        """Terminate and reap the children that appeared since ``open``; returns their pids."""
        me = os.getpid()
        new = [pid for pid in _children(me) if pid not in self._before]
        for pid in new:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p in _children(me) for p in new):
            _reap(new)
            time.sleep(0.05)
        for pid in new:
            if pid in _children(me):
                _signal(pid, signal.SIGKILL)
        _reap(new, block=True)
        if self.enabled:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        return new


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pids: list[int], block: bool = False) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pass


# --- the server -------------------------------------------------------------------------------------------

def terminate(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab serving ``root`` at ``url`` (token off, loopback only)."""
    url: str
    root: Path
    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, home: Path, timeout: float = 60.0) -> "Lab":
        """Start JupyterLab with every config, runtime, data and settings directory under ``home``."""
        root = home / "notebooks"
        settings = home / "lab-settings"
        for name in ("notebooks", "config", "runtime", "data", "workspaces"):
            (home / name).mkdir(parents=True, exist_ok=True)
        for plugin, values in LAB_SETTINGS.items():
            package, name = plugin.rsplit("/", 1)
            path = settings / package / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   JUPYTER_DATA_DIR=str(home / "data"), JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTER_PLATFORM_DIRS="1")
        port = _free_port()
        log = home / "jupyterlab.log"
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
               "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
               "--allow-root", f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
               # window.jupyterapp, which NotebookPage.run_all reads the notebook's model from (JupyterLab sets it
               # only with this option or in dev mode; without it the wait for Run All can never end)
               "--LabApp.expose_app_in_browser=True",
               # shutdown_kernels' DELETE from the test process, which holds no XSRF cookie (loopback, token off)
               "--ServerApp.disable_check_xsrf=True"]
        with log.open("wb") as out:
            process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                       start_new_session=True)
        lab = cls(f"http://127.0.0.1:{port}", root, process, log)
        lab._wait_ready(timeout)
        return lab

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log.read_text()}")

    def shutdown_kernels(self) -> int:
        """Shut down every kernel the server runs (a closed page leaves its notebook's kernel running, models
        loaded, until the server stops); returns how many."""
        with urllib.request.urlopen(f"{self.url}/api/kernels", timeout=10) as response:
            kernels = json.load(response)
        for kernel in kernels:
            request = urllib.request.Request(f"{self.url}/api/kernels/{kernel['id']}", method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()
        return len(kernels)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (the server shuts its kernels down with it), SIGKILL if it hangs."""
        terminate(self.process, timeout)


# --- pictures ---------------------------------------------------------------------------------------------

def decode_png(data: bytes) -> np.ndarray:
    """RGB(A) floats in [0, 1], shape [height, width, channels]."""
    import matplotlib.image
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def is_blank(png: bytes) -> bool:
    """True for a picture of one colour (a canvas that has not drawn yet)."""
    pixels = decode_png(png)
    return bool(np.all(pixels == pixels[0, 0]))


def changed_fraction(a: bytes, b: bytes) -> float:
    """Fraction of pixels that differ between two PNG screenshots (1.0 if their sizes differ)."""
    x, y = decode_png(a), decode_png(b)
    if x.shape != y.shape:
        return 1.0
    return float(np.any(np.abs(x - y) > 1e-3, axis=-1).mean())


# --- a notebook in the page -------------------------------------------------------------------------------

# Run All finished, read from JupyterLab's own model (window.jupyterapp, see Lab.start) rather than from the
# prompts in the page (a windowed notebook does not render cells off screen): every non-empty code cell has an
# execution count and the kernel is idle, or one cell has an error output (Run All stops there). A cell's outputs
# are an OutputAreaModel, not an array (length and get(i)); only an error output is turned into JSON, pictures never.
_RUN_STATE_JS = r"""() => {
  const app = window.jupyterapp;
  if (!app) return {exposed: false};
  const widget = app.shell.currentWidget;
  if (!widget || !widget.content || !widget.content.model || !widget.sessionContext) return {exposed: true};
  const code = [...widget.content.model.cells].filter(c => c.type === 'code' && c.sharedModel.getSource().trim());
  const errors = [];
  for (const c of code) {
    for (let i = 0; i < c.outputs.length; i++) {
      const o = c.outputs.get(i);
      if (o.type !== 'error') continue;
      const e = o.toJSON();
      errors.push(`cell [${c.executionCount}]: ${e.ename}: ${e.evalue}`);
    }
  }
  const kernel = widget.sessionContext.session && widget.sessionContext.session.kernel;
  const idle = !!kernel && kernel.status === 'idle';
  const ran = code.filter(c => c.executionCount !== null).length;
  return {exposed: true, idle, ran, cells: code.length, errors,
          done: code.length > 0 && idle && (errors.length > 0 || ran === code.length)};
}"""


class NotebookPage:
    """One notebook opened in JupyterLab in a Playwright page: open, Run All, read errors, take pictures."""

    def __init__(self, page, lab: Lab) -> None:
        self.page = page
        self.lab = lab

    def open(self, name: str, timeout: float = 60.0, fold_file_browser: bool = True) -> None:
        """Open ``name`` (relative to the server's root) and wait until its kernel is idle. The file browser,
        open by default, is folded away unless ``fold_file_browser`` is False: the notebook gets the page's
        width."""
        # ?reset: a fresh workspace, so notebooks opened by earlier tests do not come back as tabs
        self.page.goto(f"{self.lab.url}/lab/tree/{name}?reset", timeout=timeout * 1e3)
        self.panel.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=timeout * 1e3)
        current = self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if fold_file_browser and current.count():
            current.first.click()
        # The status bar names the kernel once one is attached; the toolbar says "idle" before that, and Run All
        # pressed then does nothing.
        self.page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\|\s*Idle")).first.wait_for(
            timeout=timeout * 1e3)

    def run_all(self, timeout: float = 240.0) -> None:
        """Run > Run All Cells, then wait until every code cell ran (or one failed: raises with its error)."""
        if not self.run_state().get("exposed"):
            raise RuntimeError("window.jupyterapp is missing: JupyterLab was started without "
                               "--LabApp.expose_app_in_browser=True, and Run All cannot be followed")
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        try:
            self.page.wait_for_function(f"() => ({_RUN_STATE_JS})().done", timeout=timeout * 1e3, polling=500)
        except Exception as err:  # Playwright's TimeoutError: say how far Run All got
            raise AssertionError(f"Run All did not finish within {timeout:.0f} s: {self.run_state()}") from err
        errors = self.run_state()["errors"]
        if errors:
            raise AssertionError("a cell failed in the browser:\n" + "\n".join(errors))

    def run_state(self) -> dict:
        """How far Run All got: cells ran of cells, kernel idle, the errors shown, done."""
        return self.page.evaluate(_RUN_STATE_JS)

    @property
    def panel(self):
        """The notebook on show (other tabs stay in the DOM, hidden)."""
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    def errors(self) -> list[str]:
        return self.panel.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'
                                 ).all_inner_texts()

    def settled_screenshot(self, locator, timeout: float = 20.0, pause: float = 0.25,
                           differs_from: bytes | None = None) -> bytes:
        """A screenshot of ``locator`` once two shots in a row agree, are not blank and, if given, differ from
        ``differs_from``: inline figures are replaced on each update and ipympl redraws after a round trip."""
        deadline = time.monotonic() + timeout
        previous = locator.screenshot(animations="disabled")
        while True:
            time.sleep(pause)
            shot = locator.screenshot(animations="disabled")
            settled = changed_fraction(previous, shot) == 0.0 and not is_blank(shot)
            if settled and (differs_from is None or changed_fraction(differs_from, shot) > 0.0):
                return shot
            if time.monotonic() > deadline:
                return shot  # the caller's assertion says what did not happen
            previous = shot


# --- lecture mode (Voila) ---------------------------------------------------------------------------------

@dataclass
class LectureServer:
    """``python -m pruneviz.lecture NOTEBOOK`` running at ``url``, ready (its notebook already run)."""
    url: str
    process: subprocess.Popen
    log: Path
    ready_after: float  # seconds from start to the "ready" line

    @classmethod
    def start(cls, notebook: Path, home: Path, timeout: float = 600.0) -> "LectureServer":
        port = _free_port()
        log = home / "lecture.log"
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   JUPYTER_PLATFORM_DIRS="1")
        cmd = [sys.executable, "-m", "pruneviz.lecture", str(notebook), "--no-browser", f"--port={port}"]
        started = time.monotonic()
        with log.open("wb") as out:
            process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home,
                                       start_new_session=True)
        server = cls(f"http://127.0.0.1:{port}/", process, log, 0.0)
        while "pruneviz lecture ready" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() - started > timeout:
                server.stop()
                raise RuntimeError(f"lecture mode did not get ready within {timeout:.0f} s "
                                   f"(exit code {process.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.25)
        server.ready_after = time.monotonic() - started
        return server

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: Voila shuts its kernels down with it; SIGKILL if it hangs."""
        terminate(self.process, timeout)


# --- live feel: key press -> changed readout and figure, timed inside the page -----------------------------

# Installs window.__pv_watch(root): resolves, after the next keydown anywhere, with the milliseconds from that
# keydown to the readout's text changing and to the figure's pixels (ipympl canvas) or picture (inline <img>)
# changing, each checked on every animation frame (null: no change within the timeout).
SLIDER = ".pruneviz-sparsity input[type=range]"  # the explorer's sparsity slider (a native range input)
SLIDER_VALUE = ".pruneviz-sparsity output"  # the value shown beside it


# Times are taken inside the page, cheaply, so that measuring does not slow what it measures (hashing the whole
# canvas on every animation frame cost ~10 ms of the page's main thread per frame): the readout's text is compared
# each frame; a canvas counts as changed at the first frame after a drawImage onto it (how ipympl puts a new frame
# on screen), a picture at the first frame after its src changed (the kit's Picture swaps src once decoded).
# "figure" is the first change, "figure_done" the last one before the page stays still for QUIET_MS (the
# explorer sends the masks first, the accuracy point after the evaluation). The pixels are compared once, at
# the end, to check that the figure really changed.
QUIET_MS = 300

_WATCH_JS = """() => {
  const signature = (figure) => {
    const canvas = figure.querySelector('canvas');
    if (canvas && canvas.width) {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let sum = 0;
      for (let i = 0; i < data.length; i += 7) sum = (sum * 31 + data[i]) % 2147483647;
      return 'canvas:' + sum;
    }
    const img = figure.querySelector('img');
    return img ? 'img:' + img.src + ':' + img.complete : '';
  };
  window.__pv_watch = (root, timeout, quiet) => new Promise(resolve => {
    const readout = root.querySelector('.pruneviz-readout');
    const figure = root.querySelector('.pruneviz-figure');
    const canvas = figure.querySelector('canvas');
    const img = canvas ? null : figure.querySelector('img');
    const text0 = readout.innerText, sig0 = signature(figure);
    let src = img ? img.src : null;
    let t0 = null, readoutAt = null, figureAt = null, doneAt = null, draws = 0, seen = 0;
    let restore = () => {};
    if (canvas) {
      const context = canvas.getContext('2d'), drawImage = context.drawImage;
      context.drawImage = function (...args) { if (t0 !== null) draws += 1; return drawImage.apply(this, args); };
      restore = () => { delete context.drawImage; };
    }
    document.addEventListener('keydown', () => { t0 = performance.now(); }, {capture: true, once: true});
    const tick = () => {
      const now = performance.now();
      if (t0 !== null) {
        if (readoutAt === null && readout.innerText !== text0) readoutAt = now - t0;
        if (img && img.src !== src) { src = img.src; draws += 1; }
        if (draws > seen) {
          seen = draws;
          if (figureAt === null) figureAt = now - t0;
          doneAt = now - t0;
        }
        const still = doneAt !== null && now - t0 - doneAt > quiet;
        if ((readoutAt !== null && still) || now - t0 > timeout) {
          restore();
          const changed = signature(figure) !== sig0;
          resolve({readout: readoutAt, figure: changed ? figureAt : null, figure_done: changed ? doneAt : null});
          return;
        }
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}"""


def key_to_change_times(page, root, handle, presses: int = 8, key: str = "ArrowRight", settle: float = 0.6,
                        timeout_ms: float = 5000.0) -> dict[str, list[float | None]]:
    """Press ``key`` on the slider ``handle`` ``presses`` times, one at a time (each once the page has settled
    after the last), and return the milliseconds from each key press to the changed readout, the figure's first
    change and its last one (``figure_done``) of the widget ``root`` (a locator)."""
    page.evaluate(_WATCH_JS)
    times: dict[str, list[float | None]] = {"readout": [], "figure": [], "figure_done": []}
    handle.focus()
    for _ in range(presses):
        page.evaluate("(root) => { window.__pv_result = null; window.__pv_watch(root, %f, %f).then(r => "
                      "{ window.__pv_result = r; }); }" % (timeout_ms, QUIET_MS), root.element_handle())
        handle.press(key)
        page.wait_for_function("() => window.__pv_result !== null", timeout=timeout_ms + 5000)
        result = page.evaluate("() => window.__pv_result")
        for name in times:
            times[name].append(result[name])
        time.sleep(settle)  # let the kernel and the canvas finish before the next press
    return times


def median_ms(values: list[float | None]) -> float | None:
    """The median of the measured values (None when none changed)."""
    measured = sorted(v for v in values if v is not None)
    return float(np.median(measured)) if measured else None
