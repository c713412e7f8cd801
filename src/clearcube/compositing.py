"""Temporal composites of clear reflectance, with a per-pixel count of clear observations.

Methods are small objects with one method (``__call__``) that turn one period's
``(time, y, x)`` bands into ``(y, x)`` bands:

- ``median``: the per-band median of clear observations (NaN where none);
- ``medoid``: the clear observation closest (Euclidean, over the bands) to the per-pixel
  median, so every output pixel is one real observation; the cube also says which scene.

No-data and masked pixels never enter a composite; ``clear_count`` says how many did, and
``first_clear`` / ``last_clear`` when (days since 1970-01-01 of the first and last clear
observation, uint16, :data:`NO_DATE` where none): per-pixel provenance, computed in the same pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xarray as xr

from .errors import ConfigError

__all__ = [
    "METHODS",
    "NO_DATE",
    "Median",
    "Medoid",
    "composite",
    "epoch_days",
    "nanmedian_first",
    "nanmedian_last",
    "nanmedian_slices",
    "period_labels",
]


class CompositeMethod(Protocol):
    name: str

    def __call__(self, bands: xr.Dataset) -> xr.Dataset: ...


def nanmedian_last(a: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN (NaN where every value is NaN), bit for bit what
    ``np.nanmedian`` gives, from one sort: NaN sorts last, so the median of a pixel's ``n``
    valid values is its middle one (odd ``n``) or the mean of the two middle ones, computed in
    the array's own dtype as numpy does. Measured 6.5x faster than ``np.nanmedian`` on a
    1024 x 1024 x 16 float32 block with half the values NaN (0.36 s vs 2.36 s)."""
    ordered = np.sort(a, axis=-1)
    n = np.count_nonzero(~np.isnan(a), axis=-1)
    last = a.shape[-1] - 1
    low = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[..., None], -1)[..., 0]
    high = np.take_along_axis(ordered, np.minimum(n // 2, last)[..., None], -1)[..., 0]
    half = np.asarray(2, dtype=a.dtype)
    out = np.where(n % 2 == 1, low, (low + high) / half).astype(a.dtype, copy=False)
    out[n == 0] = np.nan
    return out


#: Up to this many observations, the median is taken with a sorting network over the time
#: axis (2-D passes of minimum and maximum, no per-pixel sort): 1.3x faster at 4 dates.
NETWORK_MAX = 8


def nanmedian_first(a: np.ndarray) -> np.ndarray:
    """:func:`nanmedian_last` over the *first* axis of a ``(time, y, x)`` block, bit for bit
    the same values (see :func:`nanmedian_slices`)."""
    return nanmedian_slices(*a)


def nanmedian_slices(*slices: np.ndarray) -> np.ndarray:
    """:func:`nanmedian_last` of the observations ``slices`` (2-D arrays of one shape, one
    per time), bit for bit the same values. For a few observations by an odd-even
    transposition network on whole 2-D slices (NaN as +inf, so missing values sort last), the
    middle values picked per pixel by masked copies; no ``(time, y, x)`` block is assembled,
    so a dask caller can hand over its per-time chunks as they are. More observations than
    ``NETWORK_MAX``: :func:`nanmedian_last` over the stacked slices."""
    k = len(slices)
    if k > NETWORK_MAX:
        return nanmedian_last(np.stack(slices, axis=-1))
    dtype = np.result_type(*slices)
    inf = np.asarray(np.inf, dtype=dtype)
    n = np.zeros(slices[0].shape, dtype=np.int8)  # valid observations per pixel
    x = []
    for s in slices:
        missing = np.isnan(s)
        n += ~missing
        x.append(np.where(missing, inf, s).astype(dtype, copy=False))
    for i in range(k):
        for j in range(i % 2, k - 1, 2):
            low = np.minimum(x[j], x[j + 1])
            np.maximum(x[j], x[j + 1], out=x[j + 1])
            x[j] = low
    lower_at = np.maximum((n - 1) // 2, 0)
    upper_at = np.minimum(n // 2, k - 1)
    lower, upper = x[0].copy(), x[0].copy()
    for i in range(1, k):
        np.copyto(lower, x[i], where=lower_at == i)
        np.copyto(upper, x[i], where=upper_at == i)
    out: np.ndarray = (lower + upper) / np.asarray(2, dtype=dtype)
    np.copyto(out, lower, where=(n % 2) == 1)
    out[n == 0] = np.nan
    return out.astype(dtype, copy=False)


def _nanmedian(bands: xr.Dataset) -> xr.Dataset:
    """Median over time ignoring NaN; all-NaN pixels give NaN without a warning. A dask
    band is taken chunk by chunk over its per-time chunks as they are (no rechunking into one
    time block first)."""
    import dask.array as da

    out = {}
    for name, band in bands.data_vars.items():
        band = band.transpose("time", ...)
        if hasattr(band.data, "map_blocks"):
            data = band.data
            if data.shape[0] > NETWORK_MAX:
                data = data.rechunk({0: -1}).map_blocks(
                    nanmedian_first, drop_axis=0, dtype=np.float32
                )
            else:
                data = da.map_blocks(
                    nanmedian_slices,
                    *(data[t] for t in range(data.shape[0])),
                    dtype=np.float32,
                    meta=np.empty((0,) * (data.ndim - 1), dtype=np.float32),
                )
        else:
            data = nanmedian_first(np.asarray(band.values))
        coords = {k: v for k, v in band.coords.items() if "time" not in v.dims}
        out[name] = xr.DataArray(data, dims=band.dims[1:], coords=coords)
    return xr.Dataset(out)


class Median:
    """Per-band median of the clear observations."""

    name = "median"

    def __call__(self, bands: xr.Dataset) -> xr.Dataset:
        return _nanmedian(bands).astype(np.float32)


def _medoid_block(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per pixel, the observation (last axis) closest to the median over all bands."""
    stack = np.stack(arrays).astype(np.float64)  # (band, ..., time)
    missing = np.asarray(np.isnan(stack).any(axis=0))  # an observation needs every band
    empty = np.asarray(missing.all(axis=-1))
    filled = np.where(missing[None] | np.expand_dims(empty, (0, -1)), np.nan, stack)
    safe = np.where(np.expand_dims(empty, (0, -1)), 0.0, filled)
    median = np.nanmedian(safe, axis=-1, keepdims=True)
    distance = np.where(missing, np.inf, ((safe - median) ** 2).sum(axis=0))
    index = distance.argmin(axis=-1)
    chosen = np.take_along_axis(stack, index[None, ..., None], axis=-1)[..., 0]
    chosen[:, empty] = np.nan
    index = np.where(empty, -1, index).astype(np.int16)
    return (*(c.astype(np.float32) for c in chosen), index)


class Medoid:
    """The clear observation closest to the per-pixel median (geedim's medoid)."""

    name = "medoid"

    def __call__(self, bands: xr.Dataset) -> xr.Dataset:
        names = list(bands.data_vars)
        if hasattr(bands[names[0]].data, "chunks"):
            bands = bands.chunk({"time": -1})  # one block over time per pixel
        outputs = xr.apply_ufunc(
            _medoid_block,
            *(bands[n] for n in names),
            input_core_dims=[["time"]] * len(names),
            output_core_dims=[[]] * (len(names) + 1),
            dask="parallelized",
            output_dtypes=[np.float32] * len(names) + [np.int16],
        )
        out = xr.Dataset({n: o for n, o in zip(names, outputs[:-1], strict=True)})
        out["source_index"] = outputs[-1]
        return out


METHODS: dict[str, CompositeMethod] = {"median": Median(), "medoid": Medoid()}


def _count_slices(*slices: np.ndarray) -> np.ndarray:
    count = np.zeros(slices[0].shape, dtype=np.uint16)
    for s in slices:
        count += s.astype(bool, copy=False)
    return count


def _clear_count(clear: xr.DataArray) -> xr.DataArray:
    """Clear observations per pixel (uint16); a dask array is counted over its per-time
    chunks as they are (no reduction tree of int64 partial sums)."""
    clear = clear.transpose("time", ...)
    coords = {k: v for k, v in clear.coords.items() if "time" not in v.dims}
    data = clear.data
    if hasattr(data, "map_blocks") and data.shape[0] > 0:
        import dask.array as da

        counted = da.map_blocks(
            _count_slices,
            *(data[t] for t in range(data.shape[0])),
            dtype=np.uint16,
            meta=np.empty((0,) * (data.ndim - 1), dtype=np.uint16),
        )
    else:
        values = np.asarray(clear.values)
        counted = values.astype(bool).sum(axis=0, dtype=np.uint16)
    return xr.DataArray(counted, dims=clear.dims[1:], coords=coords)


#: ``first_clear`` / ``last_clear`` where a pixel has no clear observation: the largest
#: uint16 (days since 1970-01-01 fit a uint16 until 2149; half the bytes of int32, and its
#: COGs compress in half the time).
NO_DATE = 65535


def epoch_days(times: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 (int32) of naive-UTC times: the date of each observation."""
    days = pd.DatetimeIndex(times).values.astype("datetime64[D]").astype(np.int64)
    return np.asarray(days, dtype=np.int32)


def _dates_slices(*slices: np.ndarray, days: tuple[int, ...]) -> np.ndarray:
    """First and last date (``(2, y, x)`` uint16) of the clear observations ``slices``."""
    # branch-free, per slice a product and a maximum: the latest date + 1 (0 where never
    # clear, so - 1 wraps to NO_DATE) and NO_DATE - the earliest date (0 where never clear,
    # so NO_DATE - 0 is NO_DATE): 41 ms on 16 random masks of 1024 x 1024, where masked
    # copies took 360 ms and np.where with minimum/maximum 389 ms
    last = np.zeros(slices[0].shape, dtype=np.uint16)
    early = np.zeros(slices[0].shape, dtype=np.uint16)
    for s, day in zip(slices, days, strict=True):
        clear = s.astype(bool, copy=False).view(np.uint8)
        np.maximum(last, clear * np.uint16(day + 1), out=last)
        np.maximum(early, clear * np.uint16(NO_DATE - day), out=early)
    out = np.empty((2, *slices[0].shape), dtype=np.uint16)
    np.subtract(np.uint16(NO_DATE), early, out=out[0])
    np.subtract(last, np.uint16(1), out=out[1])
    return out


def _clear_dates(clear: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Per pixel, the dates (days since 1970-01-01, uint16, :data:`NO_DATE` where none) of
    the first and last clear observation, over the per-time chunks as they are."""
    clear = clear.transpose("time", ...)
    days = tuple(int(d) for d in epoch_days(clear["time"].values))
    if any(not 0 <= d < NO_DATE for d in days):
        raise ConfigError(
            f"observation dates {min(days)}..{max(days)} days after 1970-01-01 do not fit the "
            "clear-date bands (1970-2149): check the items' datetimes"
        )
    coords = {k: v for k, v in clear.coords.items() if "time" not in v.dims}
    data = clear.data
    if hasattr(data, "map_blocks") and data.shape[0] > 0:
        import dask.array as da

        both = da.map_blocks(
            _dates_slices,
            *(data[t] for t in range(data.shape[0])),
            days=days,
            new_axis=0,
            chunks=((2,), *data.chunks[1:]),
            dtype=np.uint16,
            meta=np.empty((0,) * data.ndim, dtype=np.uint16),
        )
    else:
        both = _dates_slices(*np.asarray(clear.values), days=days)
    dims = clear.dims[1:]
    return (
        xr.DataArray(both[0], dims=dims, coords=coords),
        xr.DataArray(both[1], dims=dims, coords=coords),
    )


def period_labels(times: Sequence[Any] | np.ndarray, period: str) -> list[str]:
    """A label per time: ``monthly`` (2024-07), ``quarterly`` (2024Q3), ``yearly`` (2024),
    ``all`` (one composite)."""
    stamps = pd.DatetimeIndex(times)
    if period == "monthly":
        return [t.strftime("%Y-%m") for t in stamps]
    if period == "quarterly":
        return [f"{t.year}Q{t.quarter}" for t in stamps]
    if period == "yearly":
        return [str(t.year) for t in stamps]
    if period == "all":
        return ["all"] * len(stamps)
    raise ConfigError(f"unknown composite period {period!r}; use monthly, quarterly, yearly or all")


def composite(
    ds: xr.Dataset,
    period: str = "monthly",
    method: str = "median",
    bands: Sequence[str] | None = None,
) -> xr.Dataset:
    """Composite the clear reflectance of a :func:`clearcube.load` cube per period.

    Returns
    -------
    xarray.Dataset
        Dimensions ``(period, y, x)``: each band (float32), ``clear_count`` (uint16: clear
        observations per pixel), ``first_clear`` and ``last_clear`` (uint16: days since
        1970-01-01 of the first and last clear observation, :data:`NO_DATE` where none), and
        for ``medoid`` ``source_index`` (the position in
        ``ds.time`` of the observation chosen per pixel, -1 where none: ``ds.id[index]`` names
        the scene).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown composite method {method!r}; use {', '.join(METHODS)}")
    names = (
        list(bands)
        if bands is not None
        else [
            v
            for v in ds.data_vars
            if v not in ("flags", "clear", "aoi") and ds[v].dims == ("time", "y", "x")
        ]
    )
    if not names:
        raise ConfigError("the cube has no reflectance band to composite; load bands=(...)")
    labels = period_labels(ds["time"].values, period)
    parts = []
    for label in dict.fromkeys(labels):
        idx = [i for i, lab in enumerate(labels) if lab == label]
        sub = ds.isel(time=idx)
        out = METHODS[method](sub[names])
        out["clear_count"] = _clear_count(sub["clear"])
        out["first_clear"], out["last_clear"] = _clear_dates(sub["clear"])
        if "source_index" in out:
            # index into the period's scenes -> index into the whole cube's time axis
            lookup = np.asarray([*idx, -1], dtype=np.int16)
            out["source_index"] = xr.apply_ufunc(
                lambda a, lookup=lookup: lookup[a],
                out["source_index"],
                dask="parallelized",
                output_dtypes=[np.int16],
            )
        parts.append(out.expand_dims(period=[label]))
    result = xr.concat(parts, dim="period", combine_attrs="drop_conflicts")
    for name in names:
        result[name].attrs = {
            "long_name": f"{method} of clear {name} surface reflectance",
            "units": "1",
        }
    result["clear_count"].attrs = {"long_name": "number of clear observations"}
    for name, which in (("first_clear", "first"), ("last_clear", "last")):
        result[name].attrs = {
            "long_name": f"date of the {which} clear observation",
            "units": "days since 1970-01-01",
        }
    result.attrs.update(
        {"clearcube:composite_method": method, "clearcube:composite_period": period}
    )
    return result
