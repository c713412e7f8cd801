"""The href policy (clearcube.hrefs) over real catalogs: one on disk and the same files served
on loopback HTTP by the fault server. Every spelling of a local file or a GDAL virtual path
in an item's assets or a catalog's links is refused when the catalog is remote and a local
path inside the root still works on disk; redirects off the allowed hosts are refused (JSON,
STAC API and asset redirects); endless, cyclic and oversized catalogs end in one line."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import rasterio
from rasterio.windows import Window

from clearcube.catalog import find, search, source_policy
from clearcube.errors import CatalogError, ConfigError, ItemError, scrub_href
from clearcube.hrefs import HrefPolicy, final_url
from clearcube.plan import plan
from clearcube.resources import demo_catalog_path
from clearcube.runconfig import SearchOptions
from clearcube.sensors.plan import Fallback, ScenePlan, plan_items

from .._cli import cli

DEMO_ITEM = "S2A_21MZS_20240210_0_L2A"
ASSETS = {"scl": "SCL.tif", "red": "B04.tif", "nir": "B08.tif"}


def _catalog(item_link: str = "./item/item.json") -> dict:
    return {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "hrefs",
        "description": "href policy test catalog",
        "links": [{"rel": "item", "href": item_link, "type": "application/json"}],
    }


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/catalog.json`` -> ``root/item/item.json`` with the demo item's three rasters,
    and a copy of the item folder in ``outside/`` (a sibling of the root)."""
    src = demo_catalog_path().parent / "sentinel-2-l2a" / DEMO_ITEM
    for folder in ("root/item", "outside"):
        (tmp_path / folder).mkdir(parents=True)
        for name in ASSETS.values():
            shutil.copy(src / name, tmp_path / folder / name)
    item = json.loads((src / f"{DEMO_ITEM}.json").read_text())
    item["links"] = []
    (tmp_path / "root/item/item.json").write_text(json.dumps(item))
    (tmp_path / "outside/item.json").write_text(json.dumps(item))
    (tmp_path / "root/catalog.json").write_text(json.dumps(_catalog()))
    return tmp_path


def _set_assets(tree: Path, spell) -> None:
    path = tree / "root/item/item.json"
    item = json.loads(path.read_text())
    for key, name in ASSETS.items():
        item["assets"][key]["href"] = spell(tree / "root/item" / name, name)
    path.write_text(json.dumps(item))


#: asset href spellings: (id, spell(path of the file on disk, file name), refused when remote,
#: refused when local)
ASSET_SPELLINGS = [
    ("relative", lambda p, n: f"./{n}", False, False),
    ("relative-up-and-back", lambda p, n: f"../item/{n}", False, False),
    ("absolute", lambda p, n: str(p), True, False),
    ("absolute-leading-space", lambda p, n: f"  {p}", True, False),
    ("file-url", lambda p, n: p.as_uri(), True, False),
    ("file-url-localhost", lambda p, n: f"file://localhost{p}", True, False),
    ("root-escape", lambda p, n: f"../../outside/{n}", True, True),
    ("vsicached", lambda p, n: f"/vsicached?file={p}", True, True),
    ("vsisubfile", lambda p, n: f"/vsisubfile/0_{p.stat().st_size},{p}", True, True),
    ("vsizip", lambda p, n: f"/vsizip/{p}.zip/{n}", True, True),
    ("vsitar", lambda p, n: f"/vsitar/{p}.tar/{n}", True, True),
    ("vsigzip", lambda p, n: f"/vsigzip/{p}.gz", True, True),
    ("vsicurl-query", lambda p, n: f"/vsicurl?url={quote(p.as_uri())}", True, True),
    ("vsicurl", lambda p, n: f"/vsicurl/http://127.0.0.1:9/{n}", True, True),
    ("vsimem-upper", lambda p, n: f"/VSIMEM/{n}", True, True),
    ("vsi-backslash", lambda p, n: f"\\vsicached?file={p}", True, True),
    ("gdal-driver-prefix", lambda p, n: f"GTIFF_RAW:{p}", True, True),
    ("rasterio-zip-scheme", lambda p, n: f"zip+file://{p}.zip!{n}", True, True),
]


def _plan_one(source: str, **kw) -> ScenePlan | Fallback:
    found = search(source=source, **kw)
    (result,) = plan_items(found, hrefs=source_policy(source, kw.get("allowed_hosts")))
    return result


@pytest.mark.parametrize(
    ("spell", "remote_refused", "local_refused"),
    [s[1:] for s in ASSET_SPELLINGS],
    ids=[s[0] for s in ASSET_SPELLINGS],
)
def test_asset_href_spellings(tree, fault_server, spell, remote_refused, local_refused):
    _set_assets(tree, spell)
    sample = scrub_href(spell(tree / "root/item/SCL.tif", "SCL.tif").strip())  # the QA asset
    server = fault_server(root=tree)

    remote = _plan_one(f"{server.url}/root/catalog.json")
    if remote_refused:
        assert isinstance(remote, Fallback)
        assert remote.id == DEMO_ITEM
        assert remote.reason.startswith(f"{DEMO_ITEM}: asset href ")
        assert "refused" in remote.reason
        assert "\n" not in remote.reason
        # the href, scrubbed (pystac turns a backslash path into a posix one first)
        assert any(
            f"asset href {s} refused" in remote.reason for s in (sample, sample.replace("\\", "/"))
        )
    else:
        assert isinstance(remote, ScenePlan)
        assert remote.qa_href == f"{server.url}/root/item/SCL.tif"

    local = _plan_one(str(tree / "root/catalog.json"))
    if local_refused:
        assert isinstance(local, Fallback)
        assert "refused" in local.reason
        assert "\n" not in local.reason
    else:
        assert isinstance(local, ScenePlan)
        assert Path(local.qa_href) == tree / "root/item/SCL.tif"
        with rasterio.open(local.bands["red"].href) as src:  # and it reads
            assert src.read(1, window=Window(0, 0, 4, 4)).shape == (4, 4)


def test_the_run_path_carries_the_policy_to_the_plan(tree, fault_server):
    """find() -> Found.hrefs -> plan(): the job's own path refuses the local file too."""
    _set_assets(tree, lambda p, n: f"/vsisubfile/0_{p.stat().st_size},{p}")
    server = fault_server(root=tree)
    found = find(SearchOptions(source=f"{server.url}/root/catalog.json"))
    assert found.hrefs is not None
    assert found.hrefs.remote()
    with pytest.raises(ItemError, match="refused: a GDAL virtual path"):
        plan(found.items, digests=found.digests, hrefs=found.hrefs)


def test_allow_local_hrefs_still_refuses_virtual_paths(tree, fault_server):
    server = fault_server(root=tree)
    policy = HrefPolicy(root=f"{server.url}/root/catalog.json", allow_local=True)
    base = f"{server.url}/root/item/item.json"
    local = str(tree / "root/item/B04.tif")
    assert policy.asset(local, item_id="x", self_href=base) == local
    with pytest.raises(ItemError, match="x: asset href /vsicached refused"):
        policy.asset(f"/vsicached?file={local}", item_id="x", self_href=base)


#: link spellings: (id, spell(tree), refused when remote, refused when local)
LINK_SPELLINGS = [
    ("relative", lambda t: "./item/item.json", False, False),
    ("absolute", lambda t: str(t / "root/item/item.json"), True, False),
    ("file-url", lambda t: (t / "root/item/item.json").as_uri(), True, False),
    ("root-escape", lambda t: "../outside/item.json", True, True),
    ("absolute-outside", lambda t: str(t / "outside/item.json"), True, False),
    ("vsicached", lambda t: f"/vsicached?file={t / 'root/item/item.json'}", True, True),
    ("vsisubfile", lambda t: f"/vsisubfile/0_99999,{t / 'root/item/item.json'}", True, True),
    ("vsizip", lambda t: f"/vsizip/{t}/root.zip/item/item.json", True, True),
    ("vsicurl", lambda t: "/vsicurl/http://127.0.0.1:9/item.json", True, True),
    ("other-scheme", lambda t: f"zip+file://{t}/root.zip!item.json", True, True),
]


@pytest.mark.parametrize(
    ("spell", "remote_refused", "local_refused"),
    [s[1:] for s in LINK_SPELLINGS],
    ids=[s[0] for s in LINK_SPELLINGS],
)
def test_link_spellings(tree, fault_server, spell, remote_refused, local_refused):
    link = spell(tree)
    (tree / "root/catalog.json").write_text(json.dumps(_catalog(link)))
    server = fault_server(root=tree)
    url = f"{server.url}/root/catalog.json"
    for source, refused in (
        (url, remote_refused),
        (str(tree / "root/catalog.json"), local_refused),
    ):
        if refused:
            with pytest.raises(CatalogError) as err:
                search(source=source)
            text = str(err.value)
            assert "\n" not in text
            assert "refused" in text
            assert f"link {scrub_href(link)} refused" in text
        else:
            assert [i.id for i in search(source=source)] == [DEMO_ITEM]
    if remote_refused:  # nothing local was read for the remote catalog
        assert all(r.path != "/root/item/item.json" for r in server.requests())


def test_an_item_collection_self_link_cannot_point_home(tree, fault_server):
    """A feature's self link is the base its relative assets resolve against: it is a link."""
    item = json.loads((tree / "root/item/item.json").read_text())
    item["links"] = [{"rel": "self", "href": str(tree / "root/item/item.json")}]
    (tree / "root/items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": [item]})
    )
    server = fault_server(root=tree)
    with pytest.raises(CatalogError, match="refused: a local file in a remote catalog"):
        search(source=f"{server.url}/root/items.json")
    assert [i.id for i in search(source=str(tree / "root/items.json"))] == [DEMO_ITEM]


# -- allowed hosts and redirects ----------------------------------------------------------


def _json(doc) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()


def _redirect(location: str) -> tuple[int, dict[str, str], bytes]:
    return 302, {"Location": location}, b""


def _empty() -> dict:
    return {**_catalog(), "links": []}


def _empty_catalog(path: str):
    return _json(_empty()) if path.endswith(".json") else (404, {}, b"")


def test_allowed_hosts_bound_the_catalog_url_and_links(tree, fault_server):
    server = fault_server(root=tree)
    by_name = f"http://localhost:{server.port}/root/catalog.json"
    with pytest.raises(CatalogError, match=r"host localhost is not in allowed_hosts \(127.0.0.1\)"):
        search(source=by_name, allowed_hosts=["127.0.0.1"])
    (tree / "root/catalog.json").write_text(
        json.dumps(_catalog(f"http://localhost:{server.port}/root/item/item.json"))
    )
    with pytest.raises(CatalogError, match=r"link http://localhost:.* refused: host localhost"):
        search(source=f"{server.url}/root/catalog.json", allowed_hosts=["127.0.0.1"])
    found = search(
        source=f"{server.url}/root/catalog.json", allowed_hosts=["127.0.0.1:1", "localhost"]
    )
    assert [i.id for i in found] == [DEMO_ITEM]


def test_a_json_redirect_off_the_allowed_hosts_is_refused(route_server):
    target = route_server(_empty_catalog)
    hop = route_server(lambda path: _redirect(f"{target.url_by_name}{path}"))
    with pytest.raises(CatalogError) as err:
        search(source=f"{hop.url}/catalog.json", allowed_hosts=["127.0.0.1"])
    text = str(err.value)
    assert "redirect from" in text
    assert "host localhost is not in allowed_hosts" in text
    assert "\n" not in text
    assert target.paths == []
    assert (
        len(search(source=f"{hop.url}/catalog.json", allowed_hosts=["127.0.0.1", "LocalHost"])) == 0
    )
    assert target.paths == ["/catalog.json"]
    assert len(search(source=f"{hop.url}/catalog.json")) == 0  # no list: any host


def test_a_redirect_to_a_local_file_is_never_followed(route_server, tree):
    hop = route_server(lambda path: _redirect((tree / "root/catalog.json").as_uri()))
    with pytest.raises(CatalogError, match=r"cannot read http://127.0.0.1"):
        search(source=f"{hop.url}/catalog.json")


def test_a_stac_api_redirect_off_the_allowed_hosts_is_refused(route_server):
    landing = {
        "type": "Catalog",
        "id": "api",
        "stac_version": "1.0.0",
        "description": "landing page",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core"],
        "links": [],
    }
    target = route_server(lambda path: _json(landing))
    hop = route_server(lambda path: _redirect(f"{target.url_by_name}{path}"))
    with pytest.raises(
        CatalogError, match=r"redirect from http://127.0.0.1:.* refused: host localhost"
    ):
        search(source=f"{hop.url}/api", allowed_hosts=["127.0.0.1"], limit=1)
    assert target.paths == []


def test_asset_redirects_are_resolved_before_gdal(tree, route_server):
    """GDAL would follow any redirect; the plan hands it the final URL, every hop checked."""
    files = tree / "root/item"
    store = route_server(
        lambda path: (
            (200, {}, (files / path.rsplit("/", 1)[-1]).read_bytes())
            if (files / path.rsplit("/", 1)[-1]).is_file()
            else (404, {}, b"")
        )
    )
    item = json.loads((files / "item.json").read_text())
    for key, name in ASSETS.items():
        item["assets"][key]["href"] = f"./data/{name}"

    def catalog(path: str):
        if path == "/catalog.json":
            return _json(_catalog("./item/item.json"))
        if path == "/item/item.json":
            return _json(item)
        if path.startswith("/item/data/"):
            return _redirect(f"{store.url_by_name}/{path.rsplit('/', 1)[-1]}")
        return 404, {}, b""

    front = route_server(catalog)
    url = f"{front.url}/catalog.json"
    with pytest.raises(ItemError, match=r"redirect from .* refused: host localhost is not"):
        plan(search(source=url), hrefs=source_policy(url, ["127.0.0.1"]))
    assert final_url(f"{front.url}/item/data/B04.tif", ["127.0.0.1", "localhost"]) == (
        f"{store.url_by_name}/B04.tif"
    )
    planned = plan(search(source=url), hrefs=source_policy(url, ["127.0.0.1", "localhost"]))
    (scene,) = planned.scenes
    assert scene.qa_href == f"{store.url_by_name}/SCL.tif"
    assert scene.bands["red"].href == f"{store.url_by_name}/B04.tif"


def test_allowed_hosts_in_the_run_config():
    assert SearchOptions(allowed_hosts=[" Example.COM:443 ", "https://b.io/x"]).allowed_hosts == (
        "example.com",
        "b.io",
    )
    with pytest.raises(ConfigError, match="allowed host ' ' is blank"):
        SearchOptions(allowed_hosts=[" "])


# -- bounded walks --------------------------------------------------------------------------


def _chain(delay_s: float = 0.0):
    def answer(path: str):
        time.sleep(delay_s)
        n = int(path.strip("/c.json") or 0)
        doc = _catalog()
        doc["links"] = [{"rel": "child", "href": f"./c{n + 1}.json"}]
        return _json(doc)

    return answer


def test_an_endless_chain_ends_at_the_depth_limit(route_server):
    server = route_server(_chain())
    began = time.monotonic()
    with pytest.raises(CatalogError) as err:
        search(source=f"{server.url}/c0.json")
    took = time.monotonic() - began
    text = str(err.value)
    assert "more than 32 links below" in text
    assert "CLEARCUBE_CATALOG_MAX_DEPTH" in text
    assert "\n" not in text
    assert took < 10
    assert len(server.paths) == 33


def test_an_endless_chain_ends_at_the_deadline(route_server, monkeypatch):
    monkeypatch.setenv("CLEARCUBE_CATALOG_MAX_DEPTH", "1000000")
    monkeypatch.setenv("CLEARCUBE_CATALOG_DEADLINE_S", "1.5")
    server = route_server(_chain(delay_s=0.02))
    began = time.monotonic()
    with pytest.raises(CatalogError) as err:
        search(source=f"{server.url}/c0.json")
    took = time.monotonic() - began
    text = str(err.value)
    assert "took over 1.5 s" in text
    assert "CLEARCUBE_CATALOG_DEADLINE_S" in text
    assert "\n" not in text
    assert 1.5 <= took < 4


def test_a_deep_local_chain_needs_no_recursion_and_a_cycle_is_named(tmp_path, monkeypatch):
    depth = 1500  # past Python's recursion limit
    monkeypatch.setenv("CLEARCUBE_CATALOG_MAX_DEPTH", str(depth + 1))
    for n in range(depth):
        doc = _catalog()
        doc["links"] = [{"rel": "child", "href": f"./c{n + 1}.json"}] if n < depth - 1 else []
        (tmp_path / f"c{n}.json").write_text(json.dumps(doc))
    assert len(search(source=str(tmp_path / "c0.json"))) == 0
    doc = _catalog()
    doc["links"] = [{"rel": "child", "href": "./c0.json"}]
    (tmp_path / f"c{depth - 1}.json").write_text(json.dumps(doc))
    with pytest.raises(CatalogError, match="leads back to a catalog on its own path"):
        search(source=str(tmp_path / "c0.json"))


def test_an_oversized_document_is_given_up_while_streaming(route_server):
    piece = b" " * (1 << 16)
    total = 25_600_000

    def answer(path: str):
        return (
            200,
            {"Content-Type": "application/json"},
            (piece for _ in range(total // len(piece))),
        )

    server = route_server(answer)
    began = time.monotonic()
    with pytest.raises(CatalogError) as err:
        search(source=f"{server.url}/big.json")
    text = str(err.value)
    assert "document larger than 16 MB" in text
    assert "CLEARCUBE_CATALOG_MAX_MB" in text
    assert "\n" not in text
    assert time.monotonic() - began < 10
    time.sleep(0.2)
    assert server.sent < 0.9 * total  # not read whole


def test_an_oversized_document_by_length_or_on_disk(route_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARCUBE_CATALOG_MAX_MB", "1")
    big = json.dumps({**_empty(), "description": "x" * 1_500_000}).encode()
    server = route_server(lambda path: (200, {}, big))
    with pytest.raises(CatalogError, match=r"big.json: document larger than 1 MB"):
        search(source=f"{server.url}/big.json")
    (tmp_path / "big.json").write_bytes(big)
    with pytest.raises(CatalogError, match=r"big.json: document larger than 1 MB"):
        search(source=str(tmp_path / "big.json"))
    monkeypatch.setenv("CLEARCUBE_CATALOG_MAX_MB", "2")
    assert len(search(source=str(tmp_path / "big.json"))) == 0


def test_allow_host_on_the_command_line(tree, fault_server):
    server = fault_server(root=tree)
    url = f"{server.url}/root/catalog.json"
    refused = cli("search", "--source", url, "--allow-host", "stac.example", timeout=120)
    assert refused.returncode != 0
    assert "host 127.0.0.1 is not in allowed_hosts (stac.example)" in refused.stderr
    assert refused.stdout == ""
    ok = cli("search", "--source", url, "--allow-host", "127.0.0.1", "--json", timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert [row["id"] for row in json.loads(ok.stdout)] == [DEMO_ITEM]


def test_a_remote_item_linked_from_a_local_catalog_is_judged_as_remote(tree, fault_server):
    """What a document fetched over HTTP says is remote, whichever catalog linked to it."""
    _set_assets(tree, lambda p, n: str(p))
    server = fault_server(root=tree)
    local = tree / "local.json"
    local.write_text(json.dumps(_catalog(f"{server.url}/root/item/item.json")))
    result = _plan_one(str(local))
    assert isinstance(result, Fallback)
    assert "refused: a local file in a remote catalog" in result.reason
