"""Plans and output grids of scenes south of the equator written in UTM north-zone codes.

HLS (like Landsat) writes a southern MGRS tile in the north-zone code with negative northings
(T19LDD: EPSG:32619, top -1599960 m); Sentinel-2 writes the same place in the south code
(EPSG:32719, top 8400040 m). The two differ by the 10,000,000 m false northing, which is no
multiple of 30 m: a grid in the other code cannot share the HLS pixel edges.
"""

from __future__ import annotations

import copy
import json

import pytest
from pyproj import Transformer

import clearcube as cc
from clearcube.grid import choose_crs, footprint_bounds, output_geobox

pytestmark = pytest.mark.realdata

HLS_DIR = ("stac-more", "stactools-generated", "hls")
S30 = "HLS.S30.T19LDD.2022166T144741.v2.0.json"
L30 = "HLS.L30.T19LDD.2022165T144027.v2.0.json"
TOP, LEFT = -1599960.0, 399960.0  # T19LDD's HLS grid origin in EPSG:32619


@pytest.fixture(scope="module")
def hls(realdata):
    folder = realdata.joinpath(*HLS_DIR)
    return {name: json.loads((folder / name).read_text()) for name in (S30, L30)}


def south_code_variant(item: dict) -> dict:
    """The same tile written as Sentinel-2 writes southern tiles: EPSG:327zz, +10,000 km."""
    out = copy.deepcopy(item)
    out["id"] += "-south-code"
    props = out["properties"]
    props["proj:epsg"] = props["proj:epsg"] + 100
    tf = list(props["proj:transform"])
    tf[5] += 10_000_000.0
    props["proj:transform"] = tf
    return out


def test_hls_plans_keep_the_stated_north_zone_grid(hls):
    for item in hls.values():
        plan = cc.identify(item)
        assert plan.crs == "EPSG:32619"
        assert plan.qa_grid.shape_yx == (3660, 3660)
        assert plan.qa_grid.transform == (30.0, 0.0, LEFT, 0.0, -30.0, TOP)
        left, bottom, right, top = plan.qa_grid.bounds
        assert (left, top) == (LEFT, TOP)
        assert bottom == TOP - 3660 * 30
        assert right == LEFT + 3660 * 30
        assert plan.notes == ()
        # the grid is where the item's lon/lat bbox says: about 14.5-15.5 S, 69-70 W
        to_ll = Transformer.from_crs(plan.crs, "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform((left + right) / 2, (bottom + top) / 2)
        west, south, east, north = item["bbox"]
        assert west < lon < east
        assert south < lat < north


def test_hls_output_grid_is_the_items_own(hls):
    plans = [cc.identify(i) for i in hls.values()]
    whole = output_geobox(plans)
    assert whole.crs.epsg == 32619
    assert tuple(whole.shape) == (3660, 3660)
    assert (whole.affine.c, whole.affine.f, whole.resolution.x) == (LEFT, TOP, 30)
    aoi = output_geobox(plans, bbox=(-69.5, -15.0, -69.4, -14.9))
    assert aoi.crs.epsg == 32619
    assert (aoi.affine.c - LEFT) % 30 == 0
    assert (aoi.affine.f - TOP) % 30 == 0
    # the AOI lies south of the equator, and the items' own code still wins
    assert choose_crs(plans, (-69.5, -15.0, -69.4, -14.9)) == "EPSG:32619"


def test_south_code_variant_is_the_same_place_in_the_other_code(hls):
    item = hls[S30]
    variant = cc.identify(south_code_variant(item))
    plan = cc.identify(item)
    assert variant.crs == "EPSG:32719"
    assert variant.qa_grid.transform[5] == TOP + 10_000_000
    # the same pixel corner in both codes
    north = Transformer.from_crs("EPSG:32619", "EPSG:4326", always_xy=True)
    south = Transformer.from_crs("EPSG:32719", "EPSG:4326", always_xy=True)
    a = north.transform(LEFT, TOP)
    b = south.transform(LEFT, TOP + 10_000_000)
    assert a == pytest.approx(b, abs=1e-9)
    alone = output_geobox([variant])
    assert alone.crs.epsg == 32719
    assert (alone.affine.c, alone.affine.f) == (LEFT, TOP + 10_000_000)
    # the footprint of the north-code plan lands on the same box in the south code
    fb = footprint_bounds(plan, "EPSG:32719")
    assert fb[3] == pytest.approx(TOP + 10_000_000, abs=2000)


def test_the_code_most_southern_items_use_wins(hls):
    plans = [cc.identify(i) for i in hls.values()]
    variant = cc.identify(south_code_variant(hls[S30]))
    aoi = (-69.5, -15.0, -69.4, -14.9)
    assert choose_crs([*plans, variant], aoi) == "EPSG:32619"  # two north-code, one south
    assert choose_crs([plans[1], variant], aoi) == "EPSG:32719"  # a tie: the south code
    gb = output_geobox([*plans, variant], bbox=aoi)
    assert (gb.affine.f - TOP) % 30 == 0  # on the HLS pixel edges, not 10 m off them


def test_landsat_south_of_the_equator_keeps_its_north_zone_grid(realdata):
    path = realdata / "stac-more/planetary-computer/landsat-c2-l2"
    path /= "LC09_L2SP_089080_20231008_02_T1.json"
    plan = cc.identify(json.loads(path.read_text()))
    assert plan.crs == "EPSG:32656"
    top = plan.qa_grid.transform[5]
    assert top < 0
    gb = output_geobox([plan], bbox=(152.8, -29.0, 153.0, -28.8))
    assert gb.crs.epsg == 32656
    assert (gb.affine.f - top) % 30 == 0
    assert (gb.affine.c - plan.qa_grid.transform[2]) % 30 == 0


def test_northern_items_with_a_southern_aoi_still_get_the_south_code(realdata):
    # no item of the zone lies south of the equator: the AOI's hemisphere decides, as before
    folder = realdata / "stac" / "earth-search-v1" / "sentinel-2-l2a" / "items"
    plan = cc.identify(json.loads((folder / "S2A_32TMT_20200305_1_L2A.json").read_text()))
    assert choose_crs([plan], (9.0, -1.0, 9.1, -0.9)) == "EPSG:32732"
