"""The screen stage: a QA that says nothing is a fallback, never clear; counts and windows come
from one pass; read failures are data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import clearcube as cc
from clearcube.decide import decide
from clearcube.plan import plan
from clearcube.resources import demo_catalog_path
from clearcube.screen import screen

REPO = Path(__file__).resolve().parents[1]
DEMO = demo_catalog_path().parent
BBOX = (-54.035, -3.025, -53.965, -2.985)
SCENE = "S2B_22MBA_20230804_0_L2A"


def demo_item() -> dict:
    path = next(DEMO.rglob(f"{SCENE}.json"))
    item = json.loads(path.read_text())
    for asset in item["assets"].values():
        asset["href"] = str((path.parent / asset["href"]).resolve())
    item["links"] = []
    return item


def write_qa(path: Path, data: np.ndarray, transform, epsg: int, nodata=None) -> None:
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=str(data.dtype),
        crs=f"EPSG:{epsg}",
        transform=transform,
        nodata=nodata,
        compress="DEFLATE",
        blocksize=64,
        overview_resampling="nearest",
    ) as dst:
        dst.write(data, 1)


def with_qa(item: dict, key: str, path: Path, shape, transform, baseline: str) -> dict:
    """The demo scene with its SCL replaced by another QA asset."""
    out = json.loads(json.dumps(item))
    out["id"] = f"{item['id']}-{key}-{baseline}"
    del out["assets"]["scl"]
    out["assets"][key] = {
        "href": str(path),
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"],
        "proj:shape": list(shape),
        "proj:transform": list(transform)[:6],
    }
    out["properties"]["s2:processing_baseline"] = baseline
    return out


@pytest.fixture(scope="module")
def qa60(tmp_path_factory):
    """An all-zero QA60 at 60 m over the demo tile (what archives served from 04.00 on)."""
    item = demo_item()
    scl = item["assets"]["scl"]
    t20 = scl["proj:transform"]
    transform = from_origin(t20[2], t20[5], 60, 60)
    shape = (scl["proj:shape"][0] // 3, scl["proj:shape"][1] // 3)
    path = tmp_path_factory.mktemp("qa60") / "QA60.tif"
    write_qa(path, np.zeros(shape, np.uint16), transform, 32722)
    return item, path, shape, transform


@pytest.mark.parametrize(("baseline", "expected"), [("05.10", "fallback"), ("02.14", "used")])
def test_an_empty_qa60_of_baseline_04_or_later_is_a_fallback(qa60, baseline, expected):
    item, path, shape, transform = qa60
    scene = with_qa(item, "qa60", path, shape, transform, baseline)
    assert cc.identify(scene).qa_encoding == "s2-qa60"
    planned = plan([scene], bbox=BBOX, chunks_yx=(64, 64))
    screened = screen(planned, cc.MaskConfig())
    (sc,) = screened.slices
    assert sc.valid_px > 0
    assert sc.cloud_fraction == 0.0
    (d,) = decide(planned, screened, cc.MaskConfig()).slices
    assert d.decision == expected, d.reason
    if expected == "fallback":
        assert d.fallback == "uninformative"
        assert "QA60" in d.reason
        assert baseline in d.reason
        assert "never treated as clear" in d.reason


def footprint(bbox) -> dict:
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def test_a_qa_without_any_defined_pixel_under_a_covering_footprint_is_a_fallback(tmp_path):
    # an SCL that is no data (0) everywhere: under a footprint that covers the whole area the
    # QA says nothing about it (a fallback); under one that covers only part of the area the
    # scene simply has no valid pixel there
    item = demo_item()
    scl = item["assets"]["scl"]
    t20 = scl["proj:transform"]
    path = tmp_path / "SCL.tif"
    shape = tuple(scl["proj:shape"])
    write_qa(path, np.zeros(shape, np.uint8), from_origin(t20[2], t20[5], 20, 20), 32722)
    w, s, e, n = BBOX
    scenes = []
    for k, box_ in enumerate(
        ((w - 0.01, s - 0.01, e + 0.01, n + 0.01), (w - 0.01, s, w + 0.01, n))
    ):
        empty = json.loads(json.dumps(item))
        empty["id"] = f"S2B_22MBA_2023080{5 + k}_0_L2A"
        empty["assets"]["scl"]["href"] = str(path)
        empty["geometry"], empty["bbox"] = footprint(box_), list(box_)
        scenes.append(empty)
    planned = plan([*scenes, item], bbox=BBOX, chunks_yx=(64, 64))
    screened = screen(planned, cc.MaskConfig())
    decisions = {d.id: d for d in decide(planned, screened, cc.MaskConfig()).slices}
    assert all(sc.valid_px == 0 for sc in screened.slices if sc.id != SCENE)
    covering = decisions[scenes[0]["id"]]
    assert covering.decision == "fallback", covering.reason
    assert covering.fallback == "uninformative"
    assert "no defined pixel inside the area" in covering.reason
    assert decisions[scenes[1]["id"]].decision == "no_valid_data"
    assert decisions[SCENE].decision == "used"


def test_counts_and_clear_windows_come_from_one_pass(tmp_path):
    items = list(cc.search(source=str(DEMO / "catalog.json")))
    planned = plan(items, bbox=BBOX, chunks_yx=(64, 64))
    screened = screen(planned, cc.MaskConfig())
    ds = cc.load(items, bbox=BBOX, options=cc.LoadOptions(bands=(), chunks=64))
    table = cc.cloud_fraction(ds).set_index("id")
    clear = ds["clear"].values
    for t, (sl, sc) in enumerate(zip(planned.slices, screened.slices, strict=True)):
        row = table.loc[sl.id]
        assert sc.valid_px == row["valid_px"]
        assert sc.counts["masked_px"] == row["masked_px"]
        windows = {
            (iy, ix)
            for iy in range(-(-clear.shape[1] // 64))
            for ix in range(-(-clear.shape[2] // 64))
            if clear[t, iy * 64 : (iy + 1) * 64, ix * 64 : (ix + 1) * 64].any()
        }
        assert sc.clear_windows == windows, sl.id


LANDSAT = "LC08_L2SP_226062_20240803_02_T1"


def landsat_with_radsat(tmp_path: Path, radsat: np.ndarray | None) -> dict:
    """The demo Landsat scene with a QA_RADSAT asset (or one whose file is missing)."""
    path = next(DEMO.rglob(f"{LANDSAT}.json"))
    item = json.loads(path.read_text())
    for asset in item["assets"].values():
        asset["href"] = str((path.parent / asset["href"]).resolve())
    item["links"] = []
    t = item["properties"]["proj:transform"]
    href = tmp_path / "QA_RADSAT.TIF"
    if radsat is not None:
        write_qa(href, radsat, from_origin(t[2], t[5], 30, 30), 32622)
    item["assets"]["qa_radsat"] = {
        "href": str(href),
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["saturation"],
        "raster:bands": [{"data_type": "uint16"}],
    }
    return item


def test_landsat_qa_radsat_flags_saturated_pixels(tmp_path):
    shape = tuple(
        json.loads(next(DEMO.rglob(f"{LANDSAT}.json")).read_text())["properties"]["proj:shape"]
    )
    radsat = np.zeros(shape, np.uint16)
    radsat[100:120, 100:130] = 0b100  # band 3 saturated
    radsat[140:150, 100:110] = 1 << 11  # terrain occlusion
    item = landsat_with_radsat(tmp_path, radsat)
    plan_ = cc.identify(item)
    assert [a.encoding for a in plan_.aux_qa] == ["landsat-qa-radsat"]
    assert "qa_radsat" not in {b.asset for b in plan_.bands.values()}
    planned = plan([item], bbox=BBOX, chunks_yx=(64, 64), crs="EPSG:32622", resolution=30)
    (sc,) = screen(planned, cc.MaskConfig()).slices
    ds = cc.load(
        [item],
        bbox=BBOX,
        options=cc.LoadOptions(bands=(), chunks=64),
        mask=cc.MaskConfig(crs="EPSG:32622", resolution=30),
    )
    flags = ds["flags"].values[0]
    valid = (flags & cc.Flag.NODATA) == 0
    # the grid is the scene's own (same CRS and pixel edges): count the patch inside the data
    assert sc.counts["saturated_px"] == int(((flags & cc.Flag.SATURATED) != 0).sum())
    assert sc.counts["saturated_px"] > 0
    assert sc.counts["terrain_shadow_px"] > 0
    assert not ((flags & cc.Flag.SATURATED) != 0)[~valid].any()  # no-data carries no flag
    bare = json.loads(json.dumps(item))
    del bare["assets"]["qa_radsat"]
    without = plan([bare], bbox=BBOX, chunks_yx=(64, 64), crs="EPSG:32622", resolution=30)
    (plain,) = screen(without, cc.MaskConfig()).slices
    assert plain.counts["saturated_px"] == 0
    assert sc.counts["valid_px"] == plain.counts["valid_px"]


def test_an_unreadable_qa_radsat_makes_the_scene_a_fallback(tmp_path):
    item = landsat_with_radsat(tmp_path, None)  # the asset's file does not exist
    planned = plan([item], bbox=BBOX, chunks_yx=(64, 64))
    screened = screen(planned, cc.MaskConfig())
    (d,) = decide(planned, screened, cc.MaskConfig()).slices
    assert d.decision == "fallback"
    assert d.fallback == "unreadable"
    assert "qa_radsat" in d.reason
