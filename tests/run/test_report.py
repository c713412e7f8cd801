"""report.html renders in headless Chromium and shows its plots."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .test_run import finished  # noqa: F401  (the shared finished run)

pytestmark = pytest.mark.integration  # headless Chromium


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_with_plots(finished, tmp_path):  # noqa: F811
    exe = chromium()
    if exe is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("chromium is not installed; .ci/run must install it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    html = (finished / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # series, histogram, composite, count
    assert "Routed scenes" in html
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,1400",
            (finished / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), done.stderr[-2000:]
    from matplotlib.image import imread

    rgb = (imread(shot)[:, :, :3] * 255).astype(int).transpose(2, 0, 1)
    assert rgb.shape[1:] == (1400, 1200)
    # not a blank page: the plots put many distinct, saturated colours on screen
    colours = {tuple(c) for c in rgb.reshape(3, -1)[:, ::97].T}
    assert len(colours) > 50
    saturated = (rgb.max(axis=0) - rgb.min(axis=0)) > 80
    assert saturated.mean() > 0.02
