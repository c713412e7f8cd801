"""The README's Python examples run as written, from the repository root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_python_blocks_run():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no Python example"
    for block in blocks:
        done = subprocess.run(
            [sys.executable, "-c", block], cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        # the printed results the README promises in its comments
        for promised in re.findall(r"# (\[.*\]|\d+\.\d+)$", block, re.M):
            assert promised in done.stdout, (promised, done.stdout)


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "python -m pytest" in readme
    assert re.search(r"^python -m pytest$", ci, re.M)
