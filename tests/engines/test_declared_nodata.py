"""What an item declares as nodata, and which declared values a pixel can equal."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pystac
import pytest

from clearcube.engines import declared_nodata, nodata_values


def item_with(fields):
    item = pystac.Item("x", None, None, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), {})
    item.add_asset("qa", pystac.Asset(href="qa.tif", extra_fields=fields))
    return item


@pytest.mark.parametrize(
    ("fields", "want"),
    [
        ({"raster:bands": [{"nodata": 1, "data_type": "uint16"}]}, 1.0),  # raster v1
        ({"nodata": 255, "data_type": "uint8"}, 255.0),  # STAC 1.1, on the asset
        ({"raster:bands": [{"nodata": 0}], "nodata": 7}, 0.0),  # raster:bands first
        ({"raster:bands": [{"data_type": "uint8"}]}, None),
        ({}, None),
        ({"nodata": "nan"}, None),  # a string declares nothing a pixel can equal
        ({"nodata": True}, None),
        ({"raster:bands": "junk"}, None),
    ],
)
def test_declared_nodata(fields, want):
    assert declared_nodata(item_with(fields).assets["qa"].extra_fields) == want


def test_nodata_values_keep_only_what_a_pixel_can_equal_and_is_not_the_fill():
    u8 = np.dtype("uint8")
    assert nodata_values((None, 0.0, 4.0, 4.0), u8, 0) == (4.0,)
    assert nodata_values((-9999.0, 256.0, 1.5, float("nan")), u8, 0) == ()
    assert nodata_values((-9999.0,), np.dtype("int16"), 0) == (-9999.0,)
    assert nodata_values((1.5,), np.dtype("float32"), 0) == (1.5,)
