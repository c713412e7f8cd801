"""The masked datacube as Zarr (format 3), chunked like the computation, grid recoverable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._files import atomic_path

__all__ = ["write_cube"]


def write_cube(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to a Zarr v3 store, atomically.

    The CRS travels the CF way (a ``spatial_ref`` variable with ``crs_wkt`` and
    ``GeoTransform``, which odc-geo and rioxarray both read), string coordinates are stored as
    variable-length strings, and every variable keeps the chunks of the computation.
    """
    path = Path(path)
    out = ds.copy()
    for name in list(out.coords):
        if out[name].dtype.kind == "U":
            # variable-length strings: zarr v3 specifies them, fixed-width unicode it does not
            out[name] = out[name].astype(object)
    geobox = ds.odc.geobox
    if geobox is not None:
        a = geobox.affine
        out = out.drop_vars("spatial_ref", errors="ignore")
        out.coords["spatial_ref"] = xr.DataArray(
            np.int32(geobox.crs.epsg or 0),
            attrs={
                "crs_wkt": geobox.crs.to_wkt(),
                "spatial_ref": geobox.crs.to_wkt(),
                "GeoTransform": f"{a.c} {a.a} {a.b} {a.f} {a.d} {a.e}",
                "grid_mapping_name": "transverse_mercator" if "UTM" in geobox.crs.to_wkt() else "",
            },
        )
        for var in out.data_vars:
            out[var].attrs["grid_mapping"] = "spatial_ref"
    for var in out.data_vars:
        out[var].encoding = {}
    out.attrs = {k: v for k, v in out.attrs.items() if isinstance(v, str | int | float)}
    out.attrs["Conventions"] = "CF-1.8"
    with atomic_path(path) as tmp:
        kwargs: dict[str, Any] = {"mode": "w", "consolidated": False}
        out.to_zarr(tmp, zarr_format=3, **kwargs)
    return path
