"""Temporal composites of clear reflectance, with a per-pixel count of clear observations.

Methods are small objects with one method (``__call__``) that turn one period's
``(time, y, x)`` bands into ``(y, x)`` bands:

- ``median``: the per-band median of clear observations (NaN where none);
- ``medoid``: the clear observation closest (Euclidean, over the bands) to the per-pixel
  median, so every output pixel is one real observation; the cube also says which scene.

No-data and masked pixels never enter a composite; ``clear_count`` says how many did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xarray as xr

from .errors import ConfigError

__all__ = ["METHODS", "Median", "Medoid", "composite", "period_labels"]


class CompositeMethod(Protocol):
    name: str

    def __call__(self, bands: xr.Dataset) -> xr.Dataset: ...


def _nanmedian(bands: xr.Dataset) -> xr.Dataset:
    """Median over time ignoring NaN; all-NaN pixels give NaN without a warning."""

    def median(a: np.ndarray, axis: int) -> np.ndarray:
        # nanmedian warns on all-NaN pixels (and warning filters are not thread-safe): give
        # those pixels a dummy column and put NaN back afterwards
        empty = np.isnan(a).all(axis=axis)
        filled = np.where(np.expand_dims(empty, axis), 0, a)
        out: np.ndarray = np.nanmedian(filled, axis=axis)
        out[empty] = np.nan
        return out

    result: xr.Dataset = xr.apply_ufunc(
        median,
        bands,
        input_core_dims=[["time"]],
        kwargs={"axis": -1},
        dask="parallelized",
        output_dtypes=[np.float32],
    )
    return result


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
        observations per pixel), and for ``medoid`` ``source_index`` (the position in
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
        if hasattr(sub[names[0]].data, "chunks"):
            sub = sub.chunk({"time": -1})
        out = METHODS[method](sub[names])
        out["clear_count"] = sub["clear"].sum("time").astype(np.uint16)
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
    result.attrs.update(
        {"clearcube:composite_method": method, "clearcube:composite_period": period}
    )
    return result
