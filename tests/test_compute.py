"""The compute helpers: the cyclic collector paused for graph building, freed memory handed
back to the system during a compute."""

from __future__ import annotations

import gc
import sys
import threading
import time

import numpy as np
import psutil
import pytest

from clearcube.compute import gc_paused, memory_returned


def test_gc_paused_restores_the_collector_as_it_was():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves the outer pause alone
    assert gc.isenabled()

    @gc_paused()
    def build() -> bool:
        return gc.isenabled()

    assert build() is False
    assert gc.isenabled()


def _trimmers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "clearcube-trim"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_memory_freed_by_threads_goes_back_to_the_system():
    """Chunk-sized arrays allocated and freed on worker threads stay in glibc's arenas;
    inside ``memory_returned`` the resident set falls back once they are freed."""
    proc = psutil.Process()

    alive: list[np.ndarray] = []

    def churn() -> None:
        # glibc serves an array this size from mmap until one such is freed: then it raises
        # its mmap threshold and serves them from the thread's arena, as in a long compute
        np.ones(500_000, dtype=np.float64).sum()
        big = []
        for i in range(120):  # ~290 MB, each followed by a small array that stays alive:
            big.append(np.ones(300_000 + 7 * i, dtype=np.float64))
            alive.append(np.ones(64, dtype=np.float64))
        del big  # holes below live data: no free() gives them back, a trim does

    def grown() -> float:
        before = proc.memory_info().rss
        threads = [threading.Thread(target=churn) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.1)  # ten trimming intervals
        return (proc.memory_info().rss - before) / 2**20

    with memory_returned(0.01):
        time.sleep(0.05)
        assert len(_trimmers()) == 1
        inside = grown()
    assert _trimmers() == []  # the trimming thread ends with the block
    outside = grown()  # the same again without trimming (the arenas exist by now)
    assert outside > 100, f"only {outside:.0f} MB kept without trimming: the test shows nothing"
    assert inside < 100, f"{inside:.0f} MB kept after the arrays were freed"
    alive.clear()
