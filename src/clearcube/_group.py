"""Merging time slices of one satellite pass: adjacent tiles of the same sensor and solar day.

Sentinel-2 tiles (and Landsat rows) of one overpass overlap and each covers only part of an
AOI; as separate time slices they would look like half-empty scenes. Grouping merges them into
one slice per (platform, solar day), preferring a valid pixel over no-data where they overlap
(and, among valid pixels, the first slice in time order), consistently for every variable.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .flags import Flag

__all__ = ["group_solar_day", "solar_days"]


def solar_days(times: Sequence[Any], longitudes: Sequence[float]) -> list[str]:
    """Local solar date (YYYY-MM-DD) of each UTC time at each longitude (15 degrees per hour)."""
    out = []
    for t, lon in zip(times, longitudes, strict=True):
        local = pd.Timestamp(t) + pd.Timedelta(hours=float(lon) / 15.0)
        out.append(local.strftime("%Y-%m-%d"))
    return out


def group_solar_day(ds: xr.Dataset, longitudes: Sequence[float]) -> xr.Dataset:
    """Merge the time slices of ``ds`` that share platform and solar day.

    ``ds`` has a ``flags`` variable ``(time, y, x)`` and per-time coordinates (``id``,
    ``platform``, ...). ``longitudes`` gives each slice's footprint centre longitude. In each
    group the first valid slice (in time order) supplies every variable at a pixel; per-time
    coordinates become the group's: the earliest time, ids joined by ``+``, and the mean of
    numeric coordinates such as ``eo:cloud_cover``.
    """
    if ds.sizes["time"] <= 1:
        return ds
    platforms = (
        ds["platform"].values.tolist() if "platform" in ds.coords else [""] * ds.sizes["time"]
    )
    days = solar_days(list(ds["time"].values), longitudes)
    keys: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(platforms, days, strict=True)):
        keys.setdefault((str(key[0]), key[1]), []).append(i)
    if all(len(members) == 1 for members in keys.values()):
        return ds
    slices = [_merge(ds, members) for members in keys.values()]
    out = xr.concat(slices, dim="time", coords="different", compat="equals", join="override")
    return out.sortby("time")


def _merge(ds: xr.Dataset, members: list[int]) -> xr.Dataset:
    members = sorted(members, key=lambda i: ds["time"].values[i])
    part = ds.isel(time=members)
    if len(members) == 1:
        return part
    valid = (part["flags"] & np.uint16(Flag.NODATA)) == 0
    merged: dict[Hashable, xr.DataArray] = {}
    for name, var in part.data_vars.items():
        if "time" not in var.dims:
            merged[name] = var
            continue
        out = var.isel(time=0)
        taken = valid.isel(time=0)
        for k in range(1, len(members)):
            use = valid.isel(time=k) & ~taken
            out = var.isel(time=k).where(use, out)
            taken = taken | valid.isel(time=k)
        merged[name] = out.astype(var.dtype)
    result = xr.Dataset(merged, attrs=ds.attrs)
    coords: dict[Hashable, Any] = {"time": part["time"].values[0]}
    for name, coord in part.coords.items():
        if name == "time" or coord.dims != ("time",):
            continue
        values = coord.values
        if np.issubdtype(values.dtype, np.number):
            coords[name] = (
                np.nanmean(values.astype(float))
                if np.isfinite(values.astype(float)).any()
                else np.nan
            )
        else:
            coords[name] = "+".join(dict.fromkeys(str(v) for v in values))
    result = result.assign_coords({k: v for k, v in coords.items()})
    return result.expand_dims("time").transpose("time", ...)
