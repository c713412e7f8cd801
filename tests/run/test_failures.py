"""Failures are data: a corrupt QA COG or a missing band makes its scene a recorded fallback,
the run goes on, and every other scene comes out exactly as in a run without the bad one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

import clearcube as cc
from clearcube.job import run
from clearcube.resources import config_path, demo_catalog_path
from clearcube.runconfig import load_run_config
from clearcube.verification import verify

from .._cli import cli

DEMO = demo_catalog_path().parent
CORRUPT = "S2B_22MBA_20230804_0_L2A"  # used in a clean run: its QA is garbled after the header
NO_RED = "S2B_21MZS_20230804_0_L2A"  # used in a clean run: its red band is gone
# scene-table columns that differ between runs over copies of one catalog by construction (the
# items' self links, the config's source)
PROVENANCE = ["item_digest", "config_digest"]


def first_tile_offset(path: Path) -> int:
    """Where the full-resolution tile data of a COG starts (after every header)."""
    with rasterio.open(path) as src:
        rows, cols = src.block_shapes[0]
        offsets = [
            int(src.get_tag_item(f"BLOCK_OFFSET_{i}_{j}", "TIFF", bidx=1))
            for i in range(-(-src.width // cols))
            for j in range(-(-src.height // rows))
        ]
    return min(offsets)


def item_folder(root: Path, item_id: str) -> Path:
    return next(p.parent for p in root.rglob(f"{item_id}.json"))


def config(source: Path, **mask):
    cfg = load_run_config(config_path("default"))
    return cfg.with_overrides(search={"source": str(source)}, mask=mask)


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory):
    """The demo, a copy with the two faults, and a copy without the two faulty scenes."""
    base = tmp_path_factory.mktemp("catalogs")
    broken = base / "broken"
    shutil.copytree(DEMO, broken)
    scl = item_folder(broken, CORRUPT) / "SCL.tif"
    data = bytearray(scl.read_bytes())
    start = first_tile_offset(scl)
    rng = np.random.default_rng(7)
    data[start:] = rng.integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    scl.write_bytes(bytes(data))
    (item_folder(broken, NO_RED) / "B04.tif").unlink()

    without = base / "without"
    shutil.copytree(DEMO, without)
    for item_id in (CORRUPT, NO_RED):
        folder = item_folder(without, item_id)
        collection = folder.parent / "collection.json"
        doc = json.loads(collection.read_text())
        doc["links"] = [link for link in doc["links"] if item_id not in link["href"]]
        collection.write_text(json.dumps(doc))
        shutil.rmtree(folder)
    return {"broken": broken / "catalog.json", "without": without / "catalog.json"}


@pytest.fixture(scope="module")
def runs(catalogs, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {
        name: (out / name, run(config(path), out=out / name)) for name, path in catalogs.items()
    }


def test_bad_scenes_are_recorded_fallbacks_naming_asset_and_cause(runs):
    folder, result = runs["broken"]
    scenes = result.scenes.set_index("id")
    assert scenes.loc[CORRUPT, "decision"] == "fallback"
    assert scenes.loc[NO_RED, "decision"] == "fallback"
    corrupt = scenes.loc[CORRUPT, "reason"]
    assert "asset 'scl'" in corrupt
    assert "SCL.tif" in corrupt
    assert "never treated as clear" in corrupt
    assert "Read failed. See previous exception" not in corrupt  # GDAL's own cause is kept
    missing = scenes.loc[NO_RED, "reason"]
    assert "asset 'red'" in missing
    assert "B04.tif" in missing
    assert scenes.loc[CORRUPT, "unreadable_px"] > 0
    assert scenes.loc[CORRUPT, "fallback"] == "unreadable"
    records = [json.loads(line) for line in (folder / "audit.jsonl").read_text().splitlines()]
    fallback_ids = {r["data"]["id"] for r in records if r["kind"] == "scene_fallback"}
    assert {CORRUPT, NO_RED} <= fallback_ids
    assert records[-1]["kind"] == "end"
    assert verify(folder).ok


def test_every_other_scene_is_what_a_run_without_the_bad_scenes_gives(runs):
    folder, result = runs["broken"]
    clean_folder, clean = runs["without"]
    bad = result.scenes.set_index("id").drop(index=[CORRUPT, NO_RED], columns=PROVENANCE)
    good = clean.scenes.set_index("id").drop(columns=PROVENANCE)
    pd.testing.assert_frame_equal(bad.loc[good.index], good, check_exact=True)
    a = xr.open_zarr(folder / "cube.zarr", consolidated=False)
    b = xr.open_zarr(clean_folder / "cube.zarr", consolidated=False)
    keep = [i for i, v in enumerate(a["id"].values) if v not in (CORRUPT, NO_RED)]
    for var in ("flags", "clear", "red", "nir"):
        np.testing.assert_array_equal(a[var].values[keep], b[var].values)
    for t, v in enumerate(a["id"].values):
        if v in (CORRUPT, NO_RED):  # a fallback scene has no reflectance in the cube
            assert np.isnan(a["red"].values[t]).all()
            assert np.isnan(a["nir"].values[t]).all()
    for tif in sorted((clean_folder / "composites").glob("*.tif")):
        with rasterio.open(tif) as x, rasterio.open(folder / "composites" / tif.name) as y:
            np.testing.assert_array_equal(x.read(), y.read())


def test_fallback_policy_review_queues_and_fail_exits_non_zero(catalogs, tmp_path):
    reviewed = run(config(catalogs["broken"], fallback="review"), out=tmp_path / "review")
    queue = [
        json.loads(x) for x in (tmp_path / "review" / "review.jsonl").read_text().split("\n") if x
    ]
    assert {CORRUPT, NO_RED} <= {r["id"] for r in queue}
    assert set(reviewed.scenes.loc[reviewed.scenes["decision"] == "fallback", "id"]) == {
        CORRUPT,
        NO_RED,
    }
    with pytest.raises(cc.RunFailed, match=CORRUPT):
        run(config(catalogs["broken"], fallback="fail"), out=tmp_path / "fail")
    assert verify(tmp_path / "fail").ok  # it wrote what it had, and recorded it
    strict = tmp_path / "strict.toml"
    strict.write_text(
        config_path("default")
        .read_text()
        .replace('fallback = "exclude"', 'fallback = "fail"')
        .replace('source = "demo"', f'source = "{catalogs["broken"]}"')
    )
    done = cli("run", "--quiet", "--config", str(strict), "--out", str(tmp_path / "cli"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert CORRUPT in lines[0]


def test_a_rerun_retries_the_scenes_whose_reads_failed(catalogs, tmp_path):
    source = tmp_path / "catalog"
    shutil.copytree(catalogs["broken"].parent, source)
    cfg = config(source / "catalog.json")
    out = tmp_path / "run"
    first = run(cfg, out=out)
    assert (first.scenes["fallback"] == "unreadable").sum() == 2
    # the files come back (a server recovered): the rerun reads them instead of reusing
    for item_id, name in ((CORRUPT, "SCL.tif"), (NO_RED, "B04.tif")):
        shutil.copy(item_folder(DEMO, item_id) / name, item_folder(source, item_id) / name)
    again = run(cfg, out=out)
    assert again.reused != ["all"]
    assert (again.scenes["fallback"] == "unreadable").sum() == 0
    clean = run(config(DEMO / "catalog.json"), out=tmp_path / "clean")
    pd.testing.assert_frame_equal(
        again.scenes.drop(columns=PROVENANCE), clean.scenes.drop(columns=PROVENANCE)
    )
    records = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    resumed = [r for r in records if r["kind"] == "resumed"]
    assert resumed
    assert set(resumed[-1]["data"]["retrying"]) == {CORRUPT, NO_RED}
    assert verify(out).ok
    assert run(cfg, out=out).reused == ["all"]  # nothing left to retry
