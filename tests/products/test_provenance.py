"""Per-pixel provenance of the composites, checked against brute-force numpy on demo runs: the
medoid's source scene per pixel with its lookup table, and each pixel's clear count and first
and last clear-observation date."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from clearcube.compositing import NO_DATE
from clearcube.job import run
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config
from clearcube.verification import verify


def _run(tmp_path_factory: pytest.TempPathFactory, method: str):
    cfg = load_run_config(config_path("default")).with_overrides(composite={"method": method})
    out = tmp_path_factory.mktemp(method) / "run"
    run(cfg, out=out)
    return out


@pytest.fixture(scope="module")
def median_run(tmp_path_factory):
    return _run(tmp_path_factory, "median")


@pytest.fixture(scope="module")
def medoid_run(tmp_path_factory):
    return _run(tmp_path_factory, "medoid")


def _used(out):
    ds = xr.open_zarr(out / "cube.zarr", consolidated=False)
    used = [i for i, d in enumerate(ds["decision"].values) if d == "used"]
    return ds, used


def _pixels(shape, n=4000, seed=0):
    """A fixed sample of pixel positions (the brute force goes pixel by pixel)."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(shape[0] * shape[1], size=min(n, shape[0] * shape[1]), replace=False)
    return list(zip(*np.unravel_index(flat, shape), strict=True))


def _read(path):
    with rasterio.open(path) as src:
        return src.read(), src.nodatavals, src.tags()


def test_clear_count_and_dates_are_those_of_the_clear_observations(median_run):
    ds, used = _used(median_run)
    clear = ds["clear"].values[used].astype(bool)
    times = pd.DatetimeIndex(ds["time"].values[used])
    days = (times.normalize() - pd.Timestamp("1970-01-01")).days.to_numpy()
    checked = spans = 0
    for year in sorted(set(times.year)):
        sel = np.flatnonzero(times.year == year)
        dates, nodata, tags = _read(median_run / "composites" / f"clear_dates_{year}.tif")
        count, _, _ = _read(median_run / "composites" / f"clear_count_{year}.tif")
        assert nodata == (NO_DATE, NO_DATE)
        assert tags["CLEARCUBE_PERIOD"] == str(year)
        # brute force: every pixel on its own
        for yy, xx in _pixels(clear.shape[1:]):
            seen = [int(days[k]) for k in sel if clear[k, yy, xx]]
            want = (min(seen), max(seen)) if seen else (NO_DATE, NO_DATE)
            assert (dates[0, yy, xx], dates[1, yy, xx]) == want, (year, yy, xx)
        np.testing.assert_array_equal(count[0], clear[sel].sum(axis=0))
        assert ((dates[0] == NO_DATE) == (count[0] == 0)).all()
        checked += 1
        spans += int((dates[0] < dates[1]).sum())
    assert checked == 4
    assert spans > 0  # some pixels are clear on more than one date


def _brute_medoid(red, nir, pixels):
    """Per pixel, the first observation (all bands finite) nearest the per-band median."""
    index = {}
    for yy, xx in pixels:
        index[yy, xx] = -1
        obs = [
            (k, red[k, yy, xx], nir[k, yy, xx])
            for k in range(red.shape[0])
            if np.isfinite(red[k, yy, xx]) and np.isfinite(nir[k, yy, xx])
        ]
        if not obs:
            continue
        med_r = np.median([o[1] for o in obs])
        med_n = np.median([o[2] for o in obs])
        dist = [(float(o[1]) - med_r) ** 2 + (float(o[2]) - med_n) ** 2 for o in obs]
        index[yy, xx] = obs[int(np.argmin(dist))][0]
    return index


def test_medoid_source_index_names_the_scene_of_each_pixel(medoid_run):
    ds, used = _used(medoid_run)
    table = json.loads((medoid_run / "composites" / "source_scenes.json").read_text())
    assert [row["index"] for row in table] == list(range(len(used)))
    assert [row["id"] for row in table] == [str(ds["id"].values[i]) for i in used]
    assert {row["sensor"] for row in table} == {"sentinel-2", "landsat"}
    assert all(row["date"] == row["datetime"][:10] for row in table)
    red = ds["red"].values[used].astype(np.float64)
    nir = ds["nir"].values[used].astype(np.float64)
    times = pd.DatetimeIndex(ds["time"].values[used])
    for year in sorted(set(times.year)):
        sel = np.flatnonzero(times.year == year)
        index, nodata, tags = _read(medoid_run / "composites" / f"source_index_{year}.tif")
        refl, _, _ = _read(medoid_run / "composites" / f"medoid_{year}.tif")
        assert nodata == (-1.0,)
        assert tags["CLEARCUBE_SOURCE_TABLE"] == "source_scenes.json"
        index = index[0]
        pixels = _pixels(index.shape)
        for (yy, xx), k in _brute_medoid(red[sel], nir[sel], pixels).items():
            want = sel[k] if k >= 0 else -1  # period position -> table index
            assert index[yy, xx] == want, (year, yy, xx)
        assert (index >= 0).any()
        # each pixel's reflectance is its source scene's
        yy, xx = np.nonzero(index >= 0)
        k = index[yy, xx]
        np.testing.assert_array_equal(refl[0][yy, xx], red[k, yy, xx].astype(np.float32))
        np.testing.assert_array_equal(refl[1][yy, xx], nir[k, yy, xx].astype(np.float32))
        assert np.isnan(refl[0][index < 0]).all()
        # every scene the index names belongs to the period, and the tags name them all
        named = {table[i]["id"] for i in np.unique(index[index >= 0])}
        assert named <= set(json.loads(tags["CLEARCUBE_SCENES"]))


def test_provenance_assets_are_in_the_stac_and_the_run_verifies(medoid_run, median_run):
    medoid = json.loads((medoid_run / "stac" / "composite-2024.json").read_text())
    assets = medoid["assets"]
    assert {"source_index", "source_table", "clear_dates"} <= set(assets)
    assert assets["source_table"]["href"] == "../composites/source_scenes.json"
    assert assets["source_index"]["raster:bands"][0]["nodata"] == -1
    assert assets["source_index"]["raster:bands"][0]["data_type"] == "int16"
    assert [b["data_type"] for b in assets["clear_dates"]["raster:bands"]] == ["uint16"] * 2
    median = json.loads((median_run / "stac" / "composite-2024.json").read_text())
    assert "clear_dates" in median["assets"]
    assert "source_index" not in median["assets"]
    assert verify(medoid_run).ok
    assert verify(median_run).ok
