"""How the stages compute: one object that holds the dask scheduler choice and the progress
display, so every stage computes the same way (threads, or a dask.distributed cluster).

Reads from remote catalogs wait on the network, not on the CPU: the threaded scheduler then
runs more I/O threads than cores (measured: 8 threads at 20 ms per request took 1.43 s where 2
took 2.45 s).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Compute", "blocks_of", "gc_paused", "io_threads", "memory_returned"]

#: Threads per core for sources read over the network.
REMOTE_THREADS_PER_CORE = 4


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (a context manager, or a decorator:
    ``@gc_paused()``).

    For graph building only, never around a compute: planning and graph construction
    allocate many small dicts and tuples that live on, so the collector's full passes over
    them cost a fifth of the build at 3,000 items (measured: 0.50 -> 0.40 ms of CPU per item)
    and grow with the number of items; what they free is freed by reference counting anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None (another C library, another system)."""
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def memory_returned() -> Iterator[None]:
    """Once the block is over, return the memory its threads freed to the operating system
    (glibc's ``malloc_trim``; nothing elsewhere).

    The threads of a compute allocate and free chunk-sized arrays in glibc's per-thread
    arenas, which keep what is freed: without a trim the resident set of the next stage
    starts from the last one's high-water mark. Measured on benchmarks/e2e.py: a peak of
    1,280-1,348 MB without, 930-955 MB with a trim after each compute, at the same speed
    (a trim every 0.25 s during the compute gave 910 MB but cost 10-15 % more CPU: every
    freed page is faulted in again).
    """
    trim = _malloc_trim()
    try:
        yield
    finally:
        if trim is not None:
            trim(0)


def io_threads(remote: bool) -> int:
    """Threads for the threaded scheduler: one per core locally, more for remote sources."""
    cores = os.cpu_count() or 1
    return max(8, REMOTE_THREADS_PER_CORE * cores) if remote else cores


@dataclass
class Compute:
    """Computes dask collections for the stages.

    Attributes
    ----------
    scheduler
        A dask.distributed scheduler address, or a connected ``distributed.Client`` (e.g.
        a dask-gateway cluster's ``get_client()``, whose address alone lacks the cluster's
        TLS credentials; it is used as it is and left open); None for the threaded
        scheduler.
    progress
        Show a progress bar per stage (on stderr).
    threads
        Threads of the threaded scheduler (default: one per core).
    """

    scheduler: Any = None
    progress: bool = False
    threads: int | None = None
    _client: Any = field(default=None, repr=False)
    _announced: str | None = field(default=None, repr=False)

    def announce(self, stage: str, detail: str) -> None:
        """Print ``[stage] detail`` on stderr (with ``progress``): what a stage works on, e.g.
        its scene count; the stage's progress bar then follows without a second header."""
        if self.progress:
            print(f"[{stage}] {detail}", file=sys.stderr, flush=True)
            self._announced = stage

    @contextlib.contextmanager
    def session(self) -> Iterator[Compute]:
        """Connect to the scheduler (if any) for the duration of a run."""
        if self.scheduler is None:
            yield self
            return
        from distributed import Client

        if isinstance(self.scheduler, Client):
            self._client = self.scheduler
            try:
                yield self
            finally:
                self._client = None
            return
        with Client(self.scheduler, set_as_default=False) as client:
            self._client = client
            try:
                yield self
            finally:
                self._client = None

    def run(self, stage: str, targets: Sequence[Any]) -> list[Any]:
        """Compute ``targets`` together (shared tasks run once, tasks no target needs do not
        run at all); ``stage`` names the progress bar."""
        if not targets:
            return []
        graph, keys = _culled(targets)
        if self._client is not None:
            futures = self._client.get(graph, keys, sync=False)
            if self.progress:
                from dask.core import flatten
                from distributed import progress

                self._header(stage)
                # distributed's text bar writes to stdout, which belongs to --json output;
                # it asks the default client for the scheduler unless it is told (ours is
                # not the default)
                with contextlib.redirect_stdout(sys.stderr):
                    progress(
                        list(flatten(futures)),
                        notebook=False,
                        scheduler=self._client.scheduler.address,
                    )
            results = self._client.gather(futures)
        else:
            import dask.threaded

            with contextlib.ExitStack() as stack:
                if self.progress:
                    from dask.diagnostics import ProgressBar

                    self._header(stage)
                    stack.enter_context(ProgressBar(out=sys.stderr))
                stack.enter_context(memory_returned())
                results = dask.threaded.get(
                    graph, keys, num_workers=self.threads or io_threads(False)
                )
        return [_finalize(t, r) for t, r in zip(targets, results, strict=True)]

    def _header(self, stage: str) -> None:
        if self._announced != stage:
            print(f"[{stage}]", file=sys.stderr, flush=True)
        self._announced = None


def _culled(targets: Sequence[Any]) -> tuple[dict[Any, Any], list[Any]]:
    """The merged graph of ``targets``, as it is (no fusion: dask's per-collection
    optimisation would run a read task shared by the data and its failures twice), culled to
    the tasks their keys need, and the keys."""
    from dask.core import flatten
    from dask.optimization import cull

    graph: dict[Any, Any] = {}
    for target in targets:
        graph.update(target.__dask_graph__())
    keys = [target.__dask_keys__() for target in targets]
    culled, _ = cull(graph, list(flatten(keys)))
    return culled, keys


def _finalize(target: Any, result: Any) -> Any:
    finalize, extra = target.__dask_postcompute__()
    return finalize(result, *extra)


def blocks_of(array: Any, indices: Sequence[tuple[int, ...]]) -> Any:
    """A dask collection computing to the list of ``array``'s blocks at ``indices`` (block
    indices), in that order. With :meth:`Compute.run`, only those blocks and what they need
    are computed: e.g. the windows of the scenes that are used, not the NaN blocks of the
    others."""
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    name = "clearcube-blocks-" + tokenize(array.name, list(indices))
    keys = [(array.name, *index) for index in indices]
    graph = HighLevelGraph.from_collections(name, {name: (list, keys)}, dependencies=[array])
    return Delayed(name, graph)
