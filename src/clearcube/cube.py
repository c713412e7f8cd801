"""Lazy cloud-masked datacubes: items -> one grid -> flags, clear mask, reflectance.

``load`` plans every item, chooses the output grid, reads the QA band of each sensor family
with nearest resampling through an engine, decodes it into sensor-neutral flags, dilates them
in metres, reads the requested bands as float32 reflectance (scale, offset and the Sentinel-2
baseline offset from each item's plan; masked pixels NaN) and concatenates everything along
time. Nothing is read before the caller computes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .config import MaskConfig
from .engines import ReadRequest, get_engine
from .errors import GridError, ItemError
from .flags import Flag
from .gdal_env import gdal_options
from .grid import footprint_bounds, output_geobox
from .sensors import decode, get_encoding, is_clear
from .sensors.plan import Fallback, ScenePlan, plan_items
from .stats import CONFIG_ATTR

__all__ = ["FALLBACKS_ATTR", "fallbacks_of", "load"]

#: Dataset attribute listing the items that were not loaded, with the reason (JSON).
FALLBACKS_ATTR = "clearcube:fallbacks"


def fallbacks_of(ds: xr.Dataset) -> list[dict[str, str]]:
    """The items ``load`` did not use and why (id, reason)."""
    raw = ds.attrs.get(FALLBACKS_ATTR, "[]")
    out: list[dict[str, str]] = json.loads(raw)
    return out


def _chunks_yx(chunks: int | Mapping[str, int] | None) -> tuple[int, int]:
    if chunks is None:
        return (1024, 1024)
    if isinstance(chunks, int):
        return (chunks, chunks)
    return (int(chunks.get("y", 1024)), int(chunks.get("x", 1024)))


def _pystac_items(plans: Sequence[ScenePlan]) -> tuple[Any, ...]:
    import pystac

    items = []
    for plan in plans:
        data = {k: v for k, v in plan.stac.items() if not k.startswith("clearcube:")}
        data["links"] = []  # hrefs are already absolute; no link resolution needed
        # from_dict may edit what it is given: hand it fresh top-level containers instead of
        # letting it deep-copy every item (a third of the graph-build time for 1,200 items)
        data["properties"] = dict(data.get("properties") or {})
        data["assets"] = {k: dict(v) for k, v in (data.get("assets") or {}).items()}
        items.append(pystac.Item.from_dict(data, migrate=False, preserve_dict=False))
    return tuple(items)


def _runs(plans: Sequence[ScenePlan], key: Any) -> list[list[int]]:
    """Indices of ``plans`` grouped by ``key(plan)``, groups in first-seen order."""
    groups: dict[Any, list[int]] = {}
    for i, plan in enumerate(plans):
        groups.setdefault(key(plan), []).append(i)
    return list(groups.values())


def load(
    items: Iterable[Any],
    bbox: Sequence[float] | None = None,
    geometry: Mapping[str, Any] | None = None,
    crs: str | None = None,
    resolution: float | None = None,
    bands: Sequence[str] = ("red", "nir"),
    config: MaskConfig | None = None,
    engine: str = "native",
    chunks: int | Mapping[str, int] | None = None,
    *,
    group_by: str | None = None,
    gdal: Mapping[str, Any] | None = None,
    allow_local_hrefs: bool | None = None,
    check_assets: bool = False,
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
    crs, resolution
        Output grid; default from ``config``, else the most common UTM zone of the items at
        the QA band's native resolution.
    bands
        Canonical band names (blue, green, red, nir, swir16, swir22) to load as reflectance.
    config
        Masking rules (default :class:`~clearcube.MaskConfig()`).
    engine
        ``"native"`` (default: windowed reads, exact nearest-neighbour placement, decode
        fused into the read), ``"odc"`` (odc-stac) or ``"stackstac"``.
    chunks
        Chunk size in pixels, an int or ``{"y": .., "x": ..}``; default 1024.
    group_by
        ``"solar_day"`` merges scenes of one platform and solar day (adjacent tiles of a pass).
    gdal
        Extra GDAL options for the reads.
    allow_local_hrefs
        Whether items from a remote catalog may point at local files. Default: refused.
    check_assets
        Open each item's QA asset (its header only, no pixels) before building the cube; an
        item whose mask cannot be opened (HTTP error, missing or corrupt file) becomes a
        recorded fallback instead of failing the whole computation later.

    Returns
    -------
    xarray.Dataset
        Variables ``flags`` (uint16 :class:`~clearcube.Flag` bits), ``clear`` (bool) and each
        band (float32 reflectance, NaN where not clear); coordinates ``time``, ``y``, ``x`` and
        per-time ``id``, ``platform``, ``sensor``, ``collection``, ``eo:cloud_cover``; the grid
        as ``ds.odc.geobox``. Items that could not be used are listed in
        ``ds.attrs["clearcube:fallbacks"]`` (see :func:`fallbacks_of`).
    """
    from odc.geo.xr import assign_crs, rasterize

    cfg = config if config is not None else MaskConfig()
    crs = crs if crs is not None else cfg.crs
    resolution = resolution if resolution is not None else cfg.resolution
    if group_by not in (None, "solar_day"):
        raise GridError(f"unknown group_by {group_by!r}; use None or 'solar_day'")
    for name in bands:
        if name not in ("blue", "green", "red", "nir", "nir08", "swir16", "swir22"):
            raise ItemError(
                f"unknown band {name!r}; canonical bands: blue, green, red, nir, swir16, swir22"
            )

    plans: list[ScenePlan] = []
    fallbacks: list[Fallback] = []
    for result in plan_items(items):
        if isinstance(result, Fallback):
            fallbacks.append(result)
        elif result.origin_remote and result.hrefs_local and not allow_local_hrefs:
            fallbacks.append(
                Fallback(
                    result.id,
                    f"{result.id}: refused: an item from a remote catalog points at a local file; "
                    "only http(s)/s3 hrefs are read from remote catalogs",
                    result.collection,
                )
            )
        else:
            plans.append(result)
    if not plans:
        reasons = "; ".join(f.reason for f in fallbacks[:3]) or "no items"
        raise ItemError(f"nothing to load: {reasons}")

    geobox = output_geobox(plans, bbox=bbox, geometry=geometry, crs=crs, resolution=resolution)
    gb_crs = f"EPSG:{geobox.crs.epsg}" if geobox.crs.epsg else geobox.crs.to_wkt()
    extent = geobox.extent.boundingbox
    kept: list[ScenePlan] = []
    for plan in plans:
        fb = footprint_bounds(plan, gb_crs)
        if fb is not None and not (
            fb[0] < extent.right
            and extent.left < fb[2]
            and fb[1] < extent.top
            and extent.bottom < fb[3]
        ):
            fallbacks.append(
                Fallback(
                    plan.id, f"{plan.id}: does not overlap the area of interest", plan.collection
                )
            )
        else:
            kept.append(plan)
    if not kept:
        raise GridError("no item overlaps the output grid; check the bbox and dates")
    plans = sorted(kept, key=lambda p: (p.datetime, p.id))
    gdal_opts = gdal_options(gdal)
    if check_assets:
        plans, broken = _check_assets(plans, gdal_opts)
        fallbacks.extend(broken)
        if not plans:
            raise ItemError(f"no QA asset could be opened: {broken[0].reason}")

    reader = get_engine(engine)
    cyx = _chunks_yx(chunks)
    pyitems = _pystac_items(plans)

    flags_parts: list[xr.DataArray] = []
    order: list[int] = []
    for run in _runs(plans, lambda p: (p.qa_asset, p.qa_encoding, p.qa_dtype, p.qa_nodata)):
        first = plans[run[0]]
        encoding = get_encoding(first.qa_encoding)
        request = ReadRequest(
            items=tuple(pyitems[i] for i in run),
            asset=first.qa_asset,
            geobox=geobox,
            dtype=np.dtype(first.qa_dtype),
            # the encoding's own fill, never the item's nodata: 0 is a legal clear in QA60 and
            # Fmask; engines also write it where the file or item declares no data
            nodata=encoding.fill,
            chunks_yx=cyx,
            resampling="nearest",
            gdal=gdal_opts,
        )
        read_flags = getattr(reader, "read_flags", None)
        if read_flags is not None:
            flags = read_flags(request, encoding, cfg)
        else:
            raw = reader.read(request)
            flags = decode(raw, first.qa_encoding, cfg)
        flags_parts.append(flags.rename("flags"))
        order.extend(run)
    flags_all = xr.concat(
        flags_parts, dim="time", join="override", coords="minimal", compat="override"
    )
    flags_all = _in_time_order(flags_all, order)  # several QA kinds: back into time order

    data_vars: dict[str, xr.DataArray] = {"flags": flags_all}
    for name in bands:
        data_vars[name] = _load_band(name, plans, pyitems, geobox, cyx, gdal_opts, reader)

    coords: dict[str, Any] = {
        "id": ("time", [p.id for p in plans]),
        "platform": ("time", [p.platform for p in plans]),
        "sensor": ("time", [p.sensor for p in plans]),
        "collection": ("time", [str(p.collection) for p in plans]),
        "eo:cloud_cover": (
            "time",
            [np.nan if p.cloud_cover is None else p.cloud_cover for p in plans],
        ),
    }
    times = np.array([np.datetime64(p.datetime.replace(tzinfo=None), "ns") for p in plans])
    ds = xr.Dataset(data_vars).assign_coords({"time": times, **coords})

    if cfg.dilation_m > 0 or cfg.despeckle_px > 0:
        from ._dilate import dilate_flags

        res = abs(geobox.resolution.y), abs(geobox.resolution.x)
        ds["flags"] = ds["flags"].copy(
            data=dilate_flags(
                ds["flags"].data,
                distance_m=cfg.dilation_m,
                res_yx=res,
                grow_bits=cfg.dilate_bits,
                despeckle_px=cfg.despeckle_px,
            )
        )
    if group_by == "solar_day":
        from ._group import group_solar_day

        lons = [((p.bbox[0] + p.bbox[2]) / 2) if p.bbox else 0.0 for p in plans]
        ds = group_solar_day(ds, lons)

    clear = is_clear(ds["flags"], cfg)
    ds["clear"] = clear
    for name in bands:
        ds[name] = ds[name].where(clear)
    if geometry is not None:
        from odc.geo.geom import Geometry

        mask = rasterize(Geometry(dict(geometry), "EPSG:4326"), geobox)
        ydim, xdim = geobox.dimensions  # latitude/longitude on a geographic grid
        mask = mask.rename({ydim: "y", xdim: "x"}) if (ydim, xdim) != ("y", "x") else mask
        ds["aoi"] = mask.drop_vars("spatial_ref", errors="ignore")
    ds["flags"].attrs = {
        "long_name": "clearcube sensor-neutral QA flags",
        "flag_masks": [int(f) for f in Flag],
        "flag_meanings": " ".join(str(f.name).lower() for f in Flag),
    }
    ds.attrs[CONFIG_ATTR] = cfg.model_dump_json()
    ds.attrs[FALLBACKS_ATTR] = json.dumps([{"id": f.id, "reason": f.reason} for f in fallbacks])
    ds.attrs["clearcube:engine"] = getattr(reader, "name", str(engine))
    out: xr.Dataset = assign_crs(ds, geobox.crs)
    return out


def _check_assets(
    plans: list[ScenePlan], gdal_opts: dict[str, str]
) -> tuple[list[ScenePlan], list[Fallback]]:
    """Open every QA asset's header in parallel; unreadable ones become fallbacks."""
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    from .errors import scrub_message
    from .gdal_env import rio_env

    def probe(plan: ScenePlan) -> str | None:
        try:
            with rio_env(gdal_opts), rasterio.open(plan.qa_href) as src:
                if src.count < 1:
                    return "has no band"
        except rasterio.errors.RasterioError as exc:
            return scrub_message(exc, plan.qa_href)
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = list(pool.map(probe, plans))
    good = [p for p, problem in zip(plans, problems, strict=True) if problem is None]
    bad = [
        Fallback(
            p.id,
            f"{p.id}: QA asset {p.qa_asset!r} unreadable ({problem}); excluded, "
            "never treated as clear",
            p.collection,
        )
        for p, problem in zip(plans, problems, strict=True)
        if problem is not None
    ]
    return good, bad


def _load_band(
    name: str,
    plans: Sequence[ScenePlan],
    pyitems: Sequence[Any],
    geobox: Any,
    cyx: tuple[int, int],
    gdal_opts: dict[str, str],
    reader: Any,
) -> xr.DataArray:
    """One band as float32 reflectance over all plans (NaN where missing or no-data)."""
    import dask.array as da

    parts: list[xr.DataArray] = []
    order: list[int] = []
    missing = [i for i, p in enumerate(plans) if name not in p.bands]
    have = [i for i, p in enumerate(plans) if name in p.bands]
    sub = [plans[i] for i in have]
    for run in _runs(
        sub, lambda p: (p.bands[name].asset, p.bands[name].dtype, p.bands[name].nodata)
    ):
        idx = [have[i] for i in run]
        first = plans[idx[0]].bands[name]
        dtype = np.dtype(first.dtype or "uint16")
        nodata = first.nodata if first.nodata is not None else 0
        request = ReadRequest(
            items=tuple(pyitems[i] for i in idx),
            asset=first.asset,
            geobox=geobox,
            dtype=dtype,
            nodata=nodata,
            chunks_yx=cyx,
            resampling="nearest",
            gdal=gdal_opts,
        )
        raw = reader.read(request)
        scale = xr.DataArray([plans[i].bands[name].scale for i in idx], dims="time")
        offset = xr.DataArray([plans[i].bands[name].offset for i in idx], dims="time")
        valid = raw != nodata
        refl = (
            raw.astype(np.float32) * scale.astype(np.float32).data[:, None, None]
            + offset.astype(np.float32).data[:, None, None]
        )
        parts.append(refl.where(valid).astype(np.float32).rename(name))
        order.extend(idx)
    if missing:
        shape = (len(missing), geobox.shape.y, geobox.shape.x)
        empty = da.full(shape, np.nan, dtype=np.float32, chunks=(1, *cyx))
        ydim, xdim = geobox.dimensions  # latitude/longitude on a geographic grid
        coords = {"y": geobox.coords[ydim].values, "x": geobox.coords[xdim].values}
        parts.append(xr.DataArray(empty, dims=("time", "y", "x"), coords=coords, name=name))
        order.extend(missing)
    band = xr.concat(parts, dim="time", join="override", coords="minimal", compat="override")
    band = band.drop_vars("time", errors="ignore")
    return _in_time_order(band, order)


def _in_time_order(arr: xr.DataArray, order: Sequence[int]) -> xr.DataArray:
    """``arr``, whose time step ``k`` is plan ``order[k]``, with its time steps in plan order.

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
