"""The one scrubber (clearcube.scrub), the CSV cell escaping, the removal of stale
temporaries, and GDAL's own message in read errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from clearcube.resources import demo_catalog_path
from clearcube.scrub import scrub_href, scrub_message, scrub_text, scrub_value

SECRET = "S3cr3tValue"


@pytest.mark.parametrize(
    ("href", "want"),
    [
        (f"https://h.example/a.tif?sig={SECRET}", "https://h.example/a.tif"),
        (f"https://user:{SECRET}@h.example:8443/a.tif#frag", "https://h.example:8443/a.tif"),
        (f"s3://bucket/key.tif?X-Amz-Signature={SECRET}", "s3://bucket/key.tif"),
        (f"/data/a.tif?token={SECRET}", "/data/a.tif"),
        (f"/vsicurl/https://h.example/a.tif?sig={SECRET}", "/vsicurl/https://h.example/a.tif"),
        ("relative/a.tif", "relative/a.tif"),
    ],
)
def test_scrub_href(href, want):
    assert scrub_href(href) == want


@pytest.mark.parametrize(
    "text",
    [
        f"cannot read https://h/a.tif?sv=2024&se=2030&sr=b&sp=r&sig={SECRET}: 403",
        f"'/vsicurl/https://h/a.tif?X-Amz-Credential={SECRET}' not recognized",
        f"/vsicurl?url=https%3A%2F%2Fh%2Fa.tif&sig={SECRET}&use_head=no",
        f"GET /a.tif?token={SECRET} HTTP/1.1",
        f"a.tif%3Fsig%3D{SECRET}",
        f"&access_token={SECRET}&page=2",
        f"api_key={SECRET} was refused",
        f"{{'Authorization': 'Bearer {SECRET}', 'Accept': '*/*'}}",
        f"Cookie: session={SECRET}",
        f"curl http%3A%2F%2Fuser%3A{SECRET}%40host%2Fa.tif",
        f"ftp://me:{SECRET}@host/x and more",
        f"password={SECRET}",
        f"Authorization: Bearer {SECRET}",
        f"curl -H 'Bearer {SECRET}'",
    ],
)
def test_scrub_text_removes_every_spelling(text):
    assert SECRET not in scrub_text(text)


def test_scrub_text_keeps_what_is_no_secret():
    text = "B04: scale=0.0001 offset=-0.1; HTTP response code: 404 at https://h/a.tif (2 tries)"
    text += "; Basic checks on //host:8080/a.tif by me@example.org"
    assert scrub_text(text) == text


def test_scrub_text_with_the_href_in_gdal_forms():
    href = f"https://h/a%20b.tif?sig={SECRET}"
    text = f"a%20b.tif?sig={SECRET}: read error; https%3A%2F%2Fh%2Fa%2520b.tif%3Fsig%3D{SECRET}"
    assert SECRET not in scrub_text(text, [href])
    assert SECRET not in scrub_message(OSError(f"{href}: failed\nsecond line"), href)


def test_scrub_value_scrubs_nested_records():
    record = {
        "source": f"https://h/catalog.json?token={SECRET}",
        "assets": {"B04": {"href": f"https://h/B04.tif?{SECRET}"}},
        "items": [f"x?sig={SECRET}", 3, None, 1.5],
    }
    out = scrub_value(record)
    assert SECRET not in repr(out)
    assert out["assets"]["B04"]["href"] == "https://h/B04.tif"  # a bare query goes too
    assert out["items"][1:] == [3, None, 1.5]


def test_a_config_records_no_token_and_keeps_its_digest():
    from clearcube.runconfig import load_run_config

    cfg = load_run_config("default")
    a = cfg.with_overrides(search={"source": f"https://h/catalog.json?token={SECRET}"})
    b = cfg.with_overrides(search={"source": "https://h/catalog.json?token=renewed"})
    assert SECRET not in repr(a.record())
    assert a.digest() == b.digest() != cfg.digest()


def test_csv_cells_are_escaped_against_formulas(tmp_path):
    from clearcube.products.tables import read_scenes, write_scenes

    ids = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "'quoted", "ok"]
    frame = pd.DataFrame({"id": ids, "cloud_fraction": [-0.5] * len(ids)})
    path = write_scenes(tmp_path / "scenes.csv", frame)
    raw = pd.read_csv(path, dtype=str)
    for cell in raw["id"]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert raw["id"].tolist()[:-1] == ["'" + i for i in ids[:-1]]
    assert raw["id"].tolist()[-1] == "ok"
    assert raw["cloud_fraction"].tolist() == ["-0.5"] * len(ids)  # numbers stay numbers
    back = read_scenes(path)
    assert back["id"].tolist() == ids
    assert back["cloud_fraction"].tolist() == [-0.5] * len(ids)


def test_stale_temporaries_are_removed(tmp_path):
    from clearcube.products.files import remove_stale_temps, temp_folder

    run = tmp_path / "run"
    stale = [temp_folder("cube.zarr", run), temp_folder("a.tif", run / "composites")]
    (stale[0] / "cube.zarr" / "c").mkdir(parents=True)
    (stale[0] / "cube.zarr" / "c" / "0").write_bytes(b"chunk")
    outside = tmp_path / "outside.tmp"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (run / ".link.tmp").symlink_to(outside)
    (run / "stac").mkdir()
    (run / "scenes.csv").write_text("id\n")
    removed = remove_stale_temps(run)
    assert removed == sorted(p.relative_to(run).as_posix() for p in stale)
    assert not any(p.exists() for p in stale)
    assert (outside / "keep").exists()
    assert (run / ".link.tmp").is_symlink()
    assert (run / "stac").is_dir()
    assert (run / "scenes.csv").exists()


def test_a_library_read_error_keeps_gdal_messages(tmp_path):
    from clearcube.engines._base import Source
    from clearcube.engines.windows import library_failure

    (src,) = demo_catalog_path().parent.rglob("S2A_21MZS_20240210_0_L2A/B04.tif")
    data = bytearray(src.read_bytes())
    for i in range(len(data) // 2, len(data), 7):
        data[i] = 0x55
    bad = tmp_path / f"B04.tif?sig={SECRET}"
    bad.write_bytes(bytes(data))
    with pytest.raises(rasterio.errors.RasterioError) as info, rasterio.open(bad) as ds:
        ds.read(1)
    source = Source(
        id="scene",
        asset="red",
        href=str(bad),
        time=np.datetime64(dt.datetime(2024, 2, 10), "ns"),
    )
    error = library_failure(source, info.value)
    text = str(error)
    assert "ZIPDecode" in text
    assert "IReadBlock failed" in text
    assert "\n" not in text
    assert SECRET not in text
    assert error.cause is not None
    assert "ZIPDecode" in error.cause


def test_scrub_is_the_one_home():
    """The functions errors.py re-exports are the scrubber's own."""
    import clearcube.errors as errors
    import clearcube.scrub as scrub

    assert errors.scrub_href is scrub.scrub_href
    assert errors.scrub_message is scrub.scrub_message
    for module in ("gdal_env", "_cli_output"):
        source = Path(__import__(f"clearcube.{module}", fromlist=["x"]).__file__).read_text()
        assert 're.compile(r"\\?' not in source
        assert "def _scrub" not in source
