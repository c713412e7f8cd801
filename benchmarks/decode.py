"""How fast is decoding? Lookup table vs bitwise vs ``isin`` vs chained comparisons.

Prints the median of several repetitions per method on a full-size Sentinel-2 SCL tile
(5490 x 5490 uint8) and a Landsat QA_PIXEL scene (7801 x 7681 uint16) built from realistic code
mixes, and each method's ratio to a plain copy of the same array (the memory floor).

    python benchmarks/decode.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

import clearcube as cc
from clearcube import Flag, MaskConfig
from clearcube.sensors.landsat import decode_qa_pixel_bits


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm caches and lookup tables
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def scl_scene(rng: np.random.Generator) -> np.ndarray:
    classes = np.array([0, 4, 5, 6, 8, 9, 10, 3, 7, 2, 11, 1], np.uint8)
    weights = np.array([10, 45, 15, 5, 6, 6, 5, 4, 2, 1, 0.5, 0.5])
    return rng.choice(classes, size=(5490, 5490), p=weights / weights.sum())


def qa_pixel_scene(rng: np.random.Generator) -> np.ndarray:
    values = np.array([1, 21824, 22280, 55052, 23888, 21952, 21762, 24082], np.uint16)
    weights = np.array([20, 40, 15, 8, 5, 5, 4, 3])
    return rng.choice(values, size=(7801, 7681), p=weights / weights.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cfg = MaskConfig()

    print(f"# numpy {np.__version__}, python {platform.python_version()}, {platform.machine()}")
    print(f"# medians of {args.repeat} runs, single thread\n")
    print(f"{'input':<26}{'method':<30}{'median ms':>10}{'Mpx/s':>9}{'x floor':>9}")

    scl = scl_scene(rng)
    cloud = np.uint16(Flag.CLOUD)
    methods_scl: dict[str, Callable[[], object]] = {
        "copy (floor)": lambda: scl.copy(),
        "clearcube.decode (LUT take)": lambda: cc.decode(scl, "s2-scl", cfg),
        "isin cloud classes": lambda: np.isin(scl, [3, 8, 9, 10]),
        "chained comparisons": lambda: (scl == 3) | (scl == 8) | (scl == 9) | (scl == 10),
        "where per class (12 passes)": lambda: [np.where(scl == c, cloud, 0) for c in range(12)],
    }
    report("SCL 5490x5490 uint8", scl.size, methods_scl, args.repeat)

    qa = qa_pixel_scene(rng)
    methods_qa: dict[str, Callable[[], object]] = {
        "copy (floor)": lambda: qa.copy(),
        "clearcube.decode (LUT take)": lambda: cc.decode(qa, "landsat-qa-pixel", cfg),
        "bitwise expression": lambda: decode_qa_pixel_bits(qa, cfg.confidence_tiers),
    }
    report("QA_PIXEL 7801x7681 uint16", qa.size, methods_qa, args.repeat)


def report(label: str, n: int, methods: dict[str, Callable[[], object]], repeat: int) -> None:
    floor = None
    for name, fn in methods.items():
        sec = median_seconds(fn, repeat)
        floor = floor or sec
        print(f"{label:<26}{name:<30}{sec * 1e3:>10.1f}{n / sec / 1e6:>9.0f}{sec / floor:>9.1f}")


if __name__ == "__main__":
    main()
