"""The compute helpers: the cyclic collector paused for graph building, freed memory handed
back to the system during a compute."""

from __future__ import annotations

import gc
import sys
import threading

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_memory_freed_by_threads_goes_back_to_the_system():
    """Chunk-sized arrays allocated and freed on worker threads stay in glibc's arenas;
    after a ``memory_returned`` block the resident set falls back."""
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

    def on_threads() -> None:
        threads = [threading.Thread(target=churn) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    before = proc.memory_info().rss
    with memory_returned():
        on_threads()
    returned = (proc.memory_info().rss - before) / 2**20
    before = proc.memory_info().rss
    on_threads()  # the same again without (its arenas exist by now)
    kept = (proc.memory_info().rss - before) / 2**20
    alive.clear()
    assert returned < 100, f"{returned:.0f} MB kept after the arrays were freed"
    assert kept > 100, f"only {kept:.0f} MB kept without a trim: the test shows nothing"
