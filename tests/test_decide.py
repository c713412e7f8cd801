"""The decide stage: the provider cross-check compares like with like, outliers are judged per
series with a floor on the spread, and every scene gets one decision with its reason."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

import clearcube as cc
from clearcube.decide import decide
from clearcube.plan import plan
from clearcube.resources import demo_catalog_path
from clearcube.screen import Screened, ScreenedSlice, screen

REPO = Path(__file__).resolve().parents[1]
DEMO = demo_catalog_path().parent
CLOUDY = "S2A_21MZS_20240210_0_L2A"  # eo:cloud_cover 87.9 % over the whole tile


@pytest.fixture(scope="module")
def items():
    return list(cc.search(source=str(DEMO / "catalog.json")))


def clear_km_box(item_id: str) -> tuple[float, float, float, float]:
    """A 1 km box (lon/lat) where the scene's SCL is almost clear: the small-AOI case."""
    path = next(DEMO.rglob(f"{item_id}/SCL.tif"))
    with rasterio.open(path) as src:
        scl = src.read(1)
        t, crs = src.transform, src.crs
    cloudy = np.isin(scl, (3, 8, 9, 10)).astype(float)
    n = 50  # 50 px of 20 m
    best = min(
        (cloudy[r : r + n, c : c + n].mean(), r, c)
        for r in range(0, 200, 10)
        for c in range(0, 200, 10)
    )
    _, r, c = best
    left, top = t * (c, r)
    right, bottom = t * (c + n, r + n)
    return transform_bounds(crs, "EPSG:4326", left, bottom, right, top)


def test_a_small_clear_aoi_of_a_cloudy_tile_is_not_sent_to_review(items):
    bbox = clear_km_box(CLOUDY)
    planned = plan(items, bbox=bbox, chunks_yx=(128, 128))
    screened = screen(planned, cc.MaskConfig())
    decisions = decide(planned, screened, cc.MaskConfig())
    k = [s.id for s in planned.slices].index(CLOUDY)
    sc, sl = screened.slices[k], planned.slices[k]
    # the area is clear, the tile is not: the old rule compared these two and sent it to review
    assert sc.cloud_fraction < 0.1
    assert sl.cloud_cover > 80
    assert abs(100 * sc.cloud_fraction - sl.cloud_cover) > cc.MaskConfig().review_margin_pp
    # like with like: the provider's definition over the whole scene agrees with its figure
    assert sc.provider_definition == pytest.approx(sl.cloud_cover, abs=0.5)
    assert decisions.slices[k].decision == "used", decisions.slices[k].reason


def test_a_wrong_provider_figure_is_sent_to_review(items):
    bbox = (-54.035, -3.025, -53.965, -2.985)
    planned = plan(items, bbox=bbox, chunks_yx=(256, 256))
    screened = screen(planned, cc.MaskConfig())
    k = next(i for i, s in enumerate(screened.slices) if s.cloud_fraction < 0.1)
    wrong = list(screened.slices)
    wrong[k] = replace(wrong[k], provider_definition=planned.slices[k].cloud_cover + 40.0)
    got = decide(planned, Screened(tuple(wrong)), cc.MaskConfig()).slices[k]
    assert got.decision == "review"
    assert "provider's definition over the whole scene" in got.reason


def synthetic(items, fractions):
    """The demo's first Sentinel-2 tile repeated as a series with the given cloud fractions."""
    bbox = (-54.035, -3.025, -53.965, -2.985)
    base = plan(items, bbox=bbox, chunks_yx=(256, 256))
    first = next(s for s in base.slices if s.first.tile == "21MZS")
    slices, screens = [], []
    for k, f in enumerate(fractions):
        when = first.first.datetime + dt.timedelta(days=16 * k)  # one date per revisit
        member = replace(first.first, id=f"scene-{k}", datetime=when)
        slices.append(replace(first, id=f"scene-{k}", members=(member,)))
        valid = 10000
        counts = {"aoi_px": valid, "valid_px": valid, "masked_px": round(f * valid)}
        screens.append(ScreenedSlice(f"scene-{k}", counts, provider_definition=None))
    return replace(base, slices=tuple(slices), fallbacks=()), Screened(tuple(screens))


def test_a_clear_series_has_no_outliers_and_a_planted_cloudy_scene_is_one(items):
    rng = np.random.default_rng(5)
    clear = list(np.round(rng.uniform(0.0, 0.03, 12), 4))
    planned, screened = synthetic(items, clear)
    assert {d.decision for d in decide(planned, screened, cc.MaskConfig()).slices} == {"used"}
    # without the floor the spread of this series is about 0.01: every 0.03 would be an outlier
    spread = 1.4826 * np.median(np.abs(np.asarray(clear) - np.median(clear)))
    assert spread < 0.02
    planted = [*clear[:11], 0.25]
    planned, screened = synthetic(items, planted)
    decisions = decide(planned, screened, cc.MaskConfig())
    assert [d.decision for d in decisions.slices] == ["used"] * 11 + ["review"]
    assert "outlier of its series" in decisions.slices[-1].reason


def test_outliers_are_judged_within_a_series_not_across_tiles(items):
    # two series: one clear, one steadily cloudy below the threshold; neither has outliers
    planned_a, screened_a = synthetic(items, [0.01, 0.02, 0.0, 0.015, 0.01])
    planned_b, screened_b = synthetic(items, [0.22, 0.25, 0.24, 0.26, 0.23])
    other = [replace(s, members=(replace(s.first, tile="22MBA"),)) for s in planned_b.slices]
    other = [replace(s, id=f"b-{k}") for k, s in enumerate(other)]
    screens_b = [replace(s, id=f"b-{k}") for k, s in enumerate(screened_b.slices)]
    planned = replace(planned_a, slices=planned_a.slices + tuple(other))
    screened = Screened(screened_a.slices + tuple(screens_b))
    assert {d.decision for d in decide(planned, screened, cc.MaskConfig()).slices} == {"used"}


def steady(ndvi: float, px: int = 5000):
    """The spectra of a scene whose kept pixels all have one NDVI (no blue, no other check)."""
    from clearcube.checks import NDVI_EDGES, Spectra

    hist = np.zeros(len(NDVI_EDGES) - 1, np.int64)
    hist[int(np.searchsorted(NDVI_EDGES, ndvi, side="right")) - 1] = px
    return Spectra(clear_px=px, masked_px=0, ndvi_kept=tuple(int(v) for v in hist))


def test_a_one_date_ndvi_jump_goes_to_review_and_a_lasting_change_does_not(items):
    planned, screened = synthetic(items, [0.02] * 8)
    ids = [s.id for s in planned.slices]
    # a forest series at NDVI 0.8 with one date pulled down to 0.42 (haze the mask kept)
    ndvi = [0.81, 0.83, 0.8, 0.42, 0.82, 0.79, 0.81, 0.8]
    got = decide(
        planned,
        screened,
        cc.MaskConfig(),
        spectra={i: steady(v) for i, v in zip(ids, ndvi, strict=True)},
    )
    assert [d.decision for d in got.slices] == ["used"] * 3 + ["review"] + ["used"] * 4
    reason = got.slices[3].reason
    assert "median NDVI of kept pixels 0.43 jumps" in reason
    assert "tile 21MZS" in reason
    assert "limit 0.25" in reason
    # a harvest: the level drops and stays; the first and last dates are never judged alone
    lasting = [0.82, 0.8, 0.81, 0.4, 0.41, 0.4, 0.39, 0.1]
    got = decide(
        planned,
        screened,
        cc.MaskConfig(),
        spectra={i: steady(v) for i, v in zip(ids, lasting, strict=True)},
    )
    assert {d.decision for d in got.slices} == {"used"}
    # neighbours are neighbours in time, not in cube order
    order = [3, 0, 6, 1, 7, 2, 5, 4]
    shuffled = replace(planned, slices=tuple(planned.slices[k] for k in order))
    reordered = Screened(tuple(screened.slices[k] for k in order))
    got = decide(
        shuffled,
        reordered,
        cc.MaskConfig(),
        spectra={i: steady(v) for i, v in zip(ids, ndvi, strict=True)},
    )
    assert [d.id for d in got.slices if d.decision == "review"] == ["scene-3"]
    # the limit is a MaskConfig field: a stricter one catches the smaller step as well
    strict = cc.MaskConfig(max_ndvi_jump=0.05)
    wobbly = [0.8, 0.8, 0.6, 0.8, 0.8, 0.8, 0.8, 0.8]
    got = decide(
        planned, screened, strict, spectra={i: steady(v) for i, v in zip(ids, wobbly, strict=True)}
    )
    assert [d.decision for d in got.slices].count("review") == 1
    assert got.slices[2].decision == "review"


def test_jumps_are_judged_within_a_series_only(items):
    # alternating tiles, one wet-forest (0.8) and one pasture (0.3): no jump within either
    planned, screened = synthetic(items, [0.02] * 8)
    slices = [
        replace(s, members=(replace(s.first, tile="22MBA"),)) if k % 2 else s
        for k, s in enumerate(planned.slices)
    ]
    planned = replace(planned, slices=tuple(slices))
    ndvi = [0.8 if k % 2 == 0 else 0.3 for k in range(8)]
    got = decide(
        planned,
        screened,
        cc.MaskConfig(),
        spectra={s.id: steady(v) for s, v in zip(slices, ndvi, strict=True)},
    )
    assert {d.decision for d in got.slices} == {"used"}
