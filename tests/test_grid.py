"""The output grid: CRS choice, native resolution, pixel edges on the source grid, bad input."""

from __future__ import annotations

import json

import pytest

import clearcube as cc
from clearcube.errors import GridError
from clearcube.grid import aoi_bounds, choose_crs, output_geobox, utm_zone

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def es(realdata):
    folder = realdata / "stac" / "earth-search-v1" / "sentinel-2-l2a" / "items"
    names = ["S2A_32TMT_20200305_1_L2A", "S2A_32TNT_20200305_1_L2A", "S2A_32UMU_20200305_1_L2A"]
    return [cc.identify(json.loads((folder / f"{n}.json").read_text())) for n in names]


@pytest.fixture(scope="module")
def landsat(realdata):
    path = (
        realdata
        / "stac"
        / "earth-search-v1"
        / "sentinel-2-l2a"
        / "search_multi-collection_s2l2a+landsat_2023-10-08.json"
    )
    doc = json.loads(path.read_text())
    return [cc.identify(f) for f in doc["features"]]


def test_native_grid_snapped_to_source_pixels(es):
    gb = output_geobox(es, bbox=(9.0, 47.0, 9.1, 47.1))
    assert gb.crs.epsg == 32632
    assert gb.resolution.x == 20
    assert gb.resolution.y == -20
    # Sentinel-2 20 m edges lie on multiples of 20 m from the tile origin (399960, 5300040)
    assert (gb.affine.c - 399960) % 20 == 0
    assert (gb.affine.f - 5300040) % 20 == 0
    assert gb.shape.x * 20 >= 7000  # about 7.6 km of longitude at 47 N


def test_landsat_grid_edges_on_the_30m_grid(landsat):
    ls = [p for p in landsat if p.sensor == "landsat"]
    gb = output_geobox(ls, bbox=(-105.2, 40.1, -105.0, 40.2))
    assert gb.crs.epsg == 32613
    assert gb.resolution.x == 30
    assert (gb.affine.c - 449085) % 30 == 0  # USGS grid edges: 15 m off the 30 m lattice
    assert (gb.affine.f - 4581915) % 30 == 0


def test_user_crs_and_resolution(es):
    gb = output_geobox(es, bbox=(9.0, 47.0, 9.1, 47.1), crs="EPSG:32633", resolution=30)
    assert gb.crs.epsg == 32633
    assert gb.resolution.x == 30
    assert gb.affine.c % 30 == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crs": "EPSG:4326", "resolution": 10}, "10 degrees per pixel"),
        ({"resolution": 1}, "finer than a tenth of the native 20"),
        ({"bbox": (9.0, 47.0, 9.0001, 47.0001)}, "smaller than one 20 pixel"),
        ({"bbox": (120.0, -10.0, 121.0, -9.0)}, "no item overlaps"),
        ({"bbox": (9.0, 95.0, 9.1, 96.0)}, r"outside \[-90, 90\]"),
        ({"bbox": (9.0, 48.0, 9.1, 47.0)}, "south 48.0 is not below north"),
        ({"bbox": (170.0, 0.0, -170.0, 1.0)}, "antimeridian"),
    ],
)
def test_bad_grids_give_one_line(es, kwargs, match):
    kwargs.setdefault("bbox", (9.0, 47.0, 9.1, 47.1))
    with pytest.raises(GridError, match=match) as exc:
        output_geobox(es, **kwargs)
    assert "\n" not in str(exc.value)


def test_utm_zone_and_hemisphere():
    assert utm_zone("EPSG:32722") == (22, "S")
    assert utm_zone("EPSG:32613") == (13, "N")
    assert utm_zone("EPSG:3031") is None
    assert aoi_bounds((170, 0, -170, 1)) == (170.0, 0.0, -170.0, 1.0)


def test_most_common_zone_in_the_aoi_hemisphere(es):
    # Landsat writes southern scenes as EPSG:326xx; an AOI south of the equator gets 327xx
    assert choose_crs(es, (9.0, -1.0, 9.1, -0.9)) == "EPSG:32732"
    assert choose_crs(es, (9.0, 47.0, 9.1, 47.1)) == "EPSG:32632"
