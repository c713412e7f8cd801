"""benchmarks/e2e.py still runs end to end: a tiny series, one run per side, outputs compared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_e2e_benchmark_smoke(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "e2e.py"),
            *("--data", str(tmp_path / "data"), "--work", str(tmp_path / "work")),
            *("--tile-px", "550", "--dates", "2", "--aoi-km", "2"),
            *("--repeat", "1", "--modes", "local", "--no-strace"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    checks = [line for line in done.stdout.splitlines() if line.startswith("# ok: ")]
    # fractions, the 2024 median and its clear count, and the masked cube agree
    assert len(checks) == 4, done.stdout
    assert "MISMATCH" not in done.stdout
    assert "clearcube/script" in done.stdout
