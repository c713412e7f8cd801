"""GDAL settings for reading COGs from local disk, HTTP(S) and object stores.

clearcube sets these itself instead of leaving them to the user: without them GDAL lists every
remote "directory" on open, retries nothing, and fetches one range per request. Retries are
bounded so that a dead server fails in seconds, not minutes.
"""

from __future__ import annotations

import ctypes
import glob
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from functools import lru_cache
from typing import Any

__all__ = [
    "GDAL_DEFAULTS",
    "clear_vsicurl_cache",
    "drop_dataset",
    "forget_open_datasets",
    "gdal_options",
    "open_dataset",
    "rio_env",
]

#: Defaults for cloud-optimised reads; override per call with ``gdal_options(**overrides)``.
GDAL_DEFAULTS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.jp2,.JP2",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MAX_RETRY": "4",
    "GDAL_HTTP_RETRY_DELAY": "0.25",
    "GDAL_HTTP_TIMEOUT": "30",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "VSI_CACHE": "TRUE",
    "GDAL_NUM_THREADS": "1",
}


def gdal_options(overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The defaults, updated by ``overrides`` and by ``CLEARCUBE_GDAL_*`` environment
    variables (e.g. ``CLEARCUBE_GDAL_HTTP_MAX_RETRY=10``)."""
    opts = dict(GDAL_DEFAULTS)
    for key, value in os.environ.items():
        if key.startswith("CLEARCUBE_GDAL_"):
            opts[key.removeprefix("CLEARCUBE_")] = value
    for key, value in (overrides or {}).items():
        opts[key] = str(value)
    return opts


def rio_env(overrides: Mapping[str, Any] | None = None) -> Any:
    """A ``rasterio.Env`` with clearcube's GDAL options."""
    import rasterio

    return rasterio.Env(**gdal_options(overrides))


@lru_cache(maxsize=1)
def _libgdal() -> Any:
    import rasterio

    base = os.path.dirname(rasterio.__file__)
    candidates = sorted(glob.glob(os.path.join(base, "..", "rasterio.libs", "libgdal*")))
    if not candidates:
        return None
    return ctypes.CDLL(candidates[0])


def clear_vsicurl_cache() -> bool:
    """Forget GDAL's per-process memory of remote files (including failed ones).

    After a URL failed once, GDAL keeps failing it from its cache in that process, even when
    the server has recovered; an application-level retry must clear the cache first. Returns
    false when the GDAL library cannot be reached (e.g. a system GDAL build).
    """
    forget_open_datasets()
    lib = _libgdal()
    if lib is None:
        return False
    lib.VSICurlClearCache()
    return True


#: Open datasets kept per thread (a rasterio dataset must not be shared between threads).
#: Few on purpose: an open dataset keeps every block it decoded in GDAL's block cache (up to
#: GDAL_CACHEMAX, 5 % of RAM), so many open handles make a long job's memory grow with its
#: length; two spare the reopen between consecutive reads of one file (and of its overview).
MAX_OPEN_DATASETS = 2
_local = threading.local()
_generation = itertools.count()
_current = [next(_generation)]


def forget_open_datasets() -> None:
    """Make every thread reopen its datasets on next use (after files or servers changed)."""
    _current[0] = next(_generation)


def open_dataset(href: str, overview_level: int | None = None, options: Hashable = None) -> Any:
    """A rasterio dataset of ``href`` (or of one of its overview levels), kept open in this
    thread and reused by the next reads of the same file: opening a COG costs a header read
    (an HTTP request for a remote one), as much as decoding a small window.

    Call inside :func:`rio_env`; ``options`` (hashable, e.g. the GDAL options of that
    environment) is part of the key, so a handle opened under other credentials or headers is
    never reused. A local file is reopened when its size or modification time
    changed; :func:`forget_open_datasets` (also done by :func:`clear_vsicurl_cache`) drops
    every handle. At most :data:`MAX_OPEN_DATASETS` stay open per thread (least recently used
    closed first).
    """
    import rasterio

    cache: OrderedDict[tuple[Any, ...], Any] | None = getattr(_local, "cache", None)
    if cache is None or getattr(_local, "generation", None) != _current[0]:
        if cache is not None:
            for ds in cache.values():
                ds.close()
        cache = _local.cache = OrderedDict()
        _local.generation = _current[0]
    stamp: tuple[int, int] | None = None
    if "://" not in href and not href.startswith("/vsi"):
        try:
            st = os.stat(href)
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
    key = (href, overview_level, options, stamp)
    ds = cache.get(key)
    if ds is not None and not ds.closed:
        cache.move_to_end(key)
        return ds
    if overview_level is None:
        ds = rasterio.open(href)
    else:
        ds = rasterio.open(href, overview_level=overview_level)
    cache[key] = ds
    while len(cache) > MAX_OPEN_DATASETS:
        _, old = cache.popitem(last=False)
        old.close()
    return ds


def drop_dataset(href: str) -> None:
    """Close this thread's handles of ``href`` (after a read from it failed)."""
    cache = getattr(_local, "cache", None)
    if not cache:
        return
    for key in [k for k in cache if k[0] == href]:
        cache.pop(key).close()
