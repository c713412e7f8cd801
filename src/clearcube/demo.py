"""The deterministic demo catalog: ``python -m clearcube.demo [OUT_DIR] [--scale N]``.

Without OUT_DIR it rewrites the packaged copy (``src/clearcube/catalogs/demo``), which the
source name ``"demo"`` and the default run config read.

A static STAC catalog of small but realistic COGs over a deforestation frontier in Para,
Brazil, straddling the UTM 21S/22S boundary at 54 W: two overlapping Sentinel-2 L2A tiles
(EPSG:32721 and EPSG:32722; SCL at 20 m, red and nir at 10 m) on five dates from 2021 to 2024
(processing baselines 03.01 to 05.10, so the 2022 reflectance offset is exercised) and three
Landsat 8/9 Collection 2 L2 scenes (QA_PIXEL, red, nir08 at 30 m) in EPSG:32622 with negative
northings, as USGS writes southern scenes. Items follow Earth Search v1 (STAC 1.0.0 with
raster:bands, projection v1.1.0's ``proj:epsg``, ``earthsearch:boa_offset_applied``) except
the 2021 Sentinel-2 date, which follows Planetary Computer (B04/B08/SCL, no raster fields).
Each scene has a no-data edge (the swath edge of one tile, the tilted Landsat footprint).
``truth/`` holds where the clouds really are.

The Sentinel-2 pixels are in the state the items declare, as on Earth Search: the 2022 date
(baseline 04.00, ``earthsearch:boa_offset_applied: false``) keeps ESA's DNs (BOA_ADD_OFFSET
+1000 in the DNs, ``raster:bands`` offset -0.1 applies); the 2023 and 2024 dates say ``true``
and their DNs have the offset already removed, while ``raster:bands`` still says -0.1 (as on
Earth Search), so the plan follows the flag and records the conflict. Every scene has the same
physical reflectance either way.

Running it twice with the same arguments writes byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from scipy import ndimage

from . import _demo_scene as scene

__all__ = ["DEMO_BBOX", "generate_demo"]

#: The demo's area of interest (W, S, E, N), covering both tiles' overlap and the Landsat scene.
DEMO_BBOX = (-54.035, -3.025, -53.965, -2.985)

_S2_TILES = {  # name: (epsg, west, north) of a tile 5.12 km wide at scale 1
    "21MZS": (32721, 829000.0, 9670000.0),
    "22MBA": (32722, 165800.0, 9670000.0),
}
# (date, time UTC, platform, baseline, style, sun azimuth, sun elevation, clouds, cirrus,
#  cloud size factor, earthsearch:boa_offset_applied): one wet-season date is overcast, one
#  dry-season date nearly clear
_S2_DATES = [
    ("2021-08-14", "13:54:11", "sentinel-2a", "03.01", "pc", 52.0, 60.0, 2, 1, 1.0, None),
    ("2022-07-20", "13:54:19", "sentinel-2b", "04.00", "es", 47.0, 57.0, 9, 2, 1.0, False),
    ("2023-08-04", "13:54:21", "sentinel-2b", "05.09", "es", 50.0, 59.0, 3, 1, 1.0, True),
    ("2024-02-10", "13:54:09", "sentinel-2a", "05.10", "es", 98.0, 66.0, 16, 3, 2.2, True),
    ("2024-07-29", "13:54:15", "sentinel-2a", "05.10", "es", 49.0, 58.0, 1, 0, 1.0, True),
]
# (date, time UTC, platform, path/row, sun azimuth, sun elevation, clouds, cirrus)
_LANDSAT_DATES = [
    ("2021-08-19", "13:37:02", "landsat-8", ("226", "062"), 55.0, 56.0, 3, 1),
    ("2022-09-23", "13:37:40", "landsat-9", ("226", "062"), 79.0, 63.0, 6, 2),
    ("2024-08-03", "13:37:11", "landsat-8", ("226", "062"), 52.0, 56.0, 2, 0),
]
_LANDSAT_CENTRE = (166476.9, -332600.0)  # EPSG:32622 near 54.0 W, 3.005 S
_S2_PX = 512  # 10 m pixels per tile side at scale 1
_LANDSAT_PX = 256  # 30 m pixels per scene side at scale 1
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


@dataclass(frozen=True)
class _Raster:
    name: str
    data: npt.NDArray[Any]
    transform: Affine
    crs: str
    nodata: int


def _weather(
    seed: int, n_clouds: int, n_cirrus: int, azimuth: float, elevation: float, spread: float
) -> scene.Weather:
    rng = np.random.default_rng(seed)
    west, south, east, north = DEMO_BBOX
    pad = 0.01 * spread

    def blobs(n: int, r_lo: float, r_hi: float) -> tuple[scene.Blob, ...]:
        return tuple(
            scene.Blob(
                float(rng.uniform(west - pad, east + pad)),
                float(rng.uniform(south - pad, north + pad)),
                float(rng.uniform(r_lo, r_hi)) * spread,
            )
            for _ in range(n)
        )

    return scene.Weather(blobs(n_clouds, 250, 900), blobs(n_cirrus, 900, 1800), azimuth, elevation)


def _write_cog(path: Path, raster: _Raster, *, predictor: int) -> None:
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = raster.data.shape
    block = 256 if min(h, w) >= 512 else 128
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=w,
        height=h,
        count=1,
        dtype=raster.data.dtype.name,
        crs=raster.crs,
        transform=raster.transform,
        nodata=raster.nodata,
        compress="DEFLATE",
        predictor=predictor,
        blocksize=block,
        overview_resampling="nearest",
        BIGTIFF="NO",
    ) as dst:
        dst.write(raster.data, 1)


def _footprint(crs: str, valid_corners: Sequence[tuple[float, float]]) -> dict[str, Any]:
    from pyproj import Transformer

    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    ring = [list(map(lambda v: round(v, 7), to_ll.transform(x, y))) for x, y in valid_corners]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def _bbox(geometry: dict[str, Any]) -> list[float]:
    pts = geometry["coordinates"][0]
    lons = [p[0] for p in pts]
    lats = [p[1] for p in pts]
    return [min(lons), min(lats), max(lons), max(lats)]


def _percent(part: npt.NDArray[np.bool_], whole: npt.NDArray[np.bool_]) -> float:
    n = int(np.count_nonzero(whole))
    return round(100.0 * int(np.count_nonzero(part & whole)) / n, 6) if n else 0.0


def _s2_items(out: Path, scale: int, qa_only: bool) -> list[dict[str, Any]]:
    items = []
    px = _S2_PX * scale
    for d_index, (
        day,
        clock,
        platform,
        baseline,
        style,
        az,
        el,
        nc,
        ncir,
        size,
        applied,
    ) in enumerate(_S2_DATES):
        weather = _weather(1000 + d_index, nc, ncir, az, el, spread=size)
        year_index = int(day[:4]) - 2021
        new_baseline = tuple(int(v) for v in baseline.split(".")) >= (4, 0)
        for t_index, (tile, (epsg, west, north)) in enumerate(_S2_TILES.items()):
            crs = f"EPSG:{epsg}"
            t10 = Affine(10.0, 0, west, 0, -10.0, north)
            t20 = Affine(20.0, 0, west, 0, -20.0, north)

            # swath edge: the east tile loses a diagonal strip on the 2023 and 2024-02 dates
            def valid_mask(
                shape: tuple[int, int], t_index: int = t_index, d_index: int = d_index
            ) -> npt.NDArray[np.bool_]:
                rows, cols = np.indices(shape)
                if t_index == 1 and d_index in (2, 3):
                    return cols + 0.35 * rows < 0.8 * shape[1]
                return np.ones(shape, dtype=bool)

            lon20, lat20 = scene.lonlat_grid(crs, t20, (px // 2, px // 2))
            truth20 = scene.truth_on_grid(
                lon20, lat20, weather, year_index, valid_mask((px // 2, px // 2))
            )
            scl = scene.scl_codes(truth20, lon20, lat20)
            item_id = (
                f"S2{platform[-1].upper()}_{tile}_{day.replace('-', '')}_0_L2A"
                if style == "es"
                else f"S2{platform[-1].upper()}_MSIL2A_{day.replace('-', '')}T135409_R067_"
                f"T{tile}_{day.replace('-', '')}T190000"
            )
            folder = out / "sentinel-2-l2a" / item_id
            rasters = {"scl": _Raster("SCL", scl, t20, crs, 0)}
            if not qa_only:
                lon10, lat10 = scene.lonlat_grid(crs, t10, (px, px))
                truth10 = scene.truth_on_grid(
                    lon10, lat10, weather, year_index, valid_mask((px, px))
                )
                red, nir = scene.reflectance(truth10)
                # ESA's DNs carry BOA_ADD_OFFSET from baseline 04.00, unless the provider says
                # it removed it again
                add = 1000 if new_baseline and not applied else 0
                for key, band, refl in (("red", "B04", red), ("nir", "B08", nir)):
                    dn = np.clip(np.round(refl * 10000) + add, 1, 32767).astype(np.uint16)
                    dn[~truth10.valid] = 0
                    rasters[key] = _Raster(band, dn, t10, crs, 0)
            for raster in rasters.values():
                _write_cog(
                    folder / f"{raster.name}.tif",
                    raster,
                    predictor=1 if raster.name == "SCL" else 2,
                )
            _write_truth(out, item_id, truth20, t20, crs)

            valid = scl != 0
            cloud_pct = _percent(np.isin(scl, [8, 9, 10]), valid)
            h20 = px // 2
            geometry = _footprint(crs, _valid_corners(valid, t20))
            props: dict[str, Any] = {
                "datetime": f"{day}T{clock}.000000Z",
                "platform": platform,
                "constellation": "sentinel-2",
                "instruments": ["msi"],
                "eo:cloud_cover": cloud_pct,
                "proj:epsg": epsg,
                "view:sun_azimuth": az,
                "view:sun_elevation": el,
                "s2:processing_baseline": baseline,
                "s2:mgrs_tile": tile,
                "s2:product_uri": f"S2{platform[-1].upper()}_MSIL2A_{day.replace('-', '')}"
                f"T135409_N{baseline.replace('.', '')}_R067_T{tile}.SAFE",
                "s2:nodata_pixel_percentage": round(100 - 100 * valid.mean(), 6),
            }
            for code, name in (
                (4, "vegetation"),
                (5, "not_vegetated"),
                (6, "water"),
                (8, "medium_proba_clouds"),
                (9, "high_proba_clouds"),
                (10, "thin_cirrus"),
                (3, "cloud_shadow"),
            ):
                props[f"s2:{name}_percentage"] = _percent(scl == code, valid)
            if style == "es":
                props["earthsearch:boa_offset_applied"] = bool(applied)
                props["mgrs:utm_zone"] = int(tile[:2])
            assets = _s2_assets(style, rasters, item_id, h20, px, new_baseline)
            items.append(_item(item_id, "sentinel-2-l2a", geometry, props, assets))
    return items


def _s2_assets(
    style: str, rasters: dict[str, _Raster], item_id: str, h20: int, px: int, new_baseline: bool
) -> dict[str, Any]:
    keys = (
        {"scl": "scl", "red": "red", "nir": "nir"}
        if style == "es"
        else {"scl": "SCL", "red": "B04", "nir": "B08"}
    )
    assets: dict[str, Any] = {}
    for role, raster in rasters.items():
        t = raster.transform
        shape = [h20, h20] if role == "scl" else [px, px]
        asset: dict[str, Any] = {
            "href": f"./{raster.name}.tif",
            "type": COG_MEDIA_TYPE,
            "roles": ["data"],
            "proj:shape": shape,
            "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
            "gsd": t.a,
        }
        if role != "scl":
            common = "red" if role == "red" else "nir"
            asset["eo:bands"] = [
                {"name": raster.name if style == "pc" else common, "common_name": common}
            ]
            asset["roles"] = ["data", "reflectance"]
        if style == "es":
            rb: dict[str, Any] = {
                "nodata": 0,
                "data_type": str(raster.data.dtype),
                "spatial_resolution": t.a,
            }
            if role != "scl":
                rb.update(scale=0.0001, offset=-0.1 if new_baseline else 0.0)
            asset["raster:bands"] = [rb]
        assets[keys[role]] = asset
    return assets


def _valid_corners(valid: npt.NDArray[np.bool_], t: Affine) -> list[tuple[float, float]]:
    """Corners of the valid area's convex outline (good enough for a STAC footprint)."""
    # the outline only needs each row's first and last valid pixel (pixel corners)
    rows = np.nonzero(valid.any(axis=1))[0]
    first = valid[rows].argmax(axis=1)
    last = valid.shape[1] - 1 - valid[rows, ::-1].argmax(axis=1)
    corners = [
        np.column_stack([first, rows]),
        np.column_stack([first, rows + 1]),
        np.column_stack([last + 1, rows]),
        np.column_stack([last + 1, rows + 1]),
    ]
    hull_idx = _convex_hull(np.concatenate(corners).astype(float))
    return [(t.c + t.a * c + t.b * r, t.f + t.d * c + t.e * r) for c, r in hull_idx]


def _convex_hull(points: npt.NDArray[np.float64]) -> list[tuple[float, float]]:
    pts = sorted(set(map(tuple, points.tolist())))
    if len(pts) <= 2:
        return [(float(p[0]), float(p[1])) for p in pts]

    def cross(o: Any, a: Any, b: Any) -> float:
        return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))

    lower: list[Any] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[Any] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return [(float(x), float(y)) for x, y in lower[:-1] + upper[:-1]]


def _landsat_items(out: Path, scale: int, qa_only: bool) -> list[dict[str, Any]]:
    items = []
    px = _LANDSAT_PX * scale
    cx, cy = _LANDSAT_CENTRE
    west = math.floor((cx - px * 15) / 30) * 30 + 15
    north = math.floor((cy + px * 15) / 30) * 30 + 15
    t30 = Affine(30.0, 0, west, 0, -30.0, north)
    crs = "EPSG:32622"
    rows, cols = np.indices((px, px))
    # the tilted WRS-2 footprint: a rectangle rotated by 12 degrees, fill outside
    theta = math.radians(12.0)
    u = (cols - px / 2) * math.cos(theta) + (rows - px / 2) * math.sin(theta)
    v = -(cols - px / 2) * math.sin(theta) + (rows - px / 2) * math.cos(theta)
    footprint = (np.abs(u) < 0.47 * px) & (np.abs(v) < 0.47 * px)
    lon, lat = scene.lonlat_grid(crs, t30, (px, px))
    for d_index, (day, clock, platform, (path, row), az, el, nc, ncir) in enumerate(_LANDSAT_DATES):
        weather = _weather(2000 + d_index, nc, ncir, az, el, spread=1.0)
        truth = scene.truth_on_grid(lon, lat, weather, int(day[:4]) - 2021, footprint)
        near = ndimage.binary_dilation(truth.cloud | truth.rim, iterations=3)
        qa = scene.qa_pixel_codes(truth, near & footprint)
        prefix = "LC08" if platform == "landsat-8" else "LC09"
        item_id = f"{prefix}_L2SP_{path}{row}_{day.replace('-', '')}_02_T1"
        folder = out / "landsat-c2-l2" / item_id
        rasters = {"qa_pixel": _Raster(f"{item_id}_QA_PIXEL", qa, t30, crs, 1)}
        if not qa_only:
            red, nir = scene.reflectance(truth)
            for key, band, refl in (("red", "SR_B4", red), ("nir08", "SR_B5", nir)):
                dn = np.clip(np.round((refl + 0.2) / 2.75e-5), 1, 65535).astype(np.uint16)
                dn[~footprint] = 0
                rasters[key] = _Raster(f"{item_id}_{band}", dn, t30, crs, 0)
        for key, raster in rasters.items():
            _write_cog(
                folder / f"{raster.name}.TIF", raster, predictor=1 if key == "qa_pixel" else 2
            )
        _write_truth(out, item_id, truth, t30, crs)
        valid = qa != 1
        cloud_pct = _percent((qa & (1 << 3)) != 0, valid)
        geometry = _footprint(crs, _valid_corners(footprint, t30))
        props = {
            "datetime": f"{day}T{clock}.000000Z",
            "platform": platform,
            "instruments": ["oli", "tirs"],
            "eo:cloud_cover": cloud_pct,
            "landsat:cloud_cover_land": cloud_pct,
            "landsat:wrs_type": "2",
            "landsat:wrs_path": path,
            "landsat:wrs_row": row,
            "landsat:collection_category": "T1",
            "landsat:collection_number": "02",
            "proj:epsg": 32622,
            "proj:shape": [px, px],
            "proj:transform": [t30.a, t30.b, t30.c, t30.d, t30.e, t30.f],
            "view:sun_azimuth": az,
            "view:sun_elevation": el,
        }
        assets: dict[str, Any] = {}
        for key, raster in rasters.items():
            asset: dict[str, Any] = {
                "href": f"./{raster.name}.TIF",
                "type": COG_MEDIA_TYPE,
                "roles": ["data"]
                if key != "qa_pixel"
                else ["cloud", "cloud-shadow", "snow-ice", "water-mask"],
            }
            if key == "qa_pixel":
                asset["raster:bands"] = [
                    {
                        "nodata": 1,
                        "data_type": "uint16",
                        "spatial_resolution": 30,
                        "unit": "bit index",
                    }
                ]
            else:
                asset["eo:bands"] = [
                    {
                        "name": raster.name.rsplit("_", 1)[-1],
                        "common_name": "red" if key == "red" else "nir08",
                    }
                ]
                asset["raster:bands"] = [
                    {
                        "nodata": 0,
                        "data_type": "uint16",
                        "spatial_resolution": 30,
                        "scale": 2.75e-05,
                        "offset": -0.2,
                    }
                ]
                asset["roles"] = ["data", "reflectance"]
            assets[key] = asset
        items.append(_item(item_id, "landsat-c2-l2", geometry, props, assets))
    return items


def _write_truth(out: Path, item_id: str, truth: scene.Truth, t: Affine, crs: str) -> None:
    stack = np.stack([truth.cloud, truth.cirrus, truth.shadow, truth.valid, truth.rim]).astype(
        np.uint8
    )
    import rasterio

    path = out / "truth" / f"{item_id}.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=stack.shape[2],
        height=stack.shape[1],
        count=5,
        dtype="uint8",
        crs=crs,
        transform=t,
        compress="DEFLATE",
        tiled=True,
    ) as dst:
        dst.write(stack)
        for i, name in enumerate(("cloud", "cirrus", "shadow", "valid", "rim"), start=1):
            dst.set_band_description(i, name)


def _item(
    item_id: str,
    collection: str,
    geometry: dict[str, Any],
    props: dict[str, Any],
    assets: dict[str, Any],
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "id": item_id,
        "collection": collection,
        "geometry": geometry,
        "bbox": _bbox(geometry),
        "properties": props,
        "assets": assets,
        "links": [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
        ],
    }


def _collection(cid: str, title: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    boxes = [i["bbox"] for i in items]
    times = sorted(i["properties"]["datetime"] for i in items)
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": cid,
        "title": title,
        "description": f"clearcube demo: {title}",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        min(b[0] for b in boxes),
                        min(b[1] for b in boxes),
                        max(b[2] for b in boxes),
                        max(b[3] for b in boxes),
                    ]
                ]
            },
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
            *[
                {
                    "rel": "item",
                    "href": f"./{i['id']}/{i['id']}.json",
                    "type": "application/geo+json",
                }
                for i in items
            ],
        ],
    }


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")


def generate_demo(
    out_dir: str | Path | None = None,
    *,
    scale: int = 1,
    qa_only: bool = False,
    href_base: str | None = None,
) -> Path:
    """Write the demo catalog into ``out_dir`` (replacing it) and return its catalog.json.

    Parameters
    ----------
    out_dir
        Default: the packaged demo catalog (``src/clearcube/catalogs/demo`` in a clone), the
        one the source name ``"demo"`` and the default run config read.
    scale
        Multiplies the tile size: 1 gives 512 px Sentinel-2 bands (5 km tiles, about 6 MB in
        all); 21 or more gives full-size tiles (10980 px bands, 5490 px SCL) for benchmarks.
    qa_only
        Write only the QA assets (fast; for benchmarks of the mask path).
    href_base
        Write absolute asset hrefs under this URL (e.g. ``http://127.0.0.1:8080/demo/``) instead
        of relative ones, for serving the folder over HTTP.
    """
    if out_dir is None:
        from .resources import demo_catalog_path

        out_dir = demo_catalog_path().parent
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    s2 = _s2_items(out, scale, qa_only)
    ls = _landsat_items(out, scale, qa_only)
    summary: dict[str, Any] = {}
    for cid, title, items in (
        ("sentinel-2-l2a", "Sentinel-2 L2A (demo)", s2),
        ("landsat-c2-l2", "Landsat Collection 2 Level-2 (demo)", ls),
    ):
        _dump(out / cid / "collection.json", _collection(cid, title, items))
        for item in items:
            if href_base:
                base = href_base.rstrip("/") + f"/{cid}/{item['id']}/"
                for asset in item["assets"].values():
                    asset["href"] = base + asset["href"][2:]
            _dump(out / cid / item["id"] / f"{item['id']}.json", item)
            summary[item["id"]] = _truth_summary(out, item)
    _dump(out / "truth" / "summary.json", summary)
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "clearcube-demo",
        "description": (
            "clearcube demo catalog: synthetic Sentinel-2 L2A and Landsat C2 L2 scenes over a "
            "deforestation frontier in Para, Brazil (UTM 21S/22S), with the truth in truth/."
        ),
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {
                "rel": "child",
                "href": "./sentinel-2-l2a/collection.json",
                "type": "application/json",
            },
            {"rel": "child", "href": "./landsat-c2-l2/collection.json", "type": "application/json"},
        ],
    }
    _dump(out / "catalog.json", catalog)
    return out / "catalog.json"


def _truth_summary(out: Path, item: dict[str, Any]) -> dict[str, Any]:
    import rasterio

    with rasterio.open(out / "truth" / f"{item['id']}.tif") as src:
        cloud, cirrus, shadow, valid, rim = (src.read(i).astype(bool) for i in range(1, 6))
    return {
        "cloud_fraction": _percent(cloud | rim | cirrus, valid) / 100,
        "opaque_cloud_fraction": _percent(cloud, valid) / 100,
        "shadow_fraction": _percent(shadow, valid) / 100,
        "valid_fraction": round(float(valid.mean()), 6),
        "sun_azimuth": item["properties"]["view:sun_azimuth"],
        "sun_elevation": item["properties"]["view:sun_elevation"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m clearcube.demo", description=__doc__)
    ap.add_argument(
        "out_dir", nargs="?", default=None, help="default: the packaged demo catalog's folder"
    )
    ap.add_argument("--scale", type=int, default=1, help="tile size multiplier (21: full)")
    ap.add_argument("--qa-only", action="store_true", help="write only the QA assets")
    ap.add_argument("--href-base", default=None, help="absolute URL prefix for asset hrefs")
    args = ap.parse_args(argv)
    path = generate_demo(
        args.out_dir, scale=args.scale, qa_only=args.qa_only, href_base=args.href_base
    )
    size = sum(p.stat().st_size for p in path.parent.rglob("*") if p.is_file())
    print(f"wrote {path} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
