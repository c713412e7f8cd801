"""clearcube's own engine: per item and row of output chunks, read only the source window
that covers that row and place it into each chunk with the exact nearest-neighbour index map.

- The index map of (source grid, output chunk) is computed once per process and reused for
  every date of the same tile or path/row (their grids repeat exactly). Same-CRS, axis-aligned
  grids reduce to two 1-D index vectors (slicing/repeat), with no coordinate transform at all.
- The graph (one read task per source and row of output chunks, chunks outside every footprint
  a constant fill) is the one every engine shares (:mod:`clearcube.engines.windows`). Each
  thread keeps its last two datasets open (``gdal_env.open_dataset``), so consecutive reads of
  one file do not reopen it.
- When the output pixel is more than twice the source pixel, the window is read from the
  coarsest overview level not coarser than the output (the level GDAL itself would pick), and
  placed exactly on that level's grid; up to 2x, full resolution.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from ..config import MaskConfig
from ..errors import ConfigError
from ..flags import FLAG_DTYPE, Flag
from ..gdal_env import HeaderError, open_dataset, read_attempts, rio_env
from ..sensors import Encoding, decode_block
from ._base import ChunkGrid, Source
from .placement import source_pixel_index
from .windows import WindowEngine, nodata_as_fill

__all__ = ["NativeEngine"]


Index = slice | npt.NDArray[np.intp]


def _axis_index(rel: npt.NDArray[np.int64]) -> tuple[slice, Index]:
    """(output slice, source index) of one axis; the source index is a slice when the output
    takes consecutive source pixels (same resolution: plain slicing, no gather)."""
    inside = np.flatnonzero(rel >= 0)
    out = slice(int(inside[0]), int(inside[-1]) + 1)
    src = rel[out]
    if src.size == 1 or bool((np.diff(src) == 1).all()):
        return out, slice(int(src[0]), int(src[-1]) + 1)
    return out, src.astype(np.intp)


@dataclass(frozen=True)
class _Placement:
    """Where a chunk's pixels come from inside the window ``[row0:row1, col0:col1]``."""

    row0: int
    row1: int
    col0: int
    col1: int
    # separable (same CRS, north-up): per-axis output slices and source indices
    out_rows: slice | None = None
    out_cols: slice | None = None
    src_rows: Index | None = None
    src_cols: Index | None = None
    # general: the flat window pixel each output pixel takes, and the flat output positions
    # that take one (None: every pixel of the chunk)
    dst_flat: npt.NDArray[np.int32] | None = None
    src_flat: npt.NDArray[np.int32] | None = None


def _axis_aligned(t: Affine) -> bool:
    return t.b == 0 and t.d == 0


#: Bytes of index maps kept per process (least recently used dropped first). A reprojected
#: 1024 x 1024 chunk costs 4 MB (one int32 per output pixel); a same-CRS one a few kB.
PLACEMENT_CACHE_BYTES = 128 * 2**20
_placements: OrderedDict[tuple[ChunkGrid, ChunkGrid], _Placement | None] = OrderedDict()
_placements_bytes = [0]
_placements_lock = threading.Lock()


def _nbytes(place: _Placement | None) -> int:
    if place is None:
        return 0
    arrays = (place.src_rows, place.src_cols, place.dst_flat, place.src_flat)
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def _placement(src: ChunkGrid, dst: ChunkGrid) -> _Placement | None:
    """The index map of (source grid, output chunk), computed once and cached."""
    key = (src, dst)
    with _placements_lock:
        if key in _placements:
            _placements.move_to_end(key)
            return _placements[key]
    place = _compute_placement(src, dst)
    with _placements_lock:
        if key not in _placements:
            _placements[key] = place
            _placements_bytes[0] += _nbytes(place)
            while _placements_bytes[0] > PLACEMENT_CACHE_BYTES and len(_placements) > 1:
                _, old = _placements.popitem(last=False)
                _placements_bytes[0] -= _nbytes(old)
    return place


def _compute_placement(src: ChunkGrid, dst: ChunkGrid) -> _Placement | None:
    from .placement import same_crs

    s, d = src.affine, dst.affine
    if same_crs(src.crs, dst.crs) and _axis_aligned(s) and _axis_aligned(d):
        # x and y are independent: index vectors along each axis, floor of the centre's
        # fractional source coordinate (half-open source pixels, as in placement.py).
        xc = d.c + d.a * (np.arange(dst.shape_yx[1]) + 0.5)
        yc = d.f + d.e * (np.arange(dst.shape_yx[0]) + 0.5)
        cols = np.floor((xc - s.c) / s.a).astype(np.int64)
        rows = np.floor((yc - s.f) / s.e).astype(np.int64)
        cols[(cols < 0) | (cols >= src.shape_yx[1])] = -1
        rows[(rows < 0) | (rows >= src.shape_yx[0])] = -1
        if (rows < 0).all() or (cols < 0).all():
            return None
        r0, r1 = int(rows[rows >= 0].min()), int(rows.max()) + 1
        c0, c1 = int(cols[cols >= 0].min()), int(cols.max()) + 1
        out_rows, src_rows = _axis_index(np.where(rows >= 0, rows - r0, -1))
        out_cols, src_cols = _axis_index(np.where(cols >= 0, cols - c0, -1))
        return _Placement(
            r0,
            r1,
            c0,
            c1,
            out_rows=out_rows,
            out_cols=out_cols,
            src_rows=src_rows,
            src_cols=src_cols,
        )
    rows2, cols2 = source_pixel_index(src.crs, s, src.shape_yx, dst.crs, d, dst.shape_yx)
    inside = rows2 >= 0
    if not inside.any():
        return None
    r0, r1 = int(rows2[inside].min()), int(rows2[inside].max()) + 1
    c0, c1 = int(cols2[inside].min()), int(cols2[inside].max()) + 1
    # int32 indices: a window holds far fewer than 2**31 pixels; no output list when the
    # whole chunk lies inside the source
    width = c1 - c0
    src_flat = ((rows2 - r0) * width + (cols2 - c0)).ravel()
    if inside.all():
        return _Placement(r0, r1, c0, c1, src_flat=src_flat.astype(np.int32))
    dst_flat = np.flatnonzero(inside)
    return _Placement(
        r0,
        r1,
        c0,
        c1,
        dst_flat=dst_flat.astype(np.int32),
        src_flat=src_flat[dst_flat].astype(np.int32),
    )


@lru_cache(maxsize=64)
def _linear_units(crs: str) -> str | None:
    """The one linear unit of a projected CRS's axes (None for geographic or mixed)."""
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    if not c.is_projected:
        return None
    units = {axis.unit_name for axis in c.axis_info}
    return units.pop() if len(units) == 1 else None


def _overview_level(ds: Any, src_crs: str, dst: ChunkGrid) -> int | None:
    """The overview level to read for ``dst``, or None for full resolution.

    Overviews are used only when the output pixel is more than twice the source pixel (both
    grids in the same linear unit); then the coarsest level whose decimation does not exceed
    the ratio, so that every output pixel still takes one whole overview pixel.
    """
    factors = ds.overviews(1)
    if not factors:
        return None
    units = _linear_units(src_crs)
    if units is None or units != _linear_units(dst.crs):
        return None
    t, d = ds.transform, dst.affine
    if not (_axis_aligned(t) and _axis_aligned(d)):
        return None
    ratio = min(abs(d.a) / abs(t.a), abs(d.e) / abs(t.e))
    if ratio <= 2:
        return None
    level = None
    for k, factor in enumerate(factors):
        if factor <= ratio:
            level = k
    return level


def _read_row(
    item_id: str,
    href: str,
    grids: tuple[ChunkGrid, ...],
    dtype: str,
    fill: float,
    nodata: float | None,
    gdal: tuple[tuple[str, str], ...],
    decode: tuple[Encoding, MaskConfig] | None = None,
    collection: str | None = None,
) -> list[npt.NDArray[Any]]:
    """Read, in one window, the part of ``href`` that covers a row of output chunks
    (``grids``, left to right) and place it into each chunk; with ``decode``, return flags
    decoded chunk by chunk in the same task (no intermediate QA cube).

    Pixels outside the raster, and pixels equal to ``nodata`` (the item's) or to the file's
    own nodata tag, hold ``fill`` (decoded: NODATA, through the encoding's own fill: 0 is a
    legal clear in QA60 and Fmask). One window per row of chunks rather than per chunk: a
    remote COG is fetched with one request per source block row, so a row of n chunks costs n
    times fewer round trips.
    """
    from rasterio.windows import Window

    if decode is not None and decode[0].fill is not None:
        fill = decode[0].fill

    if decode is not None:
        outs = [np.full((1, *g.shape_yx), Flag.NODATA, dtype=FLAG_DTYPE) for g in grids]
    else:
        outs = [np.full((1, *g.shape_yx), fill, dtype=dtype) for g in grids]
    # transient faults (a cut, stalled or corrupt body) are retried afresh within the deadline
    # (and signed right before each attempt when the options ask for SAS tokens)
    for attempt in read_attempts(href, dict(gdal), label=item_id, collection=collection):
        with attempt, rio_env(dict(gdal)):
            ds = open_dataset(attempt.href, None, gdal)
            if ds.crs is None:  # nothing to place its pixels with
                raise HeaderError("no CRS in the file's header")
            crs = ds.crs.to_string()
            level = _overview_level(ds, crs, grids[0])
            if level is not None:
                ds = open_dataset(attempt.href, level, gdal)
            t = ds.transform
            src = ChunkGrid(crs, (t.a, t.b, t.c, t.d, t.e, t.f), (ds.height, ds.width))
            places = [_placement(src, g) for g in grids]
            used = [p for p in places if p is not None]
            if not used:
                return outs
            r0, r1 = min(p.row0 for p in used), max(p.row1 for p in used)
            c0, c1 = min(p.col0 for p in used), max(p.col1 for p in used)
            data = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
            tagged = ds.nodata
    data = nodata_as_fill(data, (tagged, nodata), fill)
    for k, place in enumerate(places):
        if place is None:
            continue
        window = data[place.row0 - r0 : place.row1 - r0, place.col0 - c0 : place.col1 - c0]
        outs[k] = _fill_chunk(outs[k], window, place, fill, decode)
    return outs


def _fill_chunk(
    out: npt.NDArray[Any],
    data: npt.NDArray[Any],
    place: _Placement,
    fill: float,
    decode: tuple[Encoding, MaskConfig] | None,
) -> npt.NDArray[Any]:
    """Place the window ``data`` into the chunk ``out``, decoding it first when asked
    (``fill``: the raw code of the chunk's pixels outside the source)."""
    if decode is not None:
        # decode at whichever resolution has fewer pixels: the source window or the chunk
        if data.size <= out.size:
            data = decode_block(data, *decode)
        else:
            # a dtype that holds the fill too (QA60's 65535 in a narrower raster)
            raw = np.full(out.shape, fill, dtype=np.result_type(data, np.min_scalar_type(fill)))
            _place(raw, data, place)
            return decode_block(raw, *decode)
    _place(out, data, place)
    return out


def _place(out: npt.NDArray[Any], data: npt.NDArray[Any], place: _Placement) -> None:
    if place.src_flat is not None:
        target = out[0].reshape(-1)  # a view: out is C-contiguous
        taken = data.reshape(-1)[place.src_flat]
        if place.dst_flat is None:
            target[:] = taken
        else:
            target[place.dst_flat] = taken
        return
    assert place.src_rows is not None
    assert place.src_cols is not None
    rows = place.src_rows
    cols = place.src_cols
    block = data[rows] if isinstance(rows, slice) else np.take(data, rows, axis=0)
    block = block[:, cols] if isinstance(cols, slice) else np.take(block, cols, axis=1)
    out[0, place.out_rows, place.out_cols] = block


class NativeEngine(WindowEngine):
    """Windowed reads and exact nearest-neighbour placement (nearest resampling only)."""

    name = "native"

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
        if resampling != "nearest":
            raise ConfigError(
                f"the native engine places pixels by nearest neighbour only, not {resampling!r};"
                " use engine='odc' for other resampling"
            )
        return _read_row(
            source.id,
            source.href,
            grids,
            dtype,
            fill,
            source.nodata,
            gdal,
            decode,
            source.collection,
        )
