"""The three engines on one grid: same pixel edges, same values where no reprojection is
involved, and exact placement (native) vs GDAL's approximate transformer (odc, stackstac)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from odc.geo.geobox import GeoBox

from clearcube.engines import ReadRequest, get_engine, list_engines
from clearcube.engines.placement import source_pixel_coords, source_pixel_index
from clearcube.gdal_env import gdal_options

ENGINES = ["odc", "stackstac", "native"]


def request(items, geobox, chunks=(64, 64)):
    return ReadRequest.from_items(
        tuple(items),
        "scl",
        geobox=geobox,
        dtype=np.dtype("uint8"),
        fill=0,
        chunks_yx=chunks,
        gdal=gdal_options(),
    )


def exact(data, transform, crs, geobox):
    """The reference: per output pixel centre, the containing source pixel (exact pyproj)."""
    rows, cols = source_pixel_index(
        crs,
        transform,
        data.shape,
        f"EPSG:{geobox.crs.epsg}",
        geobox.affine,
        (geobox.shape.y, geobox.shape.x),
    )
    out = np.zeros(rows.shape, np.uint8)
    ok = rows >= 0
    out[ok] = data[rows[ok], cols[ok]]
    return out


def test_registry():
    assert set(ENGINES) <= set(list_engines())
    with pytest.raises(ValueError, match="unknown engine 'gee'"):
        get_engine("gee")


@pytest.mark.parametrize("res", [20, 10])
def test_same_crs_engines_identical_and_exact(scl_tiles, res):
    item, data, transform = scl_tiles["T22"]
    geobox = GeoBox.from_bbox((164400, 9695200, 168800, 9699600), crs="EPSG:32722", resolution=res)
    arrays = {name: get_engine(name).read(request([item], geobox)) for name in ENGINES}
    want = exact(data, transform, "EPSG:32722", geobox)
    for name, arr in arrays.items():
        assert arr.dims == ("time", "y", "x"), name
        np.testing.assert_array_equal(arr["x"].values, geobox.coords["x"].values, err_msg=name)
        np.testing.assert_array_equal(arr["y"].values, geobox.coords["y"].values, err_msg=name)
        np.testing.assert_array_equal(arr.values[0], want, err_msg=name)


def first_overview(item):
    with rasterio.open(item.assets["scl"].href, overview_level=0) as ds:
        return ds.read(1), ds.transform


@pytest.mark.parametrize("res", [40, 60])
def test_coarser_output_reads_an_overview_only_above_twice_native(scl_tiles, res):
    # The 20 m tile has one overview (40 m, a nearest decimation). Up to 2x the native pixel
    # the native engine reads full resolution; beyond, it reads the coarsest overview not
    # coarser than the output and places it exactly, like GDAL's own overview choice.
    item, data, transform = scl_tiles["T22"]
    geobox = GeoBox.from_bbox((164400, 9695200, 168800, 9699600), crs="EPSG:32722", resolution=res)
    got = get_engine("native").read(request([item], geobox)).values[0]
    full = exact(data, transform, "EPSG:32722", geobox)
    if res <= 40:
        np.testing.assert_array_equal(got, full)
        return
    ov, ov_transform = first_overview(item)
    assert ov.shape == (128, 128)
    want = exact(ov, ov_transform, "EPSG:32722", geobox)
    assert (want != full).any()  # the two answers differ, so the test tells which was read
    np.testing.assert_array_equal(got, want)
    odc = get_engine("odc").read(request([item], geobox)).values[0]
    np.testing.assert_array_equal(odc, want)


def test_reprojected_native_exact_and_gdal_differs_only_at_edges(scl_tiles):
    # Tile T22 (UTM 22S) read onto a UTM 21S grid.
    item, data, transform = scl_tiles["T22"]
    geobox = GeoBox.from_bbox((830000, 9694000, 836000, 9700000), crs="EPSG:32721", resolution=20)
    want = exact(data, transform, "EPSG:32722", geobox)
    assert (want > 0).mean() > 0.3  # the grid really covers the tile
    got = {name: get_engine(name).read(request([item], geobox)).values[0] for name in ENGINES}
    np.testing.assert_array_equal(got["native"], want)
    frow, fcol = source_pixel_coords(
        "EPSG:32722", transform, "EPSG:32721", geobox.affine, (geobox.shape.y, geobox.shape.x)
    )
    edge_distance = np.minimum(np.abs(frow - np.round(frow)), np.abs(fcol - np.round(fcol)))
    for name in ("odc", "stackstac"):
        diff = got[name] != want
        assert diff.mean() <= 0.01, (name, diff.mean())
        # GDAL's approximate transformer (error threshold 0.125 px) can only move a centre
        # that lies that close to a source pixel edge.
        assert (edge_distance[diff] <= 0.125).all(), name


def test_two_zones_and_chunking_do_not_change_native(scl_tiles):
    items = [scl_tiles["T21"][0], scl_tiles["T22"][0]]
    geobox = GeoBox.from_bbox((829000, 9695000, 836000, 9699000), crs="EPSG:32721", resolution=20)
    a = get_engine("native").read(request(items, geobox, chunks=(64, 64))).values
    b = get_engine("native").read(request(items, geobox, chunks=(37, 200))).values
    np.testing.assert_array_equal(a, b)
    for k, name in enumerate(["T21", "T22"]):
        _, data, transform = scl_tiles[name]
        epsg = 32721 if name == "T21" else 32722
        np.testing.assert_array_equal(a[k], exact(data, transform, f"EPSG:{epsg}", geobox))


def test_native_builds_lazily_without_reading(scl_tiles, tmp_path):
    item, _, _ = scl_tiles["T22"]
    moved = item.clone()
    moved.assets["scl"].href = str(tmp_path / "not-there.tif")
    geobox = GeoBox.from_bbox((164400, 9695200, 168800, 9699600), crs="EPSG:32722", resolution=20)
    arr = get_engine("native").read(request([moved], geobox))  # no file access yet
    with pytest.raises(Exception, match=r"not-there\.tif"):
        arr.compute()


@pytest.mark.parametrize("res", [10, 20, 30])
def test_native_fused_decode_equals_read_then_decode(scl_tiles, res):
    import clearcube as cc
    from clearcube.sensors import get_encoding

    items = [scl_tiles["T21"][0], scl_tiles["T22"][0]]
    geobox = GeoBox.from_bbox((829000, 9695000, 836000, 9699000), crs="EPSG:32721", resolution=res)
    engine = get_engine("native")
    cfg = cc.MaskConfig(scl_medium_as_cloud=False)
    fused = engine.read_flags(request(items, geobox), get_encoding("s2-scl"), cfg)
    assert fused.dtype == np.uint16
    separate = cc.decode(engine.read(request(items, geobox)).values, "s2-scl", cfg)
    np.testing.assert_array_equal(fused.values, separate)
    assert (fused.values == cc.Flag.NODATA).any()  # outside the tiles and the no-data edge
