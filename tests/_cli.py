"""Running the console script as a user would, from the repository root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``clearcube ARGS`` (the installed script, or the module when not installed)."""
    exe = shutil.which("clearcube")
    cmd = (
        [exe, *args]
        if exe
        else [sys.executable, "-c", "from clearcube.cli import main; main()", *args]
    )
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
