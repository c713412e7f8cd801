"""SAS tokens added right before each read: against a loopback storage whose tokens live a
second or two and whose COGs answer 403 without a valid one (tests/servers/sas.py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clearcube as cc
from clearcube.engines import Source
from clearcube.engines.native import NativeEngine
from clearcube.errors import AssetReadError
from clearcube.gdal_env import clear_vsicurl_cache, gdal_options
from clearcube.job import read_options, run
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config
from clearcube.sas import (
    PLANETARY_COMPUTER_TOKEN_URL,
    SAS_OPTION,
    Signer,
    Token,
    forget_tokens,
    sign_href,
    signing_for,
    signing_options,
    tokens_fetched,
)

PROVENANCE = ["item_digest", "config_digest"]


@pytest.fixture
def guarded(sas_storage):
    """The guarded demo storage, its logs and this process's tokens forgotten."""
    server, catalog = sas_storage
    server.refuse(False)
    server.set_token_life(1.0)
    server.reset_log()
    forget_tokens()
    clear_vsicurl_cache()
    return server, catalog


def _qa_source(catalog: Path) -> Source:
    item = next(i for i in cc.search(source=str(catalog)) if i.collection_id == "landsat-c2-l2")
    return Source.from_item(item, "qa_pixel")


def _read(source: Source, gdal: dict[str, str]) -> np.ndarray:
    from clearcube.engines._base import ChunkGrid

    opts = tuple(sorted(gdal_options(gdal).items()))
    grid = ChunkGrid(source.crs or "", source.transform or (1, 0, 0, 0, -1, 0), (64, 64))
    (out,) = NativeEngine().read_row(
        source, (grid,), dtype="uint16", fill=1, resampling="nearest", gdal=opts, decode=None
    )
    return out


def test_token_is_cached_per_collection_and_refreshed_before_expiry(guarded):
    import time

    server, _ = guarded
    signer = Signer(server.token_url)
    first = signer.token("landsat-c2-l2", label="t")
    assert signer.token("landsat-c2-l2", label="t") is first  # cached
    other = signer.token("sentinel-2-l2a", label="t")
    assert other.token != first.token  # one per collection
    assert len(server.tokens) == 2
    # a 1 s token is replaced a quarter of its life before msft:expiry
    time.sleep(first.expires_at - first.fetched_at - 0.2)
    assert not first.fresh(time.time())
    assert signer.token("landsat-c2-l2", label="t").token != first.token
    assert len(server.tokens) == 3


def test_margin_is_five_minutes_for_an_hour_long_token():
    token = Token("c", "sig=x", expires_at=3600.0, fetched_at=0.0)
    assert token.fresh(3600.0 - 301)
    assert not token.fresh(3600.0 - 299)


def test_signing_is_switched_on_by_the_provider_not_by_other_sources(monkeypatch):
    monkeypatch.delenv("PC_SDK_SAS_URL", raising=False)
    pc = load_run_config(config_path("default")).with_overrides(
        search={"source": "planetary-computer"}
    )
    assert read_options(pc)[SAS_OPTION] == PLANETARY_COMPUTER_TOKEN_URL
    demo = load_run_config(config_path("default"))
    assert SAS_OPTION not in read_options(demo)
    monkeypatch.setenv("PC_SDK_SAS_URL", "http://127.0.0.1:1/token")
    assert signing_options("planetary-computer") == {SAS_OPTION: "http://127.0.0.1:1/token"}
    # local paths and hrefs already signed stay as they are
    opts = {SAS_OPTION: "http://127.0.0.1:1/token"}
    assert sign_href("/data/a.tif", "c", opts, label="t") == "/data/a.tif"
    signed = "https://x.blob.core.windows.net/c/a.tif?st=1&sig=abc"
    assert sign_href(signed, "c", opts, label="t") == signed


def test_unsigned_reads_are_refused_and_signed_ones_read(guarded):
    server, catalog = guarded
    source = _qa_source(catalog)
    with pytest.raises(AssetReadError, match="403"):
        _read(source, {})
    out = _read(source, {SAS_OPTION: server.token_url})
    assert (out != 1).any()  # pixels of the file, not the fill
    assert server.files[-1].status in (200,)
    assert server.files[-1].sig == server.tokens[-1].sig


def test_a_revoked_token_is_refreshed_once_and_the_read_succeeds(guarded):
    server, catalog = guarded
    source = _qa_source(catalog)
    gdal = {SAS_OPTION: server.token_url}
    expected = _read(source, gdal)
    assert len(server.tokens) == 1
    server.revoke_all()
    server.reset_log()
    clear_vsicurl_cache()  # no open handle or cached block: the read asks the storage
    np.testing.assert_array_equal(_read(source, gdal), expected)
    statuses = [f.status for f in server.files]
    assert statuses[0] == 403, statuses  # the revoked token
    assert set(statuses[1:]) == {200}, statuses  # then the fresh one
    assert len(server.tokens) == 1  # one refresh


def test_a_storage_that_keeps_refusing_is_a_read_failure_after_one_refresh(guarded):
    server, catalog = guarded
    source = _qa_source(catalog)
    server.refuse()
    with pytest.raises(AssetReadError) as err:
        _read(source, {SAS_OPTION: server.token_url})
    message = str(err.value)
    assert "403" in message
    assert source.href.split("/")[-1] in message  # names the asset
    assert "sig=" not in message  # and no token
    assert "?" not in message
    assert len(server.tokens) == 2  # the first and one refresh, no more
    assert [f.status for f in server.files] == [403, 403]


def test_a_token_endpoint_that_is_down_names_the_collection():
    signer = Signer("http://127.0.0.1:9/api/sas/v1/token")
    with pytest.raises(AssetReadError, match="cannot get a SAS token for collection 'c'"):
        signer.token("c", label="item-1")


def test_the_lazy_cube_carries_no_token_and_the_signer_pickles(guarded):
    server, catalog = guarded
    items = cc.search(source=str(catalog))
    ds = cc.load(items, options=cc.LoadOptions(gdal={SAS_OPTION: server.token_url}))
    graph = pickle.dumps(dict(ds.__dask_graph__()))
    assert len(server.tokens) == 0  # building the graph signs nothing
    assert b"sig=" not in graph
    assert pickle.loads(pickle.dumps(Signer(server.token_url))) == Signer(server.token_url)


def test_a_run_longer_than_a_token_reads_every_scene_and_writes_no_token(guarded, tmp_path):
    server, catalog = guarded
    cfg = load_run_config(config_path("default"))
    signed = cfg.with_overrides(
        search={"source": str(catalog)}, load={"gdal": {SAS_OPTION: server.token_url}}
    )
    result = run(signed, out=tmp_path / "signed")
    reads = [f for f in server.files if f.status == 200]
    span = reads[-1].at - reads[0].at
    tokens = server.tokens
    per_collection = pd.Series([t.collection for t in tokens]).value_counts()
    print(
        f"\nSAS run: {len(tokens)} tokens ({per_collection.to_dict()}), {len(reads)} reads "
        f"over {span:.1f} s, {sum(f.status == 403 for f in server.files)} answered 403"
    )
    assert span > 1.0  # longer than one token's life
    assert (per_collection >= 2).all(), per_collection  # a token expired and was replaced
    assert {f.sig for f in reads} <= {t.sig for t in tokens}

    # every scene read: the same scenes and pixels as the run over the packaged demo's files
    local = run(cfg, out=tmp_path / "local")
    scenes = result.scenes.set_index("id").drop(columns=PROVENANCE)
    pd.testing.assert_frame_equal(
        scenes, local.scenes.set_index("id").drop(columns=PROVENANCE), check_exact=True
    )
    assert (scenes["unreadable_px"] == 0).all()
    a = xr.open_zarr(tmp_path / "signed" / "cube.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "local" / "cube.zarr", consolidated=False)
    for var in ("flags", "clear", "red", "nir"):
        np.testing.assert_array_equal(a[var].values, b[var].values)

    # no token in any file of the run folder
    files = [p for p in (tmp_path / "signed").rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert b"sig=" not in data, path
        for token in tokens:
            assert token.sig.encode() not in data, path


@pytest.mark.integration  # a dask LocalCluster
def test_worker_processes_fetch_their_own_tokens(guarded):
    distributed = pytest.importorskip("distributed")
    server, catalog = guarded
    server.set_token_life(3.0)  # starting worker processes keeps two cores busy for seconds
    here = tokens_fetched()
    items = cc.search(source=str(catalog))
    signed = cc.load(items, options=cc.LoadOptions(gdal={SAS_OPTION: server.token_url}))
    local = cc.load(cc.search(source="demo"))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        got = client.compute(signed[["flags", "red"]]).result()
    want = local[["flags", "red"]].compute()
    np.testing.assert_array_equal(got["flags"].values, want["flags"].values)
    np.testing.assert_array_equal(got["red"].values, want["red"].values)
    # every window read (the pixels are the local files'), with tokens the workers fetched
    # (this process fetched none); a token that expired between signing and the request on a
    # busy worker was answered 403 and that read retried with a fresh token
    refused = sum(f.status == 403 for f in server.files)
    print(f"\nworkers: {len(server.tokens)} tokens, {len(server.files)} requests, {refused} 403")
    assert tokens_fetched() == here
    assert len(server.tokens) >= 2
    assert {f.status for f in server.files if f.sig == server.tokens[-1].sig} == {200}


def test_load_of_planetary_computer_items_signs_its_reads_unasked(realdata):
    """Items as ``search(source="planetary-computer")`` returns them (unsigned blob hrefs):
    the lazy cube's reads carry the signing switch; the caller's own options win."""
    import json

    path = realdata / "stac/planetary-computer/sentinel-2-l2a/items_limit1_2025-03-12.json"
    features = json.loads(path.read_text())["features"]
    assert all("sig=" not in a["href"] for f in features for a in f["assets"].values())
    ds = cc.load(features)
    graph = pickle.dumps(dict(ds.__dask_graph__()))
    assert SAS_OPTION.encode() in graph
    assert PLANETARY_COMPUTER_TOKEN_URL.encode() in graph
    mine = cc.load(features, options=cc.LoadOptions(gdal={SAS_OPTION: "http://127.0.0.1:9/t"}))
    assert PLANETARY_COMPUTER_TOKEN_URL.encode() not in pickle.dumps(dict(mine.__dask_graph__()))


def test_only_unsigned_blob_hrefs_ask_for_signing():
    blob = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/x/SCL.tif"
    assert signing_for(["https://e84.s3.amazonaws.com/SCL.tif", blob]) == signing_options(
        "planetary-computer"
    )
    assert signing_for([blob + "?st=1&se=2&sig=abc"]) == {}
    assert signing_for(["https://earth-search.example/SCL.tif", "/data/SCL.tif"]) == {}
