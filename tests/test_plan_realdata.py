"""identify() over every real provider item in ../shared/realdata/stac, checked against what the
JSON itself says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import clearcube as cc
from clearcube.sensors.plan import Fallback, ScenePlan, plan_items

pytestmark = pytest.mark.realdata


def real_items(root: Path) -> list[tuple[Path, dict]]:
    out = []
    for path in sorted((root / "stac").rglob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, list):
            features = doc
        elif doc.get("type") == "FeatureCollection":
            features = doc["features"]
        else:
            features = [doc]
        out.extend((path, f) for f in features if f.get("type") == "Feature")
    return out


def expected_crs(item: dict, qa_key: str) -> str | None:
    asset = item["assets"][qa_key]
    props = item["properties"]
    for obj in (asset, props):
        if obj.get("proj:code"):
            return obj["proj:code"]
        if obj.get("proj:epsg"):
            return f"EPSG:{obj['proj:epsg']}"
    return None


def test_every_real_item_is_planned_or_explained(realdata):
    items = real_items(realdata)
    assert len(items) > 100
    planned = 0
    for path, item in items:
        (result,) = plan_items([item])
        collection = str(item.get("collection"))
        if isinstance(result, Fallback):
            # only products without a cloud mask we read: Sentinel-1, Level-1C
            assert "sentinel-1" in collection or "l1c" in collection.lower(), (path, result)
            assert result.id == item["id"]
            continue
        planned += 1
        assert isinstance(result, ScenePlan)
        assert result.qa_asset in item["assets"], path
        assert result.qa_encoding in cc.ENCODINGS
        assert result.crs == expected_crs(item, result.qa_asset), (path, result.id)
        if result.sensor == "sentinel-2":
            assert result.qa_encoding == "s2-scl"
            assert result.qa_asset.lower().startswith("scl")
            assert result.qa_dtype == "uint8"
            assert result.qa_nodata == 0
        else:
            assert result.sensor == "landsat"
            assert result.qa_encoding == "landsat-qa-pixel"
            assert result.qa_asset.lower().split(".")[0] == "qa_pixel"
            assert result.qa_nodata == 1
            assert result.qa_asset != "qa"  # Earth Search's "qa" is ST_QA, not a cloud mask
        red = result.bands["red"]
        assert red.asset in item["assets"]
        assert red.href == item["assets"][red.asset]["href"]
    assert planned > 90


def test_offsets_follow_the_item_metadata_and_the_baseline(realdata):
    for path, item in real_items(realdata):
        (plan,) = plan_items([item])
        if not isinstance(plan, ScenePlan) or plan.sensor != "sentinel-2":
            continue
        red = plan.bands["red"]
        raster = item["assets"][red.asset].get("raster:bands", [{}])[0]
        v2_offset = item["assets"][red.asset].get("raster:offset")
        baseline = cc.sensors.parse_baseline(plan.processing_baseline)
        assert baseline is not None, (path, plan.id)
        if "offset" in raster or v2_offset is not None:
            # Earth Search v1 (raster:bands) and CDSE (raster:offset): item metadata wins
            want = raster.get("offset", v2_offset)
            assert red.offset == want
            assert red.offset_source == "item-metadata"
            assert red.offset == (-0.1 if baseline >= (4, 0) else 0.0), plan.id
        elif item["properties"].get("sentinel:boa_offset_applied"):
            assert red.offset == 0.0  # Earth Search v0 shifted the DNs back itself
            assert plan.offset_conflict is not None
        else:
            # Planetary Computer and Earth Search v0: derived from the baseline, not the date
            assert red.offset_source == "baseline-rule"
            assert red.offset == (-0.1 if baseline >= (4, 0) else 0.0), plan.id
        assert red.scale == 1e-4


def test_reprocessed_old_acquisition_gets_the_offset(realdata):
    # Same tile and date, original 02.14 and reprocessed 05.00 (Earth Search keeps both).
    folder = realdata / "stac" / "earth-search-v1" / "sentinel-2-l2a" / "items"
    old = cc.identify(json.loads((folder / "S2A_32TMT_20200305_0_L2A.json").read_text()))
    new = cc.identify(json.loads((folder / "S2A_32TMT_20200305_1_L2A.json").read_text()))
    assert old.datetime.date() == new.datetime.date()
    assert (old.processing_baseline, old.bands["nir"].offset) == ("02.14", 0.0)
    assert (new.processing_baseline, new.bands["nir"].offset) == ("05.00", -0.1)


def test_landsat_tm_nir_is_band_4(realdata):
    path = (
        realdata
        / "stac"
        / "usgs-landsatlook"
        / "per-scene"
        / "LE07_L2SP_021030_20100109_20200911_02_T1_SR_stac.json"
    )
    plan = cc.identify(json.loads(path.read_text()))
    assert plan.platform == "landsat-7"
    assert plan.bands["nir"].asset == "SR_B4.TIF"
    assert plan.bands["red"].asset == "SR_B3.TIF"
    assert (plan.bands["red"].scale, plan.bands["red"].offset) == (2.75e-5, -0.2)
    assert plan.bands["red"].offset_source == "provider-profile"
