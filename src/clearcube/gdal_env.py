"""GDAL settings for reading COGs from local disk, HTTP(S) and object stores.

clearcube sets these itself instead of leaving them to the user: without them GDAL lists every
remote "directory" on open, retries nothing, and fetches one range per request. Retries are
bounded so that a dead server fails in seconds, not minutes.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["GDAL_DEFAULTS", "clear_vsicurl_cache", "gdal_options", "rio_env"]

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
    lib = _libgdal()
    if lib is None:
        return False
    lib.VSICurlClearCache()
    return True
