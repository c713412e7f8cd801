"""What every engine is asked (ReadRequest), what it answers (Read), the engine Protocol and
the registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from affine import Affine

from ..errors import ConfigError, ItemError

if TYPE_CHECKING:
    import xarray as xr
    from odc.geo.geobox import GeoBox

    from ..config import MaskConfig
    from ..sensors import Encoding

__all__ = [
    "ChunkGrid",
    "Engine",
    "Read",
    "ReadFailure",
    "ReadRequest",
    "Source",
    "declared_nodata",
    "get_engine",
    "grid_coords",
    "list_engines",
    "nodata_values",
    "register",
]


@dataclass(frozen=True)
class ChunkGrid:
    """The pixel grid of one output chunk (or of a source raster)."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    shape_yx: tuple[int, int]

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)


@dataclass(frozen=True, eq=False)
class Source:
    """One asset of one scene, as the engines read it.

    Attributes
    ----------
    id
        The scene (item) id, for messages.
    asset
        The asset key, for messages and for the engines that rebuild a STAC item.
    href
        Where the asset is (an absolute path or URL, already checked by the href policy).
    time
        Acquisition time, naive UTC ``datetime64[ns]``.
    footprint, bbox
        The scene's footprint in lon/lat (GeoJSON geometry) and bbox, to skip the chunks it
        cannot reach; None when unknown (every chunk is read).
    crs, shape_yx, transform
        The asset's grid as the item states it (None where it does not: the file's own grid is
        read then).
    nodata
        The nodata value the item declares for the asset (None: none). Pixels equal to it, or
        to the file's own nodata tag, are no data whatever the value.
    grid_bounds
        The footprint's bounds in the output grid's CRS, when the caller already knows them
        (``(crs, (left, bottom, right, top))``); else derived from ``footprint``/``bbox``.
    collection
        The item's collection: whose SAS token signs ``href`` when the reads sign
        (:mod:`clearcube.sas`); None when unknown.
    """

    id: str
    asset: str
    href: str
    time: np.datetime64
    footprint: Mapping[str, Any] | None = None
    bbox: tuple[float, float, float, float] | None = None
    crs: str | None = None
    shape_yx: tuple[int, int] | None = None
    transform: tuple[float, float, float, float, float, float] | None = None
    nodata: float | None = None
    grid_bounds: tuple[str, tuple[float, float, float, float]] | None = None
    collection: str | None = None

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("clearcube.Source", self.id, self.asset, self.href, str(self.time), self.nodata)

    @classmethod
    def from_item(cls, item: Any, asset: str) -> Source:
        """The source of ``asset`` in a pystac Item (hrefs made absolute)."""
        entry = item.assets.get(asset)
        if entry is None:
            raise ItemError(
                f"{item.id}: no asset {asset!r}; its assets are {', '.join(item.assets)}"
            )
        when = item.datetime or item.common_metadata.start_datetime
        if when is None:
            raise ItemError(f"{item.id}: item has no datetime or start_datetime")
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        extra = entry.extra_fields
        code = extra.get("proj:code") or item.properties.get("proj:code")
        epsg = extra.get("proj:epsg") or item.properties.get("proj:epsg")
        crs = str(code) if code else (f"EPSG:{int(epsg)}" if epsg else None)
        shape = extra.get("proj:shape") or item.properties.get("proj:shape")
        tf = extra.get("proj:transform") or item.properties.get("proj:transform")
        return cls(
            id=item.id,
            asset=asset,
            href=entry.get_absolute_href() or entry.href,
            time=np.datetime64(when, "ns"),
            footprint=item.geometry,
            bbox=tuple(item.bbox[:4]) if item.bbox else None,
            crs=crs,
            shape_yx=(int(shape[0]), int(shape[1])) if shape else None,
            transform=tuple(float(v) for v in tf[:6]) if tf else None,  # type: ignore[arg-type]
            nodata=declared_nodata(extra),
            collection=item.collection_id,
        )


OnError = Literal["raise", "flag"]


@dataclass(frozen=True, eq=False)
class ReadRequest:
    """What to read: one asset of each source, on one grid.

    Attributes
    ----------
    sources
        One output time slice each, in this order.
    geobox
        The output grid (odc-geo GeoBox); pixel edges are what engines must agree on.
    dtype
        dtype of the raw values (the asset's own, e.g. uint8 for SCL).
    fill
        What the output holds where a source has no data: outside the raster, and where a
        pixel equals the nodata the file's tag or the item (:attr:`Source.nodata`) declares,
        whatever that value is. For QA, the encoding's own fill (:attr:`Encoding.fill`), so
        that decoding the raw codes gives NODATA.
    chunks_yx
        Output chunk size (y, x). Time chunks are one slice.
    resampling
        ``"nearest"`` for QA (always) and by default for reflectance.
    gdal
        GDAL options for the reads (see :mod:`clearcube.gdal_env`).
    windows
        Per source, the output chunks ``(iy, ix)`` to read, or None for every chunk its
        footprint reaches; the other chunks hold ``fill`` without a request.
    on_error
        ``"raise"``: a read failure raises :class:`~clearcube.errors.AssetReadError` at
        compute. ``"flag"``: the failed window holds ``fill`` (flags: NODATA | UNREADABLE) and
        the failure is returned as data (:meth:`Engine.read_recorded`).
    """

    sources: tuple[Source, ...]
    geobox: GeoBox
    dtype: np.dtype[Any]
    fill: int | float
    chunks_yx: tuple[int, int] = (1024, 1024)
    resampling: str = "nearest"
    gdal: dict[str, str] = field(default_factory=dict)
    windows: tuple[frozenset[tuple[int, int]] | None, ...] | None = None
    on_error: OnError = "raise"

    @classmethod
    def from_items(
        cls,
        items: Sequence[Any],
        asset: str,
        *,
        geobox: GeoBox,
        dtype: Any,
        fill: int | float,
        chunks_yx: tuple[int, int] = (1024, 1024),
        resampling: str = "nearest",
        gdal: Mapping[str, str] | None = None,
    ) -> ReadRequest:
        """A request for ``asset`` of pystac items."""
        return cls(
            sources=tuple(Source.from_item(item, asset) for item in items),
            geobox=geobox,
            dtype=np.dtype(dtype),
            fill=fill,
            chunks_yx=chunks_yx,
            resampling=resampling,
            gdal=dict(gdal or {}),
        )


@dataclass(frozen=True)
class ReadFailure:
    """One window of one asset that could not be read.

    Attributes
    ----------
    scene, asset
        The scene id and asset key.
    href
        Where it was read (scrubbed: no query string or credentials).
    window
        Which part of the output grid was lost (e.g. ``"rows 0-511"``).
    message
        The reader's own message (GDAL's, for a COG).
    skipped
        Not tried: an earlier window of the same asset had failed.
    """

    scene: str
    asset: str
    href: str
    window: str
    message: str
    skipped: bool = False

    def reason(self) -> str:
        """One line for the audit trail and the scene table."""
        return (
            f"{self.scene}: asset {self.asset!r} unreadable at {self.href} ({self.window}): "
            f"{self.message}"
        )


@dataclass(frozen=True, eq=False)
class Read:
    """A lazy read and its failures.

    Attributes
    ----------
    data
        ``(time, y, x)`` values (raw, or flags from :meth:`Engine.read_flags`).
    failures
        A dask collection (``dask.delayed``) computing to a tuple of :class:`ReadFailure`;
        compute it together with ``data`` (or with what is derived from it) so every window
        is read once.
    """

    data: xr.DataArray
    failures: Any


@runtime_checkable
class Engine(Protocol):
    """A loader engine: reads windows of one asset onto the chunks of an output grid."""

    name: str

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
        """Read the part of ``source`` that covers a row of output chunks (``grids``, left to
        right, one output row of chunks) and return one ``(1, h, w)`` array per chunk: raw
        values with ``fill`` where the source has no data, or flags (NODATA there) when
        ``decode`` is given. Raises
        :class:`~clearcube.errors.AssetReadError` (with the reader's own message) when the
        data cannot be read."""
        ...

    def read(self, request: ReadRequest) -> xr.DataArray:
        """Lazy ``(time, y, x)`` raw values of ``request`` on ``request.geobox``.

        ``time`` holds each source's time, in request order; ``y``/``x`` hold pixel-centre
        coordinates of the geobox. Nothing is read until compute.
        """
        ...

    def read_flags(
        self, request: ReadRequest, encoding: Encoding, config: MaskConfig
    ) -> xr.DataArray:
        """Like :meth:`read`, decoded into uint16 flags in the read task (no intermediate QA
        cube); pixels without data are NODATA."""
        ...

    def read_recorded(
        self, request: ReadRequest, decode: tuple[Encoding, MaskConfig] | None = None
    ) -> Read:
        """Like :meth:`read` / :meth:`read_flags`, with read failures kept as data: a failed
        window holds the fill (flags: NODATA | UNREADABLE) and is listed in
        :attr:`Read.failures`."""
        ...


def declared_nodata(fields: Mapping[str, Any]) -> float | None:
    """The nodata value an asset's STAC fields declare: ``raster:bands[0].nodata`` (raster
    v1) or the asset's ``nodata`` (STAC 1.1); None when they declare none or not a number."""
    bands = fields.get("raster:bands")
    value = None
    if isinstance(bands, list) and bands and isinstance(bands[0], Mapping):
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


def grid_coords(geobox: GeoBox) -> dict[str, np.ndarray[Any, Any]]:
    """Pixel-centre coordinates of ``geobox`` as ``{"y": ..., "x": ...}``, whatever the CRS
    calls its axes (odc-geo names a geographic grid's ``latitude``/``longitude``)."""
    ydim, xdim = geobox.dimensions
    coords = geobox.coords
    return {"y": coords[ydim].values, "x": coords[xdim].values}


_REGISTRY: dict[str, Callable[[], Engine]] = {}


def register(name: str, factory: Callable[[], Engine]) -> None:
    """Make an engine available by name."""
    _REGISTRY[name] = factory


def list_engines() -> tuple[str, ...]:
    """The names of the registered engines (the built-in ones loaded first)."""
    _load_builtin()
    return tuple(_REGISTRY)


def get_engine(name: str | Engine) -> Engine:
    """An engine by name (``native``, ``odc``, ``stackstac``) or the engine object itself."""
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

    register("native", NativeEngine)
    register("odc", OdcEngine)
    register("stackstac", StackstacEngine)
