"""Searches through the fault-injecting loopback server (tests/servers/faults.py): a static
catalog served over HTTP and the pgstac STAC API behind the proxy give the same items with
faults as without; persistent failures are one-line CatalogErrors naming the URL."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from clearcube.catalog import search
from clearcube.demo import DEMO_BBOX
from clearcube.errors import CatalogError
from clearcube.gdal_env import DEADLINE_OPTION
from clearcube.resources import demo_catalog_path

from ..servers.faults import Faults, Rule

REPO = Path(__file__).resolve().parents[2]
DEMO_COLLECTIONS = ["sentinel-2-l2a", "landsat-c2-l2"]
WHEN = "2021-01-01/2024-12-31"

FAULTS = [
    (Faults(p503=0.2), {"503"}),
    (Faults(reset=0.1), {"reset-before", "reset-mid-body"}),
    (Faults(truncate=0.2), {"truncate"}),
    (Faults(stall=0.1, stall_s=30), {"stall-before-headers", "stall-no-body", "stall-mid-body"}),
]
IDS = ["503-20pc", "reset-10pc", "truncate-20pc", "stall-10pc"]


def ids(found) -> list[str]:
    return sorted(item.id for item in found)


@pytest.fixture
def static_http(fault_server, tmp_path):
    """The demo catalog's JSON (no rasters) served by a fault server."""
    shutil.copytree(
        demo_catalog_path().parent,
        tmp_path / "demo",
        ignore=shutil.ignore_patterns("*.tif", "*.TIF"),
    )
    server = fault_server(root=tmp_path)
    return server, f"{server.url}/demo/catalog.json"


@pytest.fixture
def api_proxy(fault_server, loaded_api):
    """The pgstac STAC API behind a fault-injecting proxy."""
    server = fault_server(upstream=loaded_api["url"])
    return server, server.url


SHORT_S = 6.0


@pytest.fixture
def short_deadline(monkeypatch):
    """A 6 s deadline: a 1 s stall limit, so stalls and give-ups take seconds, not minutes."""
    monkeypatch.setenv(DEADLINE_OPTION, f"{SHORT_S:g}")


def run_seeds(server, faults, query, monkeypatch, seeds):
    """Run ``query`` once per seed; the item ids of each run and the faults injected. Stalls
    run under the short deadline; other faults under the default one."""
    if faults.stall:
        monkeypatch.setenv(DEADLINE_OPTION, f"{SHORT_S:g}")
    injected: Counter[str] = Counter()
    results = []
    for seed in seeds:
        server.configure(Faults(**{**vars(faults), "seed": seed}))
        results.append(ids(query()))
        injected.update(r.fault for r in server.requests() if r.fault)
    return results, injected


@pytest.mark.parametrize(("faults", "kinds"), FAULTS, ids=IDS)
def test_static_catalog_over_http_gives_the_same_items(static_http, monkeypatch, faults, kinds):
    server, url = static_http
    clean = ids(search(DEMO_BBOX, WHEN, DEMO_COLLECTIONS, source=url))
    local = str(demo_catalog_path())
    assert clean == ids(search(DEMO_BBOX, WHEN, DEMO_COLLECTIONS, source=local))
    assert len(clean) == 13
    results, injected = run_seeds(
        server,
        faults,
        lambda: search(DEMO_BBOX, WHEN, DEMO_COLLECTIONS, source=url),
        monkeypatch,
        seeds=range(4),
    )
    assert all(r == clean for r in results)
    assert set(injected) <= kinds
    assert sum(injected.values()) >= 2, f"too few faults injected to test anything: {injected}"


@pytest.mark.parametrize(("faults", "kinds"), FAULTS, ids=IDS)
def test_api_search_through_the_proxy_gives_the_same_items(
    api_proxy, loaded_api, monkeypatch, faults, kinds
):
    server, url = api_proxy
    # one day of real Sentinel-2 items spans several pages (the server pages by 10)
    paged = [
        f["id"]
        for f in loaded_api["real"]
        if f["collection"] == "sentinel-2-l2a"
        and f["properties"]["datetime"].startswith("2019-01-01")
    ]
    assert len(paged) > 10

    def query():
        demo = search(DEMO_BBOX, WHEN, DEMO_COLLECTIONS, source=url)
        pages = search(None, "2019-01-01/2019-01-01", ["sentinel-2-l2a"], source=url)
        return [*demo, *pages]

    server.configure()
    clean = ids(query())
    assert clean == sorted([d["id"] for d in loaded_api["demo"]] + paged)
    assert any(r.method == "POST" for r in server.requests())  # searches went through it
    results, injected = run_seeds(server, faults, query, monkeypatch, seeds=range(4))
    assert all(r == clean for r in results)
    assert set(injected) <= kinds
    assert sum(injected.values()) >= 2, f"too few faults injected to test anything: {injected}"


@pytest.mark.usefixtures("short_deadline")
def test_static_catalog_down_is_one_line_naming_the_url_without_token(static_http):
    server, url = static_http
    server.configure(Faults(p503=1.0))
    began = time.monotonic()
    with pytest.raises(CatalogError) as exc:
        search(DEMO_BBOX, WHEN, source=url + "?token=SECRET-TOKEN")
    took = time.monotonic() - began
    message = str(exc.value)
    assert message.startswith(f"cannot read {url}: HTTP 503 (")
    assert "attempts in" in message
    assert "SECRET" not in message
    assert "\n" not in message
    assert took < 2 * SHORT_S
    assert len(server.requests()) > 2  # retried until the deadline, then gave up


def test_garbled_json_bytes_are_retried(static_http):
    server, url = static_http
    clean = ids(search(DEMO_BBOX, WHEN, DEMO_COLLECTIONS, source=url))
    injected: Counter[str] = Counter()
    for seed in range(4):
        # bytes flipped anywhere in a body of the right length: not UTF-8 any more
        server.configure(Faults(corrupt=0.2, seed=seed))
        assert ids(search(DEMO_BBOX, WHEN, DEMO_COLLECTIONS, source=url)) == clean
        injected.update(r.fault for r in server.requests() if r.fault)
    assert set(injected) == {"corrupt"}
    assert injected["corrupt"] >= 2


@pytest.mark.usefixtures("short_deadline")
def test_an_item_file_garbled_for_good_is_one_line_naming_it(static_http):
    server, url = static_http
    path = "/demo/sentinel-2-l2a/collection.json"
    server.configure(rules={path: Rule(corrupt_from=0)})
    with pytest.raises(CatalogError) as exc:
        search(DEMO_BBOX, WHEN, source=url)
    message = str(exc.value)
    assert message.startswith(f"cannot read {server.url}{path}: not valid JSON (not UTF-8 at")
    assert "attempts in" in message
    assert "\n" not in message
    assert len([r for r in server.requests() if r.path == path]) > 1


def test_missing_item_file_fails_at_once(static_http):
    server, url = static_http
    path = "/demo/sentinel-2-l2a/collection.json"
    server.configure(rules={path: Rule(not_found=True)})
    with pytest.raises(CatalogError) as exc:
        search(DEMO_BBOX, WHEN, source=url)
    assert str(exc.value).startswith(
        f"cannot read {server.url}{path}: HTTP 404 Not Found (1 attempt in"
    )
    assert [r.status for r in server.requests() if r.path == path] == [404]


@pytest.mark.usefixtures("short_deadline")
def test_api_down_is_one_line_naming_the_url(api_proxy):
    server, url = api_proxy
    server.configure(Faults(p503=1.0))
    began = time.monotonic()
    with pytest.raises(CatalogError) as exc:
        search(DEMO_BBOX, WHEN, DEMO_COLLECTIONS, source=url)
    message = str(exc.value)
    assert message.startswith(f"cannot reach the STAC API at {url}: HTTP 503 (")
    assert "attempts in" in message
    assert "\n" not in message
    assert time.monotonic() - began < 2 * SHORT_S


@pytest.mark.usefixtures("short_deadline")
def test_api_stalled_fails_within_twice_the_deadline(api_proxy):
    server, url = api_proxy
    server.configure(Faults(stall=1.0, stall_s=60))
    began = time.monotonic()
    with pytest.raises(CatalogError, match=r"no data for 1 s \(stalled\) \(\d+ attempts in"):
        search(DEMO_BBOX, WHEN, DEMO_COLLECTIONS, source=url)
    assert time.monotonic() - began < 2 * SHORT_S


def test_nobody_listening_fails_at_once():
    from tests.servers.nginx import free_port

    url = f"http://127.0.0.1:{free_port()}/catalog.json"
    began = time.monotonic()
    with pytest.raises(CatalogError, match=r"connection refused \(1 attempt in"):
        search(DEMO_BBOX, WHEN, source=url)
    assert time.monotonic() - began < 5  # one attempt, no pause
