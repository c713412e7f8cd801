"""The main job end to end: the CLI on the demo catalog, verify, tampering, resumption."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

import clearcube as cc
from clearcube.job import run
from clearcube.products.tables import read_scenes
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config
from clearcube.verification import verify

from .._cli import cli


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "demo-run"
    done = cli("run", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"products in {out}" in done.stdout
    return out


def test_run_writes_every_product(finished):
    for rel in (
        "catalog.json",
        "audit.jsonl",
        "scenes.csv",
        "review.jsonl",
        "report.html",
        "cube.zarr",
        "run.json",
    ):
        assert (finished / rel).exists(), rel
    scenes = pd.read_csv(finished / "scenes.csv")
    assert set(scenes["decision"]) <= {
        "used",
        "over_threshold",
        "review",
        "fallback",
        "no_valid_data",
    }
    assert (scenes["decision"] == "used").sum() >= 5
    over = scenes[scenes["decision"] == "over_threshold"]
    assert (over["cloud_fraction"] > 0.3).all()
    assert len(list((finished / "composites").glob("median_*.tif"))) == 4  # 2021..2024
    queue = [json.loads(line) for line in (finished / "review.jsonl").read_text().splitlines()]
    assert {r["id"] for r in queue} == set(
        scenes.loc[scenes["decision"].isin(["review", "over_threshold"]), "id"]
    )


def test_cube_reopens_with_its_grid(finished):
    import odc.geo.xr  # noqa: F401

    ds = xr.open_zarr(finished / "cube.zarr", consolidated=False)
    assert ds["flags"].dtype == np.uint16
    assert ds.odc.geobox.crs.epsg == 32722
    assert ds.odc.geobox.resolution.x == 20
    assert set(ds["decision"].values) >= {"used", "over_threshold"}
    assert ds.sizes["time"] == 13


def test_composites_are_clear_medians(finished):
    ds = xr.open_zarr(finished / "cube.zarr", consolidated=False)
    used = [i for i, d in enumerate(ds["decision"].values) if d == "used"]
    years = pd.DatetimeIndex(ds["time"].values).year
    sel = [i for i in used if years[i] == 2024]
    nir = ds["nir"].values[sel]
    with rasterio.open(finished / "composites" / "median_2024.tif") as src:
        assert src.descriptions == ("red", "nir")
        assert src.overviews(1)
        got = src.read(2)
    finite = np.isfinite(nir).any(axis=0)
    np.testing.assert_allclose(got[finite], np.nanmedian(nir[:, finite], axis=0), rtol=1e-6)
    assert np.isnan(got[~finite]).all()
    with rasterio.open(finished / "composites" / "clear_count_2024.tif") as src:
        count = src.read(1)
    np.testing.assert_array_equal(count, ds["clear"].values[sel].sum(0))


def test_output_stac_carries_checksums_and_sources(finished):
    catalog = json.loads((finished / "catalog.json").read_text())
    items = [
        json.loads((finished / link["href"]).read_text())
        for link in catalog["links"]
        if link["rel"] == "item"
    ]
    assert {i["id"] for i in items} >= {"masked-cube", "composite-2024"}
    cube = next(i for i in items if i["id"] == "masked-cube")
    assert cube["properties"]["processing:software"]["clearcube"] == cc.__version__
    assert cube["assets"]["cube"]["file:checksum"].startswith("1220")
    sources = [link for link in cube["links"] if link["rel"] == "derived_from"]
    assert len(sources) == 13


def test_verify_passes_then_fails_on_any_change(finished, tmp_path):
    assert cli("verify", str(finished)).returncode == 0
    for target in ("audit.jsonl", "composites/median_2023.tif", "scenes.csv", "catalog.json"):
        copy = tmp_path / target.replace("/", "_")
        shutil.copytree(finished, copy)
        path = copy / target
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        done = cli("verify", str(copy))
        assert done.returncode == 1, target
        assert target.split("/")[-1] in done.stderr or "audit.jsonl" in done.stderr, done.stderr


def test_resume_and_config_guard(tmp_path):
    cfg = load_run_config(config_path("default"))
    out = tmp_path / "resume"
    first = run(cfg, out=out)
    # a crash after some products: drop the end of the audit trail and one product
    lines = (out / "audit.jsonl").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if '"path":"report.html"' in line)
    (out / "audit.jsonl").write_text("\n".join(lines[:cut]) + "\n")
    (out / "report.html").unlink()
    again = run(cfg, out=out)
    assert "cube.zarr" in again.reused
    assert "scenes.csv" in again.reused
    assert "report.html" not in again.reused
    assert verify(out).ok
    assert first.scenes["decision"].tolist() == again.scenes["decision"].tolist()
    other = cfg.with_overrides(mask={"cloud_threshold": 0.5})
    with pytest.raises(cc.ConfigError, match="another config"):
        run(other, out=out)
    replaced = run(other, out=out, overwrite=True)
    assert replaced.run_id != first.run_id
    assert verify(out).ok


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[mask]\ncloud_threshold = 3\n")
    done = cli("run", "--config", str(bad), "--out", str(tmp_path / "x"))
    assert done.returncode == 1
    assert "cloud_threshold" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("run", "--source", str(tmp_path / "missing.json"), "--out", str(tmp_path / "y"))
    assert done.returncode == 1
    assert "no such catalog file" in done.stderr
    assert cli("run", "--bbox", "1").returncode == 2


def test_composite_command_medoid(finished, tmp_path):
    dest = tmp_path / "medoid"
    done = cli(
        "composite", str(finished), "--method", "medoid", "--period", "all", "--dest", str(dest)
    )
    assert done.returncode == 0, done.stderr
    with rasterio.open(dest / "medoid_all.tif") as src:
        assert src.descriptions == ("red", "nir")  # spectral order, whatever the store lists
        medoid = src.read()
    ds = xr.open_zarr(finished / "cube.zarr", consolidated=False)
    used = [i for i, d in enumerate(ds["decision"].values) if d == "used"]
    red = ds["red"].values[used]
    nir = ds["nir"].values[used]
    # every medoid pixel is one real clear observation of some used scene
    ok = np.isfinite(medoid[0])
    match = (np.isclose(red, medoid[0]) & np.isclose(nir, medoid[1])).any(axis=0)
    assert match[ok].all()
    # and its provenance names which: the source index through its table
    table = json.loads((dest / "source_scenes.json").read_text())
    assert [row["id"] for row in table] == [str(ds["id"].values[i]) for i in used]
    with rasterio.open(dest / "source_index_all.tif") as src:
        index = src.read(1)
    assert ((index >= 0) == ok).all()
    yy, xx = np.nonzero(ok)
    np.testing.assert_array_equal(medoid[0][yy, xx], red[index[yy, xx], yy, xx])
    with rasterio.open(dest / "clear_dates_all.tif") as src:
        assert src.descriptions == ("first_clear", "last_clear")


@pytest.mark.integration  # a dask LocalCluster
def test_run_on_a_dask_cluster(tmp_path, dask_cluster, finished):
    """The default job on a cluster writes what the threaded run (``finished``) wrote."""
    cfg = load_run_config(config_path("default"))
    run(cfg, out=tmp_path / "cluster", scheduler=dask_cluster.scheduler_address)
    pd.testing.assert_frame_equal(
        read_scenes(tmp_path / "cluster" / "scenes.csv"), read_scenes(finished / "scenes.csv")
    )
    a = xr.open_zarr(tmp_path / "cluster" / "cube.zarr", consolidated=False)
    b = xr.open_zarr(finished / "cube.zarr", consolidated=False)
    np.testing.assert_array_equal(a["flags"].values, b["flags"].values)
