"""Science checks on the pixels: a double-applied offset, an unapplied one and haze the mask
kept send a used scene to review with a reason naming the check and the offset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds, transform_geom

import clearcube as cc
from clearcube.checks import spectra_of
from clearcube.decide import decide
from clearcube.plan import plan
from clearcube.products.zarr import CubeStore
from clearcube.read import read
from clearcube.screen import screen

pytestmark = pytest.mark.realdata

MIRROR = "stac-more/earthdaily-mirror-of-earth-search-v1/sentinel-2-l2a"
ITEM = "S2A_15TTF_20230701_0_L2A"  # Earth Search: flag true, raster:bands offset -0.1
N = 256  # pixels of the fixture at 10 m (SCL at 20 m: N / 2)


def write(path: Path, data: np.ndarray, transform, crs: str, nodata: int) -> None:
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=str(data.dtype),
        crs=crs,
        transform=transform,
        nodata=nodata,
        compress="DEFLATE",
        blocksize=128,
        overview_resampling="nearest",
    ) as dst:
        dst.write(data, 1)


@pytest.fixture(scope="module")
def scene(realdata, tmp_path_factory):
    """The real item over a small window of its tile, with pixels as Earth Search writes them
    when the flag is true: the offset already removed (DN = reflectance x 10,000)."""
    item = json.loads((realdata / MIRROR / f"{ITEM}.json").read_text())
    crs = item["properties"]["proj:code"]
    t = item["assets"]["red"]["proj:transform"]
    x0, y0 = t[2], t[5]
    folder = tmp_path_factory.mktemp("es_pixels")
    rng = np.random.default_rng(3)
    red = rng.uniform(0.015, 0.06, (N, N))  # forest and fields, dark in red
    blue = red * rng.uniform(0.6, 0.9, (N, N))
    t10 = from_origin(x0, y0, 10, 10)
    t20 = from_origin(x0, y0, 20, 20)
    write(folder / "red.tif", np.round(red * 1e4).astype(np.uint16), t10, crs, 0)
    write(folder / "blue.tif", np.round(blue * 1e4).astype(np.uint16), t10, crs, 0)
    write(folder / "scl.tif", np.full((N // 2, N // 2), 4, np.uint8), t20, crs, 0)
    for key, shape, tf in (
        ("red", (N, N), t10),
        ("blue", (N, N), t10),
        ("scl", (N // 2,) * 2, t20),
    ):
        item["assets"][key]["href"] = str(folder / f"{key}.tif")
        item["assets"][key]["proj:shape"] = list(shape)
        item["assets"][key]["proj:transform"] = list(tf)[:6]
    ring = [[x0, y0], [x0 + 10 * N, y0], [x0 + 10 * N, y0 - 10 * N], [x0, y0 - 10 * N], [x0, y0]]
    item["geometry"] = transform_geom(crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    bbox = transform_bounds(crs, "EPSG:4326", x0, y0 - 10 * N, x0 + 10 * N, y0)
    item["bbox"] = list(bbox)
    item["links"] = []
    item["properties"]["eo:cloud_cover"] = 0.0  # what the fixture's own SCL says
    w, s, e, n = bbox
    inner = (w + 0.2 * (e - w), s + 0.2 * (n - s), e - 0.2 * (e - w), n - 0.2 * (n - s))
    return item, inner, red


def judged(item, bbox, tmp_path):
    planned = plan([item], bbox=bbox, chunks_yx=(64, 64))
    store = CubeStore(tmp_path / "cube.zarr", planned.geobox)
    config = cc.MaskConfig()
    screened = screen(planned, config, store=store)
    decisions = decide(planned, screened, config)
    got = read(planned, screened, decisions, ("red", "blue"), store=store)
    final = decide(planned, screened, config, spectra=got.spectra)
    store.discard()
    return planned, got, final.slices[0]


def test_earth_search_pixels_read_as_flagged_are_plausible(scene, tmp_path):
    item, bbox, _ = scene
    assert cc.identify(item).bands["red"].offset == 0.0  # the flag wins
    _, got, decision = judged(item, bbox, tmp_path)
    assert decision.decision == "used", decision.reason
    spectra = got.spectra[item["id"]]
    assert spectra.clear_px > 1000
    assert spectra.negative["red"] == 0
    assert 0.01 < spectra.red_p01 < 0.03


def test_a_double_offset_sends_the_scene_to_review_naming_the_offset(scene, tmp_path):
    item, bbox, red = scene
    double = json.loads(json.dumps(item))
    del double["properties"]["earthsearch:boa_offset_applied"]  # raster:bands' -0.1 again
    plan_ = cc.identify(double)
    assert plan_.bands["red"].offset == pytest.approx(-0.1)
    _, got, decision = judged(double, bbox, tmp_path)
    assert decision.decision == "review"
    assert "below 0" in decision.reason
    assert "red" in decision.reason
    assert "-0.1 from item-metadata" in decision.reason
    assert "applied twice" in decision.reason
    share = got.spectra[double["id"]].negative["red"] / got.spectra[double["id"]].clear_px
    assert share == pytest.approx(np.mean(red - 0.1 < -0.01), abs=0.01)  # every pixel here


def test_an_unapplied_offset_shows_as_a_high_dark_floor(scene, tmp_path):
    # the same pixels in ESA's own state (DN + 1000) read with offset 0: all 0.1 too bright
    item, bbox, _ = scene
    raw = json.loads(json.dumps(item))
    for key in ("red", "blue"):
        path = Path(raw["assets"][key]["href"])
        with rasterio.open(path) as src:
            data, profile = src.read(1), src.profile
        shifted = path.with_name(f"{key}-dn.tif")
        write(shifted, data + 1000, profile["transform"], str(profile["crs"]), 0)
        raw["assets"][key]["href"] = str(shifted)
    _, got, decision = judged(raw, bbox, tmp_path)
    assert got.spectra[raw["id"]].red_p01 > 0.1
    assert decision.decision == "review"
    assert "darkest clear red pixels" in decision.reason
    assert "not applied" in decision.reason


def test_haze_the_mask_kept_sends_the_scene_to_review(scene, tmp_path):
    # thin cloud over the same scene, missed by its SCL: blue brightens far more than red
    item, bbox, red = scene
    hazy = json.loads(json.dumps(item))
    path = Path(hazy["assets"]["blue"]["href"])
    with rasterio.open(path) as src:
        profile = src.profile
    veil = np.round((red + 0.1) * 1e4).astype(np.uint16)
    brighter = path.with_name("blue-hazy.tif")
    write(brighter, veil, profile["transform"], str(profile["crs"]), 0)
    hazy["assets"]["blue"]["href"] = str(brighter)
    _, got, decision = judged(hazy, bbox, tmp_path)
    spectra = got.spectra[hazy["id"]]
    assert spectra.haze_share > 0.99  # HOT = 0.5 red + 0.02 > 0 on every pixel
    assert decision.decision == "review"
    assert "look hazy (HOT > 0; limit 25 %)" in decision.reason
    # the clear scene's blue is below the haze line: its share is 0
    _, plain, _ = judged(item, bbox, tmp_path / "plain")
    assert plain.spectra[item["id"]].haze_share == 0.0


def test_spectra_vectors_add_up_per_window():
    # the per-window stats sum to the stats of the whole: histograms, counts and shares
    from clearcube.checks import block_stats

    rng = np.random.default_rng(1)
    red = rng.uniform(-0.05, 0.3, (1, 40, 40)).astype(np.float32)
    nir = rng.uniform(0.1, 0.5, (1, 40, 40)).astype(np.float32)
    clear = rng.random((1, 40, 40)) < 0.7
    valid = np.ones_like(clear)
    whole = block_stats(clear, valid, red, nir, names=("red", "nir"), stride=1)[0, 0, 0]
    parts = sum(
        block_stats(
            clear[:, a : a + 20, b : b + 20],
            valid[:, a : a + 20, b : b + 20],
            red[:, a : a + 20, b : b + 20],
            nir[:, a : a + 20, b : b + 20],
            names=("red", "nir"),
            stride=1,
        )[0, 0, 0]
        for a in (0, 20)
        for b in (0, 20)
    )
    np.testing.assert_array_equal(whole, parts)
    spectra = spectra_of(whole, ("red", "nir"))
    assert spectra.clear_px == int(clear.sum())
    ndvi = ((nir - red) / (nir + red))[clear]
    assert spectra.median_ndvi() == pytest.approx(float(np.median(ndvi)), abs=0.05)
    assert spectra.median_evi() is None  # no blue: no EVI
    blue = (red * 0.7).astype(np.float32)
    names = ("blue", "red", "nir")
    full = block_stats(clear, valid, blue, red, nir, names=names, stride=1)[0, 0, 0]
    with_blue = spectra_of(full, names)
    evi = (2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1))[clear]
    assert with_blue.median_evi() == pytest.approx(float(np.median(evi)), abs=0.05)
    assert sum(with_blue.evi_kept) == int(clear.sum())
    masked_evi = (2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1))[valid & ~clear]
    assert with_blue.median_evi(kept=False) == pytest.approx(float(np.median(masked_evi)), abs=0.05)
    hot = (blue - 0.5 * red - 0.08)[clear]
    assert with_blue.haze_share == pytest.approx(float(np.mean(hot > 0)))
    assert spectra.negative["red"] == int(((red < -0.01) & clear).sum())
    assert sum(spectra.ndvi_kept) == int(clear.sum())
    # the run counts a regular sample: every second pixel of every second row
    sampled = spectra_of(
        block_stats(clear, valid, red, nir, names=("red", "nir"))[0, 0, 0], ("red", "nir")
    )
    assert sampled.clear_px == int(clear[:, ::2, ::2].sum())
