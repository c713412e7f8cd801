"""A geographic output grid (EPSG:4326, degrees) on every engine, over the demo catalog.

The same area on the projected grid `load` chooses by itself is the reference: each scene
covers the same share of the area and has the same cloud fraction on either grid, up to the
pixels along the curved edges of one grid's image in the other.
"""

from __future__ import annotations

import numpy as np
import pytest

import clearcube as cc
from clearcube.resources import demo_catalog_path

CATALOG = demo_catalog_path()
BBOX = (-54.035, -3.025, -53.965, -2.985)  # README "Searching and loading"
RES_DEG = 0.0002
ENGINES = ["native", "odc", "stackstac"]


@pytest.fixture(scope="module")
def items():
    found = cc.search(BBOX, "2023-01-01/..", source=str(CATALOG), max_cloud=50)
    assert {cc.identify(i).sensor for i in found} == {"sentinel-2", "landsat"}
    return found


@pytest.fixture(scope="module")
def projected(items):
    ds = cc.load(items, bbox=BBOX)
    assert ds.odc.geobox.crs.epsg != 4326
    return cc.cloud_fraction(ds), float(ds["red"].mean())


@pytest.mark.parametrize("engine", ENGINES)
def test_geographic_grid_on_every_engine(items, projected, engine):
    ds = cc.load(
        items,
        bbox=BBOX,
        options=cc.LoadOptions(engine=engine),
        mask=cc.MaskConfig(crs="EPSG:4326", resolution=RES_DEG),
    )
    west, south, east, north = BBOX
    assert ds["flags"].dims == ("time", "y", "x")
    assert ds.sizes["y"] == round((north - south) / RES_DEG)
    assert ds.sizes["x"] == round((east - west) / RES_DEG)
    assert ds.odc.geobox.crs.epsg == 4326
    y, x = ds["y"].values, ds["x"].values
    assert (np.diff(y) < 0).all()
    assert (np.diff(x) > 0).all()
    assert south < y.min() < y.max() < north
    assert west < x.min() < x.max() < east

    ours = cc.cloud_fraction(ds)
    ref, ref_red = projected
    assert list(ours["id"]) == list(ref["id"])
    share = ours["valid_px"] / ours["aoi_px"]
    ref_share = ref["valid_px"] / ref["aoi_px"]
    np.testing.assert_allclose(share.to_numpy(), ref_share.to_numpy(), atol=0.01)
    np.testing.assert_allclose(
        ours["cloud_fraction"].to_numpy(), ref["cloud_fraction"].to_numpy(), atol=0.01
    )
    assert (ours["valid_px"] > 0).all()  # every scene covers part of the area
    assert float(ds["red"].mean()) == pytest.approx(ref_red, rel=0.01)


@pytest.mark.parametrize("engine", ENGINES)
def test_geographic_grid_with_a_polygon_and_a_band_no_scene_has(items, engine):
    # the AOI mask and the empty band of scenes without that asset lie on the same y/x axes
    polygon = {
        "type": "Polygon",
        "coordinates": [[[-54.03, -3.02], [-53.97, -3.02], [-54.0, -2.99], [-54.03, -3.02]]],
    }
    assert not any("blue" in cc.identify(i).bands for i in items)  # the demo has red and nir
    ds = cc.load(
        items,
        geometry=polygon,
        options=cc.LoadOptions(bands=("red", "blue"), engine=engine),
        mask=cc.MaskConfig(crs="EPSG:4326", resolution=RES_DEG),
    )
    assert ds["aoi"].dims == ("y", "x")
    assert ds["blue"].dims == ds["red"].dims == ("time", "y", "x")
    assert ds["flags"].dtype == np.uint16  # no misaligned axes filled with NaN
    table = cc.cloud_fraction(ds)
    inside = int(ds["aoi"].sum())
    assert (table["aoi_px"] == inside).all()
    assert 0 < inside < 0.75 * ds.sizes["y"] * ds.sizes["x"]  # a triangle, not its bbox
    assert bool(ds["blue"].isnull().all())
    assert bool(ds["red"].notnull().any())
