"""The engine Protocol, the read request, and the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    import pystac
    import xarray as xr
    from odc.geo.geobox import GeoBox


@dataclass(frozen=True, eq=False)
class ReadRequest:
    """What to read: one asset of each item, on one grid.

    Attributes
    ----------
    items
        The STAC items, one output time slice each, in this order. Each item has the asset.
    asset
        The asset key (the same in every item of the request).
    geobox
        The output grid (odc-geo GeoBox); pixel edges are what engines must agree on.
    dtype
        dtype of the output (the asset's own, e.g. uint8 for SCL).
    nodata
        Fill value written where an item has no data: outside its raster, and where a pixel
        equals the nodata its file's tag or the item itself (``raster:bands``) declares,
        whatever that value is. For QA, the encoding's fill (:attr:`Encoding.fill`), so that
        decoding the raw codes gives NODATA.
    chunks_yx
        Output chunk size (y, x). Time chunks are one slice.
    resampling
        ``"nearest"`` for QA (always) and by default for reflectance.
    gdal
        GDAL options for the reads (see :mod:`clearcube.gdal_env`).
    """

    items: tuple[pystac.Item, ...]
    asset: str
    geobox: GeoBox
    dtype: np.dtype[Any]
    nodata: int | float
    chunks_yx: tuple[int, int] = (1024, 1024)
    resampling: str = "nearest"
    gdal: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """A loader engine."""

    name: str

    def read(self, request: ReadRequest) -> xr.DataArray:
        """Lazy ``(time, y, x)`` array of ``request.asset`` on ``request.geobox``.

        ``time`` holds each item's datetime (naive UTC), in the order of ``request.items``;
        ``y``/``x`` hold pixel-centre coordinates of the geobox. Nothing is read until compute.
        """
        ...


_REGISTRY: dict[str, Callable[[], Engine]] = {}


def register(name: str, factory: Callable[[], Engine]) -> None:
    _REGISTRY[name] = factory


def list_engines() -> tuple[str, ...]:
    _load_builtin()
    return tuple(_REGISTRY)


def get_engine(name: str | Engine) -> Engine:
    """An engine by name (``odc``, ``stackstac``) or the engine object itself."""
    if not isinstance(name, str):
        return name
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown engine {name!r}; valid engines: {', '.join(_REGISTRY)}"
        ) from None
    return factory()


def _load_builtin() -> None:
    if _REGISTRY:
        return
    from .native import NativeEngine
    from .odc import OdcEngine
    from .stackstac import StackstacEngine

    register("odc", OdcEngine)
    register("stackstac", StackstacEngine)
    register("native", NativeEngine)


def declared_nodata(item: pystac.Item, asset: str) -> float | None:
    """The nodata value ``item`` declares for ``asset``: ``raster:bands[0].nodata`` (raster
    v1) or the asset's ``nodata`` (STAC 1.1); None when it declares none or not a number."""
    fields = item.assets[asset].extra_fields
    bands = fields.get("raster:bands")
    value = None
    if isinstance(bands, list) and bands and isinstance(bands[0], dict):
        value = bands[0].get("nodata")
    if value is None:
        value = fields.get("nodata")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # "nan", "inf" strings and junk declare nothing a pixel can equal
    return float(value)


def nodata_values(
    declared: tuple[float | None, ...], dtype: np.dtype[Any], fill: float
) -> tuple[float, ...]:
    """The declared nodata values that a pixel of ``dtype`` can hold and that differ from the
    ``fill`` (which needs no replacing)."""
    out: list[float] = []
    for value in declared:
        if value is None or value == fill or value in out or not np.isfinite(value):
            continue
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            if value != int(value) or not info.min <= value <= info.max:
                continue  # no pixel of this dtype can equal it
        out.append(value)
    return tuple(out)


def fill_declared_nodata(arr: xr.DataArray, request: ReadRequest) -> xr.DataArray:
    """``arr`` (one time step per item of ``request``) with the pixels equal to each item's
    declared nodata (:func:`declared_nodata`) set to ``request.nodata``: engines that read
    raw codes through a library that knows only the file's tag."""
    declared = [declared_nodata(item, request.asset) for item in request.items]
    dtype = np.dtype(arr.dtype)
    if not nodata_values(tuple(declared), dtype, request.nodata):
        return arr
    per_item = [
        v if v is not None and nodata_values((v,), dtype, request.nodata) else np.nan
        for v in declared
    ]
    import xarray as xr

    values = xr.DataArray(np.array(per_item, dtype=np.float64), dims="time")
    fill = dtype.type(request.nodata)
    out: xr.DataArray = arr.where(arr != values, fill).astype(dtype)
    out.attrs = arr.attrs
    return out


def grid_coords(geobox: GeoBox) -> dict[str, np.ndarray[Any, Any]]:
    """Pixel-centre coordinates of ``geobox`` as ``{"y": ..., "x": ...}``, whatever the CRS
    calls its axes (odc-geo names a geographic grid's ``latitude``/``longitude``)."""
    ydim, xdim = geobox.dimensions
    coords = geobox.coords
    return {"y": coords[ydim].values, "x": coords[xdim].values}


def item_times(items: tuple[pystac.Item, ...]) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    """The items' datetimes as naive-UTC ``datetime64[ns]`` (xarray's convention)."""
    from datetime import UTC

    out = []
    for item in items:
        value = item.datetime
        if value is None:
            value = item.common_metadata.start_datetime
        if value is None:
            raise ValueError(f"{item.id}: item has no datetime or start_datetime")
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        out.append(np.datetime64(value, "ns"))
    return np.array(out, dtype="datetime64[ns]")
