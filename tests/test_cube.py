"""clearcube.load on the demo catalog: engines agree, reflectance is right, nothing is read
before compute, faults are recorded, and the cube is the same on a cluster and over HTTP."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pystac
import pytest

import clearcube as cc
from clearcube import Flag, LoadOptions, MaskConfig
from clearcube.cube import fallbacks_of, load
from clearcube.demo import DEMO_BBOX, generate_demo
from clearcube.engines.placement import source_pixel_coords, source_pixel_index
from clearcube.gdal_env import clear_vsicurl_cache
from clearcube.resources import demo_catalog_path
from clearcube.stats import cloud_fraction

DEMO = demo_catalog_path()


@pytest.fixture(scope="module")
def items():
    return list(pystac.Catalog.from_file(str(DEMO)).get_items(recursive=True))


@pytest.fixture(scope="module")
def cubes(items):
    return {
        engine: load(
            items,
            bbox=DEMO_BBOX,
            options=LoadOptions(bands=("red", "nir"), engine=engine, chunks=128),
        )
        for engine in ("odc", "stackstac", "native")
    }


@pytest.fixture(scope="module")
def flags(cubes):
    return {engine: ds["flags"].values for engine, ds in cubes.items()}


def test_cube_layout(cubes, items):
    ds = cubes["odc"]
    assert set(ds.data_vars) >= {"flags", "clear", "red", "nir"}
    assert ds["flags"].dtype == np.uint16
    assert ds["red"].dtype == np.float32
    assert ds.sizes["time"] == len(items)
    assert list(ds["time"].values) == sorted(ds["time"].values)
    assert set(ds["sensor"].values) == {"sentinel-2", "landsat"}
    assert ds.odc.geobox.crs.epsg == 32722  # zone 22 has 8 of 13 scenes; the AOI is south
    assert ds.odc.geobox.resolution.x == 20
    assert fallbacks_of(ds) == []


def test_engines_share_the_grid_and_same_crs_scenes_are_identical(cubes, flags):
    ref = cubes["odc"]
    for engine in ("stackstac", "native"):
        np.testing.assert_array_equal(cubes[engine]["x"].values, ref["x"].values)
        np.testing.assert_array_equal(cubes[engine]["y"].values, ref["y"].values)
    same = [i for i, cid in enumerate(ref["id"].values) if "22MBA" in str(cid)]
    assert len(same) == 5
    for engine in ("stackstac", "native"):
        np.testing.assert_array_equal(flags[engine][same], flags["odc"][same], err_msg=engine)


def test_reprojected_scenes_differ_only_at_source_edges(cubes, flags, items):
    ref = cubes["odc"]
    geobox = ref.odc.geobox
    by_id = {i.id: cc.identify(i) for i in items}
    differing = 0
    total = 0
    for t, item_id in enumerate(ref["id"].values):
        plan = by_id[str(item_id)]
        if plan.crs == "EPSG:32722":
            continue
        diff = flags["odc"][t] != flags["stackstac"][t]
        differing += int(diff.sum())
        total += diff.size
        if diff.any():
            from affine import Affine

            frow, fcol = source_pixel_coords(
                plan.crs,
                Affine(*plan.qa_grid.transform),
                "EPSG:32722",
                geobox.affine,
                (geobox.shape.y, geobox.shape.x),
            )
            edge = np.minimum(np.abs(frow - np.round(frow)), np.abs(fcol - np.round(fcol)))
            assert (edge[diff] <= 0.125).all(), item_id
    assert differing / total <= 0.001, differing / total
    fa = cloud_fraction(cubes["odc"])["cloud_fraction"].to_numpy()
    fb = cloud_fraction(cubes["stackstac"])["cloud_fraction"].to_numpy()
    np.testing.assert_allclose(fa, fb, atol=1e-4)  # 0.01 percentage point


def test_native_matches_the_exact_reference_on_every_pixel(cubes, flags, items):
    from affine import Affine

    ref = cubes["native"]
    geobox = ref.odc.geobox
    by_id = {i.id: cc.identify(i) for i in items}
    for t, item_id in enumerate(ref["id"].values):
        plan = by_id[str(item_id)]
        import rasterio

        with rasterio.open(plan.qa_href) as src:
            qa = src.read(1)
        rows, cols = source_pixel_index(
            plan.crs,
            Affine(*plan.qa_grid.transform),
            qa.shape,
            "EPSG:32722",
            geobox.affine,
            (geobox.shape.y, geobox.shape.x),
        )
        want = np.full(rows.shape, Flag.NODATA, np.uint16)
        ok = rows >= 0
        want[ok] = cc.decode(qa, plan.qa_encoding)[rows[ok], cols[ok]]
        np.testing.assert_array_equal(flags["native"][t], want, err_msg=str(item_id))


def test_reflectance_scaled_offset_and_masked(cubes):
    ds = cubes["native"]
    clear = ds["clear"].values
    nir = ds["nir"].values
    assert np.isnan(nir[~clear]).all()
    flags = ds["flags"].values
    forest_like = clear & ~((flags & Flag.WATER) > 0)
    for t in range(ds.sizes["time"]):
        if forest_like[t].sum() < 1000:
            continue
        median = float(np.nanmedian(nir[t][forest_like[t]]))
        # every baseline and sensor lands on forest NIR ~0.3 once scale/offset are applied
        assert 0.25 < median < 0.36, (str(ds["id"].values[t]), median)


def test_cloud_fraction_matches_the_truth(cubes):
    truth = json.loads((DEMO.parent / "truth" / "summary.json").read_text())
    table = cloud_fraction(cubes["native"], MaskConfig(masked_flags=("CLOUD", "CIRRUS")))
    for _, row in table.iterrows():
        if row["valid_px"] < 20000:
            continue
        # the AOI is a part of each scene: agreement is loose, but a wrong decoder is far off
        assert abs(row["cloud_fraction"] - truth[row["id"]]["cloud_fraction"]) < 0.25, row["id"]


def test_group_by_solar_day_merges_adjacent_tiles(items):
    ds = load(
        items,
        bbox=DEMO_BBOX,
        options=LoadOptions(bands=("nir",), chunks=128, group_by="solar_day"),
    )
    assert ds.sizes["time"] == 5 + 3  # five Sentinel-2 passes, three Landsat scenes
    merged = [str(v) for v in ds["id"].values if "+" in str(v)]
    assert len(merged) == 5
    single = load(items, bbox=DEMO_BBOX, options=LoadOptions(bands=(), chunks=128))
    f = ds["flags"].values
    g = single["flags"].values
    # a merged slice has no more no-data than either of its tiles
    for t, ident in enumerate(ds["id"].values):
        if "+" not in str(ident):
            continue
        parts = [i for i, v in enumerate(single["id"].values) if str(v) in str(ident)]
        merged_nodata = ((f[t] & Flag.NODATA) > 0).sum()
        assert merged_nodata <= min(((g[p] & Flag.NODATA) > 0).sum() for p in parts)


def test_dilation_in_metres_grows_masks(items):
    plain = load(items[:4], bbox=DEMO_BBOX, options=LoadOptions(bands=(), chunks=100))
    grown = load(
        items[:4],
        bbox=DEMO_BBOX,
        options=LoadOptions(bands=(), chunks=100),
        mask=MaskConfig(dilation_m=60),
    )
    a = (plain["flags"].values & Flag.DILATED) > 0
    b = (grown["flags"].values & Flag.DILATED) > 0
    assert (b & ~a).sum() > 0
    assert not (a & ~b).any()
    assert cloud_fraction(grown)["masked_px"].sum() > cloud_fraction(plain)["masked_px"].sum()


def test_geometry_aoi_limits_cloud_fraction(items):
    west, south, east, north = DEMO_BBOX
    triangle = {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [west, north], [west, south]]],
    }
    ds = load(items[:2], geometry=triangle, options=LoadOptions(bands=(), chunks=128))
    assert "aoi" in ds
    table = cloud_fraction(ds)
    inside = int(ds["aoi"].sum())
    assert 0.4 < inside / ds["aoi"].size < 0.6
    assert (table["aoi_px"] == inside).all()


def test_bad_input(items, tmp_path):
    with pytest.raises(cc.GridError, match="no item overlaps"):
        load(items, bbox=(10.0, 45.0, 10.1, 45.1))
    with pytest.raises(cc.GridError, match="smaller than one"):
        load(items, bbox=(-54.0, -3.0, -53.9999, -2.9999))
    with pytest.raises(cc.GridError, match="finer than a tenth"):
        load(items, bbox=DEMO_BBOX, mask=MaskConfig(resolution=1))
    with pytest.raises(cc.ConfigError, match="unknown engine"):
        load(items, bbox=DEMO_BBOX, options=LoadOptions(engine="gee"))


def test_broken_assets_become_recorded_fallbacks(items, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(DEMO.parent, folder)
    cat = pystac.Catalog.from_file(str(folder / "catalog.json"))
    chosen = sorted(cat.get_items(recursive=True), key=lambda i: i.id)[:4]
    missing = cc.identify(chosen[0]).qa_href
    Path(missing).unlink()
    corrupt = cc.identify(chosen[1]).qa_href
    Path(corrupt).write_bytes(b"II*\x00 not a tiff at all")
    ds = load(chosen, bbox=DEMO_BBOX, options=LoadOptions(bands=("red",), check_assets=True))
    recorded = {f["id"]: f["reason"] for f in fallbacks_of(ds)}
    assert set(recorded) == {chosen[0].id, chosen[1].id}
    assert all("never treated as clear" in r for r in recorded.values())
    assert ds.sizes["time"] == 2
    assert np.isfinite(ds["red"].values).any()


def test_remote_items_may_not_read_local_files(items):
    plan_dict = items[0].to_dict()
    plan_dict["links"] = [{"rel": "self", "href": "https://stac.example/items/x.json"}]
    for asset in plan_dict["assets"].values():
        asset["href"] = "file:///etc/passwd"
    good = [i for i in items if i.id != items[0].id]
    ds = load([plan_dict, *good], bbox=DEMO_BBOX, options=LoadOptions(bands=()))
    (fb,) = fallbacks_of(ds)
    assert fb["id"] == items[0].id
    assert "local file" in fb["reason"]


def test_load_reads_nothing_until_compute_over_http(nginx, tmp_path_factory):
    served = nginx.root / "demo"
    generate_demo(served, href_base=f"{nginx.url}/data/demo")
    remote = list(pystac.Catalog.from_file(str(served / "catalog.json")).get_items(recursive=True))
    assert cc.identify(remote[0]).qa_href.startswith("http://127.0.0.1")
    local = list(pystac.Catalog.from_file(str(DEMO)).get_items(recursive=True))
    for engine in ("odc", "native"):
        opts = LoadOptions(bands=("red",), engine=engine, chunks=128)
        clear_vsicurl_cache()
        nginx.clear_log()
        ds = load(remote, bbox=DEMO_BBOX, options=opts)
        assert [r for r in nginx.requests() if r.path.endswith((".tif", ".TIF"))] == []
        values = ds["flags"].values
        time.sleep(0.3)  # nginx logs a request after its response has left
        assert nginx.requests(), "nothing fetched over HTTP"
        want = load(local, bbox=DEMO_BBOX, options=opts)
        np.testing.assert_array_equal(values, want["flags"].values)
        np.testing.assert_array_equal(ds["red"].values, want["red"].values)


@pytest.mark.integration  # a dask LocalCluster
def test_same_result_on_a_local_cluster(items, dask_cluster):
    import distributed

    ds = load(items, bbox=DEMO_BBOX, options=LoadOptions(bands=("nir",), chunks=128))
    threaded = ds.compute(scheduler="threads")
    with distributed.Client(dask_cluster) as client:
        on_cluster = ds.compute()
        table = cloud_fraction(ds)
        assert client.status == "running"
    np.testing.assert_array_equal(on_cluster["flags"].values, threaded["flags"].values)
    np.testing.assert_array_equal(on_cluster["nir"].values, threaded["nir"].values)
    np.testing.assert_allclose(
        table["cloud_fraction"].to_numpy(), cloud_fraction(threaded)["cloud_fraction"].to_numpy()
    )
