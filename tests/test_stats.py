"""cloud_fraction: over valid pixels only, inside the AOI, one row per scene."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clearcube import Flag, MaskConfig
from clearcube.errors import QAError
from clearcube.stats import CONFIG_ATTR, cloud_fraction


def cube(flags: np.ndarray, *, chunks=None) -> xr.Dataset:
    data = da.from_array(flags, chunks=chunks) if chunks else flags
    n = flags.shape[0]
    return xr.Dataset(
        {"flags": (("time", "y", "x"), data)},
        coords={
            "time": pd.date_range("2024-01-01", periods=n, freq="16D"),
            "id": ("time", [f"scene-{i}" for i in range(n)]),
            "platform": ("time", ["sentinel-2a"] * n),
            "eo:cloud_cover": ("time", [float(10 * i) for i in range(n)]),
        },
    )


def test_fraction_over_valid_pixels_only():
    flags = np.zeros((3, 4, 5), np.uint16)
    flags[0, :2, :] = Flag.NODATA  # 10 no-data, 10 valid
    flags[0, 2, :] = Flag.CLOUD  # 5 cloudy of 10 valid -> 0.5
    flags[1, 0, 0] = Flag.SNOW  # snow is kept -> 0.0
    flags[1, 0, 1] = Flag.SHADOW | Flag.DILATED  # one masked pixel counted once
    flags[2] = Flag.NODATA  # nothing valid -> NaN, never 0 or 1
    table = cloud_fraction(cube(flags))
    assert list(table["id"]) == ["scene-0", "scene-1", "scene-2"]
    assert list(table["valid_px"]) == [10, 20, 0]
    assert list(table["nodata_px"]) == [10, 0, 20]
    assert list(table["masked_px"]) == [5, 1, 0]
    assert table["cloud_fraction"].iloc[0] == 0.5
    assert table["cloud_fraction"].iloc[1] == pytest.approx(1 / 20)
    assert np.isnan(table["cloud_fraction"].iloc[2])
    assert list(table["over_threshold"].iloc[:2]) == [True, False]
    assert table["over_threshold"].isna().iloc[2]
    assert list(table["snow_px"]) == [0, 1, 0]
    assert list(table["dilated_px"]) == [0, 1, 0]
    assert list(table["provider_cloud_cover"]) == [0.0, 10.0, 20.0]
    assert isinstance(table.index, pd.DatetimeIndex)


def test_aoi_limits_the_count_and_dask_matches_numpy():
    rng = np.random.default_rng(3)
    flags = rng.choice(
        np.array([0, Flag.CLOUD, Flag.NODATA, Flag.WATER, Flag.CIRRUS], np.uint16), (4, 30, 20)
    )
    aoi = xr.DataArray(np.zeros((30, 20), bool), dims=("y", "x"))
    aoi[5:15, 2:12] = True
    eager = cloud_fraction(cube(flags), aoi=aoi)
    lazy = cloud_fraction(cube(flags, chunks=(1, 7, 6)), aoi=aoi)
    pd.testing.assert_frame_equal(eager, lazy)
    assert (eager["aoi_px"] == 100).all()
    sub = flags[:, 5:15, 2:12]
    valid = (sub & Flag.NODATA) == 0
    masked = ((sub & (Flag.CLOUD | Flag.CIRRUS)) != 0) & valid
    np.testing.assert_allclose(eager["cloud_fraction"], masked.sum((1, 2)) / valid.sum((1, 2)))


def test_config_from_argument_or_dataset():
    flags = np.zeros((1, 2, 2), np.uint16)
    flags[0, 0, 0] = Flag.CIRRUS
    ds = cube(flags)
    assert cloud_fraction(ds)["cloud_fraction"].iloc[0] == 0.25
    keep_cirrus = MaskConfig(masked_flags=("CLOUD",), cloud_threshold=0.1)
    assert cloud_fraction(ds, keep_cirrus)["cloud_fraction"].iloc[0] == 0.0
    ds.attrs[CONFIG_ATTR] = keep_cirrus.model_dump_json()
    table = cloud_fraction(ds)
    assert table["cloud_fraction"].iloc[0] == 0.0
    assert not table["over_threshold"].iloc[0]


def test_single_scene_without_time():
    flags = xr.DataArray(np.array([[Flag.CLOUD, 0], [0, Flag.NODATA]], np.uint16), dims=("y", "x"))
    table = cloud_fraction(flags)
    assert len(table) == 1
    assert table["cloud_fraction"].iloc[0] == pytest.approx(1 / 3)


@pytest.mark.parametrize("value", [-1, 512])
def test_flags_outside_the_vocabulary_are_refused_even_in_a_constant_block(value):
    # a constant block skips the bincount; its value is still checked (never counted as a
    # pattern it is not)
    flags = xr.DataArray(np.full((1, 4, 4), value, np.int16), dims=("time", "y", "x"))
    with pytest.raises(QAError, match="outside the clearcube vocabulary"):
        cloud_fraction(flags)
