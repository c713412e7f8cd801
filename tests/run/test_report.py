"""report.html: one self-contained page with every panel (map, series, histograms, science
checks, every composite, routed scenes), its images decoding, rendered in headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest
from PIL import Image

from clearcube.products.report import PANELS
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config

from .test_run import finished  # noqa: F401  (the shared finished run)

pytestmark = pytest.mark.integration  # headless Chromium


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Sections(HTMLParser):
    """The page's sections by id: their images (alt, bytes), captions and text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.tags: list[str] = []
        self.current: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.current = a["id"]
            self.sections[self.current] = {"images": [], "text": ""}
        elif tag == "img" and self.current:
            src = a["src"]
            assert src.startswith("data:image/png;base64,"), src[:40]
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
            self.sections[self.current]["images"].append((a["alt"], data))

    def handle_endtag(self, tag):
        if tag == "section":
            self.current = None

    def handle_data(self, data):
        if self.current:
            self.sections[self.current]["text"] += data


@pytest.fixture(scope="module")
def page(finished):  # noqa: F811
    text = (finished / "report.html").read_text()
    parser = Sections()
    parser.feed(text)
    return text, parser


def test_report_has_every_panel_and_its_images_decode(finished, page):  # noqa: F811
    text, parser = page
    sections = parser.sections
    assert list(sections) == list(PANELS)
    for key, section in sections.items():
        assert PANELS[key] in section["text"], key
    for key in ("map", "series", "histograms", "checks"):
        assert len(sections[key]["images"]) == 1, key
    for key, section in sections.items():
        for alt, data in section["images"]:
            with Image.open(io.BytesIO(data)) as im:
                im.load()  # decodes every pixel, or raises
                assert im.format == "PNG"
                assert min(im.size) > 100, (key, alt, im.size)
                colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
                assert colours is not None
                assert len(colours) > 2, (key, alt)  # not a blank image (a count has few)
    # self-contained: nothing fetched, nothing run
    assert not re.search(r"(src|href)=['\"]?https?:", text)
    assert "<script" not in text
    assert "<link" not in text
    assert "<iframe" not in text


def test_report_panels_say_what_the_run_did(finished, page):  # noqa: F811
    _, parser = page
    sections = parser.sections
    scenes = pd.read_csv(finished / "scenes.csv", dtype={"tile": str})
    slices = scenes[scenes["time"].notna()]
    cfg = load_run_config(config_path("default"))
    # the map: every scene's footprint and the run's area of interest
    ((alt, _),) = sections["map"]["images"]
    w, s, e, n = cfg.search.bbox
    assert alt.startswith(f"{len(slices)} footprints of 3 series")
    assert f"{w:.4f} {s:.4f} {e:.4f} {n:.4f}" in alt
    # one line per series (sensor and tile or path/row), with its scene count
    judged = slices.dropna(subset=["cloud_fraction"])
    ((alt, _),) = sections["series"]["images"]
    for (sensor, tile), part in judged.groupby(["sensor", "tile"]):
        assert f"{sensor} {tile} ({len(part)} scenes)" in alt
    # every composite: NDVI and clear count, one pair per COG pair in the run folder
    composites = sorted((finished / "composites").glob("clear_count_*.tif"))
    assert len(composites) == 4
    alts = [a for a, _ in sections["composites"]["images"]]
    assert len(alts) == 2 * len(composites)
    for tif in composites:
        year = tif.stem.rsplit("_", 1)[1]
        assert f"NDVI of the {year} composite" in alts
        assert f"clear_count of the {year} composite" in alts
    # the science checks: one row per scene whose reflectance was read, with its figures
    checks = sections["checks"]["text"]
    read = slices[slices["checked_px"].notna()]
    assert len(read) == (slices["decision"] == "used").sum()
    for rec in read.to_dict("records"):
        assert rec["id"] in checks
        assert str(int(rec["checked_px"])) in checks
    assert checks.count("plausible") == (read["decision"] == "used").sum()
    assert "Blue not loaded: no EVI and no haze test." in checks
    assert f"NDVI jump from both series neighbours at most {cfg.mask.max_ndvi_jump:g}" in checks
    # the routed scenes: every row of scenes.csv
    for scene_id in scenes["id"]:
        assert scene_id in sections["scenes"]["text"]


def test_report_renders_in_chromium(finished, tmp_path):  # noqa: F811
    exe = chromium()
    if exe is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("chromium is not installed; .ci/run must install it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,4800",
            (finished / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), done.stderr[-2000:]
    with Image.open(shot) as im:
        rgb = im.convert("RGB")
    assert rgb.size == (1200, 4800)
    # not a blank page: the plots at the top (map, series, histograms) put saturated colours in
    # every 600 px band, and further down the composites' quicklooks fill a band with colour
    # (an image that fails to decode leaves a white or broken-icon band)
    shares = []
    for top in range(0, 4800, 600):
        band = rgb.crop((0, top, 1200, top + 600))
        colours = band.getcolors(maxcolors=1 << 20)
        assert colours is not None
        saturated = sum(c for c, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 80)
        shares.append(saturated / (1200 * 600))
    assert min(shares[:3]) > 0.005, shares
    assert max(shares[3:]) > 0.2, shares
