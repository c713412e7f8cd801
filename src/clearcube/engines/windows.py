"""The dask graph every engine shares: one read task per (source, row of output chunks).

- Graph construction costs O(sources + chunks): each source's footprint is turned into a range
  of chunk indices once; chunks outside every footprint (or outside the requested windows)
  become a constant fill, without a request.
- One read task per (time slice, row of chunks the source covers), each chunk a ``getitem`` of
  it: a COG is fetched with one request per source block row, so reading a row of chunks at
  once costs as many round trips as one chunk. Tasks are independent, so the array runs
  unchanged on dask.distributed.
- Failures are data when asked (``on_error="flag"``): a window that cannot be read holds the
  fill (flags: NODATA | UNREADABLE) and its :class:`ReadFailure` travels in a small task of its
  own, so computing the failures together with the data reads every window once. Once a
  window of an href failed, the other windows of that href in the same graph are not tried
  again (a stalled server costs one deadline, not one per window).
"""

from __future__ import annotations

import math
import threading
import uuid
from operator import getitem
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import xarray as xr
from affine import Affine

from ..errors import AssetReadError, root_cause, scrub_href
from ..flags import FLAG_DTYPE, Flag
from ._base import ChunkGrid, Read, ReadFailure, ReadRequest, Source, grid_coords, nodata_values

if TYPE_CHECKING:
    from ..config import MaskConfig
    from ..sensors import Encoding
    from ._base import Engine

__all__ = [
    "LIBRARY_ERRORS",
    "WindowEngine",
    "build",
    "library_failure",
    "nodata_as_fill",
    "signed_source",
    "split_row",
    "stac_item",
]

_UNREADABLE = int(Flag.NODATA | Flag.UNREADABLE)

# (graph name, href) -> the first failure's message, so later windows skip the read
_failed: dict[tuple[str, str], str] = {}
_failed_lock = threading.Lock()


def _footprint_chunk_ranges(
    source: Source, geobox: Any, crs: str, chunks_yx: tuple[int, int], n_tiles_yx: tuple[int, int]
) -> tuple[range, range]:
    """Chunk index ranges (y, x) the source's footprint can touch (bounding boxes only)."""
    from ..aoi import lonlat_bounds_in

    if source.grid_bounds is not None and source.grid_bounds[0] == crs:
        box: tuple[float, float, float, float] | None = source.grid_bounds[1]
    else:
        box = lonlat_bounds_in(source.footprint, source.bbox, crs)
    if box is None:
        return range(n_tiles_yx[0]), range(n_tiles_yx[1])
    left, bottom, right, top = box
    inv = ~geobox.affine
    corners = [
        (inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f)
        for x in (left, right)
        for y in (bottom, top)
    ]
    cols = [c for c, _ in corners]
    rows = [r for _, r in corners]
    cy, cx = chunks_yx
    iy0 = max(0, math.floor((min(rows) - 1) / cy))
    iy1 = min(n_tiles_yx[0], math.floor((max(rows) + 1) / cy) + 1)
    ix0 = max(0, math.floor((min(cols) - 1) / cx))
    ix1 = min(n_tiles_yx[1], math.floor((max(cols) + 1) / cx) + 1)
    return range(iy0, iy1), range(ix0, ix1)


def _row_task(
    engine_name: str,
    graph: str,
    source: Source,
    grids: tuple[ChunkGrid, ...],
    dtype: str,
    fill: float,
    resampling: str,
    gdal: tuple[tuple[str, str], ...],
    decode: tuple[Encoding, MaskConfig] | None,
    flag: bool,
    rows: str,
) -> list[Any]:
    """The chunks of one row of one source, then its failure (None when read)."""
    from ._base import get_engine

    key = (graph, source.href)
    earlier = _failed.get(key) if flag else None
    if earlier is None:
        try:
            outs = get_engine(engine_name).read_row(
                source,
                grids,
                dtype=dtype,
                fill=fill,
                resampling=resampling,
                gdal=gdal,
                decode=decode,
            )
            return [*outs, None]
        except AssetReadError as exc:
            if not flag:
                raise
            message = exc.cause or str(exc)
            with _failed_lock:
                _failed.setdefault(key, message)
    else:
        message = f"not read: an earlier window of this asset failed ({earlier})"
    failure = ReadFailure(
        source.id, source.asset, scrub_href(source.href), rows, message, skipped=earlier is not None
    )
    if decode is not None:
        filled = [np.full((1, *g.shape_yx), _UNREADABLE, dtype=FLAG_DTYPE) for g in grids]
    else:
        filled = [np.full((1, *g.shape_yx), fill, dtype=dtype) for g in grids]
    return [*filled, failure]


def _collect(*failures: ReadFailure | None) -> tuple[ReadFailure, ...]:
    return tuple(f for f in failures if f is not None)


def build(engine: Engine, request: ReadRequest, decode: tuple[Encoding, MaskConfig] | None) -> Read:
    """The lazy ``(time, y, x)`` array of ``request`` read through ``engine`` (raw values, or
    flags when ``decode`` is given), and its failures."""
    import dask.array as da
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    geobox = request.geobox
    if geobox.crs is None:
        raise ValueError("the output grid has no CRS")
    ny, nx = geobox.shape.y, geobox.shape.x
    cy, cx = min(request.chunks_yx[0], ny), min(request.chunks_yx[1], nx)
    ychunks = tuple(min(cy, ny - i) for i in range(0, ny, cy))
    xchunks = tuple(min(cx, nx - i) for i in range(0, nx, cx))
    crs = geobox.crs.to_wkt() if geobox.crs.epsg is None else f"EPSG:{geobox.crs.epsg}"
    aff = geobox.affine
    dtype = np.dtype(request.dtype).str
    gdal = tuple(sorted(request.gdal.items()))
    flag = request.on_error == "flag"
    decode_key = None if decode is None else (decode[0].name, decode[1].digest())
    windows = request.windows or (None,) * len(request.sources)
    prefix = f"{engine.name}-flags-" if decode else f"{engine.name}-read-"
    # every build is a new attempt: a failure remembered by an earlier build of the same
    # request (same token) must not stop this one from trying again
    name = (
        prefix
        + uuid.uuid4().hex[:8]
        + "-"
        + tokenize(
            [s.href for s in request.sources],
            tuple(aff)[:6],
            (ny, nx),
            crs,
            (cy, cx),
            dtype,
            request.fill,
            [src.nodata for src in request.sources],
            request.resampling,
            gdal,
            decode_key,
            [None if w is None else sorted(w) for w in windows],
            flag,
        )
    )
    out_dtype = FLAG_DTYPE if decode is not None else np.dtype(request.dtype)
    fill: float = int(Flag.NODATA) if decode is not None else request.fill
    dsk: dict[Any, Any] = {}
    row_name, fail_name = name + "-row", name + "-failure"
    fail_keys: list[tuple[str, int, int]] = []
    for t, source in enumerate(request.sources):
        yr, xr_ = _footprint_chunk_ranges(
            source, geobox, crs, (cy, cx), (len(ychunks), len(xchunks))
        )
        wanted = windows[t]
        for iy, h in enumerate(ychunks):
            inside = [
                ix for ix in (xr_ if iy in yr else range(0)) if wanted is None or (iy, ix) in wanted
            ]
            if inside:
                dy = iy * cy
                grids = []
                for ix in inside:
                    dx = ix * cx
                    t0 = Affine(
                        aff.a,
                        aff.b,
                        aff.c + aff.a * dx + aff.b * dy,
                        aff.d,
                        aff.e,
                        aff.f + aff.d * dx + aff.e * dy,
                    )
                    grids.append(
                        ChunkGrid(crs, (t0.a, t0.b, t0.c, t0.d, t0.e, t0.f), (h, xchunks[ix]))
                    )
                dsk[(row_name, t, iy)] = (
                    _row_task,
                    engine.name,
                    name,
                    source,
                    tuple(grids),
                    dtype,
                    request.fill,
                    request.resampling,
                    gdal,
                    decode,
                    flag,
                    f"rows {dy}-{dy + h - 1} of the output grid",
                )
                dsk[(fail_name, t, iy)] = (getitem, (row_name, t, iy), -1)
                fail_keys.append((fail_name, t, iy))
            position = {ix: k for k, ix in enumerate(inside)}
            for ix, w in enumerate(xchunks):
                if ix in position:
                    dsk[(name, t, iy, ix)] = (getitem, (row_name, t, iy), position[ix])
                else:
                    dsk[(name, t, iy, ix)] = (np.full, (1, h, w), fill, out_dtype.str)
    collect = name + "-failures"
    dsk[collect] = (_collect, *fail_keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    arr = da.Array(
        graph,
        name,
        chunks=((1,) * len(request.sources), ychunks, xchunks),
        dtype=out_dtype,
    )
    failures = Delayed(collect, graph, layer=name)
    data = xr.DataArray(
        arr,
        dims=("time", "y", "x"),
        coords={
            "time": np.array([s.time for s in request.sources], dtype="datetime64[ns]"),
            **grid_coords(geobox),
        },
        name="flags"
        if decode is not None
        else request.sources[0].asset
        if request.sources
        else "data",
        attrs={"nodata": fill},
    )
    return Read(data, failures)


def _library_errors() -> tuple[type[BaseException], ...]:
    from rasterio.errors import RasterioError

    return (RasterioError, OSError, RuntimeError)


#: What the odc-stac and stackstac readers raise when the data cannot be read.
LIBRARY_ERRORS = _library_errors()


def library_failure(source: Source, exc: BaseException) -> AssetReadError:
    """An AssetReadError naming the source, with the innermost message of ``exc``'s chain
    (GDAL's own, where a library wrapped it)."""
    cause = root_cause(exc, source.href)
    return AssetReadError(
        f"{source.id}: cannot read {scrub_href(source.href)}: {cause}; check the URL and the "
        "server, or exclude the item",
        cause=cause,
    )


def signed_source(source: Source, gdal: tuple[tuple[str, str], ...]) -> Source:
    """``source`` with its href signed now, in the read task, when the GDAL options ask for
    SAS tokens (:mod:`clearcube.sas`), for the engines that hand an href to a library."""
    from dataclasses import replace

    from ..sas import signer_of

    signer = signer_of(dict(gdal))
    if signer is None:
        return source
    href, _ = signer.sign(source.href, source.collection, label=source.id)
    return source if href == source.href else replace(source, href=href)


def nodata_as_fill(
    data: npt.NDArray[Any], declared: tuple[float | None, ...], fill: float
) -> npt.NDArray[Any]:
    """``data`` with pixels equal to a declared nodata (the file's tag, the item's) set to
    ``fill``; widened when ``fill`` does not fit its dtype (QA60's 65535 in a narrower raster)."""
    values = nodata_values(declared, data.dtype, fill)
    if not values:
        return data  # the common case: no tag, or a tag equal to the fill
    missing = np.isin(data, np.array(values, dtype=data.dtype))
    if not missing.any():
        return data
    if np.can_cast(np.min_scalar_type(fill), data.dtype):
        out = data.copy()
    else:
        out = data.astype(np.result_type(data.dtype, np.min_scalar_type(fill)))
    out[missing] = fill
    return out


def split_row(
    row: npt.NDArray[Any],
    grids: tuple[ChunkGrid, ...],
    decode: tuple[Encoding, MaskConfig] | None,
) -> list[npt.NDArray[Any]]:
    """Cut a ``(1, h, sum of widths)`` row into one array per chunk, decoded when asked."""
    from ..sensors import decode_block

    out = []
    x0 = 0
    for g in grids:
        w = g.shape_yx[1]
        part = np.ascontiguousarray(row[..., x0 : x0 + w])
        out.append(part if decode is None else decode_block(part, *decode))
        x0 += w
    return out


def stac_item(source: Source, dtype: str, *, epsg: bool = False) -> Any:
    """A one-asset pystac Item for the libraries that read STAC (odc-stac, stackstac)."""
    import datetime as dt

    import pystac

    fields: dict[str, Any] = {}
    if source.shape_yx is not None:
        fields["proj:shape"] = list(source.shape_yx)
    if source.transform is not None:
        fields["proj:transform"] = list(source.transform)
    band: dict[str, Any] = {"data_type": np.dtype(dtype).name}
    if source.nodata is not None:
        band["nodata"] = source.nodata
    fields["raster:bands"] = [band]
    properties: dict[str, Any] = {}
    if source.crs is not None:
        fields["proj:code"] = source.crs
        properties["proj:code"] = source.crs
        if epsg and source.crs.upper().startswith("EPSG:"):
            properties["proj:epsg"] = int(source.crs.split(":")[1])
    when = source.time.astype("datetime64[us]").item().replace(tzinfo=dt.UTC)
    item = pystac.Item(
        id=source.id,
        geometry=dict(source.footprint) if source.footprint else None,
        bbox=list(source.bbox) if source.bbox else None,
        datetime=when,
        properties=properties,
    )
    item.add_asset(
        source.asset,
        pystac.Asset(href=source.href, media_type=pystac.MediaType.COG, extra_fields=fields),
    )
    return item


class WindowEngine:
    """Base of the built-in engines: :meth:`read_row` is theirs, the graph is shared."""

    name = "window"

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
        """One array per chunk of a row of output chunks (see :meth:`Engine.read_row`)."""
        raise NotImplementedError

    def read(self, request: ReadRequest) -> xr.DataArray:
        """Lazy ``(time, y, x)`` raw values of ``request`` (see :meth:`Engine.read`)."""
        return build(self, request, None).data

    def read_flags(
        self, request: ReadRequest, encoding: Encoding, config: MaskConfig
    ) -> xr.DataArray:
        """Lazy flags of ``request``, decoded in the read task (see :meth:`Engine.read_flags`)."""
        return build(self, request, (encoding, config)).data

    def read_recorded(
        self, request: ReadRequest, decode: tuple[Encoding, MaskConfig] | None = None
    ) -> Read:
        """The lazy read with its failures as data (see :meth:`Engine.read_recorded`)."""
        return build(self, request, decode)
