"""Loader engines: the libraries that turn (items, asset, grid) into a lazy (time, y, x) array.

Every engine implements :class:`Engine`. clearcube asks them only for raw values of one asset
per item, with nearest resampling and the asset's own dtype and nodata, one time slice per item
in the given order; grouping, decoding, scaling and masking happen in :mod:`clearcube.cube`,
identically for every engine.
"""

from __future__ import annotations

from ._base import Engine, ReadRequest, declared_nodata, get_engine, list_engines, nodata_values

__all__ = [
    "Engine",
    "ReadRequest",
    "declared_nodata",
    "get_engine",
    "list_engines",
    "nodata_values",
]
