"""Solar-day grouping: adjacent tiles of one pass become one slice, valid data preferred."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from clearcube import Flag
from clearcube._group import group_solar_day, solar_days

N = Flag.NODATA


def test_solar_day_follows_longitude():
    t = np.datetime64("2024-01-05T23:30")
    assert solar_days([t, t], [0.0, 15.0]) == ["2024-01-05", "2024-01-06"]
    assert solar_days([np.datetime64("2024-01-05T01:00")], [-54.0]) == ["2024-01-04"]


def test_tiles_of_one_pass_merge_preferring_valid_pixels():
    flags = np.array(
        [
            [[0, N, N]],  # tile A, west part valid
            [[Flag.CLOUD, Flag.CLOUD, N]],  # tile B, overlaps A at x=0
            [[N, 0, 0]],  # another day
        ],
        dtype=np.uint16,
    )
    red = np.array(
        [[[1.0, np.nan, np.nan]], [[2.0, 3.0, np.nan]], [[np.nan, 5.0, 6.0]]], dtype=np.float32
    )
    times = pd.to_datetime(["2024-01-05T13:40:01", "2024-01-05T13:40:05", "2024-01-10T13:40:00"])
    ds = xr.Dataset(
        {
            "flags": (("time", "y", "x"), da.from_array(flags, chunks=1)),
            "red": (("time", "y", "x"), red),
        },
        coords={
            "time": times,
            "id": ("time", ["A", "B", "C"]),
            "platform": ("time", ["sentinel-2b"] * 3),
            "eo:cloud_cover": ("time", [10.0, 30.0, 5.0]),
        },
    )
    out = group_solar_day(ds, [-54.5, -53.5, -54.0])
    assert out.sizes["time"] == 2
    assert list(out["id"].values) == ["A+B", "C"]
    np.testing.assert_array_equal(out["flags"].values[0], [[0, Flag.CLOUD, N]])
    np.testing.assert_array_equal(out["red"].values[0], np.array([[1.0, 3.0, np.nan]], np.float32))
    assert out["flags"].dtype == np.uint16
    assert out["eo:cloud_cover"].values[0] == 20.0
    assert out["time"].values[0] == times[0]
    np.testing.assert_array_equal(out["flags"].values[1], flags[2])


def test_different_platforms_stay_apart():
    flags = np.zeros((2, 1, 1), np.uint16)
    times = pd.to_datetime(["2024-01-05T13:40", "2024-01-05T13:45"])
    ds = xr.Dataset(
        {"flags": (("time", "y", "x"), flags)},
        coords={"time": times, "platform": ("time", ["landsat-8", "landsat-9"])},
    )
    assert group_solar_day(ds, [-54, -54]).sizes["time"] == 2
