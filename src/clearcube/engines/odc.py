"""The odc-stac engine."""

from __future__ import annotations

from typing import Any

import xarray as xr

from ._base import ReadRequest, item_times


class OdcEngine:
    """Reads through ``odc.stac.load`` (one slice per item: ``groupby="id"``)."""

    name = "odc"

    def read(self, request: ReadRequest) -> xr.DataArray:
        import odc.stac

        # odc-loader captures the GDAL options when load() is called; without this call it
        # applies its own cloud defaults (10 retries, 0.5 s apart).
        options: dict[str, Any] = dict(request.gdal)
        odc.stac.configure_rio(cloud_defaults=False, **options)
        cy, cx = request.chunks_yx
        ds = odc.stac.load(
            list(request.items),
            bands=[request.asset],
            geobox=request.geobox,
            groupby="id",
            preserve_original_order=True,
            resampling=request.resampling,
            dtype=str(request.dtype),
            nodata=request.nodata,
            chunks={"time": 1, "y": cy, "x": cx},
            fail_on_error=True,
        )
        out: xr.DataArray = ds[request.asset]
        out = out.assign_coords(time=item_times(request.items))
        return out.drop_vars("spatial_ref", errors="ignore")
