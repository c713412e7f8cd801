"""Composites as Cloud-Optimized GeoTIFFs, written atomically, with their metadata as tags.

Dataset tags (GDAL metadata) say what a file is (the composites stage writes the period, the
scenes used and the config digest); each band declares its scale, offset and nodata the GDAL
way, so any reader, and the output STAC's ``raster:bands``, take them from the file itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .files import atomic_path

__all__ = ["write_cog"]


def write_cog(
    layers: Sequence[xr.DataArray],
    path: str | Path,
    *,
    nodata: float | int | None = None,
    descriptions: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    band_tags: Sequence[Mapping[str, str]] | None = None,
    scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
) -> Path:
    """Write (y, x) layers of one grid and dtype as a multi-band COG (DEFLATE, overviews).

    Parameters
    ----------
    layers
        The bands, in order.
    path
        The COG to write (atomically).
    nodata
        The fill of every band (NaN for float composites), or None for none.
    descriptions
        One description per band (its name).
    tags
        Dataset metadata items (``NAME=value``).
    band_tags
        Metadata items of each band.
    scales, offsets
        Each band's scale and offset (physical value = stored * scale + offset); GDAL's
        defaults (1, 0) are written when omitted, so every band declares them.
    """
    import rasterio

    path = Path(path)
    first = layers[0]
    geobox = first.odc.geobox
    stack = np.stack([np.asarray(layer.values) for layer in layers])
    dtype = stack.dtype
    resampling = "nearest" if np.issubdtype(dtype, np.integer) else "average"
    with (
        atomic_path(path) as tmp,
        rasterio.open(
            tmp,
            "w",
            driver="COG",
            width=stack.shape[2],
            height=stack.shape[1],
            count=stack.shape[0],
            dtype=dtype.name,
            crs=geobox.crs.to_wkt(),
            transform=geobox.affine,
            nodata=nodata,
            compress="DEFLATE",
            # level 1 with GDAL's threads: 2.6x faster than the default level 6 on a
            # 2500 x 2500 x 2 float32 composite, 2 % larger (benchmarks/e2e.py)
            level=1,
            num_threads="ALL_CPUS",
            predictor=3 if dtype.kind == "f" else 2,
            overview_resampling=resampling,
            BLOCKSIZE=256,
        ) as dst,
    ):
        dst.write(stack)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
        count = stack.shape[0]
        dst.scales = tuple(float(v) for v in (scales or [1.0] * count))
        dst.offsets = tuple(float(v) for v in (offsets or [0.0] * count))
        if tags:
            dst.update_tags(**dict(tags))
        for i, items in enumerate(band_tags or [], start=1):
            dst.update_tags(i, **dict(items))
    return path
