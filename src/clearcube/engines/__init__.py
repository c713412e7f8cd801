"""Loader engines: the libraries that turn (sources, asset, grid) into a lazy (time, y, x) array.

Every engine implements :class:`Engine`: it reads the window of one source that covers a row
of output chunks; the dask graph around those reads (footprint ranges, chosen windows,
failures as data) is shared (:mod:`clearcube.engines.windows`). clearcube asks engines only for
raw values (or decoded flags) of one asset per source, with the asset's own dtype and the fill
of its encoding, one time slice per source in the given order; grouping, scaling and masking
happen in :mod:`clearcube.cube`, identically for every engine.
"""

from __future__ import annotations

from ._base import (
    ChunkGrid,
    Engine,
    Read,
    ReadFailure,
    ReadRequest,
    Source,
    declared_nodata,
    get_engine,
    grid_coords,
    list_engines,
    nodata_values,
    register,
)

__all__ = [
    "ChunkGrid",
    "Engine",
    "Read",
    "ReadFailure",
    "ReadRequest",
    "Source",
    "declared_nodata",
    "get_engine",
    "grid_coords",
    "list_engines",
    "nodata_values",
    "register",
]
