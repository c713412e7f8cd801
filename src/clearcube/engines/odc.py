"""The odc-stac engine: each window read by ``odc.stac.load`` (GDAL's warper)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._base import ChunkGrid, Source
from .windows import (
    LIBRARY_ERRORS,
    WindowEngine,
    library_failure,
    split_row,
    stac_item,
    without_nodata,
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
        nodata: float | None,
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
        try:
            ds = odc.stac.load(
                [stac_item(source, dtype, nodata)],
                bands=[source.asset],
                geobox=geobox,
                resampling=resampling,
                dtype=np.dtype(dtype).name,
                nodata=fill,
                chunks=None,
                fail_on_error=True,
            )
            row = np.asarray(ds[source.asset].values)
        except LIBRARY_ERRORS as exc:
            raise library_failure(source, exc) from None
        return split_row(without_nodata(row, nodata, fill), grids, decode)
