"""Solar-day grouping: adjacent tiles of one pass become one slice, valid data preferred."""

from __future__ import annotations

import numpy as np

import clearcube as cc
from clearcube import Flag
from clearcube.cube import first_valid, take_member
from clearcube.plan import plan, solar_days
from clearcube.resources import demo_catalog_path

N = Flag.NODATA
DEMO = demo_catalog_path()


def test_solar_day_follows_longitude():
    t = np.datetime64("2024-01-05T23:30")
    assert solar_days([t, t], [0.0, 15.0]) == ["2024-01-05", "2024-01-06"]
    assert solar_days([np.datetime64("2024-01-05T01:00")], [-54.0]) == ["2024-01-04"]


def test_tiles_of_one_pass_merge_preferring_valid_pixels():
    flags = np.array(
        [
            [[0, N, N]],  # tile A, west part valid
            [[Flag.CLOUD, Flag.CLOUD, N]],  # tile B, overlaps A at x=0
        ],
        dtype=np.uint16,
    )
    red = np.array([[[1.0, np.nan, np.nan]], [[2.0, 3.0, np.nan]]], dtype=np.float32)
    index = first_valid(flags)
    np.testing.assert_array_equal(index, [[[0, 1, 0]]])  # no valid member: the first one
    np.testing.assert_array_equal(take_member(index, flags), [[[0, Flag.CLOUD, N]]])
    np.testing.assert_array_equal(
        take_member(index, red), np.array([[[1.0, 3.0, np.nan]]], np.float32)
    )
    assert take_member(index, flags).dtype == np.uint16


def test_passes_merge_and_platforms_stay_apart():
    items = list(cc.search(source=str(DEMO)))
    bbox = (-54.035, -3.025, -53.965, -2.985)
    grouped = plan(items, bbox=bbox, group_by="solar_day")
    single = plan(items, bbox=bbox)
    assert len(single.slices) == 13
    assert len(grouped.slices) == 5 + 3  # five Sentinel-2 passes of two tiles, three Landsat
    for sl in grouped.slices:
        assert len({m.platform for m in sl.members}) == 1
        assert sl.id == "+".join(m.id for m in sl.members)
    landsat = [sl for sl in grouped.slices if sl.sensor == "landsat"]
    assert {sl.platform for sl in landsat} == {"landsat-8", "landsat-9"}
    assert all(len(sl.members) == 1 for sl in landsat)
    merged = [sl for sl in grouped.slices if len(sl.members) == 2]
    assert len(merged) == 5
    for sl in merged:
        assert sl.cloud_cover == np.mean([m.cloud_cover for m in sl.members])
