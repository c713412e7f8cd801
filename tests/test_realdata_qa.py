"""Decoders on the real provider QA rasters in ../shared/realdata, against the providers' own
cloud-cover figures for the same scenes (where the definitions agree)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio

import clearcube as cc
from clearcube import Flag, MaskConfig

pytestmark = pytest.mark.realdata

# File name -> encoding, for every QA raster the folder holds (new files are picked up).
QA_PATTERNS = [
    (re.compile(r"_QA_PIXEL\.TIF$", re.I), "landsat-qa-pixel"),
    (re.compile(r"^SCL\.(tif|jp2)$", re.I), "s2-scl"),
    (re.compile(r"^MSK_CLASSI_B00\.jp2$", re.I), "s2-qa60"),
]

LANDSAT_L8 = [
    "LC08_L2SP_005009_20150710_20200908_02_T2",
    "LC08_L2SP_008059_20191201_20200825_02_T1",
    "LC08_L2SR_099120_20191129_20201016_02_T2",
    "LC08_L2SP_017036_20130419_20200913_02_T2",
    "LC08_L2SP_001062_20201031_20201106_02_T2",
]


def read_band(path: Path, band: int = 1) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(band)


def msk_classi_as_qa60(path: Path) -> np.ndarray:
    """ESA's post-04.00 L1C cloud mask (band 1 opaque, band 2 cirrus) in QA60's bit layout, the
    way Earth Engine rebuilds QA60 from it."""
    with rasterio.open(path) as src:
        opaque, cirrus = src.read(1), src.read(2)
    return (opaque.astype(np.uint16) << 10) | (cirrus.astype(np.uint16) << 11)


def mtl_value(path: Path, key: str) -> float:
    match = re.search(rf"^\s*{key}\s*=\s*([-\d.]+)\s*$", path.read_text(), re.M)
    assert match, f"{key} not in {path}"
    return float(match.group(1))


def cloud_percent(flags: np.ndarray, bits: int) -> float:
    valid = (flags & Flag.NODATA) == 0
    return 100.0 * np.count_nonzero((flags & bits)[valid]) / np.count_nonzero(valid)


def qa_rasters(root: Path) -> list[tuple[Path, str]]:
    found = []
    for path in sorted((root / "rasters").rglob("*")):
        for pattern, encoding in QA_PATTERNS:
            if pattern.search(path.name):
                found.append((path, encoding))
    return found


def test_every_real_qa_raster_decodes(realdata):
    rasters = qa_rasters(realdata)
    assert len(rasters) >= 10, rasters  # 8 Landsat QA_PIXEL, 2 SCL, 1 MSK_CLASSI
    for path, encoding in rasters:
        qa = msk_classi_as_qa60(path) if path.name.startswith("MSK_CLASSI") else read_band(path)
        cfg = MaskConfig(on_undefined="raise")  # real rasters hold only defined codes
        flags = cc.decode(qa, encoding, cfg)
        assert flags.shape == qa.shape, path
        assert flags.dtype == np.uint16, path
        valid = (flags & Flag.NODATA) == 0
        if encoding == "landsat-qa-pixel":
            np.testing.assert_array_equal(~valid, qa == 1, err_msg=str(path))  # fill is exactly 1
            # no valid pixel lacks a cloud confidence (bits 8-9 == 00 would be NODATA)
            assert not ((qa % 2 == 0) & (((qa >> 8) & 3) == 0)).any(), path
        if encoding == "s2-scl":
            np.testing.assert_array_equal(~valid, qa == 0, err_msg=str(path))


@pytest.mark.parametrize("scene", LANDSAT_L8)
def test_landsat_bit3_share_matches_usgs_cloud_cover(realdata, scene):
    folder = realdata / "rasters" / "landsat" / scene
    qa = read_band(folder / f"{scene}_QA_PIXEL.TIF")
    usgs = mtl_value(folder / f"{scene}_MTL.txt", "CLOUD_COVER")
    flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=()))
    ours = cloud_percent(flags, Flag.CLOUD)
    assert ours == pytest.approx(usgs, abs=0.1), (scene, ours, usgs)
    # The default (medium + high confidence) is a superset of bit 3.
    default = cloud_percent(cc.decode(qa, "landsat-qa-pixel"), Flag.CLOUD)
    assert default >= ours


@pytest.mark.parametrize("scene", LANDSAT_L8)
def test_landsat_real_qa_obeys_usgs_invariants(realdata, scene):
    qa = read_band(realdata / "rasters" / "landsat" / scene / f"{scene}_QA_PIXEL.TIF").astype(
        np.uint32
    )
    valid = qa[(qa & 1) == 0]

    def bit(n):
        return ((valid >> n) & 1).astype(bool)

    # USGS gives every valid pixel a cloud confidence: confidence 00 off the fill is no pixel
    # (what the decoder relies on to call a reader's 0 NODATA)
    assert (((valid >> 8) & 3) != 0).all()
    assert (bit(3) == (((valid >> 8) & 3) == 3)).all()  # cloud flag <=> high cloud confidence
    assert (bit(2) == (((valid >> 14) & 3) == 3)).all()  # cirrus flag <=> high cirrus confidence
    assert not (bit(1) & bit(3)).any()  # dilated ring and cloud are exclusive
    assert (bit(6) == ~(bit(1) | bit(3))).all()  # clear <=> neither dilated nor cloud
    # a decoder testing bit 14 (cirrus confidence low bit) as "cloud" would mask every pixel
    assert bit(14).all()


def test_sentinel2_scl_matches_earth_search_cloud_cover(realdata):
    folder = realdata / "rasters" / "sentinel2" / "S2A_29RKH_20200219_0_L2A"
    item = json.loads((folder / "S2A_29RKH_20200219_0_L2A.json").read_text())
    provider = item["properties"]["eo:cloud_cover"]
    flags = cc.decode(read_band(folder / "SCL.tif"), "s2-scl")
    ours = cloud_percent(flags, Flag.CLOUD | Flag.CIRRUS)  # SCL 8 + 9 + 10 over valid
    assert ours == pytest.approx(provider, abs=0.1), (ours, provider)
    # without class 8 the figure must drop by the medium-probability share
    high_only = cc.decode(
        read_band(folder / "SCL.tif"), "s2-scl", MaskConfig(scl_medium_as_cloud=False)
    )
    assert cloud_percent(high_only, Flag.CLOUD | Flag.CIRRUS) < ours - 0.2


def test_sentinel2_l1c_cloud_mask_matches_esa_cloudy_pixel_percentage(realdata):
    folder = realdata / "rasters" / "sentinel2" / "S2A_MSIL1C_20230216T044851_N0509_R076_T46UEU"
    tree = ET.parse(folder / "MTD_TL.xml")
    node = next(e for e in tree.iter() if e.tag.endswith("CLOUDY_PIXEL_PERCENTAGE"))
    esa = float(node.text or "nan")
    qa60 = msk_classi_as_qa60(folder / "MSK_CLASSI_B00.jp2")
    flags = cc.decode(qa60, "s2-qa60")
    ours = cloud_percent(flags, Flag.CLOUD)
    assert ours == pytest.approx(esa, abs=0.1), (ours, esa)
    assert not cc.qa60_uninformative(qa60, "05.09")
    assert cc.qa60_uninformative(np.zeros_like(qa60), "05.09")


@pytest.mark.parametrize("scene", LANDSAT_L8)
def test_landsat_read_beyond_an_untagged_raster_is_nodata(realdata, scene):
    # USGS QA_PIXEL rasters carry no nodata tag, so a reader returns 0 beyond their edge: a
    # window twice the raster's width must count exactly the raster's own valid pixels
    from rasterio.windows import Window

    path = realdata / "rasters" / "landsat" / scene / f"{scene}_QA_PIXEL.TIF"
    with rasterio.open(path) as src:
        assert src.nodata is None
        inside = src.read(1)
        wide = src.read(1, window=Window(0, 0, 2 * src.width, src.height), boundless=True)
    assert (wide[:, src.width :] == 0).all()
    flags = cc.decode(wide, "landsat-qa-pixel")
    assert int(((flags & Flag.NODATA) == 0).sum()) == int((inside != 1).sum())
    assert int(cc.is_clear(flags).sum()) == int(
        cc.is_clear(cc.decode(inside, "landsat-qa-pixel")).sum()
    )


def test_provider_definitions_give_the_providers_own_figures(realdata):
    # the decide stage checks eo:cloud_cover against these definitions applied to the whole
    # scene's QA (like with like); on the real rasters they must reproduce the providers'
    # own published figures
    from clearcube.sensors import get_encoding

    qa_pixel = get_encoding("landsat-qa-pixel").provider_cloud
    for scene in LANDSAT_L8:
        folder = realdata / "rasters" / "landsat" / scene
        cloudy, counted = qa_pixel(read_band(folder / f"{scene}_QA_PIXEL.TIF"))
        usgs = mtl_value(folder / f"{scene}_MTL.txt", "CLOUD_COVER")
        assert 100 * cloudy / counted == pytest.approx(usgs, abs=0.1), scene
    folder = realdata / "rasters" / "sentinel2" / "S2A_29RKH_20200219_0_L2A"
    item = json.loads((folder / "S2A_29RKH_20200219_0_L2A.json").read_text())
    cloudy, counted = get_encoding("s2-scl").provider_cloud(read_band(folder / "SCL.tif"))
    assert 100 * cloudy / counted == pytest.approx(item["properties"]["eo:cloud_cover"], abs=0.1)
    folder = realdata / "rasters" / "sentinel2" / "S2A_MSIL1C_20230216T044851_N0509_R076_T46UEU"
    node = next(
        e
        for e in ET.parse(folder / "MTD_TL.xml").iter()
        if e.tag.endswith("CLOUDY_PIXEL_PERCENTAGE")
    )
    cloudy, counted = get_encoding("s2-qa60").provider_cloud(
        msk_classi_as_qa60(folder / "MSK_CLASSI_B00.jp2")
    )
    assert 100 * cloudy / counted == pytest.approx(float(node.text or "nan"), abs=0.1)
