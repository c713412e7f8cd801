"""The odc-stac engine: each window read by ``odc.stac.load`` (GDAL's warper).

odc-stac writes ``nodata`` where a read falls outside a raster and, on a same-grid read, where
a pixel equals the file's nodata tag (GDAL's warper skips tagged pixels when it resamples); it
does not use the nodata an item declares in ``raster:bands`` for the source pixels, so those
pixels are replaced here.

Measured pitfall (rasterio 1.4.4, GDAL 3.10): ``rasterio.warp.reproject``, which odc-stac
calls whenever it resamples, copies pixels equal to the file's nodata tag unchanged when the
destination nodata is 0 (with any other value it writes that value). A fill of 0 (SCL,
reflectance) is therefore requested as the lowest value of the next wider signed dtype, which
no source pixel can hold, and put back to 0 afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._base import ChunkGrid, Source
from .windows import (
    LIBRARY_ERRORS,
    WindowEngine,
    library_failure,
    nodata_as_fill,
    signed_source,
    split_row,
    stac_item,
)

if TYPE_CHECKING:
    from ..config import MaskConfig
    from ..sensors import Encoding


class OdcEngine(WindowEngine):
    """Reads each (source, row of chunks) window through ``odc.stac.load``."""

    name = "odc"

    def read_row(
        self,
        source: Source,
        grids: tuple[ChunkGrid, ...],
        *,
        dtype: str,
        fill: float,
        resampling: str,
        gdal: tuple[tuple[str, str], ...],
        decode: tuple[Encoding, MaskConfig] | None,
    ) -> list[npt.NDArray[Any]]:
        import odc.stac
        from odc.geo.geobox import GeoBox

        first = grids[0]
        width = sum(g.shape_yx[1] for g in grids)
        geobox = GeoBox((first.shape_yx[0], width), first.affine, first.crs)
        # odc-loader captures the GDAL options when load() is called; without this call it
        # applies its own cloud defaults (10 retries, 0.5 s apart).
        options: dict[str, Any] = dict(gdal)
        odc.stac.configure_rio(cloud_defaults=False, **options)
        want = np.dtype(dtype)
        source = signed_source(source, gdal)  # signed now, not when the graph was built
        load_dtype, load_fill = _stand_in(want, fill)
        try:
            ds = odc.stac.load(
                [stac_item(source, dtype)],
                bands=[source.asset],
                geobox=geobox,
                resampling=resampling,
                dtype=load_dtype.name,
                nodata=load_fill,
                chunks=None,
                fail_on_error=True,
            )
            row = np.asarray(ds[source.asset].values)
        except LIBRARY_ERRORS as exc:
            raise library_failure(source, exc) from None
        if load_dtype != want:
            row = np.where(row == load_fill, fill, row).astype(want)
        return split_row(nodata_as_fill(row, (source.nodata,), fill), grids, decode)


def _stand_in(dtype: np.dtype[Any], fill: float) -> tuple[np.dtype[Any], float]:
    """The (dtype, fill) to ask odc-stac for: as requested, except that an integer fill of
    0 becomes the lowest value of the next wider signed dtype, which no pixel of ``dtype``
    can hold (see the module docstring)."""
    if fill != 0 or dtype.kind not in "ui" or dtype.itemsize >= 8:
        return dtype, fill
    wider = np.dtype(f"int{dtype.itemsize * 16}")
    return wider, int(np.iinfo(wider).min)
