"""The demo catalog: deterministic, realistic, consistent with its truth and with the decoders."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

import clearcube as cc
from clearcube import Flag, MaskConfig
from clearcube.demo import generate_demo
from clearcube.resources import demo_catalog_path

COMMITTED = demo_catalog_path().parent


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    generate_demo(out)
    return out


def test_deterministic_and_equal_to_the_committed_catalog(fresh):
    committed = digests(COMMITTED)
    assert committed == digests(fresh), "the packaged demo differs from `python -m clearcube.demo`"
    size = sum((COMMITTED / name).stat().st_size for name in committed)
    assert size < 20e6


def test_catalog_shape(fresh):
    cat = pystac.Catalog.from_file(str(fresh / "catalog.json"))
    items = list(cat.get_items(recursive=True))
    s2 = [i for i in items if i.collection_id == "sentinel-2-l2a"]
    ls = [i for i in items if i.collection_id == "landsat-c2-l2"]
    assert len(s2) == 10
    assert len(ls) == 3
    assert {cc.identify(i).crs for i in s2} == {"EPSG:32721", "EPSG:32722"}
    assert {i.properties["platform"] for i in ls} == {"landsat-8", "landsat-9"}
    for item in items:
        plan = cc.identify(item)
        with rasterio.open(plan.qa_href) as src:
            assert src.crs.to_string() == plan.crs
            assert (src.height, src.width) == plan.qa_grid.shape_yx
            t = src.transform
            assert (t.a, t.b, t.c, t.d, t.e, t.f) == plan.qa_grid.transform
            assert src.overviews(1), "COG without overviews"
        for band in plan.bands.values():
            with rasterio.open(band.href) as src:
                assert (src.height, src.width) == band.grid.shape_yx
    covers = sorted(i.properties["eo:cloud_cover"] for i in s2)
    assert covers[-1] > 60  # an overcast wet-season date
    assert covers[0] < 1  # a clear dry-season date


def test_provider_cloud_cover_is_what_the_decoders_say(fresh):
    cat = pystac.Catalog.from_file(str(fresh / "catalog.json"))
    for item in cat.get_items(recursive=True):
        plan = cc.identify(item)
        with rasterio.open(plan.qa_href) as src:
            qa = src.read(1)
        if plan.sensor == "sentinel-2":
            flags = cc.decode(qa, "s2-scl")
            bits = Flag.CLOUD | Flag.CIRRUS  # SCL 8 + 9 + 10
        else:
            flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=()))
            bits = Flag.CLOUD  # bit 3, as USGS CLOUD_COVER
        valid = (flags & Flag.NODATA) == 0
        ours = 100 * np.count_nonzero((flags & bits)[valid]) / np.count_nonzero(valid)
        assert ours == pytest.approx(item.properties["eo:cloud_cover"], abs=1e-5), item.id
        assert (~valid).any() or plan.sensor == "sentinel-2"


def test_landsat_qa_obeys_usgs_invariants(fresh):
    for path in sorted((fresh / "landsat-c2-l2").rglob("*_QA_PIXEL.TIF")):
        with rasterio.open(path) as src:
            qa = src.read(1).astype(np.uint32)
        fill = (qa & 1) == 1
        assert (qa[fill] == 1).all()
        v = qa[~fill]

        def bit(n, v=v):
            return ((v >> n) & 1).astype(bool)

        assert (bit(3) == (((v >> 8) & 3) == 3)).all()
        assert (bit(4) == (((v >> 10) & 3) == 3)).all()
        assert (bit(2) == (((v >> 14) & 3) == 3)).all()
        assert (bit(6) == ~(bit(1) | bit(3))).all()
        assert not (bit(1) & bit(3)).any()
        assert np.isin((v >> 10) & 3, [1, 3]).all()
        assert np.isin((v >> 14) & 3, [1, 3]).all()
        assert np.isin((v >> 8) & 3, [1, 2, 3]).all()


def test_truth_matches_the_qa_and_shadows_fall_away_from_the_sun(fresh):
    summary = json.loads((fresh / "truth" / "summary.json").read_text())
    checked = 0
    for folder in sorted((fresh / "sentinel-2-l2a").iterdir()):
        if not folder.is_dir():
            continue
        item_id = folder.name
        with rasterio.open(folder / "SCL.tif") as src:
            scl = src.read(1)
        with rasterio.open(fresh / "truth" / f"{item_id}.tif") as src:
            cloud, cirrus, shadow, valid, rim = (src.read(i).astype(bool) for i in range(1, 6))
            t = src.transform
        np.testing.assert_array_equal(scl == 0, ~valid)
        np.testing.assert_array_equal(scl == 9, cloud)
        np.testing.assert_array_equal(np.isin(scl, [8, 9, 10]), cloud | rim | cirrus)
        if shadow.sum() > 50:
            # a shadow pixel P must lie where a cloud at P - shift casts it, the shift pointing
            # away from the sun
            az = math.radians(summary[item_id]["sun_azimuth"])
            el = math.radians(summary[item_id]["sun_elevation"])
            d = 1500 / math.tan(el)
            shift_cols = round(-d * math.sin(az) / t.a)
            shift_rows = round(-d * math.cos(az) / t.e)
            assert max(abs(shift_cols), abs(shift_rows)) >= 20  # displaced, not underneath

            def explained(sign, shadow=shadow, cloud=cloud, sr=shift_rows, sc=shift_cols):
                rows, cols = np.nonzero(shadow)
                r, c = rows - sign * sr, cols - sign * sc
                inside = (r >= 0) & (r < cloud.shape[0]) & (c >= 0) & (c < cloud.shape[1])
                return cloud[r[inside], c[inside]].mean() if inside.any() else np.nan

            away = explained(+1)
            if not np.isnan(away):
                assert away > 0.9, (item_id, away)
                assert not (shadow & cloud).any()
                checked += 1
    assert checked >= 3


def test_reflectance_offset_follows_the_baseline(fresh):
    cat = pystac.Catalog.from_file(str(fresh / "catalog.json"))
    for item in cat.get_items(recursive=True):
        plan = cc.identify(item)
        if plan.sensor != "sentinel-2":
            continue
        with rasterio.open(plan.bands["nir"].href) as src:
            dn = src.read(1).astype(float)
        with rasterio.open(plan.qa_href) as src:
            scl = np.repeat(np.repeat(src.read(1), 2, axis=0), 2, axis=1)
        forest = dn[scl == 4]
        reflectance = forest * plan.bands["nir"].scale + plan.bands["nir"].offset
        # forest NIR is about 0.31 whatever the baseline, once the offset is applied
        assert np.median(reflectance) == pytest.approx(0.31, abs=0.03), item.id


def test_both_offset_branches_are_exercised(fresh):
    # Earth Search's flag true: DNs without BOA_ADD_OFFSET while raster:bands still says -0.1
    # (the plan follows the flag and records the conflict); flag false at baseline 04.00:
    # ESA's DNs, offset -0.1 from the metadata; Planetary Computer style: the baseline rule
    cat = pystac.Catalog.from_file(str(fresh / "catalog.json"))
    seen: dict[str, int] = {}
    for item in cat.get_items(recursive=True):
        plan = cc.identify(item)
        if plan.sensor != "sentinel-2":
            continue
        nir = plan.bands["nir"]
        seen[nir.offset_source] = seen.get(nir.offset_source, 0) + 1
        with rasterio.open(nir.href) as src:
            dn = src.read(1)
        with rasterio.open(plan.qa_href) as src:
            scl = np.repeat(np.repeat(src.read(1), 2, axis=0), 2, axis=1)
        forest_dn = float(np.median(dn[scl == 4]))
        flag = item.properties.get("earthsearch:boa_offset_applied")
        new_baseline = cc.sensors.parse_baseline(plan.processing_baseline) >= (4, 0)
        if flag is True:
            assert (nir.offset, nir.offset_source) == (0.0, "earthsearch:boa_offset_applied")
            assert item.assets["nir"].extra_fields["raster:bands"][0]["offset"] == -0.1
            assert "raster metadata offset is -0.1" in plan.offset_conflict
            assert forest_dn == pytest.approx(3100, abs=300)  # 0.31 without the +1000
        elif flag is False:
            assert new_baseline
            assert (nir.offset, nir.offset_source) == (-0.1, "item-metadata")
            assert plan.offset_conflict is None
            assert forest_dn == pytest.approx(4100, abs=300)  # ESA's DNs: 0.31 + 1000
        else:
            assert not new_baseline
            assert (nir.offset, nir.offset_source) == (0.0, "baseline-rule")
            assert forest_dn == pytest.approx(3100, abs=300)
    assert seen == {"earthsearch:boa_offset_applied": 6, "item-metadata": 2, "baseline-rule": 2}
