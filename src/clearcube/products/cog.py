"""Composites as Cloud-Optimized GeoTIFFs, written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ._files import atomic_path

__all__ = ["write_cog"]


def write_cog(
    layers: Sequence[xr.DataArray],
    path: str | Path,
    *,
    nodata: float | int | None = None,
    descriptions: Sequence[str] | None = None,
) -> Path:
    """Write (y, x) layers of one grid and dtype as a multi-band COG (DEFLATE, overviews)."""
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
            predictor=3 if dtype.kind == "f" else 2,
            overview_resampling=resampling,
            BLOCKSIZE=256,
        ) as dst,
    ):
        dst.write(stack)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
    return path
