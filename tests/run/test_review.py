"""Review resolution: `clearcube review` records a person's decision in the audit trail, the
next run into the folder (and `clearcube composite`) applies it, and the folder verifies."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from clearcube.job import run
from clearcube.products.audit import verify_audit
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config
from clearcube.verification import verify

from .._cli import cli

ACCEPTED = "S2B_21MZS_20220720_0_L2A"  # over the threshold (0.37) in the demo
REJECTED = "LC09_L2SP_226062_20220923_02_T1"  # used in the demo
YEAR = "2022"  # both are of this year


@pytest.fixture(scope="module")
def cfg():
    return load_run_config(config_path("default"))


@pytest.fixture(scope="module")
def first(cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("review") / "run"
    run(cfg, out=out)
    return out


def _composite(out, name):
    with rasterio.open(out / "composites" / f"{name}_{YEAR}.tif") as src:
        return src.read()


def _expected_median(out, ids):
    """Brute force: the per-pixel nanmedian of the clear reflectance of ``ids`` in YEAR."""
    ds = xr.open_zarr(out / "cube.zarr", consolidated=False)
    pick = [i for i, v in enumerate(ds["id"].values) if str(v) in ids]
    clear = ds["clear"].values[pick].astype(bool)
    bands = []
    for name in ("red", "nir"):
        values = np.where(clear, ds[name].values[pick], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
            bands.append(np.nanmedian(values, axis=0))
    return np.stack(bands), clear.sum(axis=0)


def test_review_changes_the_next_composite_and_verify_passes(first, cfg, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(first, out)
    before = pd.read_csv(out / "scenes.csv")
    assert before.set_index("id").loc[ACCEPTED, "decision"] == "over_threshold"
    assert before.set_index("id").loc[REJECTED, "decision"] == "used"
    old_median, old_count = _composite(out, "median"), _composite(out, "clear_count")

    done = cli("review", str(out), REJECTED, "--reject", "--reason", "striping seen by eye")
    assert done.returncode == 0, done.stderr
    assert f"{REJECTED}: rejected (striping seen by eye)" in done.stdout
    assert verify(out).ok  # the trail grew by a resolution and a new end record, nothing else
    records = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    resolution = records[-2]
    assert resolution["kind"] == "review_resolution"
    assert resolution["data"] == {
        "id": REJECTED,
        "resolution": "reject",
        "reason": "striping seen by eye",
        "decision": "used",
        "decision_reason": "",
    }

    # `clearcube composite` applies a rejection at once: the scene is left out
    dest = tmp_path / "composites"
    done = cli("composite", str(out), "--dest", str(dest))
    assert done.returncode == 0, done.stderr
    of_year = before[(before["decision"] == "used") & before["time"].str.startswith(YEAR)]
    used_2022 = set(of_year["id"]) - {REJECTED}
    assert used_2022  # another scene of the year is left
    want, _ = _expected_median(out, used_2022)
    with rasterio.open(dest / f"median_{YEAR}.tif") as src:
        np.testing.assert_allclose(src.read(), want, rtol=1e-6, equal_nan=True)

    done = cli("review", str(out), ACCEPTED, "--accept", "--reason", "haze only at the edge")
    assert done.returncode == 0, done.stderr
    assert verify(out).ok
    # an accepted scene's reflectance was never read: composite says to run again
    done = cli("composite", str(out), "--dest", str(tmp_path / "again"))
    assert done.returncode == 1
    assert ACCEPTED in done.stderr
    assert "clearcube run" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

    again = run(cfg, out=out)  # the next run applies both
    assert again.reused != ["all"]
    scenes = again.scenes.set_index("id")
    assert scenes.loc[ACCEPTED, "decision"] == "used"
    assert scenes.loc[ACCEPTED, "reason"] == (
        "accepted in review: haze only at the edge (was over_threshold: cloud fraction 0.372 "
        "> threshold 0.3)"
    )
    assert scenes.loc[REJECTED, "decision"] == "rejected"
    assert scenes.loc[REJECTED, "reason"] == "rejected in review: striping seen by eye (was used)"
    queue = [json.loads(line)["id"] for line in (out / "review.jsonl").read_text().splitlines()]
    assert ACCEPTED not in queue

    new_median, new_count = _composite(out, "median"), _composite(out, "clear_count")
    ids = (used_2022 | {ACCEPTED}) - {REJECTED}
    want, count = _expected_median(out, ids)
    np.testing.assert_allclose(new_median, want, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(new_count[0], count)
    # the pixels differ where (and only where) the two scenes changed the clear observations
    ds = xr.open_zarr(out / "cube.zarr", consolidated=False)
    k = {str(v): i for i, v in enumerate(ds["id"].values)}
    clear = ds["clear"].values.astype(bool)
    touched = clear[k[ACCEPTED]] | clear[k[REJECTED]]
    changed = new_count[0] != old_count[0]
    assert changed.any()
    assert not changed[~touched].any()
    np.testing.assert_array_equal(new_median[:, ~touched], old_median[:, ~touched])
    assert (~np.isclose(new_median, old_median, equal_nan=True))[:, touched].any()
    with rasterio.open(out / "composites" / f"median_{YEAR}.tif") as src:
        named = json.loads(src.tags()["CLEARCUBE_SCENES"])
    assert ACCEPTED in named
    assert REJECTED not in named

    result = verify(out)
    assert result.ok, result.problems
    assert verify_audit(out / "audit.jsonl").ok
    assert run(cfg, out=out).reused == ["all"]  # applied once: the next run has nothing to do


def test_review_refuses_what_it_cannot_record(first, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(first, out)
    trail = (out / "audit.jsonl").read_bytes()
    cases = [
        (("nope", "--accept", "--reason", "x"), "nope: no such scene"),
        ((ACCEPTED, "--accept", "--reason", "  "), "--reason is empty"),
        ((ACCEPTED, "--reason", "x"), "give --accept or --reject"),
    ]
    for args, message in cases:
        done = cli("review", str(out), *args)
        assert done.returncode in (1, 2), args
        assert message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert done.stdout == ""
    (out / "scenes.csv").write_text((out / "scenes.csv").read_text() + "\n")
    done = cli("review", str(out), ACCEPTED, "--accept", "--reason", "ok")
    assert done.returncode == 1
    assert "does not verify" in done.stderr
    assert (out / "audit.jsonl").read_bytes() == trail  # nothing was recorded


def test_a_signed_run_stays_signed(cfg, tmp_path):
    keys = tmp_path / "keys"
    assert cli("keys", "new", str(keys)).returncode == 0
    out = tmp_path / "signed"
    run(cfg, out=out, signing_key=keys / "clearcube-signing.pem")
    done = cli("review", str(out), ACCEPTED, "--accept", "--reason", "checked")
    assert done.returncode == 1
    assert "signed by key" in done.stderr
    assert "--signing-key" in done.stderr
    key = str(keys / "clearcube-signing.pem")
    done = cli(
        "review", str(out), ACCEPTED, "--accept", "--reason", "checked", "--signing-key", key
    )
    assert done.returncode == 0, done.stderr
    pub = str(keys / "clearcube-signing.pub.pem")
    assert cli("verify", str(out), "--public-key", pub).returncode == 0
    # and its evidence bundle verifies with the public key, zip and all
    bundle = tmp_path / "signed.zip"
    assert cli("bundle", str(out), str(bundle)).returncode == 0
    done = cli("verify", str(bundle), "--public-key", pub)
    assert done.returncode == 0, done.stderr
    assert "origin verified" in done.stdout
