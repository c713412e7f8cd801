"""The odc-stac engine.

odc-stac writes ``nodata`` where a read falls outside a raster and, on a same-grid read, where
a pixel equals the file's nodata tag (GDAL's warper skips tagged pixels when it resamples); it
does not use the nodata an item declares in ``raster:bands`` for the source pixels, so those
pixels are replaced here. A geographic grid comes back with ``latitude``/``longitude`` axes:
renamed to ``y``/``x`` like every engine's.

Measured pitfall (rasterio 1.4.4, GDAL 3.10): ``rasterio.warp.reproject``, which odc-stac
calls whenever it resamples, copies pixels equal to the file's nodata tag unchanged when the
destination nodata is 0 (with any other value it writes that value). A fill of 0 (SCL,
reflectance) is therefore requested as the lowest value of the next wider signed dtype, which
no source pixel can hold, and put back to 0 afterwards.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ._base import ReadRequest, fill_declared_nodata, item_times


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
        ydim, xdim = request.geobox.dimensions
        dtype = np.dtype(request.dtype)
        load_dtype, load_nodata = _stand_in(dtype, request.nodata)
        ds = odc.stac.load(
            list(request.items),
            bands=[request.asset],
            geobox=request.geobox,
            groupby="id",
            preserve_original_order=True,
            resampling=request.resampling,
            dtype=str(load_dtype),
            nodata=load_nodata,
            chunks={"time": 1, ydim: cy, xdim: cx},
            fail_on_error=True,
        )
        out: xr.DataArray = ds[request.asset]
        if load_dtype != dtype:
            attrs = {**out.attrs, "nodata": request.nodata}
            out = out.where(out != load_nodata, request.nodata).astype(dtype)
            out.attrs = attrs
        out = out.assign_coords(time=item_times(request.items))
        out = out.drop_vars("spatial_ref", errors="ignore")
        if (ydim, xdim) != ("y", "x"):
            out = out.rename({ydim: "y", xdim: "x"})
        return fill_declared_nodata(out, request)


def _stand_in(dtype: np.dtype[Any], nodata: float) -> tuple[np.dtype[Any], float]:
    """The (dtype, nodata) to ask odc-stac for: as requested, except that an integer fill of
    0 becomes the lowest value of the next wider signed dtype, which no pixel of ``dtype``
    can hold (see the module docstring)."""
    if nodata != 0 or dtype.kind not in "ui" or dtype.itemsize >= 8:
        return dtype, nodata
    wider = np.dtype(f"int{dtype.itemsize * 16}")
    return wider, int(np.iinfo(wider).min)
