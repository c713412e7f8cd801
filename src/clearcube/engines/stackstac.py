"""The stackstac engine.

Measured pitfalls handled here (DESIGN.md): stackstac 0.5 reads only ``proj:epsg`` (pystac 1.15
writes ``proj:code``), so items get ``proj:epsg`` from ``proj:code`` on a copy; without explicit
bounds it derives a shifted grid, so the geobox's exact bounds are passed with
``snap_bounds=False``; ``fill_value`` must be of the output dtype; coordinates must label pixel
centres (``xy_coords="center"``) to match odc-geo.

stackstac writes ``fill_value`` outside a raster and where a pixel equals the file's nodata
tag (a masked read); the nodata an item declares in ``raster:bands`` it ignores, so those
pixels are replaced here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import GridError
from ._base import ReadRequest, fill_declared_nodata, grid_coords, item_times


class StackstacEngine:
    """Reads through ``stackstac.stack``."""

    name = "stackstac"

    def read(self, request: ReadRequest) -> xr.DataArray:
        import stackstac
        from rasterio.enums import Resampling

        geobox = request.geobox
        epsg = geobox.crs.epsg if geobox.crs is not None else None
        if epsg is None:
            raise GridError(
                f"the stackstac engine needs an output CRS with an EPSG code, got {geobox.crs}; "
                "use engine='odc' or an EPSG CRS"
            )
        res_x, res_y = geobox.resolution.x, geobox.resolution.y
        if abs(abs(res_x) - abs(res_y)) > 1e-9 * abs(res_x):
            raise GridError("the stackstac engine needs square pixels; use engine='odc'")
        box = geobox.extent.boundingbox
        cy, cx = request.chunks_yx
        items = [_with_epsg(item) for item in request.items]
        env = stackstac.DEFAULT_GDAL_ENV.updated(always=dict(request.gdal))
        arr = stackstac.stack(
            items,
            assets=[request.asset],
            epsg=epsg,
            resolution=abs(res_x),
            bounds=(box.left, box.bottom, box.right, box.top),
            snap_bounds=False,
            resampling=Resampling[request.resampling],
            chunksize=(1, 1, cy, cx),
            dtype=np.dtype(request.dtype),
            fill_value=np.dtype(request.dtype).type(request.nodata),
            rescale=False,
            xy_coords="center",
            sortby_date=False,
            properties=False,
            band_coords=False,
            gdal_env=env,
            errors_as_nodata=(),
        )
        if arr.sizes["time"] != len(items):
            raise GridError(
                "stackstac dropped items that do not overlap the grid; filter items by "
                "footprint before reading"
            )
        if (arr.sizes["y"], arr.sizes["x"]) != (geobox.shape.y, geobox.shape.x):
            raise GridError(
                f"stackstac built a {arr.sizes['y']} x {arr.sizes['x']} grid for the "
                f"{geobox.shape.y} x {geobox.shape.x} output grid; use engine='native' or 'odc'"
            )
        out: xr.DataArray = arr.isel(band=0, drop=True)
        # the geobox's own pixel centres: stackstac's differ in the last bits on degree grids,
        # which would misalign the flags with every other variable
        out = out.assign_coords({"time": item_times(request.items), **grid_coords(geobox)})
        keep = {"time", "y", "x"}
        out = out.drop_vars([c for c in out.coords if c not in keep])
        out.attrs = {"nodata": request.nodata}
        named: xr.DataArray = out.rename(request.asset)
        return fill_declared_nodata(named, request)


def _with_epsg(item: Any) -> Any:
    props = item.properties
    if "proj:epsg" in props and props["proj:epsg"] is not None:
        return item
    code = props.get("proj:code")
    assets = item.assets.values()
    if code is None:
        code = next(
            (a.extra_fields.get("proj:code") for a in assets if "proj:code" in a.extra_fields), None
        )
    if code is None or not str(code).upper().startswith("EPSG:"):
        return item
    clone = item.clone()
    clone.properties["proj:epsg"] = int(str(code).split(":")[1])
    return clone
