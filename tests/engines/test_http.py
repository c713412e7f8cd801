"""Engines reading COGs over real HTTP (loopback nginx with Range requests)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from odc.geo.geobox import GeoBox

from clearcube.engines import ReadRequest, get_engine
from clearcube.errors import AssetReadError
from clearcube.gdal_env import clear_vsicurl_cache, gdal_options

ENGINES = ["odc", "stackstac", "native"]
GRID = GeoBox.from_bbox((164400, 9695200, 168800, 9699600), crs="EPSG:32722", resolution=20)


@pytest.fixture(scope="module")
def http_item(scl_tiles, nginx):
    item, _, _ = scl_tiles["T22"]
    shutil.copy(item.assets["scl"].href, nginx.root / "T22.tif")
    remote = item.clone()
    remote.assets["scl"].href = f"{nginx.url}/data/T22.tif"
    return item, remote


def read(engine, item, **gdal):
    req = ReadRequest.from_items(
        (item,),
        "scl",
        geobox=GRID,
        dtype=np.dtype("uint8"),
        fill=0,
        chunks_yx=(64, 64),
        gdal=gdal_options(gdal),
    )
    return get_engine(engine).read(req)


@pytest.mark.parametrize("engine", ENGINES)
def test_http_equals_local_and_graph_reads_nothing(engine, http_item, nginx):
    local, remote = http_item
    clear_vsicurl_cache()
    nginx.clear_log()
    lazy = read(engine, remote)
    # building the graph touches no byte of the file (the fixture's own /healthz probe can
    # reach the log late)
    assert [r for r in nginx.requests() if r.path != "/healthz"] == []
    np.testing.assert_array_equal(lazy.values, read(engine, local).values)
    nginx.wait_for("/data/T22.tif", count=2)  # log lines trail the responses
    fetched = [r for r in nginx.requests() if r.path == "/data/T22.tif" and r.method == "GET"]
    assert fetched, "nothing was read over HTTP"
    assert all(r.status == 206 for r in fetched)  # Range requests only, never the whole file


def test_server_error_fails_loudly_naming_the_file(http_item, nginx):
    _, remote = http_item
    down = remote.clone()
    down.assets["scl"].href = f"{nginx.url}/down/T22.tif"
    clear_vsicurl_cache()
    with pytest.raises(
        AssetReadError, match=r"^T22: cannot read http://127\.0\.0\.1:\d+/down/T22\.tif"
    ) as exc:
        read(
            "native",
            down,
            GDAL_HTTP_MAX_RETRY="1",
            GDAL_HTTP_RETRY_DELAY="0.01",
            CLEARCUBE_REQUEST_DEADLINE_S="1",  # the read is retried within this deadline
        ).compute()
    assert "\n" not in str(exc.value)


def test_signed_url_token_never_reaches_the_error(http_item, nginx):
    _, remote = http_item
    signed = remote.clone()
    signed.assets["scl"].href = f"{nginx.url}/down/T22.tif?sig=SECRET-TOKEN&se=2030"
    clear_vsicurl_cache()
    with pytest.raises(AssetReadError) as exc:
        read("native", signed, GDAL_HTTP_MAX_RETRY="0", CLEARCUBE_REQUEST_DEADLINE_S="1").compute()
    assert "SECRET" not in str(exc.value)
    assert "sig=" not in str(exc.value)
