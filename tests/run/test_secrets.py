"""No secret is written: a run over a catalog whose URL carries a token and whose every asset
href is a signed URL leaves neither secret in any byte of the run folder, nor in what the
command printed or logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearcube.demo import generate_demo
from clearcube.verification import verify

from .._cli import cli

CATALOG_SECRET = "CatalogTok3nSECRET"
ASSET_SECRET = "AssetSig5ECRETvalue"
SECRETS = (CATALOG_SECRET, ASSET_SECRET)
#: An Azure SAS and an S3 presigned query, both carrying the asset secret.
SIGNED = (
    f"?sv=2024-05-04&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=r&sig={ASSET_SECRET}",
    f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ASSET_SECRET}%2F20240101"
    f"&X-Amz-Signature={ASSET_SECRET}",
)


def _sign_every_asset(root: Path) -> int:
    """Append a signed query string to every asset href of every item under ``root``."""
    signed = 0
    for path in sorted(root.rglob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("type") != "Feature":
            continue
        for n, asset in enumerate(doc["assets"].values()):
            assert asset["href"].startswith("http://127.0.0.1")
            asset["href"] += SIGNED[n % 2]
            signed += 1
        path.write_text(json.dumps(doc))
    return signed


@pytest.fixture(scope="module")
def signed_catalog(nginx) -> str:
    root = nginx.root / "signed-demo"
    generate_demo(root, href_base=f"{nginx.url}/data/signed-demo")
    assert _sign_every_asset(root) > 30
    return f"{nginx.url}/data/signed-demo/catalog.json?token={CATALOG_SECRET}&user=x"


def _leaks(data: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in data or s.encode("utf-16-le") in data]


def test_no_secret_in_any_file_or_output(signed_catalog, nginx, tmp_path):
    out = tmp_path / "run"
    log_file = tmp_path / "run.log"
    done = cli(
        "run",
        "--quiet",
        "-vvv",  # every library's debug too: request lines, GDAL paths
        "--log-file",
        str(log_file),
        "--source",
        signed_catalog,
        "--out",
        str(out),
        "--json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # the signed hrefs were really used: nginx served the assets the run read, with the query
    assert any(".tif?" in r.path.lower() and ASSET_SECRET in r.path for r in nginx.requests())
    summary = json.loads(done.stdout)
    assert summary["summary"]["decisions"]["used"] >= 5
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20  # run.json, audit, tables, report, STAC, snapshots, Zarr chunks, COGs
    leaked = {p.relative_to(out).as_posix(): _leaks(p.read_bytes()) for p in files}
    assert {k: v for k, v in leaked.items() if v} == {}
    for name, text in (
        ("stdout", done.stdout),
        ("stderr", done.stderr),
        ("log", log_file.read_text()),
    ):
        assert _leaks(text.encode()) == [], name
    assert ".tif" in log_file.read_text().lower()  # the log spoke of the assets
    # the records still name the source, scrubbed
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["config"]["search"]["source"] == f"{nginx.url}/data/signed-demo/catalog.json"
    assert verify(out).ok


def test_a_renewed_token_is_the_same_run(signed_catalog, tmp_path):
    """The run's identity (its digest, the folder name) does not hold the token: a rerun with
    a renewed token resumes the run rather than refusing it as another config."""
    from clearcube.runconfig import load_run_config

    cfg = load_run_config("default")
    a = cfg.with_overrides(search={"source": signed_catalog})
    b = cfg.with_overrides(search={"source": signed_catalog.replace(CATALOG_SECRET, "other")})
    assert a.digest() == b.digest()
    assert a.record()["search"]["source"].endswith("/catalog.json")
    assert a.model_dump()["search"]["source"] == signed_catalog  # the run itself uses the token


def test_a_failing_run_prints_no_secret(tmp_path):
    """Nobody listens on port 9 of loopback: the one-line error names the scrubbed URL."""
    done = cli(
        "run",
        "--source",
        f"http://user:{ASSET_SECRET}@127.0.0.1:9/catalog.json?token={CATALOG_SECRET}",
        "--out",
        str(tmp_path / "run"),
        "--log-file",
        str(tmp_path / "run.log"),
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "http://127.0.0.1:9/catalog.json" in done.stderr
    for text in (done.stdout, done.stderr, (tmp_path / "run.log").read_text()):
        assert _leaks(text.encode()) == []
    assert not (tmp_path / "run").exists()
