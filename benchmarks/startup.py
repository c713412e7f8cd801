"""How long the command line takes to start, against a bare Python start.

    python benchmarks/startup.py [--repeat 5]

Prints the median wall time of ``clearcube --version``, ``clearcube run --help`` and
``python -c "import json"`` over fresh processes, and the ratios to the bare start.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("clearcube")
    script = [exe] if exe else [sys.executable, "-m", "clearcube"]
    print(f"python {platform.python_version()} on {platform.platform()}, median of {args.repeat}")
    bare = median_seconds([sys.executable, "-c", "import json"], args.repeat)
    label = 'python -c "import json"'
    print(f"{label:<28}{bare:8.3f} s   1.00x")
    for label, extra in (
        ("clearcube --version", ["--version"]),
        ("clearcube run --help", ["run", "--help"]),
    ):
        sec = median_seconds([*script, *extra], args.repeat)
        print(f"{label:<28}{sec:8.3f} s {sec / bare:6.2f}x")


if __name__ == "__main__":
    main()
