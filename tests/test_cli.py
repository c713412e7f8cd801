"""The console script: version, show-versions, exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import clearcube


def run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("clearcube")
    cmd = (
        [exe, *args]
        if exe
        else [sys.executable, "-c", "from clearcube.cli import main; main()", *args]
    )
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_version():
    done = run("--version")
    assert done.returncode == 0
    assert clearcube.__version__ in done.stdout


def test_show_versions_names_gdal():
    done = run("show-versions")
    assert done.returncode == 0
    assert "gdal:" in done.stdout
    assert "numpy:" in done.stdout


def test_unknown_command_is_usage_error():
    done = run("no-such-command")
    assert done.returncode == 2
    assert "No such command" in done.stderr
