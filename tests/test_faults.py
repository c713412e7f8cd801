"""Native window reads of a COG through the fault-injecting loopback server
(tests/servers/faults.py): transient faults give the pixels of a local read, persistent ones
fail with GDAL's own cause, and a stalled server fails within twice the deadline."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections import Counter

import numpy as np
import pystac
import pytest
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.transform import from_origin
from rasterio.warp import transform_geom
from scipy import ndimage

from clearcube.engines import ReadRequest, get_engine
from clearcube.errors import AssetReadError
from clearcube.gdal_env import (
    DEADLINE_OPTION,
    REQUEST_DEADLINE_S,
    clear_vsicurl_cache,
    gdal_options,
    http_settings,
)

from .servers.faults import Faults, Rule

EPSG = 32633
WEST, NORTH, RES = 400000.0, 5000000.0, 10.0
SIZE = 1024
# an area of interest not aligned with the COG's 256 px blocks: each row of 300 px chunks is
# one window read spanning several blocks (several ranges, some requests cut in two)
GRID = GeoBox.from_bbox(
    (WEST + 370, NORTH - 9530, WEST + 9370, NORTH - 530), crs=f"EPSG:{EPSG}", resolution=RES
)
SEEDS = range(4)


@pytest.fixture(scope="module")
def cog(tmp_path_factory):
    """A 1024 x 1024 uint16 DEFLATE COG (256 px blocks, overviews) whose tiles do not
    compress to nothing, and the offset of its first tile byte (where its header ends)."""
    folder = tmp_path_factory.mktemp("faults") / "www"
    folder.mkdir()
    rng = np.random.default_rng(11)
    smooth = ndimage.gaussian_filter(rng.normal(size=(SIZE, SIZE)), 5)
    data = (smooth / np.abs(smooth).max() * 15000 + 20000).astype(np.uint16)
    data += rng.integers(0, 64, size=data.shape, dtype=np.uint16)
    path = folder / "B04.tif"
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=SIZE,
        height=SIZE,
        count=1,
        dtype="uint16",
        crs=f"EPSG:{EPSG}",
        transform=from_origin(WEST, NORTH, RES, RES),
        nodata=0,
        compress="DEFLATE",
        blocksize=256,
        overview_resampling="nearest",
    ) as dst:
        dst.write(data, 1)
    offsets = []
    for level in (None, 0, 1):
        with rasterio.open(path, overview_level=level) as ds:
            nby, nbx = -(-ds.height // 256), -(-ds.width // 256)
            offsets += [
                int(ds.get_tag_item(f"BLOCK_OFFSET_{i}_{j}", "TIFF", bidx=1))
                for i in range(nbx)
                for j in range(nby)
            ]
    return path, min(offsets)


def item_for(href: str) -> pystac.Item:
    w, n, e, s = WEST, NORTH, WEST + SIZE * RES, NORTH - SIZE * RES
    ring = [(w, n), (e, n), (e, s), (w, s), (w, n)]
    geom = transform_geom(f"EPSG:{EPSG}", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    lons = [p[0] for p in geom["coordinates"][0]]
    lats = [p[1] for p in geom["coordinates"][0]]
    item = pystac.Item(
        id="S2B_33TUN_20240601_0_L2A",
        geometry=geom,
        bbox=[min(lons), min(lats), max(lons), max(lats)],
        datetime=dt.datetime(2024, 6, 1, 10, tzinfo=dt.UTC),
        properties={"proj:code": f"EPSG:{EPSG}"},
    )
    item.add_asset("red", pystac.Asset(href=href, media_type=pystac.MediaType.COG))
    return item


def read(href: str, deadline_s: float | None = None) -> np.ndarray:
    request = ReadRequest.from_items(
        (item_for(href),),
        "red",
        geobox=GRID,
        dtype=np.dtype("uint16"),
        fill=0,
        chunks_yx=(300, 300),
        gdal=gdal_options(deadline_s=deadline_s),
    )
    return get_engine("native").read(request).values


@pytest.fixture
def served(cog, fault_server):
    path, header_end = cog
    server = fault_server(root=path.parent)
    return server, f"{server.url}/{path.name}", read(str(path)), header_end


def test_deadline_sets_gdal_http_options():
    assert http_settings(REQUEST_DEADLINE_S) == {
        "GDAL_HTTP_MAX_RETRY": "3",
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        "GDAL_HTTP_CONNECTTIMEOUT": "5",
        "GDAL_HTTP_LOW_SPEED_TIME": "5",
        "GDAL_HTTP_LOW_SPEED_LIMIT": "1024",
        "GDAL_HTTP_TIMEOUT": "15",
        DEADLINE_OPTION: "30",
    }
    assert gdal_options(deadline_s=6)["GDAL_HTTP_LOW_SPEED_TIME"] == "1"
    assert gdal_options(deadline_s=6)[DEADLINE_OPTION] == "6"


@pytest.mark.parametrize(
    ("faults", "kinds"),
    [
        (Faults(p503=0.2), {"503"}),
        (Faults(reset=0.1), {"reset-before", "reset-mid-body"}),
        (Faults(truncate=0.2), {"truncate"}),
        (Faults(corrupt=0.2), {"corrupt"}),
    ],
    ids=["503-20pc", "reset-10pc", "truncate-20pc", "corrupt-20pc"],
)
def test_transient_faults_give_the_pixels_of_a_local_read(served, faults, kinds):
    server, href, local, header_end = served
    injected: Counter[str] = Counter()
    for seed in SEEDS:
        # corrupt tile data only: a broken header is another failure ("not a TIFF")
        server.configure(Faults(**{**vars(faults), "seed": seed, "corrupt_from": header_end}))
        clear_vsicurl_cache()
        np.testing.assert_array_equal(read(href), local)
        log = server.requests()
        injected.update(r.fault for r in log if r.fault)
        assert all(r.status in (0, 206, 200, 503) for r in log)
    assert set(injected) <= kinds
    assert sum(injected.values()) >= 2, f"too few faults injected to test anything: {injected}"


def test_transient_stalls_are_retried_within_the_deadline(served):
    server, href, local, _ = served
    deadline = 10.0
    server.configure(Faults(stall=0.15, stall_s=60, seed=3))
    clear_vsicurl_cache()
    began = time.monotonic()
    np.testing.assert_array_equal(read(href, deadline_s=deadline), local)
    took = time.monotonic() - began
    stalled = [r for r in server.requests() if r.fault.startswith("stall")]
    assert stalled, "the seed injected no stall"
    assert took < 2 * deadline


def test_a_stalled_server_fails_within_twice_the_deadline(served):
    server, href, _, _ = served
    deadline = 10.0
    server.configure(Faults(stall=1.0, stall_s=120))
    clear_vsicurl_cache()
    began = time.monotonic()
    with pytest.raises(AssetReadError) as exc:
        read(href, deadline_s=deadline)
    took = time.monotonic() - began
    assert took < 2 * deadline, f"gave up after {took:.1f} s"
    message = str(exc.value)
    assert message.startswith(f"S2B_33TUN_20240601_0_L2A: cannot read {href}: ")
    assert re.search(r"past the 2 s stall limit \(\d+ attempts? in \d+\.\d s\)", message)
    assert "\n" not in message


def test_persistent_corruption_fails_with_gdal_cause_and_no_token(served):
    server, href, _, header_end = served
    server.configure(rules={"/B04.tif": Rule(corrupt_from=header_end)})
    clear_vsicurl_cache()
    began = time.monotonic()
    with pytest.raises(AssetReadError) as exc:
        read(href + "?sig=SECRET-TOKEN&se=2030", deadline_s=3)
    message = str(exc.value)
    assert time.monotonic() - began < 2 * 3
    assert f"cannot read {href}: " in message
    assert "ZIPDecode:Decoding error" in message  # GDAL's cause, not "Read failed"
    assert "IReadBlock failed" in message
    assert "See previous exception" not in message
    assert "SECRET" not in message
    assert "sig=" not in message
    assert "\n" not in message
    gets = [r for r in server.requests() if r.method == "GET"]
    assert max(r.attempt for r in gets) > 1  # it was retried afresh before giving up


def test_not_found_fails_at_once_naming_the_href(served):
    server, href, _, _ = served
    server.configure(rules={"/B04.tif": Rule(not_found=True)})
    clear_vsicurl_cache()
    with pytest.raises(AssetReadError) as exc:
        read(href)
    message = str(exc.value)
    assert f"cannot read {href}: HTTP response code: 404 (1 attempt in" in message
    # a refusal is not retried: at most one HEAD per read task (3 rows of chunks), each
    # asked before or after another task's failure dropped GDAL's cached answer
    log = server.requests()
    assert {(r.method, r.status) for r in log} == {("HEAD", 404)}
    assert 1 <= len(log) <= 3


def test_truncated_file_fails_with_gdal_cause(served, cog):
    server, href, _, _ = served
    server.configure(rules={"/B04.tif": Rule(truncate_to=cog[0].stat().st_size // 2)})
    clear_vsicurl_cache()
    with pytest.raises(
        AssetReadError, match=r"TIFFFillTile:Read error .*got \d+ bytes, expected \d+"
    ):
        read(href, deadline_s=2)


def test_a_failed_url_is_read_again_once_the_server_recovers(served):
    server, href, local, _ = served
    server.configure(Faults(p503=1.0))
    clear_vsicurl_cache()
    with pytest.raises(AssetReadError, match="HTTP response code: 503"):
        read(href, deadline_s=1)
    server.configure()
    # no clear_vsicurl_cache() here: the failed read dropped GDAL's memory of that URL
    np.testing.assert_array_equal(read(href), local)


def test_local_files_are_not_retried(cog, tmp_path):
    path, _ = cog
    broken = tmp_path / "B04.tif"
    shutil.copy(path, broken)
    with broken.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    began = time.monotonic()
    with pytest.raises(AssetReadError, match=r"\(1 attempt in"):
        read(str(broken))
    assert time.monotonic() - began < 5  # one attempt, no pause


def test_nobody_listening_fails_at_once():
    from .servers.nginx import free_port

    href = f"http://127.0.0.1:{free_port()}/B04.tif"
    began = time.monotonic()
    with pytest.raises(AssetReadError, match=r"Could not connect to server \(1 attempt in"):
        read(href)
    assert time.monotonic() - began < 5  # one attempt, no pause


# a header garbled into numbers that still parse (a geotransform of 1e300) is read as the file
# says: a TIFF header carries no checksum, so such a window lands where the garbage puts it
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_garbled_header_is_a_read_failure_never_a_bare_error(served):
    # bytes flipped in the header too: GDAL may then find no CRS, or one PROJ cannot parse
    # (a CRSError, a ValueError); that is a failed read like any other, retried and at worst
    # an AssetReadError naming the href
    server, href, _, _ = served
    failures: list[str] = []
    garbled = 0
    for seed in range(8):
        server.configure(Faults(corrupt=0.5, seed=seed))
        clear_vsicurl_cache()
        try:
            read(href, deadline_s=3)
        except AssetReadError as exc:  # anything else fails the test
            failures.append(str(exc))
        log = server.requests()
        garbled += any(r.fault == "corrupt" and r.range.startswith("bytes=0-") for r in log)
    assert garbled >= 4, "too few headers garbled to test anything"
    for message in failures:
        assert message.startswith(f"S2B_33TUN_20240601_0_L2A: cannot read {href}: ")
        assert "\n" not in message
