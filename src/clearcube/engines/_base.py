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
        Fill value where an item has no data.
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
