"""Lazy cloud-masked datacubes: planned scenes -> one grid -> flags, clear mask, reflectance.

The building blocks every stage shares, all lazy (dask):

- :func:`lazy_flags`: each scene's QA read through an engine and decoded in the read task into
  sensor-neutral flags, dilated in metres, and merged into the cube's time slices (the first
  valid member of a slice supplies a pixel);
- :func:`lazy_bands`: each scene's bands as float32 reflectance (scale, offset and the
  Sentinel-2 baseline offset from its plan; no-data NaN), merged into slices the same way;
- :func:`aoi_mask`: the area of interest rasterized on the grid.

:func:`load` composes them into one :class:`xarray.Dataset` for notebooks: nothing is read
before the caller computes. The run's screen and read stages use the same blocks and add what
they need (histograms, stores, failures as data).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from .bands import check_bands
from .compute import gc_paused
from .config import MaskConfig
from .engines import Read, ReadRequest, Source, get_engine, grid_coords
from .flags import FLAG_DTYPE, Flag
from .gdal_env import gdal_options
from .plan import Planned, plan
from .runconfig import LoadOptions
from .sas import signing_for
from .sensors import get_encoding, is_clear
from .sensors.plan import AuxQA, ScenePlan

__all__ = [
    "FALLBACKS_ATTR",
    "LazyBands",
    "LazyFlags",
    "add_aux_flags",
    "aoi_mask",
    "aux_source",
    "fallbacks_of",
    "first_valid",
    "lazy_bands",
    "lazy_flags",
    "load",
    "slice_coords",
    "take_member",
]

#: Dataset attribute listing the items that were not loaded, with the reason (JSON).
FALLBACKS_ATTR = "clearcube:fallbacks"

_FLAG_ATTRS = {
    "long_name": "clearcube sensor-neutral QA flags",
    "flag_masks": [int(f) for f in Flag],
    "flag_meanings": " ".join(str(f.name).lower() for f in Flag),
}


def fallbacks_of(ds: xr.Dataset) -> list[dict[str, str]]:
    """The items ``load`` did not use and why (id, reason)."""
    raw = ds.attrs.get(FALLBACKS_ATTR, "[]")
    out: list[dict[str, str]] = json.loads(raw)
    return out


def _known_bounds(
    scene: ScenePlan, planned: Planned | None
) -> tuple[str, tuple[float, float, float, float]] | None:
    box = None if planned is None else planned.bounds.get(scene.id)
    return None if box is None or planned is None else (planned.crs, box)


def qa_source(scene: ScenePlan, planned: Planned | None = None) -> Source:
    """The QA asset of a scene, as the engines read it."""
    grid = scene.qa_grid
    return Source(
        id=scene.id,
        asset=scene.qa_asset,
        href=scene.qa_href,
        time=_naive_time(scene),
        footprint=scene.footprint,
        bbox=scene.bbox,
        crs=grid.crs,
        shape_yx=grid.shape_yx,
        transform=grid.transform,
        nodata=scene.qa_nodata_declared,
        grid_bounds=_known_bounds(scene, planned),
        collection=scene.collection,
    )


def band_source(scene: ScenePlan, name: str, planned: Planned | None = None) -> Source:
    """One reflectance band of a scene, as the engines read it."""
    band = scene.bands[name]
    return Source(
        id=scene.id,
        asset=band.asset,
        href=band.href,
        time=_naive_time(scene),
        footprint=scene.footprint,
        bbox=scene.bbox,
        crs=band.grid.crs,
        shape_yx=band.grid.shape_yx,
        transform=band.grid.transform,
        nodata=band.nodata,
        grid_bounds=_known_bounds(scene, planned),
        collection=scene.collection,
    )


def _naive_time(scene: ScenePlan) -> np.datetime64:
    import datetime as dt

    when = scene.datetime
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return np.datetime64(when, "ns")


def _runs(items: Sequence[Any], key: Callable[[Any], Hashable]) -> list[list[int]]:
    """Indices of ``items`` grouped by ``key(item)``, groups in first-seen order."""
    groups: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(key(item), []).append(i)
    return list(groups.values())


def _in_time_order(arr: xr.DataArray, order: Sequence[int]) -> xr.DataArray:
    """``arr``, whose time step ``k`` is member ``order[k]``, with its time steps in member
    order.

    With one time step per chunk (every engine's layout) only the block keys are permuted:
    the graph gains aliases, not a copy task per chunk.
    """
    position = np.argsort(np.asarray(order), kind="stable")
    if not (np.diff(position) != 1).any():
        return arr
    data = arr.data
    if not (hasattr(data, "blocks") and arr.dims[0] == "time" and set(data.chunks[0]) == {1}):
        return arr.isel(time=position)
    time_coords = {k: v.isel(time=position) for k, v in arr.coords.items() if "time" in v.dims}
    other = {k: v for k, v in arr.coords.items() if "time" not in v.dims}
    out = xr.DataArray(
        data.blocks[position.tolist()], dims=arr.dims, coords=other, name=arr.name, attrs=arr.attrs
    )
    return out.assign_coords(time_coords)


def _concat(parts: Sequence[xr.DataArray], order: Sequence[int]) -> xr.DataArray:
    joined = xr.concat(parts, dim="time", join="override", coords="minimal", compat="override")
    return _in_time_order(joined, order)


# ------------------------------------------------------------------------------------ flags


@dataclass(frozen=True, eq=False)
class LazyFlags:
    """The flags of a plan's slices.

    Attributes
    ----------
    flags
        ``(time, y, x)`` uint16 flags, one time step per slice, dilated and merged.
    member
        ``(time, y, x)`` int8: which member of its slice supplies each pixel (the first valid
        one, else 0); None when no slice has several members.
    failures
        Dask collections, each computing to a tuple of read failures (by member scene id).
    """

    flags: xr.DataArray
    member: xr.DataArray | None
    failures: tuple[Any, ...]


def lazy_flags(
    planned: Planned,
    config: MaskConfig,
    *,
    engine: str = "native",
    gdal: Mapping[str, str] | None = None,
    on_error: str = "raise",
) -> LazyFlags:
    """Each member scene's QA read and decoded, dilated, then merged into the slices."""
    reader = get_engine(engine)
    members = planned.scenes
    opts = gdal_options(gdal)
    parts: list[xr.DataArray] = []
    order: list[int] = []
    failures: list[Any] = []
    for run in _runs(members, lambda p: (p.qa_asset, p.qa_encoding, p.qa_dtype, p.qa_nodata)):
        first = members[run[0]]
        encoding = get_encoding(first.qa_encoding)
        request = ReadRequest(
            sources=tuple(qa_source(members[i], planned) for i in run),
            geobox=planned.geobox,
            dtype=np.dtype(first.qa_dtype),
            # the encoding's own fill, never the item's nodata: 0 is a legal clear in QA60 and
            # Fmask; engines also write it where the file or the item declares no data
            fill=encoding.fill,
            chunks_yx=planned.chunks_yx,
            resampling="nearest",
            gdal=opts,
            on_error="flag" if on_error == "flag" else "raise",
        )
        read: Read = reader.read_recorded(request, (encoding, config))
        parts.append(read.data.rename("flags"))
        failures.append(read.failures)
        order.extend(run)
    flags = _concat(parts, order)
    flags, aux_failures = _with_aux_qa(flags, planned, config, reader, opts, on_error)
    failures.extend(aux_failures)
    if config.dilation_m > 0 or config.despeckle_px > 0:
        from ._dilate import dilate_flags

        res = abs(planned.geobox.resolution.y), abs(planned.geobox.resolution.x)
        flags = flags.copy(
            data=dilate_flags(
                flags.data,
                distance_m=config.dilation_m,
                res_yx=res,
                grow_bits=config.dilate_bits,
                despeckle_px=config.despeckle_px,
            )
        )
    merged, member = _merge_slices(flags, planned)
    merged.attrs = dict(_FLAG_ATTRS)
    return LazyFlags(merged, member, tuple(failures))


def aux_source(scene: ScenePlan, aux: AuxQA, planned: Planned | None = None) -> Source:
    """A further QA layer of a scene (e.g. QA_RADSAT), as the engines read it."""
    return Source(
        id=scene.id,
        asset=aux.asset,
        href=aux.href,
        time=_naive_time(scene),
        footprint=scene.footprint,
        bbox=scene.bbox,
        crs=aux.grid.crs,
        shape_yx=aux.grid.shape_yx,
        transform=aux.grid.transform,
        nodata=aux.nodata_declared,
        grid_bounds=_known_bounds(scene, planned),
        collection=scene.collection,
    )


def add_aux_flags(
    flags: npt.NDArray[np.uint16], aux: npt.NDArray[np.uint16]
) -> npt.NDArray[np.uint16]:
    """The mask's flags with a further layer's added: its flags where the mask has data (a
    no-data pixel carries no other flag), and NODATA | UNREADABLE wherever the layer could not
    be read (any asset of a scene that cannot be read makes its pixels unreadable)."""
    unreadable = np.uint16(Flag.NODATA | Flag.UNREADABLE)
    nodata = np.uint16(Flag.NODATA)
    out = np.where((flags & nodata) != 0, flags, flags | (aux & ~nodata))
    out = np.where((aux & np.uint16(Flag.UNREADABLE)) != 0, unreadable, out)
    return out.astype(FLAG_DTYPE, copy=False)


def _with_aux_qa(
    flags: xr.DataArray,
    planned: Planned,
    config: MaskConfig,
    reader: Any,
    gdal: dict[str, str],
    on_error: str,
) -> tuple[xr.DataArray, list[Any]]:
    """``flags`` (one time step per member) with every further QA layer the members have."""
    import dask.array as da

    members = planned.scenes
    layers = [(i, a) for i, m in enumerate(members) for a in m.aux_qa]
    if not layers:
        return flags, []
    failures = []
    data = flags.data
    for kind in dict.fromkeys((a.asset, a.encoding, a.dtype) for _, a in layers):
        chosen = [(i, a) for i, a in layers if (a.asset, a.encoding, a.dtype) == kind]
        encoding = get_encoding(kind[1])
        request = ReadRequest(
            sources=tuple(aux_source(members[i], a, planned) for i, a in chosen),
            geobox=planned.geobox,
            dtype=np.dtype(kind[2]),
            fill=encoding.fill,
            chunks_yx=planned.chunks_yx,
            resampling="nearest",
            gdal=gdal,
            on_error="flag" if on_error == "flag" else "raise",
        )
        read = reader.read_recorded(request, (encoding, config))
        failures.append(read.failures)
        position = {i: k for k, (i, _) in enumerate(chosen)}
        zeros = da.zeros((1, *data.shape[1:]), dtype=FLAG_DTYPE, chunks=(1, *data.chunks[1:]))
        aux = da.concatenate(
            [
                read.data.data[position[i] : position[i] + 1] if i in position else zeros
                for i in range(len(members))
            ]
        )
        data = da.map_blocks(add_aux_flags, data, aux, dtype=FLAG_DTYPE)
    return flags.copy(data=data), failures


def first_valid(block: npt.NDArray[np.uint16]) -> npt.NDArray[np.int8]:
    """Per pixel of a ``(k, y, x)`` block of member flags, the first valid member (else 0)."""
    valid = (block & np.uint16(Flag.NODATA)) == 0
    index: npt.NDArray[np.int8] = np.argmax(valid, axis=0).astype(np.int8)
    return index[None]


def take_member(index: npt.NDArray[np.int8], block: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Per pixel, the value of the member ``index`` (``(1, y, x)``) picks from a
    ``(k, y, x)`` block: how every variable of a grouped slice is merged."""
    return np.take_along_axis(block, index.astype(np.intp), axis=0)


def _merge_slices(
    flags: xr.DataArray, planned: Planned
) -> tuple[xr.DataArray, xr.DataArray | None]:
    """Member flags -> slice flags (and the member index) when a slice has several members."""
    sizes = [len(s.members) for s in planned.slices]
    coords = slice_coords(planned)
    if all(n == 1 for n in sizes):
        return flags.assign_coords(coords), None
    import dask.array as da

    data = flags.data
    merged_parts, member_parts = [], []
    start = 0
    for n in sizes:
        part = data[start : start + n]
        start += n
        if n == 1:
            merged_parts.append(part)
            member_parts.append(da.zeros_like(part, dtype=np.int8))
            continue
        part = part.rechunk({0: n})
        index = part.map_blocks(first_valid, chunks=((1,), *part.chunks[1:]), dtype=np.int8)
        merged_parts.append(
            da.map_blocks(take_member, index, part, chunks=index.chunks, dtype=FLAG_DTYPE)
        )
        member_parts.append(index)
    dims = ("time", "y", "x")
    space = {"y": flags["y"].values, "x": flags["x"].values}
    merged = xr.DataArray(da.concatenate(merged_parts), dims=dims, coords=space, name="flags")
    member = xr.DataArray(da.concatenate(member_parts), dims=dims, coords=space, name="member")
    return merged.assign_coords(coords), member.assign_coords(coords)


def slice_coords(planned: Planned) -> dict[str, Any]:
    """The per-time coordinates of a plan's cube: time, id, platform, sensor, collection,
    provider cloud cover."""
    slices = planned.slices
    return {
        "time": np.array([s.time for s in slices], dtype="datetime64[ns]"),
        "id": ("time", [s.id for s in slices]),
        "platform": ("time", [s.platform for s in slices]),
        "sensor": ("time", [s.sensor for s in slices]),
        "collection": ("time", [s.collection for s in slices]),
        "eo:cloud_cover": ("time", [s.cloud_cover for s in slices]),
    }


# ------------------------------------------------------------------------------------ bands


@dataclass(frozen=True, eq=False)
class LazyBands:
    """Reflectance of a plan's slices.

    Attributes
    ----------
    bands
        Band name -> ``(time, y, x)`` float32 reflectance, NaN where a scene has no data (not
        yet masked by the flags).
    failures
        Dask collections, each computing to a tuple of read failures (by member scene id).
    """

    bands: dict[str, xr.DataArray]
    failures: tuple[Any, ...]


def _reflectance(raw: npt.NDArray[Any], scale: float, offset: float, fill: float) -> Any:
    out = np.multiply(raw, np.float32(scale), dtype=np.float32)  # one float32 array, in place
    out += np.float32(offset)
    np.copyto(out, np.float32(np.nan), where=raw == fill)
    return out


def lazy_bands(
    planned: Planned,
    names: Sequence[str],
    *,
    engine: str = "native",
    gdal: Mapping[str, str] | None = None,
    member: xr.DataArray | None = None,
    windows: Sequence[frozenset[tuple[int, int]] | None] | None = None,
    on_error: str = "raise",
) -> LazyBands:
    """Each band of every member scene as float32 reflectance, merged into the slices.

    Parameters
    ----------
    member
        The member index of :class:`LazyFlags` (needed when slices have several members).
    windows
        Per slice, the chunks ``(iy, ix)`` to read (None: all); the others are NaN without a
        request (e.g. scenes not used, chunks without a clear pixel).
    """
    import dask.array as da

    reader = get_engine(engine)
    members = planned.scenes
    member_windows: list[frozenset[tuple[int, int]] | None] = []
    for k, sl in enumerate(planned.slices):
        member_windows.extend([None if windows is None else windows[k]] * len(sl.members))
    opts = gdal_options(gdal)
    geobox = planned.geobox
    chunks = (1, *planned.chunks_yx)
    out: dict[str, xr.DataArray] = {}
    failures: list[Any] = []
    for name in names:
        parts: list[xr.DataArray] = []
        order: list[int] = []
        have = [i for i, p in enumerate(members) if name in p.bands]
        missing = [i for i, p in enumerate(members) if name not in p.bands]
        kinds = [_band_kind(members[i], name) for i in have]
        for run in _runs(kinds, lambda kind: kind):
            idx = [have[i] for i in run]
            first = members[idx[0]].bands[name]
            dtype = np.dtype(first.dtype or "uint16")
            fill = first.nodata if first.nodata is not None else 0
            request = ReadRequest(
                sources=tuple(band_source(members[i], name, planned) for i in idx),
                geobox=geobox,
                dtype=dtype,
                fill=fill,
                chunks_yx=planned.chunks_yx,
                resampling="nearest",
                gdal=opts,
                windows=tuple(member_windows[i] for i in idx),
                on_error="flag" if on_error == "flag" else "raise",
            )
            read = reader.read_recorded(request)
            failures.append(read.failures)
            raw = read.data
            pieces = [
                raw.data[k : k + 1].map_blocks(
                    _reflectance,
                    members[i].bands[name].scale,
                    members[i].bands[name].offset,
                    fill,
                    dtype=np.float32,
                )
                for k, i in enumerate(idx)
            ]
            parts.append(raw.copy(data=da.concatenate(pieces)).rename(name))
            order.extend(idx)
        if missing:
            shape = (len(missing), geobox.shape.y, geobox.shape.x)
            empty = da.full(shape, np.nan, dtype=np.float32, chunks=chunks)
            parts.append(
                xr.DataArray(empty, dims=("time", "y", "x"), coords=grid_coords(geobox), name=name)
            )
            order.extend(missing)
        band = _concat([p.drop_vars("time", errors="ignore") for p in parts], order)
        out[name] = _merge_band(band, planned, member).astype(np.float32)
    return LazyBands(out, tuple(failures))


def _band_kind(scene: ScenePlan, name: str) -> tuple[str, str | None, float | None]:
    band = scene.bands[name]
    return (band.asset, band.dtype, band.nodata)


def _merge_band(band: xr.DataArray, planned: Planned, member: xr.DataArray | None) -> xr.DataArray:
    sizes = [len(s.members) for s in planned.slices]
    coords = slice_coords(planned)
    if all(n == 1 for n in sizes):
        return band.assign_coords(coords)
    if member is None:
        raise ValueError("slices with several members need the member index of lazy_flags")
    import dask.array as da

    data = band.data
    parts = []
    start = 0
    for k, n in enumerate(sizes):
        part = data[start : start + n]
        start += n
        if n == 1:
            parts.append(part)
            continue
        part = part.rechunk({0: n})
        index = member.data[k : k + 1]
        parts.append(da.map_blocks(take_member, index, part, chunks=index.chunks, dtype=part.dtype))
    space = {"y": band["y"].values, "x": band["x"].values}
    merged = xr.DataArray(da.concatenate(parts), dims=band.dims, coords=space, name=band.name)
    return merged.assign_coords(coords)


def aoi_mask(planned: Planned) -> xr.DataArray | None:
    """The area-of-interest geometry rasterized on the grid (None for a bbox)."""
    if planned.geometry is None:
        return None
    from odc.geo.geom import Geometry
    from odc.geo.xr import rasterize

    geobox = planned.geobox
    mask = rasterize(Geometry(dict(planned.geometry), "EPSG:4326"), geobox)
    ydim, xdim = geobox.dimensions  # latitude/longitude on a geographic grid
    if (ydim, xdim) != ("y", "x"):
        mask = mask.rename({ydim: "y", xdim: "x"})
    return mask.drop_vars("spatial_ref", errors="ignore").rename("aoi")


# ------------------------------------------------------------------------------------ load


@gc_paused()
def load(
    items: Iterable[Any],
    bbox: Sequence[float] | None = None,
    *,
    geometry: Mapping[str, Any] | None = None,
    options: LoadOptions | None = None,
    mask: MaskConfig | None = None,
) -> xr.Dataset:
    """A lazy, cloud-masked datacube of ``items`` on one grid.

    Parameters
    ----------
    items
        STAC items (pystac or dicts) or :class:`~clearcube.ScenePlan` objects, of any mix of
        Sentinel-2 L2A, Landsat C2 L2 and HLS.
    bbox, geometry
        Area of interest in lon/lat (W, S, E, N) or as a GeoJSON geometry; with a geometry the
        cube carries an ``aoi`` mask and cloud fractions count only pixels inside it.
    options
        How to load (:class:`~clearcube.LoadOptions`): bands, engine, chunks, grouping, GDAL
        options, href policy, header probes, what a read error does. Default
        ``LoadOptions()``: red and nir through the native engine.
    mask
        Masking rules and the output grid's CRS/resolution (:class:`~clearcube.MaskConfig`);
        default ``MaskConfig()``.

    Returns
    -------
    xarray.Dataset
        Variables ``flags`` (uint16 :class:`~clearcube.Flag` bits), ``clear`` (bool) and each
        band (float32 reflectance, NaN where not clear); coordinates ``time``, ``y``, ``x`` and
        per-time ``id``, ``platform``, ``sensor``, ``collection``, ``eo:cloud_cover``; the grid
        as ``ds.odc.geobox``. Items that could not be used are listed in
        ``ds.attrs["clearcube:fallbacks"]`` (see :func:`fallbacks_of`). With
        ``options.on_read_error="raise"`` (default) a window that cannot be read raises
        :class:`~clearcube.errors.AssetReadError` at compute; with ``"flag"`` it is NODATA |
        UNREADABLE (never clear) and counted as ``unreadable_px`` by ``cloud_fraction``.
    """
    from odc.geo.xr import assign_crs

    opts = options if options is not None else LoadOptions()
    cfg = mask if mask is not None else MaskConfig()
    check_bands(opts.bands)
    get_engine(opts.engine)
    planned = plan(
        items,
        bbox=bbox,
        geometry=geometry,
        crs=cfg.crs,
        resolution=cfg.resolution,
        chunks_yx=opts.chunks_yx,
        group_by=None if opts.group_by == "none" else opts.group_by,
        allow_local_hrefs=opts.allow_local_hrefs,
        check_assets=opts.check_assets,
        gdal=gdal_options(opts.gdal),
    )
    # the reads sign Planetary Computer hrefs themselves unless the options say otherwise
    gdal = {**signing_for(s.qa_href for sl in planned.slices for s in sl.members), **opts.gdal}
    flags = lazy_flags(planned, cfg, engine=opts.engine, gdal=gdal, on_error=opts.on_read_error)
    bands = lazy_bands(
        planned,
        opts.bands,
        engine=opts.engine,
        gdal=gdal,
        member=flags.member,
        on_error=opts.on_read_error,
    )
    clear = is_clear(flags.flags, cfg).rename("clear")
    clear.attrs = {"long_name": "valid and carrying none of the masked flags"}
    data_vars: dict[str, xr.DataArray] = {"flags": flags.flags, "clear": clear}
    for name, band in bands.bands.items():
        data_vars[name] = band.where(clear)
    ds = xr.Dataset(data_vars)
    area = aoi_mask(planned)
    if area is not None:
        ds["aoi"] = area
    ds["flags"].attrs = dict(_FLAG_ATTRS)
    ds.attrs.update(cfg.to_attrs())
    ds.attrs[FALLBACKS_ATTR] = json.dumps(
        [{"id": f.id, "reason": f.reason} for f in planned.fallbacks]
    )
    ds.attrs["clearcube:engine"] = opts.engine
    out: xr.Dataset = assign_crs(ds, planned.crs)
    return out
