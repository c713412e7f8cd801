"""The stackstac engine: each window read by ``stackstac.stack`` (GDAL's warper).

Measured pitfalls handled here (DESIGN.md): stackstac 0.5 reads only ``proj:epsg`` (pystac 1.15
writes ``proj:code``), so the rebuilt item carries ``proj:epsg``; without explicit bounds it
derives a shifted grid, so the window's exact bounds are passed with ``snap_bounds=False``;
``fill_value`` must be of the output dtype; coordinates must label pixel centres
(``xy_coords="center"``) to match odc-geo.

stackstac writes ``fill_value`` outside a raster and where a pixel equals the file's nodata
tag (a masked read); the nodata an item declares in ``raster:bands`` it ignores, so those
pixels are replaced here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import GridError
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


class StackstacEngine(WindowEngine):
    """Reads each (source, row of chunks) window through ``stackstac.stack``."""

    name = "stackstac"

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
        import stackstac
        from pyproj import CRS
        from rasterio.enums import Resampling

        first = grids[0]
        epsg = CRS.from_user_input(first.crs).to_epsg()
        if epsg is None:
            raise GridError(
                f"the stackstac engine needs an output CRS with an EPSG code, got {first.crs}; "
                "use engine='native' or 'odc'"
            )
        t = first.affine
        if t.b != 0 or t.d != 0 or abs(abs(t.a) - abs(t.e)) > 1e-9 * abs(t.a):
            raise GridError("the stackstac engine needs square north-up pixels; use 'native'")
        height = first.shape_yx[0]
        width = sum(g.shape_yx[1] for g in grids)
        left, top = t.c, t.f
        right, bottom = left + t.a * width, top + t.e * height
        np_dtype = np.dtype(dtype)
        env = stackstac.DEFAULT_GDAL_ENV.updated(always=dict(gdal))
        source = signed_source(source, gdal)  # signed now, not when the graph was built
        try:
            arr = stackstac.stack(
                [stac_item(source, dtype, epsg=True)],
                assets=[source.asset],
                epsg=epsg,
                resolution=abs(t.a),
                bounds=(left, bottom, right, top),
                snap_bounds=False,
                resampling=Resampling[resampling],
                chunksize=(1, 1, height, width),
                dtype=np_dtype,
                fill_value=np_dtype.type(fill),
                rescale=False,
                xy_coords="center",
                sortby_date=False,
                properties=False,
                band_coords=False,
                gdal_env=env,
                errors_as_nodata=(),
            )
            row = np.asarray(arr.isel(band=0).data.compute(scheduler="synchronous"))
        except LIBRARY_ERRORS as exc:
            raise library_failure(source, exc) from None
        if row.shape[-2:] != (height, width):
            raise GridError(
                f"stackstac built a {row.shape[-2]} x {row.shape[-1]} window for a "
                f"{height} x {width} one; use engine='native' or 'odc'"
            )
        return split_row(nodata_as_fill(row, (source.nodata,), fill), grids, decode)
