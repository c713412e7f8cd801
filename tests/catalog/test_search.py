"""clearcube.search against a real STAC API (pgstac) and the same queries on static catalogs."""

from __future__ import annotations

import json
from datetime import UTC

import numpy as np
import pytest

import clearcube as cc
from clearcube.catalog import search
from clearcube.demo import DEMO_BBOX
from clearcube.errors import CatalogError
from clearcube.resources import demo_catalog_path

from .._cli import cli

STATIC = str(demo_catalog_path())
DEMO_COLLECTIONS = ["sentinel-2-l2a", "landsat-c2-l2"]


def run_cli(*args: str):
    return cli(*args, timeout=120)


BBOX = ["--bbox", "-54.035", "-3.025", "-53.965", "-2.985"]


def ids(found) -> set[str]:
    return {item.id for item in found}


def test_bbox_and_datetime_on_api_and_static_agree(loaded_api):
    api = search(DEMO_BBOX, "2021-01-01/2024-12-31", DEMO_COLLECTIONS, source=loaded_api["url"])
    static = search(DEMO_BBOX, "2021-01-01/2024-12-31", DEMO_COLLECTIONS, source=STATIC)
    assert ids(api) == ids(static) == {d["id"] for d in loaded_api["demo"]}
    assert all(cc.identify(i).qa_href.startswith("http://127.0.0.1") for i in api)


@pytest.mark.parametrize(
    ("datetime", "expected_years"),
    [
        ("2024-01-01/..", {2024}),
        ("../2021-12-31", {2021}),
        ("2022-07-20", {2022}),
        (("2022-01-01", "2023-12-31"), {2022, 2023}),
        # pystac-client's shorthand: a year, a month, open ranges of them
        ("2023", {2023}),
        ("2023-08", {2023}),
        ("2023/..", {2023, 2024}),
        ("../2022-07", {2021, 2022}),
        ("2022-09/2023", {2022, 2023}),
        (("2024", None), {2024}),
    ],
)
def test_datetime_intervals(loaded_api, datetime, expected_years):
    api = search(DEMO_BBOX, datetime, DEMO_COLLECTIONS, source=loaded_api["url"])
    static = search(DEMO_BBOX, datetime, DEMO_COLLECTIONS, source=STATIC)
    assert ids(api) == ids(static)
    assert api
    assert {i.datetime.year for i in api} == expected_years


def test_shorthand_is_what_pystac_client_sends(loaded_api):
    """Our expansion of every form equals pystac-client's own (the text sent to the API), and
    the items at the edges of a period fall on the same side for the API and a static file."""
    import pystac_client

    from clearcube.catalog import parse_datetime

    client = pystac_client.Client.open(loaded_api["url"])
    for value in (
        "2023",
        "2023-08",
        "2023-02",
        "2024-02",
        "2023-12",
        "2023-08-14",
        "2023/..",
        "../2023-08",
        "2022-06/2023-09-15",
        "2023-08-14T10:00:00Z",
        "2023-08-14T10:00:00.250000Z/2023-08-15",
    ):
        sent = client.search(datetime=value, max_items=1).get_parameters()["datetime"]
        start, end = parse_datetime(value)
        ours = "/".join(
            ".." if t is None else t.astimezone(UTC).replace(tzinfo=None).isoformat("T") + "Z"
            for t in (start, end)
        )
        if "/" not in sent:
            sent = f"{sent}/{sent}"
        assert ours == sent, value


def test_period_edges_agree_on_api_and_static(loaded_api, tmp_path):
    features = loaded_api["edges"]
    path = tmp_path / "edges.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    for value, want in (("2023-08", {"EDGE_B", "EDGE_C"}), ("../2023-07", {"EDGE_A"})):
        api = search(None, value, ["edge-test"], source=loaded_api["url"])
        static = search(None, value, ["edge-test"], source=str(path))
        assert ids(api) == ids(static) == want, value


def test_unknown_collection_names_the_available_ones(loaded_api):
    with pytest.raises(CatalogError) as exc:
        search(DEMO_BBOX, "2023", ["sentinel-2-l2a", "sentinel-2-l2x"], source=loaded_api["url"])
    message = str(exc.value)
    assert "\n" not in message
    assert "'sentinel-2-l2x' not at http://127.0.0.1" in message
    assert "landsat-c2-l2" in message
    assert "sentinel-2-l2a" in message
    with pytest.raises(CatalogError) as exc:
        search(DEMO_BBOX, "2023", ["sentinel-2-l2x"], source=STATIC)
    assert str(exc.value).endswith("its collections: landsat-c2-l2, sentinel-2-l2a")
    # a known collection still searches, on both
    for source in (loaded_api["url"], STATIC):
        found = search(DEMO_BBOX, "2024", ["landsat-c2-l2"], source=source)
        assert ids(found) == {"LC08_L2SP_226062_20240803_02_T1"}


def test_swapped_bbox_is_named_on_api_and_static(loaded_api):
    west, south, east, north = DEMO_BBOX
    swapped = (south, west, north, east)  # latitude first: a valid box over the ocean
    for source in (loaded_api["url"], STATIC):
        with pytest.raises(CatalogError, match="bbox order is W S E N") as exc:
            search(swapped, "2021/2024", DEMO_COLLECTIONS, source=source)
        assert f"{south:g} {west:g} {north:g} {east:g}" in str(exc.value)
    # a box far from everything whose swap finds nothing either is an empty result
    assert not search((10, 40, 11, 41), "2021/2024", DEMO_COLLECTIONS, source=STATIC)


def test_max_cloud(loaded_api):
    demo = loaded_api["demo"]
    want = {d["id"] for d in demo if d["properties"]["eo:cloud_cover"] <= 5}
    assert 0 < len(want) < len(demo)
    api = search(
        DEMO_BBOX, "2021-01-01/2024-12-31", DEMO_COLLECTIONS, source=loaded_api["url"], max_cloud=5
    )
    static = search(
        DEMO_BBOX, "2021-01-01/2024-12-31", DEMO_COLLECTIONS, source=STATIC, max_cloud=5
    )
    assert ids(api) == ids(static) == want


def test_paging_beyond_one_page(loaded_api):
    real_s2 = [
        f
        for f in loaded_api["real"]
        if f["collection"] == "sentinel-2-l2a"
        and f["properties"]["datetime"].startswith("2019-01-01")
    ]
    assert len(real_s2) > 10  # the server pages by 10
    found = search(None, "2019-01-01/2019-01-01", ["sentinel-2-l2a"], source=loaded_api["url"])
    assert ids(found) == {f["id"] for f in real_s2}
    limited = search(None, "2019-01-01", ["sentinel-2-l2a"], source=loaded_api["url"], limit=13)
    assert len(limited) == 13


def test_antimeridian_box(loaded_api, tmp_path):
    (item,) = loaded_api["extra"]
    api = search(
        (179.0, -18.0, -179.0, -16.0), None, ["sentinel-2-l2a"], source=loaded_api["url"], limit=50
    )
    assert item["id"] in ids(api)
    collection = tmp_path / "items.json"
    collection.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    assert ids(search((179.0, -18.0, -179.0, -16.0), source=str(collection))) == {item["id"]}
    assert ids(search((-179.8, -18.0, -179.0, -16.0), source=str(collection))) == {item["id"]}
    assert not search((-179.5, -18.0, -179.0, -16.0), source=str(collection))
    assert not search((170.0, -18.0, 171.0, -16.0), source=str(collection))


def test_search_then_load_over_http(loaded_api):
    found = search(DEMO_BBOX, "2024-07-01/2024-08-31", DEMO_COLLECTIONS, source=loaded_api["url"])
    ds = cc.load(found, bbox=DEMO_BBOX, options=cc.LoadOptions(bands=("red",), chunks=128))
    assert ds.sizes["time"] == len(found) == 3
    assert np.isfinite(ds["red"].values).any()


def test_unreachable_api_is_one_line():
    from tests.servers.nginx import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(
        CatalogError, match=r"cannot reach the STAC API at http://127\.0\.0\.1"
    ) as exc:
        search(DEMO_BBOX, "2024-01-01", source=url)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"source": "earth-serch"},
            "unknown provider 'earth-serch'; known providers: earth-search",
        ),
        ({"bbox": (10, 50, 9, 51)}, "west 10.0 is east of east 9.0"),
        ({"bbox": (9, 91, 10, 92)}, r"outside \[-90, 90\]"),
        ({"bbox": (9, 50, 10)}, "bbox must be 4 numbers"),
        (
            {"datetime": "2024-03-01/2024-01-01"},
            "datetime range .2024-03-01/2024-01-01. is reversed",
        ),
        ({"datetime": "yesterday"}, "'yesterday' is not understood; use a year, month, day"),
        ({"datetime": "2023-13"}, "'2023-13' is not a valid date"),
        ({"datetime": "../.."}, "open at both ends"),
        ({"datetime": "2023/2024/2025"}, "neither one instant nor a start/end pair"),
        ({"collections": ["sentinel-2-l2a", " "]}, "collection id ' ' is blank"),
        ({"max_cloud": 150}, r"max_cloud 150 outside \[0, 100\]"),
    ],
)
def test_bad_queries_give_one_line(kwargs, match):
    kwargs.setdefault("source", STATIC)
    with pytest.raises(CatalogError, match=match) as exc:
        search(**kwargs)
    assert "\n" not in str(exc.value)


def test_remote_api_needs_a_limit(loaded_api):
    with pytest.raises(CatalogError, match="without bbox, datetime or limit"):
        search(source=loaded_api["url"])


def test_static_catalog_without_limits_and_missing_files(tmp_path):
    everything = search(source=STATIC)
    assert len(everything) == 13
    with pytest.raises(CatalogError, match="no such catalog file"):
        search(source=str(tmp_path / "nope" / "catalog.json"))
    one = search(source=STATIC, limit=1, collections="landsat-c2-l2")
    assert [i.collection_id for i in one] == ["landsat-c2-l2"]


def test_search_against_the_stac_api(loaded_api):
    done = run_cli(
        "search",
        "--source",
        loaded_api["url"],
        *BBOX,
        "--datetime",
        "2024-01-01/2024-12-31",
        "--collections",
        "sentinel-2-l2a,landsat-c2-l2",
    )
    assert done.returncode == 0, done.stderr
    assert "5 item(s)" in done.stderr


def test_logs_lose_query_strings_and_credentials(loaded_api, tmp_path):
    """-vvv logs every library's requests; a token in the source URL reaches neither stderr
    nor the log file."""
    host_port = loaded_api["url"].split("://", 1)[1]
    secret = f"http://reader:pa55word@{host_port}/?token=SECRET123&sig=SIG456"
    log = tmp_path / "search.log"
    done = run_cli(
        "-vvv", "search", "--source", secret, *BBOX, "--datetime", "2024",
        "--collections", "sentinel-2-l2a", "--log-file", str(log), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)  # the result is intact
    text = log.read_text()
    for where in (done.stderr, text):
        assert "DEBUG urllib3.connectionpool" in where  # the requests were logged
        assert "SECRET123" not in where
        assert "SIG456" not in where
        assert "pa55word" not in where
    assert f"searching http://{host_port}/:" in done.stderr
