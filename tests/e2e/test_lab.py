"""The browser tests' plumbing, without a browser: finding Chromium, reaping orphans, comparing screenshots."""
import io
import os
import subprocess
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest

from . import lab


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    plt.imsave(buffer, pixels, format="png")
    return buffer.getvalue()


def test_chromium_from_environment_first_then_none(tmp_path, monkeypatch):
    fake = tmp_path / "chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PRUNEVIZ_CHROMIUM", str(fake))
    assert lab.find_chromium() == str(fake)
    monkeypatch.setenv("PRUNEVIZ_CHROMIUM", str(tmp_path / "missing"))
    monkeypatch.setattr(lab, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium", "no-such-browser-on-path"))
    assert lab.find_chromium() is None


def test_subreaper_adopts_and_ends_orphans():
    reaper = lab.Subreaper()
    reaper.open()
    try:
        # the shell exits at once and leaves its background sleep behind: an orphan, as Chromium's helpers are
        out = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True,
                             check=True)
        orphan = int(out.stdout)
        deadline = time.monotonic() + 5
        while orphan not in lab._children(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert orphan in lab._children(os.getpid()), "the orphan was not reparented to this process"
    finally:
        ended = reaper.close()
    assert orphan in ended
    assert not os.path.exists(f"/proc/{orphan}")  # ended and reaped: not even a zombie is left


def test_changed_fraction_and_blank():
    a = np.zeros((10, 20, 3))
    b = a.copy()
    b[:2, :5] = 1.0  # 10 of 200 pixels
    assert lab.changed_fraction(png(a), png(a)) == 0.0
    assert lab.changed_fraction(png(a), png(b)) == pytest.approx(10 / 200)
    assert lab.changed_fraction(png(a), png(np.zeros((5, 5, 3)))) == 1.0
    assert lab.is_blank(png(a)) and not lab.is_blank(png(b))
