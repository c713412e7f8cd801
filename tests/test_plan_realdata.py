"""identify() over every real provider item in ../shared/realdata/stac and stac-more.

The expected values come from each provider's documented conventions (DESIGN.md "Radiometry",
notes/anchors-features.md section 4) applied to the JSON itself, one test per provider folder,
not from running clearcube.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import clearcube as cc
from clearcube.sensors.plan import Fallback, ScenePlan, plan_items

pytestmark = pytest.mark.realdata

S2_SCALE = 1e-4
BOA_OFFSET = -0.1  # BOA_ADD_OFFSET -1000 at scale 1e-4, from processing baseline 04.00
LANDSAT = (2.75e-5, -0.2)  # USGS C2 L2 surface reflectance
HLS = (1e-4, 0.0)
FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")


def features(path: Path) -> list[dict]:
    doc = json.loads(path.read_text())
    if isinstance(doc, list):
        found = doc
    elif doc.get("type") == "FeatureCollection":
        found = doc["features"]
    else:
        found = [doc]
    return [f for f in found if f.get("type") == "Feature"]


def items_under(root: Path, *parts: str) -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(root.joinpath(*parts).rglob("*.json")):
        if path.name in ("manifest.json", "itemcollection_all.json"):
            continue  # stac-more's index files repeat the items
        out.extend((path, f) for f in features(path))
    return out


def real_items(root: Path) -> list[tuple[Path, dict]]:
    return items_under(root, "stac") + items_under(root, "stac-more")


def expected_crs(item: dict, qa_key: str) -> str | None:
    asset = item["assets"][qa_key]
    props = item["properties"]
    for obj in (asset, props):
        if obj.get("proj:code"):
            return obj["proj:code"]
        if obj.get("proj:epsg"):
            return f"EPSG:{obj['proj:epsg']}"
    return None


def expected_grid(item: dict, key: str) -> tuple[tuple | None, tuple | None]:
    """(shape, transform) as the item states them for an asset: its own, else the item's."""
    asset, props = item["assets"][key], item["properties"]
    shape = asset.get("proj:shape") or props.get("proj:shape")
    transform = asset.get("proj:transform") or props.get("proj:transform")
    return (
        tuple(shape) if shape else None,
        tuple(float(v) for v in transform[:6]) if transform else None,
    )


def baseline_of(item: dict) -> tuple[int, int]:
    """The processing baseline: the property, else the _Nxxyy_ of the product name or id."""
    props = item["properties"]
    for key in ("s2:processing_baseline", "sentinel:processing_baseline", "processing:version"):
        if props.get(key):
            major, minor = props[key].split(".")
            return (int(major), int(minor))
    for text in (props.get("s2:product_uri"), props.get("sentinel:product_id"), item["id"]):
        m = re.search(r"_N(\d\d)(\d\d)_", text or "")
        if m:
            return (int(m.group(1)), int(m.group(2)))
    raise AssertionError(f"{item['id']}: no baseline anywhere")


def raster_offset(asset: dict) -> float | None:
    bands = asset.get("raster:bands") or [{}]
    return bands[0].get("offset", asset.get("raster:offset"))


def plan_of(item: dict) -> ScenePlan:
    (plan,) = plan_items([item])
    assert isinstance(plan, ScenePlan), plan
    return plan


def refused(item: dict, why: str) -> Fallback:
    (plan,) = plan_items([item])
    assert isinstance(plan, Fallback), (item["id"], plan)
    assert plan.id == item["id"]
    assert why in plan.reason, plan.reason
    assert plan.reason.startswith(item["id"])
    assert "\n" not in plan.reason
    with pytest.raises(cc.ItemError):
        cc.identify(item)
    return plan


def check_grid(plan: ScenePlan, item: dict, crs: str | None = None) -> None:
    """CRS, shape and transform of the QA grid and of red/nir, as the item states them."""
    assert plan.crs == (crs or expected_crs(item, plan.qa_asset)), plan.id
    for grid, key in [(plan.qa_grid, plan.qa_asset)] + [
        (b.grid, b.asset) for n, b in plan.bands.items() if n in ("red", "nir")
    ]:
        shape, transform = expected_grid(item, key)
        assert grid.shape_yx == shape, (plan.id, key)
        assert grid.transform == transform, (plan.id, key)
        assert grid.crs == plan.crs


def check_bands(
    plan: ScenePlan,
    item: dict,
    keys: dict[str, str],
    scale: float,
    offset: float,
    source: str,
) -> None:
    for name, key in keys.items():
        band = plan.bands[name]
        assert band.asset == key, (plan.id, name, band.asset)
        assert band.href == item["assets"][key]["href"]
        assert band.scale == pytest.approx(scale, abs=1e-12), (plan.id, name)
        assert band.offset == pytest.approx(offset, abs=1e-12), (plan.id, name)
        assert band.offset_source == source, (plan.id, name)


def check_s2_qa(plan: ScenePlan, item: dict, key: str) -> None:
    assert plan.sensor == "sentinel-2"
    assert (plan.qa_asset, plan.qa_encoding, plan.qa_dtype, plan.qa_nodata) == (
        key,
        "s2-scl",
        "uint8",
        0,
    )
    assert plan.qa_href == item["assets"][key]["href"]
    major, minor = baseline_of(item)
    assert plan.processing_baseline == f"{major:02d}.{minor:02d}"


def check_landsat(plan: ScenePlan, item: dict, crs: str | None = None) -> None:
    """USGS C2 L2: QA_PIXEL (fill 1), SR 2.75e-5 / -0.2; the raster metadata when the item
    has it, else the profile; OLI red/nir are bands 4/5, TM/ETM+ 3/4."""
    assert plan.sensor == "landsat"
    assert plan.qa_encoding == "landsat-qa-pixel"
    assert plan.qa_asset.lower().split(".")[0] == "qa_pixel"
    assert (plan.qa_dtype, plan.qa_nodata) == ("uint16", 1)
    tm = re.match(r"^L[TE]0[457]_", item["id"]) is not None
    keys = {}
    for name, common, band in (("red", "red", 3 if tm else 4), ("nir", "nir08", 4 if tm else 5)):
        keys[name] = next(
            k for k in (common, f"SR_B{band}", f"SR_B{band}.TIF") if k in item["assets"]
        )
    stated = raster_offset(item["assets"][keys["red"]])
    check_bands(
        plan, item, keys, *LANDSAT, "item-metadata" if stated is not None else "provider-profile"
    )
    assert plan.offset_conflict is None
    check_grid(plan, item, crs)


# ------------------------------------------------------------------ the whole collection


def test_every_real_item_is_planned_or_explained(realdata):
    items = real_items(realdata)
    assert len(items) > 170
    planned = 0
    for path, item in items:
        (result,) = plan_items([item])
        collection = str(item.get("collection"))
        if isinstance(result, Fallback):
            # only products without a cloud mask we read: Sentinel-1, Level-1C, and the
            # EarthDaily items that carry nothing but blue/green/red
            no_qa = set(item["assets"]) <= {"blue", "green", "red"}
            assert "sentinel-1" in collection or "l1c" in collection.lower() or no_qa, (
                path,
                result,
            )
            assert result.id == item["id"]
            continue
        planned += 1
        assert isinstance(result, ScenePlan)
        assert result.qa_asset in item["assets"], path
        assert result.qa_encoding in cc.ENCODINGS
        if "3271" not in str(item["properties"].get("proj:epsg")):
            assert result.crs == expected_crs(item, result.qa_asset), (path, result.id)
        if result.sensor == "sentinel-2":
            assert result.qa_encoding == "s2-scl"
            assert result.qa_asset.lower().startswith("scl")
            assert result.qa_dtype == "uint8"
            assert result.qa_nodata == 0
        elif result.sensor == "hls":
            assert (result.qa_asset.lower(), result.qa_encoding) == ("fmask", "hls-fmask")
            assert result.qa_nodata == 255
        else:
            assert result.sensor == "landsat"
            assert result.qa_encoding == "landsat-qa-pixel"
            assert result.qa_asset.lower().split(".")[0] == "qa_pixel"
            assert result.qa_nodata == 1
            assert result.qa_asset != "qa"  # Earth Search's "qa" is ST_QA, not a cloud mask
        red = result.bands["red"]
        assert red.asset in item["assets"]
        assert red.href == item["assets"][red.asset]["href"]
    assert planned > 150


def test_offsets_follow_the_flag_then_the_item_metadata_then_the_baseline(realdata):
    for path, item in real_items(realdata):
        (plan,) = plan_items([item])
        if not isinstance(plan, ScenePlan) or plan.sensor != "sentinel-2":
            continue
        red = plan.bands["red"]
        props = item["properties"]
        stated = raster_offset(item["assets"][red.asset])
        baseline = cc.sensors.parse_baseline(plan.processing_baseline)
        assert baseline is not None, (path, plan.id)
        rule = -0.1 if baseline >= (4, 0) else 0.0
        flag = next((k for k in FLAGS if props.get(k) is True), None)
        if flag is not None:
            # the provider removed BOA_ADD_OFFSET from the pixels: never apply it again
            assert (red.offset, red.offset_source) == (0.0, flag), plan.id
            if (stated or 0.0) != 0.0 or rule != 0.0:
                assert plan.offset_conflict is not None
                assert flag in plan.offset_conflict
        elif stated is not None:
            # Earth Search v1 (raster:bands), CDSE (raster:offset), stactools: item metadata
            assert (red.offset, red.offset_source) == (stated, "item-metadata"), plan.id
            assert (plan.offset_conflict is None) == (stated == rule), plan.id
        else:
            # Planetary Computer and Earth Search v0: derived from the baseline, not the date
            assert red.offset_source == "baseline-rule"
            assert red.offset == rule, plan.id
            assert plan.offset_conflict is None
        assert red.scale == 1e-4


def test_reprocessed_old_acquisition_gets_the_offset(realdata):
    # Same tile and date, original 02.14 and reprocessed 05.00 (Earth Search keeps both).
    folder = realdata / "stac" / "earth-search-v1" / "sentinel-2-l2a" / "items"
    old = cc.identify(json.loads((folder / "S2A_32TMT_20200305_0_L2A.json").read_text()))
    new = cc.identify(json.loads((folder / "S2A_32TMT_20200305_1_L2A.json").read_text()))
    assert old.datetime.date() == new.datetime.date()
    assert (old.processing_baseline, old.bands["nir"].offset) == ("02.14", 0.0)
    assert old.offset_conflict is None
    # Earth Search says it removed the offset from the reprocessed pixels: 0, and the -0.1 that
    # raster:bands and the baseline imply is recorded as a conflict
    assert (new.processing_baseline, new.bands["nir"].offset) == ("05.00", 0.0)
    assert new.bands["nir"].offset_source == "earthsearch:boa_offset_applied"
    assert "baseline 05.00 implies -0.1" in (new.offset_conflict or "")
    # the same acquisitions reprocessed at 05.00 elsewhere, in ESA's DNs: the offset applies
    for path in (
        realdata / "stac/cdse/sentinel-2-l2a/items"
        "/S2B_MSIL2A_20200705T101559_N0500_R065_T32TMT_20230530T175912.json",
        realdata / "stac-more/stactools-generated/sentinel-2-l2a"
        "/S2B_OPER_MSI_L2A_TL_S2RP_20230315T224658_A018417_T01VCG.json",
    ):
        plan = cc.identify(json.loads(path.read_text()))
        assert plan.datetime.year == 2020
        assert (plan.processing_baseline, plan.bands["nir"].offset) == ("05.00", -0.1)


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


# ------------------------------------------------------------------ one test per provider


def test_cdse(realdata):
    """CDSE: SCL_20m, projection v2 ``proj:code`` per asset, raster v2 ``raster:scale`` and
    ``raster:offset`` per asset (-0.1 on the reprocessed 05.xx products); L1C has no SCL."""
    items = items_under(realdata, "stac", "cdse")
    l2a = [i for _, i in items if i["collection"] == "sentinel-2-l2a"]
    l1c = [i for _, i in items if i["collection"] == "sentinel-2-l1c"]
    assert len(l2a) >= 10
    assert l1c
    for item in l2a:
        plan = plan_of(item)
        check_s2_qa(plan, item, "SCL_20m")
        red = item["assets"]["B04_10m"]
        assert baseline_of(item) >= (5, 0)
        check_bands(
            plan,
            item,
            {"red": "B04_10m", "nir": "B08_10m"},
            red["raster:scale"],
            red["raster:offset"],
            "item-metadata",
        )
        assert red["raster:offset"] == BOA_OFFSET
        assert plan.offset_conflict is None
        check_grid(plan, item)
        assert plan.crs == item["assets"]["SCL_20m"]["proj:code"]
    for item in l1c:
        refused(item, "Level-1C product has no SCL")


def test_earth_search_v0(realdata):
    """Earth Search v0: upper-case keys (SCL, B04, B08), no raster fields, the baseline in
    ``sentinel:processing_baseline`` or the product id; ``sentinel:boa_offset_applied: true``
    means the COGs were shifted back to the old DN range."""
    items = items_under(realdata, "stac", "earth-search-v0")
    assert len(items) == 3
    for _, item in items:
        plan = plan_of(item)
        check_s2_qa(plan, item, "SCL")
        applied = item["properties"].get("sentinel:boa_offset_applied") is True
        rule = BOA_OFFSET if baseline_of(item) >= (4, 0) else 0.0
        if applied:
            offset, source = 0.0, "sentinel:boa_offset_applied"
        else:
            offset, source = rule, "baseline-rule"
        check_bands(plan, item, {"red": "B04", "nir": "B08"}, S2_SCALE, offset, source)
        assert (plan.offset_conflict is not None) == (applied and rule != 0.0)
        check_grid(plan, item)
    assert any(i["properties"].get("sentinel:boa_offset_applied") for _, i in items)


def test_earth_search_v1(realdata):
    """Earth Search v1: lower-case keys (scl, red, nir = B08), ``raster:bands`` scale 0.0001 and
    offset -0.1/0, ``earthsearch:boa_offset_applied`` (true: offset 0, conflicts recorded);
    ``sentinel-2-c1-l2a``: offset -0.1 and no flag; Landsat ``qa_pixel`` (never ``qa``); L1C
    and Sentinel-1 are refused."""
    items = items_under(realdata, "stac", "earth-search-v1")
    seen = {"flag": 0, "no-flag": 0, "c1": 0, "landsat": 0, "refused": 0}
    for _, item in items:
        collection = item["collection"]
        if collection in ("sentinel-2-l1c", "sentinel-1-grd"):
            refused(item, "Level-1C" if "l1c" in collection else "not a Sentinel-2")
            seen["refused"] += 1
            continue
        plan = plan_of(item)
        if collection == "landsat-c2-l2":
            check_landsat(plan, item)
            seen["landsat"] += 1
            continue
        check_s2_qa(plan, item, "scl")
        stated = raster_offset(item["assets"]["red"])
        rule = BOA_OFFSET if baseline_of(item) >= (4, 0) else 0.0
        keys = {"red": "red", "nir": "nir"}
        if item["properties"].get("earthsearch:boa_offset_applied") is True:
            check_bands(plan, item, keys, S2_SCALE, 0.0, "earthsearch:boa_offset_applied")
            if stated or rule:
                assert "earthsearch:boa_offset_applied is true" in plan.offset_conflict
                assert f"offset is {stated:g}" in plan.offset_conflict
            seen["flag"] += 1
        else:
            check_bands(plan, item, keys, S2_SCALE, stated, "item-metadata")
            assert plan.offset_conflict is None  # 0 at 02.14, -0.1 at 05.xx: they agree
            seen["c1" if collection == "sentinel-2-c1-l2a" else "no-flag"] += 1
        assert plan.bands["nir08"].asset == "nir08"
        check_grid(plan, item)
    assert all(seen.values()), seen


def test_planetary_computer(realdata):
    """Planetary Computer: SCL, B04, B08 without raster fields (offset from
    ``s2:processing_baseline``); Landsat ``qa_pixel`` (``QA_PIXEL`` in the retired
    ``landsat-8-c2-l2``) with raster:bands 2.75e-5 / -0.2 or none."""
    items = items_under(realdata, "stac", "planetary-computer")
    kinds = {"sentinel-2": 0, "landsat": 0}
    for _, item in items:
        plan = plan_of(item)
        kinds[plan.sensor] += 1
        if plan.sensor == "landsat":
            check_landsat(plan, item)
            continue
        check_s2_qa(plan, item, "SCL")
        rule = BOA_OFFSET if baseline_of(item) >= (4, 0) else 0.0
        check_bands(plan, item, {"red": "B04", "nir": "B08"}, S2_SCALE, rule, "baseline-rule")
        assert plan.offset_conflict is None
        check_grid(plan, item)
    assert kinds["sentinel-2"] > 30
    assert kinds["landsat"] > 20


def test_stactools_generated_landsat(realdata):
    """stactools-landsat writes PC's landsat-c2-l2 format for Landsat 4, 5, 7, 8 and 9."""
    items = items_under(realdata, "stac", "stactools-generated")
    assert {i["id"][:4] for _, i in items} == {"LT04", "LT05", "LE07", "LC08", "LC09"}
    for _, item in items:
        plan = plan_of(item)
        check_landsat(plan, item)
        assert plan.bands["nir"].asset == "nir08"  # common names across Landsat 4-9


def test_usgs_landsatlook(realdata):
    """USGS LandsatLook: qa_pixel and common-name keys (stac-server), or QA_PIXEL.TIF and
    SR_Bn.TIF keys (per-scene files); no raster fields (the USGS profile applies); the 1.0.0-beta
    per-scene items state no proj: fields, so the plan has no CRS or grid and says so."""
    items = items_under(realdata, "stac", "usgs-landsatlook")
    no_proj = 0
    for _, item in items:
        plan = plan_of(item)
        check_landsat(plan, item)
        if expected_crs(item, plan.qa_asset) is None:
            no_proj += 1
            assert plan.crs is None
            assert plan.qa_grid.transform is None
            assert any("no proj:code or proj:epsg" in n for n in plan.notes)
    assert no_proj == 3


def test_earth_search_v1_collection_1(realdata):
    """Earth Search ``sentinel-2-c1-l2a`` (baseline 05.10): raster:bands offset -0.1, no flag."""
    items = items_under(realdata, "stac-more", "earth-search-v1")
    assert len(items) == 6
    for _, item in items:
        plan = plan_of(item)
        check_s2_qa(plan, item, "scl")
        assert "earthsearch:boa_offset_applied" not in item["properties"]
        keys = {"red": "red", "nir": "nir"}
        check_bands(plan, item, keys, S2_SCALE, BOA_OFFSET, "item-metadata")
        assert plan.offset_conflict is None
        check_grid(plan, item)


def test_earthdaily_mirror_of_earth_search(realdata):
    """EarthDaily re-serves Earth Search v1 items: the three with an SCL say
    ``earthsearch:boa_offset_applied: true`` next to raster:bands offset -0.1 at baseline 05.09:
    offset 0 and both disagreements recorded. The T31TCJ items carry only blue/green/red: no
    mask, refused."""
    items = items_under(realdata, "stac-more", "earthdaily-mirror-of-earth-search-v1")
    planned = 0
    for _, item in items:
        if "scl" not in item["assets"]:
            assert "_31TCJ_" in item["id"]
            reason = refused(item, "no QA asset found").reason
            assert "request the QA asset" in reason
            continue
        planned += 1
        plan = plan_of(item)
        check_s2_qa(plan, item, "scl")
        assert item["properties"]["earthsearch:boa_offset_applied"] is True
        assert raster_offset(item["assets"]["red"]) == BOA_OFFSET
        check_bands(plan, item, {"red": "red"}, S2_SCALE, 0.0, "earthsearch:boa_offset_applied")
        assert plan.offset_conflict == (
            "earthsearch:boa_offset_applied is true (offset 0) but the raster metadata offset "
            "is -0.1 and baseline 05.09 implies -0.1"
        )
        assert plan.bands["red"].offset_conflict == plan.offset_conflict
        assert "nir" not in plan.bands  # the mirror serves no nir asset
        check_grid(plan, item)
    assert planned == 3


def test_nasa_cmr_stac_hls(realdata):
    """CMR-STAC HLS v1.5 L30: band-number keys (B04 red, B05 NIR), Fmask, no proj: or raster
    fields (HLS profile 1e-4, fill -9999)."""
    items = items_under(realdata, "stac-more", "nasa-cmr-stac")
    assert len(items) == 4
    for _, item in items:
        plan = plan_of(item)
        assert (plan.sensor, plan.qa_asset, plan.qa_encoding) == ("hls", "Fmask", "hls-fmask")
        assert (plan.qa_dtype, plan.qa_nodata) == ("uint8", 255)
        check_bands(plan, item, {"red": "B04", "nir": "B05"}, *HLS, "provider-profile")
        assert plan.bands["red"].nodata == -9999
        assert plan.crs is None
        check_grid(plan, item)


def test_planetary_computer_more(realdata):
    """More PC items: Sentinel-2 of 2020-2024 (baselines 02.12 to 05.11, offset from the
    baseline), landsat-c2-l2 Landsat 8/9 incl. Antarctic EPSG:3031 scenes, and the retired
    landsat-8-c2-l2 whose zone-1 scenes south of the equator state ``proj:epsg: 3271``."""
    items = items_under(realdata, "stac-more", "planetary-computer")
    slips = 0
    for _, item in items:
        plan = plan_of(item)
        if plan.sensor == "sentinel-2":
            check_s2_qa(plan, item, "SCL")
            rule = BOA_OFFSET if baseline_of(item) >= (4, 0) else 0.0
            keys = {"red": "B04", "nir": "B08"}
            check_bands(plan, item, keys, S2_SCALE, rule, "baseline-rule")
            check_grid(plan, item)
            continue
        if item["properties"].get("proj:epsg") == 3271:
            # EPSG:3271 is an Antarctic conic sheet; the grid's northings are negative (USGS's
            # north-zone convention) and the scenes lie at 174-180 W: UTM zone 1 N
            slips += 1
            assert item["properties"]["proj:bbox"][3] < 0
            check_landsat(plan, item, crs="EPSG:32601")
            assert plan.qa_grid.crs == "EPSG:32601"  # what the engines read
            assert item["properties"]["proj:epsg"] == 3271  # the caller's item is untouched
            assert any("EPSG:3271" in n and "EPSG:32601" in n for n in plan.notes)
        else:
            check_landsat(plan, item)
    assert slips == 2


def test_stactools_generated_sentinel2_and_hls(realdata):
    """stactools-sentinel2 (PC's generator): lower-case keys with raster:bands offsets from
    BOA_ADD_OFFSET (one test fixture has -7000, i.e. -0.7: the item's metadata is followed and
    the baseline's -0.1 recorded); stactools-hls: S30 nir = nir_narrow (B8A), nir_broad = B08,
    L30 nir = nir_narrow (B05), UTM north-zone grids south of the equator."""
    items = items_under(realdata, "stac-more", "stactools-generated")
    odd = 0
    for _, item in items:
        plan = plan_of(item)
        if plan.sensor == "hls":
            assert (plan.qa_asset, plan.qa_encoding, plan.qa_nodata) == ("fmask", "hls-fmask", 255)
            s30 = ".S30." in item["id"]
            keys = {"red": "red", "nir": "nir_narrow"}
            if s30:
                keys["nir_broad"] = "nir_broad"
            check_bands(plan, item, keys, *HLS, "provider-profile")
            nir_band = item["assets"]["nir_narrow"]["eo:bands"][0]["name"]
            assert nir_band == ("B8A" if s30 else "B05")
            assert plan.crs == "EPSG:32619"
            assert plan.qa_grid.transform[5] < 0  # negative northings, as stated
            check_grid(plan, item)
            continue
        check_s2_qa(plan, item, "scl")
        stated = raster_offset(item["assets"]["red"])
        rule = BOA_OFFSET if baseline_of(item) >= (4, 0) else 0.0
        check_bands(plan, item, {"red": "red", "nir": "nir"}, S2_SCALE, stated, "item-metadata")
        if stated != rule:
            odd += 1
            assert item["id"] == "S2A_T34LBQ_20220401T090142_L2A"
            assert stated == pytest.approx(-0.7)
            assert plan.offset_conflict == (
                "the raster metadata offset is -0.7 but baseline 04.00 implies -0.1"
            )
        else:
            assert plan.offset_conflict is None
        check_grid(plan, item)
    assert odd == 1


def test_usgs_landsatlook_more(realdata):
    """More LandsatLook items: a stac-server Landsat 9 item south of the equator (north-zone
    code, negative northings) and an old-style item with QA_PIXEL.TIF keys (grids edited to
    200 x 200 by odc-stac's authors, EPSG:3031)."""
    items = items_under(realdata, "stac-more", "usgs-landsatlook")
    assert len(items) == 2
    for _, item in items:
        plan = plan_of(item)
        check_landsat(plan, item)
    crss = sorted(plan_of(i).crs for _, i in items)
    assert crss == ["EPSG:3031", "EPSG:32656"]


def test_landsat_qa_radsat_is_planned_where_the_item_has_it(realdata):
    """Every real USGS C2 L2 item (USGS, Planetary Computer, Earth Search, stactools) carries
    QA_RADSAT under some key; the plan reads it as a further QA layer of the scene, with the
    item's own href. The demo's Landsat items have none, and plan none."""
    seen = 0
    for path, item in real_items(realdata):
        (result,) = plan_items([item])
        if not isinstance(result, ScenePlan) or result.sensor != "landsat":
            continue
        keys = [k for k in item["assets"] if k.lower().split(".")[0] == "qa_radsat"]
        assert len(keys) == 1, path
        (aux,) = result.aux_qa
        assert (aux.asset, aux.encoding, aux.dtype) == (keys[0], "landsat-qa-radsat", "uint16")
        assert aux.href == item["assets"][keys[0]]["href"]
        seen += 1
    assert seen >= 50
    from clearcube.resources import demo_catalog_path

    demo = json.loads(
        (
            demo_catalog_path().parent
            / "landsat-c2-l2"
            / "LC08_L2SP_226062_20210819_02_T1"
            / "LC08_L2SP_226062_20210819_02_T1.json"
        ).read_text()
    )
    (result,) = plan_items([demo])
    assert result.sensor == "landsat"
    assert result.aux_qa == ()
