"""The main job through the fault-injecting loopback server (tests/servers/faults.py): the
packaged demo catalog served over HTTP, ``clearcube run`` on it as a user types it.

Transient faults (a seeded 20 % of all requests answered 503, 10 % connection resets) leave
every product as a clean run over the same server gives it; persistent ones (a QA COG whose
tile bytes are garbled, a red band answering 404, a COG that stalls) make their scene a
recorded fallback naming the asset and the cause, within the deadline, and leave every other
scene as it was; with ``fallback = "fail"`` the same run exits non-zero naming the scene.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from clearcube.gdal_env import DEADLINE_OPTION
from clearcube.resources import config_path, demo_catalog_path
from clearcube.verification import verify

from .._cli import cli
from ..servers.faults import Faults, FaultServer, Rule
from .test_failures import CORRUPT, NO_RED, first_tile_offset, item_folder

# the server is started here, not by the per-test fault_server fixture: one clean run is
# shared by the module
pytestmark = pytest.mark.integration

DEMO = demo_catalog_path().parent
#: the deadline of the runs with persistent faults: a 1 s stall limit, so that giving up on a
#: file takes seconds (the default 30 s deadline would make each bad scene cost about 30 s)
SHORT_S = 6.0
#: one seed per fault: each run costs as much as a clean one and more (GDAL's retry pauses);
#: seed 0 faults catalog and item JSON as well as COG requests
SEEDS = (0,)
TRANSIENT = [
    (Faults(p503=0.2), {"503"}),
    (Faults(reset=0.1), {"reset-before", "reset-mid-body"}),
]


def url_path(item_id: str, name: str) -> str:
    """The URL path of one file of the demo catalog on the server."""
    return "/" + (item_folder(DEMO, item_id) / name).relative_to(DEMO).as_posix()


QA_PATH = url_path(CORRUPT, "SCL.tif")
RED_PATH = url_path(NO_RED, "B04.tif")


@pytest.fixture(scope="module")
def server():
    started = FaultServer(root=DEMO)
    yield started
    started.stop()


def clearcube_run(server: FaultServer, out: Path, *args: str) -> tuple[int, str, str, float]:
    """``clearcube run --quiet --source <the served demo> --out OUT ARGS``: exit code, stdout,
    stderr, wall time."""
    began = time.monotonic()
    done = cli("run", "--quiet", "--source", f"{server.url}/catalog.json", "--out", str(out), *args)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - began


@pytest.fixture(scope="module")
def clean(server, tmp_path_factory):
    """One run over the server without faults: the reference of every test here."""
    out = tmp_path_factory.mktemp("http-clean") / "run"
    server.configure()
    code, _, err, _ = clearcube_run(server, out)
    assert code == 0, err
    log = server.requests()
    assert log
    assert not [r for r in log if r.fault or r.status >= 400]
    return out


def scenes_of(folder: Path) -> pd.DataFrame:
    """The scene table as its text cells (an empty column stays text, not NaN)."""
    return pd.read_csv(folder / "scenes.csv", dtype=str, keep_default_na=False).set_index("id")


def assert_same_cube(a_folder: Path, b_folder: Path, keep: list[str] | None = None) -> None:
    """The two cubes are identical (coordinates and attributes included), or, with ``keep``,
    identical at those scenes."""
    a = xr.open_zarr(a_folder / "cube.zarr", consolidated=False).load()
    b = xr.open_zarr(b_folder / "cube.zarr", consolidated=False).load()
    if keep is None:
        xr.testing.assert_identical(a, b)
        return
    at = a.swap_dims(time="id").sel(id=keep)
    bt = b.swap_dims(time="id").sel(id=keep)
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        if "id" in at[name].dims:
            np.testing.assert_array_equal(at[name].values, bt[name].values, err_msg=name)


def composites(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "composites").glob("*.tif"))


def assert_same_composites(a_folder: Path, b_folder: Path, names: list[str]) -> None:
    """The composite COGs ``names`` of ``a_folder`` have the pixels, grid and tags of those
    in ``b_folder``."""
    assert names
    for name in names:
        with (
            rasterio.open(a_folder / "composites" / name) as x,
            rasterio.open(b_folder / "composites" / name) as y,
        ):
            np.testing.assert_equal(x.nodata, y.nodata)  # NaN is NaN here
            assert {**x.profile, "nodata": 0} == {**y.profile, "nodata": 0}, name
            assert x.tags() == y.tags(), name
            np.testing.assert_array_equal(x.read(), y.read(), err_msg=name)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("faults", "kinds"), TRANSIENT, ids=["503-20pc", "reset-10pc"])
def test_transient_faults_give_the_products_of_a_clean_run(
    server, clean, tmp_path, faults, kinds, seed
):
    server.configure(Faults(**{**vars(faults), "seed": seed}))
    out = tmp_path / "run"
    code, _, err, _ = clearcube_run(server, out)
    assert code == 0, err
    log = server.requests()
    injected = Counter(r.fault for r in log if r.fault)
    assert set(injected) <= kinds
    hit = {Path(r.path).suffix.lower() for r in log if r.fault}
    assert {".json", ".tif"} <= hit, f"the faults missed the catalog or the COGs: {injected}"
    # the same server and config: the scene table is the same file, digests included
    assert (out / "scenes.csv").read_bytes() == (clean / "scenes.csv").read_bytes()
    assert_same_cube(out, clean)
    assert composites(out) == composites(clean)
    assert len(composites(clean)) == 12  # median, clear count and clear dates, 2021..2024
    assert_same_composites(out, clean, composites(clean))
    assert verify(out).ok


@pytest.fixture
def broken(server, clean):
    """The server with two persistent faults: CORRUPT's QA COG (SCL) garbled from its first
    tile byte on (the header stays valid; the demo's QA COGs are 2-4 KiB, so 16 KiB in would
    be past their end) and NO_RED's red band answering 404."""
    start = first_tile_offset(DEMO / QA_PATH.lstrip("/"))
    assert 0 < start < (DEMO / QA_PATH.lstrip("/")).stat().st_size
    return {QA_PATH: Rule(corrupt_from=start), RED_PATH: Rule(not_found=True)}


def test_a_corrupt_qa_and_a_missing_band_are_recorded_fallbacks(
    server, clean, broken, tmp_path, monkeypatch
):
    monkeypatch.setenv(DEADLINE_OPTION, f"{SHORT_S:g}")
    server.configure(rules=broken)
    out = tmp_path / "run"
    code, stdout, err, _ = clearcube_run(server, out, "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    scenes = scenes_of(out)
    reference = scenes_of(clean)
    bad = [CORRUPT, NO_RED]
    assert (reference.loc[bad, "decision"] == "used").all()  # both count in a clean run
    assert (scenes.loc[bad, "decision"] == "fallback").all()
    assert (scenes.loc[bad, "fallback"] == "unreadable").all()
    corrupt = scenes.loc[CORRUPT, "reason"]
    assert f"asset 'scl' unreadable at {server.url}{QA_PATH}" in corrupt
    assert "ZIPDecode:Decoding error" in corrupt  # GDAL's own cause
    assert "See previous exception" not in corrupt
    missing = scenes.loc[NO_RED, "reason"]
    assert f"asset 'red' unreadable at {server.url}{RED_PATH}" in missing
    assert "HTTP response code: 404" in missing
    assert int(scenes.loc[CORRUPT, "unreadable_px"]) > 0
    # the audit trail has a record of each, with the reason of the scene table
    records = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    fallbacks = {r["data"]["id"]: r["data"] for r in records if r["kind"] == "scene_fallback"}
    for scene in bad:
        assert fallbacks[scene]["reason"] == scenes.loc[scene, "reason"]
    assert records[-1]["kind"] == "end"
    # the run summary counts them, and names them with their reasons
    want = Counter(reference["decision"])
    want["used"] -= 2
    want["fallback"] += 2
    assert doc["summary"] == {"scenes": len(reference), "decisions": dict(sorted(want.items()))}
    listed = {s["id"]: s for s in doc["scenes"]}
    for scene in bad:
        assert listed[scene]["decision"] == "fallback"
        assert listed[scene]["reason"] == scenes.loc[scene, "reason"]
    report = (out / "report.html").read_text()
    for scene in bad:
        assert f"<tr class='fallback'><td>{scene}</td>" in report
    # every other scene: the row and the cube of the clean run
    others = [i for i in reference.index if i not in bad]
    pd.testing.assert_frame_equal(scenes.loc[others], reference.loc[others], check_exact=True)
    assert_same_cube(out, clean, keep=others)
    # the bad scenes were the only ones used in 2023: that period has no composite now, the
    # other periods have the clean run's
    kinds = ("clear_count", "clear_dates", "median")
    kept = [f"{kind}_{year}.tif" for kind in kinds for year in (2021, 2022, 2024)]
    assert composites(out) == kept
    assert set(composites(clean)) - set(kept) == {f"{kind}_2023.tif" for kind in kinds}
    assert_same_composites(out, clean, kept)
    assert verify(out).ok


def test_with_fallback_fail_the_run_exits_non_zero_naming_the_scene(
    server, broken, tmp_path, monkeypatch
):
    monkeypatch.setenv(DEADLINE_OPTION, f"{SHORT_S:g}")
    strict = tmp_path / "strict.toml"
    strict.write_text(
        config_path("default").read_text().replace('fallback = "exclude"', 'fallback = "fail"')
    )
    assert 'fallback = "fail"' in strict.read_text()
    server.configure(rules=broken)
    out = tmp_path / "run"
    code, stdout, err, _ = clearcube_run(server, out, "--config", str(strict))
    assert code == 1
    assert stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert CORRUPT in lines[0]
    assert NO_RED in lines[0]
    assert "fallback = 'fail'" in lines[0]
    assert verify(out).ok  # it wrote what it had, and recorded it
    assert (scenes_of(out).loc[[CORRUPT, NO_RED], "decision"] == "fallback").all()


@pytest.mark.parametrize(
    ("scene", "path", "asset"),
    [(CORRUPT, QA_PATH, "scl"), (NO_RED, RED_PATH, "red")],
    ids=["qa", "red"],
)
def test_a_stalled_cog_is_a_recorded_failure_within_twice_the_deadline(
    server, clean, tmp_path, monkeypatch, scene, path, asset
):
    monkeypatch.setenv(DEADLINE_OPTION, f"{SHORT_S:g}")
    server.configure(rules={path: Rule(stall_s=120)})
    out = tmp_path / "run"
    code, _, err, _ = clearcube_run(server, out)
    assert code == 0, err
    stalled = [r for r in server.requests() if r.path == path]
    assert stalled
    assert {r.fault for r in stalled} == {"rule-stall"}
    # from the first request of that file to the end of the last one
    span = max(r.at_s + r.took_s for r in stalled) - min(r.at_s for r in stalled)
    assert span < 2 * SHORT_S, f"the stalled file was tried for {span:.1f} s"
    scenes = scenes_of(out)
    assert scenes.loc[scene, "decision"] == "fallback"
    reason = scenes.loc[scene, "reason"]
    assert f"asset '{asset}' unreadable at {server.url}{path}" in reason
    assert "past the 1 s stall limit" in reason
    took = re.search(r"\((\d+) attempts? in (\d+\.\d) s\)", reason)
    assert took, reason
    assert float(took.group(2)) < 2 * SHORT_S
    reference = scenes_of(clean)
    others = [i for i in reference.index if i != scene]
    pd.testing.assert_frame_equal(scenes.loc[others], reference.loc[others], check_exact=True)
    assert verify(out).ok
