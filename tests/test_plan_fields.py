"""Mangled fields of real items: a one-line ItemError naming the item, the field and the fix,
or a plan that ignores the field and says so in ``ScenePlan.notes``."""

from __future__ import annotations

import copy
import json

import pytest

import clearcube as cc
from clearcube.sensors.plan import Fallback, ScenePlan, plan_items

pytestmark = pytest.mark.realdata

ES = "stac/earth-search-v1/sentinel-2-l2a/items/S2A_32TMT_20200305_1_L2A.json"
PC = (
    "stac-more/planetary-computer/sentinel-2-l2a/"
    "S2A_MSIL2A_20230216T145731_R082_T21UYT_20230217T083102.json"
)
LANDSAT = "stac-more/planetary-computer/landsat-c2-l2/LC09_L2SP_089080_20231008_02_T1.json"


@pytest.fixture(scope="module")
def items(realdata):
    return {
        name: json.loads((realdata / path).read_text())
        for name, path in (("es", ES), ("pc", PC), ("landsat", LANDSAT))
    }


def mangled(item: dict, edit) -> dict:
    out = copy.deepcopy(item)
    edit(out)
    return out


def refused(item: dict, *words: str) -> str:
    with pytest.raises(cc.ItemError) as exc:
        cc.identify(item)
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(f"{item.get('id')}:") or text.startswith("<no id>:")
    for word in words:
        assert word in text, text
    (fallback,) = plan_items([item])
    assert isinstance(fallback, Fallback)
    assert fallback.reason == text
    return text


def ignored(item: dict, *words: str) -> ScenePlan:
    plan = cc.identify(item)
    assert isinstance(plan, ScenePlan)
    assert any(all(w in note for w in words) for note in plan.notes), plan.notes
    assert all("\n" not in note for note in plan.notes)
    return plan


def set_prop(key, value):
    def edit(item):
        item["properties"][key] = value

    return edit


def set_asset(asset, key, value):
    def edit(item):
        item["assets"][asset][key] = value

    return edit


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([1, 2], ("properties is a list", "fix it")),
        ("x", ("properties is a string",)),
        (None, ("properties is missing",)),
    ],
)
def test_properties_must_be_an_object(items, value, words):
    refused(mangled(items["es"], lambda i: i.__setitem__("properties", value)), *words)


def test_assets_must_be_an_object(items):
    item = mangled(items["es"], lambda i: i.__setitem__("assets", list(i["assets"].values())))
    refused(item, "assets is a list", "keyed by asset name", "fix the item")


def test_the_id_is_required(items):
    refused(mangled(items["es"], lambda i: i.pop("id")), "<no id>: the item has no id", "needs")
    refused(mangled(items["es"], lambda i: i.__setitem__("id", 7)), "<no id>", "id 7 is no string")
    broken = mangled(items["es"], lambda i: i.__setitem__("id", "0\n"))
    assert refused(broken, "control characters").startswith("<no id>: the item's id '0\\n'")
    # an asset key with a line break is shown escaped, the message stays one line
    odd = mangled(items["es"], lambda i: i["assets"].__setitem__("a\nb", 3))
    assert any("asset 'a\\nb'" in n for n in cc.identify(odd).notes)


@pytest.mark.parametrize("value", ["yesterday", "2024-13-45T00:00:00Z", 20240101, ["2024"]])
def test_a_datetime_that_is_not_rfc3339(items, value):
    item = mangled(items["es"], set_prop("datetime", value))
    refused(item, "properties.datetime", "RFC 3339", "fix the item")


def test_no_datetime_at_all(items):
    item = mangled(items["es"], lambda i: i["properties"].pop("datetime"))
    refused(item, "no datetime", "start_datetime")
    # a null datetime with start_datetime is a valid STAC range item
    item["properties"]["start_datetime"] = "2020-03-05T10:00:00Z"
    assert cc.identify(item).datetime.isoformat() == "2020-03-05T10:00:00+00:00"


def test_a_qa_asset_without_href(items):
    item = mangled(items["es"], lambda i: i["assets"]["scl"].pop("href"))
    refused(item, "QA asset scl has no href", "fix the item")
    refused(mangled(items["es"], set_asset("scl", "href", 12)), "QA asset scl")
    item = mangled(items["es"], lambda i: i["assets"].__setitem__("scl", "scl.tif"))
    refused(item, "QA asset scl")


def test_a_band_asset_without_href_is_not_planned(items):
    def edit(item):
        item["assets"]["nir"].pop("href")
        item["assets"]["nir-jp2"]["href"] = None

    plan = ignored(mangled(items["es"], edit), "asset nir")
    assert "nir" not in plan.bands
    assert "red" in plan.bands
    # with only the COG broken, Earth Search's JPEG 2000 twin of the band (eo:bands name nir)
    # is the band
    plan = ignored(mangled(items["es"], lambda i: i["assets"]["nir"].pop("href")), "asset nir")
    assert plan.bands["nir"].asset == "nir-jp2"


@pytest.mark.parametrize(
    "value", [[1, 2, 3], [0, 0, 1, 2, 3], "x", [1, 2, "a", 4], [200, 0, 10, 1], [0, 5, 1, 4]]
)
def test_a_bbox_that_is_not_4_numbers_is_ignored(items, value):
    plan = ignored(mangled(items["es"], lambda i: i.__setitem__("bbox", value)), "bbox")
    assert plan.bbox is None


def test_a_3d_bbox_keeps_its_lon_lat(items):
    def edit(item):
        w, s, e, n = item["bbox"]
        item["bbox"] = [w, s, -10.0, e, n, 3000.0]

    plan = cc.identify(mangled(items["es"], edit))
    assert plan.bbox == tuple(items["es"]["bbox"])
    assert plan.notes == ()


@pytest.mark.parametrize("value", ["abc", -5, 101, float("nan"), True, {"x": 1}])
def test_junk_cloud_cover_is_ignored(items, value):
    plan = ignored(mangled(items["es"], set_prop("eo:cloud_cover", value)), "eo:cloud_cover")
    assert plan.cloud_cover is None


def test_a_transform_of_three_numbers_is_ignored(items):
    plan = ignored(
        mangled(items["es"], set_asset("scl", "proj:transform", [20.0, 0.0, 399960.0])),
        "asset scl proj:transform",
    )
    assert plan.qa_grid.transform is None
    assert plan.qa_grid.shape_yx == (5490, 5490)
    assert plan.crs == "EPSG:32632"
    # a degenerate (non-invertible) transform is no grid either
    plan = ignored(mangled(items["es"], set_asset("scl", "proj:transform", [0] * 6)), "proj:tra")
    assert plan.qa_grid.transform is None


def test_a_crs_code_that_is_not_one_is_ignored(items):
    plan = ignored(mangled(items["es"], set_prop("proj:epsg", "abc")), "proj:epsg 'abc'")
    assert plan.crs is None
    plan = ignored(mangled(items["landsat"], set_prop("proj:code", "EPSG:x")), "proj:code")
    assert plan.crs == "EPSG:32656"  # proj:epsg still says it
    # a string of digits is an EPSG code
    assert cc.identify(mangled(items["es"], set_prop("proj:epsg", "32632"))).crs == "EPSG:32632"


def test_junk_raster_fields_fall_back_to_the_family(items):
    def edit(item):
        item["assets"]["red"]["raster:bands"][0].update(scale="x", nodata=[0], data_type=5)

    plan = ignored(mangled(items["es"], edit), "raster:bands[0].scale")
    red = plan.bands["red"]
    assert (red.scale, red.nodata, red.dtype) == (1e-4, 0, None)
    plan = ignored(mangled(items["es"], set_asset("scl", "raster:bands", "x")), "raster:bands")
    assert (plan.qa_dtype, plan.qa_nodata) == ("uint8", 0)


def test_a_junk_raster_offset_falls_to_the_baseline_rule(items):
    def edit(item):
        for key in ("red", "nir"):
            item["assets"][key]["raster:bands"][0]["offset"] = "-0.1"
        item["properties"].pop("earthsearch:boa_offset_applied")

    plan = ignored(mangled(items["es"], edit), "raster:bands[0].offset")
    assert (plan.bands["red"].offset, plan.bands["red"].offset_source) == (-0.1, "baseline-rule")


@pytest.mark.parametrize("value", ["unknown", "", {"v": 4}, True, float("inf"), -4])
def test_a_junk_baseline_of_a_pc_item(items, value):
    # PC items have no raster fields: the baseline is the only offset source besides the
    # product name (s2:product_uri, removed here: PC ids carry no _N0400_) and the date
    item = mangled(items["pc"], set_prop("s2:processing_baseline", value))
    item["properties"].pop("s2:product_uri")
    plan = cc.identify(item)
    red = plan.bands["red"]
    assert plan.processing_baseline is None
    assert (red.offset, red.offset_source) == (-0.1, "date-rule")  # acquired 2023-02-16
    assert "no usable processing baseline" in plan.offset_conflict
    if value != "":
        assert any("s2:processing_baseline" in n for n in plan.notes)


def test_a_junk_baseline_next_to_a_product_name(items):
    def edit(item):
        item["properties"]["s2:processing_baseline"] = "unknown"
        item["properties"]["s2:product_uri"] = "S2A_MSIL2A_20230216T145731_N0509_R082_T21UYT_X.SAFE"

    plan = ignored(mangled(items["pc"], edit), "s2:processing_baseline 'unknown'")
    assert plan.processing_baseline == "05.09"
    assert plan.bands["red"].offset_source == "baseline-rule"


def test_a_junk_offset_flag_is_ignored_and_recorded(items):
    plan = cc.identify(mangled(items["es"], set_prop("earthsearch:boa_offset_applied", "yes")))
    red = plan.bands["red"]
    assert (red.offset, red.offset_source) == (-0.1, "item-metadata")
    assert "earthsearch:boa_offset_applied 'yes' is not true or false" in plan.offset_conflict


def test_a_false_flag_follows_the_metadata(items):
    plan = cc.identify(mangled(items["es"], set_prop("earthsearch:boa_offset_applied", False)))
    assert (plan.bands["nir"].offset, plan.bands["nir"].offset_source) == (-0.1, "item-metadata")
    assert plan.offset_conflict is None


def test_parse_baseline_refuses_junk_with_an_item_error():
    assert cc.sensors.parse_baseline("N0509") == (5, 9)
    assert cc.sensors.parse_baseline(4.0) == (4, 0)
    assert cc.sensors.parse_baseline("") is None
    for junk in ("unknown", "05.1", True, float("nan"), -1, [4]):
        with pytest.raises(cc.ItemError, match="not a Sentinel-2 processing baseline"):
            cc.sensors.parse_baseline(junk)


def test_the_callers_item_is_never_edited(items):
    before = copy.deepcopy(items["es"])
    cc.identify(items["es"])
    assert items["es"] == before
