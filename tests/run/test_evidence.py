"""Per-scene evidence in every product of a demo run: scenes.csv, the cube's per-time
coordinates, the output STAC items, the audit trail and the composites' COG tags say, for each
scene, which QA asset and encoding, baseline, offsets (with source and conflict), mask rules,
cloud fraction, decision and reason, and which source item (its digest and snapshot) it was.
Everything is compared with the plans of the demo items and with the run's config, never with
constants."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

import clearcube as cc
from clearcube import Flag
from clearcube.catalog import find
from clearcube.compositing import NO_DATE
from clearcube.job import run
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config
from clearcube.sensors.plan import plan_items

REPO = Path(__file__).resolve().parents[2]
BANDS = ("red", "nir")


@pytest.fixture(scope="module")
def config():
    return load_run_config(config_path("default"))


@pytest.fixture(scope="module")
def plans(config):
    """The plans of the items the run's search finds (as the run's plan stage makes them)."""
    found = find(config.search)
    plans = {p.id: p for p in plan_items(found.items, found.digests)}
    assert len(plans) == 13
    return plans


@pytest.fixture(scope="module")
def runs(tmp_path_factory, config):
    base = tmp_path_factory.mktemp("evidence")
    grouped = config.with_overrides(load={"group_by": "solar_day"})
    run(config, out=base / "scenes")
    run(grouped, out=base / "grouped")
    return {"scenes": (base / "scenes", config), "grouped": (base / "grouped", grouped)}


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def same(got, want) -> bool:
    """CSV, Zarr and JSON spell an unknown value as NaN, "" or null."""
    if missing(want):
        return missing(got)
    if isinstance(want, float):
        return isinstance(got, int | float) and math.isclose(got, want)
    return str(got) == str(want)


def masked_scl_classes(mask) -> str:
    """The SCL codes whose pixels count as masked, through the public decoder."""
    codes = np.arange(256, dtype=np.uint8)
    flags = cc.decode(codes, "s2-scl", mask)
    valid = (flags & Flag.NODATA) == 0
    masked = valid & ~cc.is_clear(flags, mask)
    return " ".join(str(int(c)) for c in codes[masked])


def expected(members, cfg) -> dict:
    """A slice's evidence from its members' plans and the config (members that agree give
    one value, others their values joined with "+")."""

    def joined(values):
        if len(set(values)) == 1:
            return values[0]
        return "+".join(f"{v:g}" if isinstance(v, float) else str(v or "") for v in values)

    out = {}
    per = {
        "qa_asset": [p.qa_asset for p in members],
        "qa_encoding": [p.qa_encoding for p in members],
        "processing_baseline": [p.processing_baseline or "" for p in members],
        "tile": [p.tile or "" for p in members],
        "item_digest": [p.digest for p in members],
    }
    for band in BANDS:
        per[f"{band}_scale"] = [p.bands[band].scale for p in members]
        per[f"{band}_offset"] = [p.bands[band].offset for p in members]
        per[f"{band}_offset_source"] = [p.bands[band].offset_source for p in members]
        per[f"{band}_offset_conflict"] = [p.bands[band].offset_conflict or "" for p in members]
    for name, values in per.items():
        out[name] = joined(values)
    mask = cfg.mask
    out["masked_flags"] = " ".join(mask.masked_flags)
    out["dilation_m"] = mask.dilation_m
    out["dilate_flags"] = " ".join(mask.dilate_flags)
    out["config_digest"] = cfg.digest()
    encoding = members[0].qa_encoding
    out["masked_classes"] = masked_scl_classes(mask) if encoding == "s2-scl" else ""
    tiers = " ".join(str(t) for t in mask.confidence_tiers) or "none"
    out["confidence_tiers"] = tiers if encoding == "landsat-qa-pixel" else ""
    return out


# text that looks like a number ("03.01", "226062") stays text
TEXT = {"processing_baseline": str, "tile": str}


def slice_rows(out: Path) -> pd.DataFrame:
    scenes = pd.read_csv(out / "scenes.csv", dtype=TEXT)
    return scenes[scenes["time"].notna()].reset_index(drop=True)


@pytest.mark.parametrize("which", ["scenes", "grouped"])
def test_scenes_csv_carries_each_scenes_evidence(runs, plans, which):
    out, cfg = runs[which]
    rows = slice_rows(out)
    assert len(rows) == (13 if which == "scenes" else 8)  # 5 S2 dates x 2 tiles grouped
    grouped = 0
    for row in rows.to_dict("records"):
        members = [plans[i] for i in row["id"].split("+")]
        grouped += len(members) > 1
        for name, want in expected(members, cfg).items():
            assert same(row[name], want), (row["id"], name, row[name], want)
        # each snapshot is the item as the run read it: its SHA-256 is the plan's digest
        snapshots = row["source_item"].split("+")
        assert len(snapshots) == len(members)
        for rel, plan in zip(snapshots, members, strict=True):
            data = (out / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == plan.digest
            assert json.loads(data)["id"] == plan.id
        if row["decision"] != "used":
            assert isinstance(row["reason"], str)
            assert row["reason"]
    assert grouped == (0 if which == "scenes" else 5)
    # the run's earlier columns are unchanged and come first
    assert rows.columns[:24].tolist()[-3:] == ["decision", "reason", "fallback"]
    # the 2022-2024 Sentinel-2 offsets differ in source: both branches are in the table
    sources = set(rows["nir_offset_source"])
    assert {"earthsearch:boa_offset_applied", "item-metadata", "baseline-rule"} <= sources
    conflicts = rows["nir_offset_conflict"].dropna()
    assert conflicts.str.contains("raster metadata offset is -0.1").any()


def test_the_cube_carries_the_same_evidence_per_time(runs):
    out, cfg = runs["scenes"]
    rows = slice_rows(out)
    ds = xr.open_zarr(out / "cube.zarr", consolidated=False)
    assert ds.attrs["clearcube:config_digest"] == cfg.digest()
    assert ds["id"].values.tolist() == rows["id"].tolist()
    names = [c for c in rows.columns[rows.columns.get_loc("qa_asset") :]]
    for name in ["cloud_fraction", "decision", "reason", *names]:
        assert ds[name].dims == ("time",), name
        for got, want in zip(ds[name].values.tolist(), rows[name], strict=True):
            assert same(got, want), (name, got, want)
    # the provider's figure and clearcube's own sit side by side
    assert not np.allclose(100 * ds["cloud_fraction"].values, ds["eo:cloud_cover"].values)


@pytest.mark.parametrize("which", ["scenes", "grouped"])
def test_stac_items_and_audit_carry_the_same_evidence(runs, which):
    out, _ = runs[which]
    scenes = pd.read_csv(out / "scenes.csv")
    rows = slice_rows(out)
    items = {p.stem: json.loads(p.read_text()) for p in (out / "stac").glob("*.json")}
    cube = items["masked-cube"]["properties"]["clearcube:evidence"]
    everything = items["run"]["properties"]["clearcube:evidence"]
    assert len(everything) == len(scenes)
    assert [r["id"] for r in cube] == rows["id"].tolist()
    for record, row in zip(cube, rows.to_dict("records"), strict=True):
        for name, value in record.items():
            if name == "time":
                assert value == pd.Timestamp(row["time"]).strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                assert same(value, row[name]), (row["id"], name, value, row[name])
    by_id = {r["id"]: r for r in everything}
    for item_id, item in items.items():
        for record in item["properties"]["clearcube:evidence"]:
            assert record == by_id[record["id"]], (item_id, record["id"])
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    recorded = {r["data"]["id"]: r["data"] for r in audit if r["kind"].startswith("scene_")}
    for row in rows.to_dict("records"):
        assert recorded[row["id"]]["item_digest"] == row["item_digest"]
        assert recorded[row["id"]]["nir_offset_source"] == row["nir_offset_source"]


def test_composite_cogs_name_their_period_scenes_and_config(runs):
    out, cfg = runs["scenes"]
    rows = slice_rows(out)
    years = pd.DatetimeIndex(rows["time"]).year
    digest = json.loads((out / "run.json").read_text())["config_digest"]
    assert digest == cfg.digest()
    checked = 0
    for path in sorted((out / "composites").glob("*.tif")):
        year = int(path.stem.rsplit("_", 1)[1])
        used = rows.loc[(years == year) & (rows["decision"] == "used"), "id"].tolist()
        with rasterio.open(path) as src:
            tags = src.tags()
            assert tags["CLEARCUBE_PERIOD"] == str(year)
            assert json.loads(tags["CLEARCUBE_SCENES"]) == used
            assert int(tags["CLEARCUBE_SCENE_COUNT"]) == len(used)
            assert tags["CLEARCUBE_CONFIG_DIGEST"] == digest
            assert tags["CLEARCUBE_START"] == f"{year}-01-01T00:00:00Z"
            assert tags["CLEARCUBE_END"] == f"{year}-12-31T23:59:59Z"
            assert tags["CLEARCUBE_METHOD"] == cfg.composite.method
            assert [src.tags(i + 1)["CLEARCUBE_BAND"] for i in range(src.count)] == list(
                src.descriptions
            )
            assert src.scales == (1.0,) * src.count
            assert src.offsets == (0.0,) * src.count
            if path.stem.startswith("clear_count"):
                assert src.nodatavals == (None,)
            elif path.stem.startswith("clear_dates"):
                assert src.descriptions == ("first_clear", "last_clear")
                assert src.nodatavals == (NO_DATE, NO_DATE)
            else:
                assert src.descriptions == BANDS
                assert all(math.isnan(v) for v in src.nodatavals)
        item = json.loads((out / "stac" / f"composite-{year}.json").read_text())
        assert item["properties"]["clearcube:scenes"] == len(used)
        checked += 1
    assert checked == 12  # 4 years: reflectance, clear count, clear dates


def test_scenes_csv_carries_the_science_checks(runs):
    out, cfg = runs["scenes"]
    rows = slice_rows(out)
    read = rows["decision"].isin(["used", "review"])
    assert read.sum() >= 8
    checked = rows[read]
    assert (checked["checked_px"] >= cfg.mask.min_check_px).all()
    # the demo is forest: the kept pixels are green, the masked ones (cloud, shadow) are not
    assert (checked["ndvi_kept_median"] > 0.6).all()
    masked = checked.dropna(subset=["ndvi_masked_median"])
    assert (masked["ndvi_masked_median"] <= masked["ndvi_kept_median"]).all()
    assert (masked["ndvi_masked_median"] < masked["ndvi_kept_median"]).sum() >= len(masked) - 1
    for band in BANDS:
        assert (checked[f"{band}_negative_share"] <= cfg.mask.max_negative_share).all()
        assert (checked[f"{band}_above_one_share"] <= cfg.mask.max_bright_share).all()
    assert (checked["red_p01"] < cfg.mask.dark_floor).all()
    # no blue loaded: no EVI and no haze test, recorded as unknown rather than 0
    assert checked[["evi_kept_median", "haze_share"]].isna().all().all()
    # scenes whose reflectance was not read have no figures at all
    assert rows.loc[~read, "checked_px"].isna().all()
