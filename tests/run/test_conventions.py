"""The run's cube as the ecosystem reads it: consolidated Zarr v3 for xarray, the grid mapping
and no-data for rioxarray, the grid for odc-geo, CF attributes on every variable."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import odc.geo.xr  # noqa: F401  (the .odc accessor)
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
import zarr
from odc.geo.geobox import GeoBox
from odc.geo.xr import assign_crs

from clearcube.bands import long_name
from clearcube.products.zarr import open_cube, write_cube

from .._cli import cli

BANDS = ("red", "nir")


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "demo-run"
    done = cli("run", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out / "cube.zarr"


def _raw(path, name):
    """The stored values as zarr holds them, without any decoding."""
    return zarr.open_array(path / name, mode="r", zarr_format=3)[...]


def test_the_store_is_consolidated(cube):
    root = json.loads((cube / "zarr.json").read_text())
    listed = set(root["consolidated_metadata"]["metadata"])
    assert {"clear", "flags", *BANDS, "decision", "spatial_ref", "x", "y", "time"} <= listed
    ds = xr.open_zarr(cube, consolidated=True)
    assert set(ds.data_vars) == {"clear", "flags", *BANDS}
    assert ds.sizes["time"] == 13
    # the consolidated copy is the metadata the arrays carry (written after the last change)
    for name, meta in root["consolidated_metadata"]["metadata"].items():
        own = json.loads((cube / name / "zarr.json").read_text())
        assert meta["attributes"] == own["attributes"], name
        assert meta["shape"] == own["shape"], name


def test_cf_attributes_on_every_variable(cube):
    ds = xr.open_zarr(cube, consolidated=True)
    for band in BANDS:
        attrs = ds[band].attrs
        assert attrs["units"] == "1"
        assert attrs["standard_name"] == "surface_bidirectional_reflectance"
        assert attrs["long_name"] == long_name(band)
        assert "nodata" not in attrs
        assert np.isnan(ds[band].encoding["_FillValue"])
    for name in ("clear", "flags"):
        assert ds[name].attrs["long_name"]
        assert "nodata" not in ds[name].attrs
        assert "_FillValue" not in ds[name].encoding, name
        raw = json.loads((cube / name / "zarr.json").read_text())["attributes"]
        assert "_FillValue" not in raw, name
        assert "nodata" not in raw, name
    assert ds["flags"].attrs["standard_name"] == "status_flag"
    assert len(ds["flags"].attrs["flag_masks"]) == len(ds["flags"].attrs["flag_meanings"].split())
    assert ds["x"].attrs["standard_name"] == "projection_x_coordinate"
    assert ds["y"].attrs["standard_name"] == "projection_y_coordinate"
    assert ds["x"].attrs["units"] == ds["y"].attrs["units"] == "metre"
    assert ds["time"].attrs["standard_name"] == "time"
    ref = ds["spatial_ref"].attrs
    assert ref["grid_mapping_name"] == "transverse_mercator"
    assert ref["longitude_of_central_meridian"] == -51  # UTM 22S
    assert ds.attrs["Conventions"].startswith("CF-")


def test_rioxarray_reads_grid_and_nodata(cube):
    ds = xr.open_dataset(cube, engine="zarr", decode_coords="all")
    transform = rasterio.Affine(20.0, 0.0, 162560.0, 0.0, -20.0, 9669640.0)
    for name in ("clear", "flags", *BANDS):
        assert ds[name].rio.crs.to_epsg() == 32722, name
        assert ds[name].rio.transform() == transform, name
    for band in BANDS:
        assert np.isnan(ds[band].rio.nodata)
        assert np.isnan(ds[band].rio.encoded_nodata)
    # clear and flags: no no-data, so nothing is masked and their types are kept
    for name in ("clear", "flags"):
        assert ds[name].rio.nodata is None, name
        assert ds[name].rio.encoded_nodata is None, name
    assert ds["clear"].dtype == bool
    assert ds["flags"].dtype == np.uint16
    clear = ds["clear"].values
    np.testing.assert_array_equal(clear, _raw(cube, "clear"))
    assert 0 < clear.sum() < clear.size  # clear pixels and others, both intact
    np.testing.assert_array_equal(ds["flags"].values, _raw(cube, "flags"))
    # reflectance: NaN exactly where the store holds NaN, every stored value kept (0 too)
    for band in BANDS:
        raw = _raw(cube, band)
        got = ds[band].values
        np.testing.assert_array_equal(np.isnan(got), np.isnan(raw))
        np.testing.assert_array_equal(got[~np.isnan(raw)], raw[~np.isnan(raw)])
        # a used scene has reflectance under its clear pixels
        assert np.isfinite(got[clear]).any()


def test_odc_geo_reads_the_runs_grid(cube):
    ds = open_cube(cube)
    assert ds.odc.geobox == xr.open_zarr(cube, consolidated=True).odc.geobox
    item = json.loads((cube.parent / "stac" / "masked-cube.json").read_text())
    props = item["properties"]
    grid = GeoBox(
        tuple(props["proj:shape"]),
        rasterio.Affine(*props["proj:transform"]),
        props["proj:code"],
    )
    assert ds.odc.geobox == grid
    # the composites are written on the same grid by another writer (rasterio)
    first = sorted((cube.parent / "composites").glob("median_*.tif"))[0]
    with rasterio.open(first) as src:
        assert src.transform == grid.affine
        assert (src.height, src.width) == grid.shape
        assert src.crs.to_epsg() == grid.crs.epsg


def test_write_cube_is_consolidated_with_the_conventions(tmp_path):
    grid = GeoBox.from_bbox((500000, 9600000, 500900, 9600700), "EPSG:32721", resolution=10)
    rng = np.random.default_rng(3)
    shape = (2, *grid.shape.yx)
    red = rng.normal(0.1, 0.03, shape).astype(np.float32)
    red[0, :5] = np.nan
    coords = {"time": np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[ns]")}
    coords.update({"y": grid.coords["y"].values, "x": grid.coords["x"].values})
    ds = xr.Dataset(
        {
            "red": (("time", "y", "x"), da.from_array(red, chunks=(1, 32, 32)), {"nodata": 0}),
            "clear": (("time", "y", "x"), np.isfinite(red)),
        },
        coords=coords,
    )
    path = write_cube(assign_crs(ds, "EPSG:32721"), tmp_path / "cube.zarr")
    assert "consolidated_metadata" in json.loads((path / "zarr.json").read_text())
    back = xr.open_dataset(path, engine="zarr", consolidated=True, decode_coords="all")
    assert back["red"].attrs["units"] == "1"
    assert np.isnan(back["red"].rio.nodata)
    assert back["clear"].rio.nodata is None
    assert back.rio.crs.to_epsg() == 32721
    assert back.odc.geobox == grid
    np.testing.assert_array_equal(back["red"].values, red)
    np.testing.assert_array_equal(back["clear"].values, np.isfinite(red))
