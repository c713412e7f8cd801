"""The generated Sentinel-2 L2A series behind benchmarks/e2e.py.

Two MGRS tiles of UTM zone 21S (21MXS and 21MYS, 109.8 km wide, 99.96 km apart, so they
overlap by 9.84 km as real neighbouring tiles do) on ``dates`` passes over two dry seasons
(2023 and 2024), each pass a scene per tile: SCL at 20 m (5490 x 5490 uint8), B04 and B08 at
10 m (10980 x 10980 uint16), COGs laid out like Earth Search's (DEFLATE, 1024 px blocks,
overviews), STAC items in Earth Search v1 style (``raster:bands`` with scale 0.0001 and offset
-0.1, ``proj:`` fields, ``s2:`` class percentages and ``eo:cloud_cover`` counted on the SCL the
way ESA counts it: classes 8 + 9 + 10 over valid pixels).

The world is drawn once on one 20 m grid spanning both tiles, so the overlap holds the same
forest, river, clouds and shadows in both. Every other pass is overcast (60-90 % cloud), the
others partly clear (4-12 %, shadows besides); a quarter of the passes lose a diagonal swath
edge of tile 21MXS inside the area of interest. SCL carries the salt-and-pepper of real
classifications (about 5 % of pixels flip to a neighbouring class), which puts its DEFLATE
ratio near 10:1; reflectance carries sensor noise, so it compresses far less (about 1.5:1).
Baselines are 05.09 and 05.10, so every DN holds the +1000 offset.

``ensure(spec, folder)`` writes the catalog once and reuses it when ``manifest.json`` says it
was written by the same generator version with the same spec and every file is there at its
recorded size.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

GENERATOR_VERSION = 1
EPSG = 32721
CRS = f"EPSG:{EPSG}"
NORTH = 9700000.0
WEST = 600000.0
TILE_NAMES = ("21MXS", "21MYS")
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"

# surface reflectance (red, nir) of each SCL class; the classes a cloud mask removes are bright
# (cloud), dark (shadow) or shifted (cirrus) as in real scenes
_REFLECTANCE = {
    1: (1.2, 1.2),
    2: (0.015, 0.08),
    3: (0.018, 0.11),
    4: (0.030, 0.30),
    5: (0.085, 0.22),
    6: (0.040, 0.02),
    7: (0.060, 0.25),
    8: (0.250, 0.33),
    9: (0.500, 0.55),
    10: (0.090, 0.32),
}
_NOISE_DN = (12.0, 20.0)  # sensor noise (red, nir) in DN


@dataclass(frozen=True)
class Spec:
    """What is generated; a different spec means a different catalog."""

    dates: int = 8
    tile_px: int = 10980  # 10 m pixels per tile side (SCL has half as many)
    seed: int = 0

    @property
    def scl_px(self) -> int:
        return self.tile_px // 2

    @property
    def spacing_m(self) -> float:
        """Distance between the two tiles' west edges (99.96 km at full size)."""
        return round(self.tile_px * 10 * 99960 / 109800 / 60) * 60.0

    def tile_west(self, index: int) -> float:
        return WEST + index * self.spacing_m

    def overlap_centre(self) -> tuple[float, float]:
        """(x, y) in EPSG:32721 of the middle of the tiles' overlap."""
        east_of_first = WEST + self.tile_px * 10
        return ((self.tile_west(1) + east_of_first) / 2, NORTH - self.tile_px * 10 / 2)


@dataclass(frozen=True)
class Pass:
    day: dt.date
    platform: str
    baseline: str
    cover: float  # target cloud share (core + rim + cirrus) of the pass
    swath_edge: bool
    sun_azimuth: float
    sun_elevation: float
    cloud_height_m: float


def passes(spec: Spec) -> list[Pass]:
    """The passes: half per year, alternately overcast and partly clear."""
    rng = np.random.default_rng(spec.seed + 1)
    out = []
    per_year = max(1, math.ceil(spec.dates / 2))
    for k in range(spec.dates):
        year = 2023 + k // per_year
        j = k % per_year
        day = dt.date(year, 6, 5) + dt.timedelta(
            days=int(110 * j / per_year) + int(rng.integers(6))
        )
        cloudy = k % 2 == 0
        out.append(
            Pass(
                day=day,
                platform="sentinel-2a" if k % 3 else "sentinel-2b",
                baseline="05.09" if year == 2023 else "05.10",
                cover=float(rng.uniform(0.6, 0.9) if cloudy else rng.uniform(0.04, 0.12)),
                swath_edge=k % 4 == 1,
                sun_azimuth=float(rng.uniform(40, 60)),
                sun_elevation=float(rng.uniform(52, 62)),
                cloud_height_m=float(rng.uniform(1000, 2500)),
            )
        )
    return out


def _field(shape: tuple[int, int], cell_px: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field (unit variance, float32) varying over about ``cell_px`` pixels."""
    ny, nx = shape
    cy, cx = math.ceil(ny / cell_px) + 3, math.ceil(nx / cell_px) + 3
    coarse = ndimage.gaussian_filter(rng.standard_normal((cy, cx)).astype(np.float32), 0.8)
    coarse /= coarse.std() or 1.0
    fine = ndimage.zoom(coarse, (ny / (cy - 2), nx / (cx - 2)), order=1, prefilter=False)
    return np.ascontiguousarray(fine[:ny, :nx], dtype=np.float32)


def _fractal(shape: tuple[int, int], cell_px: float, rng: np.random.Generator) -> np.ndarray:
    out = _field(shape, cell_px, rng)
    out += 0.45 * _field(shape, cell_px / 6, rng)
    out += 0.15 * _field(shape, max(2.0, cell_px / 40), rng)
    return out


def _quantile(a: np.ndarray, q: float) -> float:
    return float(np.quantile(a[::7, ::7], q))


def _landscape(shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Static SCL classes of the ground (4 forest, 5 clearings, 6 river) and a texture."""
    ny, nx = shape
    land = _fractal(shape, 250, rng)
    classes = np.where(land > _quantile(land, 0.72), 5, 4).astype(np.uint8)
    cols = np.arange(nx, dtype=np.float32)
    centre = ny * 0.55 + ny * 0.08 * np.sin(cols / nx * 9.0) + ny * 0.02 * np.sin(cols / nx * 31)
    rows = np.arange(ny, dtype=np.float32)[:, None]
    classes[np.abs(rows - centre[None, :]) < 6] = 6
    texture = _field(shape, 12, rng)
    return classes, texture


def _sky(
    shape: tuple[int, int], p: Pass, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cloud core, rim, cirrus, shadow) masks of one pass on the world grid."""
    clouds = _fractal(shape, 150, rng)
    opaque = 0.85 * p.cover
    core = clouds > _quantile(clouds, 1 - 0.8 * opaque)
    rim = (clouds > _quantile(clouds, 1 - opaque)) & ~core
    thin = _fractal(shape, 300, rng)
    cirrus = (thin > _quantile(thin, 1 - 0.15 * p.cover - 0.01)) & ~core & ~rim
    # the shadow of a cloud at height h falls h / tan(elevation) away from the sun
    d_px = p.cloud_height_m / math.tan(math.radians(p.sun_elevation)) / 20
    az = math.radians(p.sun_azimuth)
    shift = (round(d_px * math.cos(az)), round(-d_px * math.sin(az)))  # (rows south, cols east)
    cast = ndimage.shift((core | rim).view(np.uint8), shift, order=0, mode="constant") > 0
    shadow = cast & ~core & ~rim & ~cirrus
    return core, rim, cirrus, shadow


def _scl(ground: np.ndarray, sky: tuple[np.ndarray, ...], rng: np.random.Generator) -> np.ndarray:
    scl = ground.copy()
    flip = rng.random(scl.shape, dtype=np.float32) < 0.05
    scl[flip] = rng.choice(np.array([2, 4, 5, 7], dtype=np.uint8), size=int(flip.sum()))
    core, rim, cirrus, shadow = sky
    scl[shadow] = 3
    scl[cirrus] = 10
    scl[rim] = 8
    scl[core] = 9
    scl[rng.random(scl.shape, dtype=np.float32) < 2e-5] = 1  # a few saturated pixels
    return scl


def _valid(spec: Spec, tile: int, p: Pass) -> np.ndarray | None:
    """The swath edge: tile 21MXS loses its eastern corner, diagonally across the AOI."""
    if tile != 0 or not p.swath_edge:
        return None
    n = spec.scl_px
    rows, cols = np.ogrid[:n, :n]
    return cols < 0.92 * n + 0.3 * (rows - n / 2)  # type: ignore[no-any-return]


def _write_cog(path: Path, data: np.ndarray, west: float, res: float, reflectance: bool) -> None:
    import rasterio
    from affine import Affine

    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=CRS,
        transform=Affine(res, 0.0, west, 0.0, -res, NORTH),
        nodata=0,
        compress="DEFLATE",
        predictor=2 if reflectance else 1,
        blocksize=1024,
        overview_resampling="average" if reflectance else "nearest",
        num_threads="ALL_CPUS",
        bigtiff="IF_SAFER",
    ) as dst:
        dst.write(data, 1)


def _reflectance(
    scl20: np.ndarray, texture20: np.ndarray, band: int, rng: np.random.Generator
) -> np.ndarray:
    """10 m DNs (baseline >= 04.00: +1000) of one band from the 20 m classes."""
    lut = np.zeros(256, dtype=np.float32)
    for code, values in _REFLECTANCE.items():
        lut[code] = values[band]
    amplitude = (0.006, 0.03)[band]
    refl20 = lut[scl20] + amplitude * texture20
    dn = np.repeat(np.repeat(refl20 * 10000 + 1000, 2, axis=0), 2, axis=1)
    dn += rng.standard_normal(dn.shape, dtype=np.float32) * _NOISE_DN[band]
    np.clip(dn, 1, 32767, out=dn)
    out = np.rint(dn).astype(np.uint16)
    out[np.repeat(np.repeat(scl20 == 0, 2, axis=0), 2, axis=1)] = 0
    return out


def _footprint(spec: Spec, tile: int, valid: np.ndarray | None) -> dict[str, Any]:
    from pyproj import Transformer
    from shapely.geometry import Polygon, box, mapping

    west = spec.tile_west(tile)
    size = spec.tile_px * 10.0
    shape = box(west, NORTH - size, west + size, NORTH)
    if valid is not None:
        n = spec.scl_px

        # the half-plane cols < 0.92 n + 0.3 (rows - n/2), in metres
        def xy(row: float) -> tuple[float, float]:
            col = 0.92 * n + 0.3 * (row - n / 2)
            return (west + 20 * col, NORTH - 20 * row)

        (x0, y0), (x1, y1) = xy(-n), xy(2 * n)
        far_west = min(x0, x1) - size
        shape = shape.intersection(Polygon([(x0, y0), (x1, y1), (far_west, y1), (far_west, y0)]))
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    ring = [to_ll.transform(x, y) for x, y in shape.exterior.coords]
    geometry = mapping(Polygon([(round(x, 7), round(y, 7)) for x, y in ring]))
    return json.loads(json.dumps(geometry))  # tuples -> lists


def _percent(mask: np.ndarray, valid_px: int) -> float:
    return round(100.0 * int(np.count_nonzero(mask)) / valid_px, 6) if valid_px else 0.0


def _item(
    spec: Spec, tile: int, p: Pass, scl: np.ndarray, valid: np.ndarray | None
) -> dict[str, Any]:
    name = TILE_NAMES[tile]
    sat = p.platform[-1].upper()
    item_id = f"S2{sat}_{name}_{p.day:%Y%m%d}_0_L2A"
    # tiles of one pass are sensed seconds apart (south-west first)
    moment = dt.datetime.combine(p.day, dt.time(14, 7, 31), dt.UTC) + dt.timedelta(
        seconds=4.1 * tile, microseconds=24000
    )
    valid_px = int(np.count_nonzero(scl))
    props: dict[str, Any] = {
        "created": "2025-01-15T00:00:00.000Z",
        "platform": p.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": _percent(np.isin(scl, [8, 9, 10]), valid_px),
        "proj:epsg": EPSG,
        "mgrs:utm_zone": 21,
        "mgrs:latitude_band": "M",
        "mgrs:grid_square": name[3:],
        "grid:code": f"MGRS-{name}",
        "view:sun_azimuth": round(p.sun_azimuth, 6),
        "view:sun_elevation": round(p.sun_elevation, 6),
        "s2:nodata_pixel_percentage": round(100 - 100 * valid_px / scl.size, 6),
        "s2:saturated_defective_pixel_percentage": _percent(scl == 1, valid_px),
        "s2:dark_features_percentage": _percent(scl == 2, valid_px),
        "s2:cloud_shadow_percentage": _percent(scl == 3, valid_px),
        "s2:vegetation_percentage": _percent(scl == 4, valid_px),
        "s2:not_vegetated_percentage": _percent(scl == 5, valid_px),
        "s2:water_percentage": _percent(scl == 6, valid_px),
        "s2:unclassified_percentage": _percent(scl == 7, valid_px),
        "s2:medium_proba_clouds_percentage": _percent(scl == 8, valid_px),
        "s2:high_proba_clouds_percentage": _percent(scl == 9, valid_px),
        "s2:thin_cirrus_percentage": _percent(scl == 10, valid_px),
        "s2:snow_ice_percentage": 0.0,
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": p.baseline,
        "s2:product_uri": f"S2{sat}_MSIL2A_{p.day:%Y%m%d}T140051_N{p.baseline.replace('.', '')}"
        f"_R010_T{name}_{p.day:%Y%m%d}T180000.SAFE",
        "datetime": moment.isoformat().replace("+00:00", "Z"),
        "s2:sequence": "0",
        "earthsearch:boa_offset_applied": False,
        "processing:software": {"sentinel2-to-stac": "0.1.1"},
        "updated": "2025-01-15T00:00:00.000Z",
    }
    west = spec.tile_west(tile)

    def asset(file: str, title: str, res: float, px: int, refl: bool) -> dict[str, Any]:
        band: dict[str, Any] = {
            "nodata": 0,
            "data_type": "uint16" if refl else "uint8",
            "spatial_resolution": res,
        }
        if refl:
            band.update(bits_per_sample=15, scale=0.0001, offset=-0.1)
        return {
            "href": f"./{file}",
            "type": COG_TYPE,
            "title": title,
            "gsd": res,
            "proj:shape": [px, px],
            "proj:transform": [res, 0, west, 0, -res, NORTH],
            "raster:bands": [band],
            "roles": ["data", "reflectance"],
        }

    assets = {
        "red": asset("B04.tif", "Red (band 4) - 10m", 10, spec.tile_px, True),
        "nir": asset("B08.tif", "NIR 1 (band 8) - 10m", 10, spec.tile_px, True),
        "scl": asset("SCL.tif", "Scene classification map (SCL)", 20, spec.scl_px, False),
    }
    for key, common, wavelength in (("red", "red", 0.665), ("nir", "nir", 0.842)):
        assets[key]["eo:bands"] = [
            {"name": common, "common_name": common, "center_wavelength": wavelength}
        ]
    geometry = _footprint(spec, tile, valid)
    lons = [c[0] for c in geometry["coordinates"][0]]
    lats = [c[1] for c in geometry["coordinates"][0]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        ],
        "id": item_id,
        "properties": props,
        "geometry": geometry,
        "links": [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
        ],
        "assets": assets,
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "collection": "sentinel-2-l2a",
    }


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")


def generate(spec: Spec, folder: Path) -> dict[str, Any]:
    """Write the catalog into ``folder`` (replacing it) and return its manifest."""
    t0 = time.perf_counter()
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    rng = np.random.default_rng(spec.seed)
    n = spec.scl_px
    world = (n, round(spec.spacing_m / 20) + n)
    ground, texture = _landscape(world, rng)
    items = []
    for p in passes(spec):
        sky = _sky(world, p, rng)
        scl_world = _scl(ground, sky, rng)
        del sky
        for tile in range(len(TILE_NAMES)):
            c0 = round((spec.tile_west(tile) - WEST) / 20)
            scl = scl_world[:, c0 : c0 + n].copy()
            valid = _valid(spec, tile, p)
            if valid is not None:
                scl[~valid] = 0
            item = _item(spec, tile, p, scl, valid)
            out = partial / "sentinel-2-l2a" / item["id"]
            out.mkdir(parents=True)
            west = spec.tile_west(tile)
            _write_cog(out / "SCL.tif", scl, west, 20.0, reflectance=False)
            tex = texture[:, c0 : c0 + n]
            for band, file in ((0, "B04.tif"), (1, "B08.tif")):
                _write_cog(out / file, _reflectance(scl, tex, band, rng), west, 10.0, True)
            _dump(out / f"{item['id']}.json", item)
            items.append(item)
    _dump(partial / "sentinel-2-l2a" / "collection.json", _collection(items))
    _dump(
        partial / "catalog.json",
        {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": "clearcube-e2e",
            "description": "Generated Sentinel-2 L2A series for the clearcube end-to-end "
            "benchmark: two overlapping MGRS tiles of UTM 21S, cloudy and clear passes.",
            "links": [
                {"rel": "root", "href": "./catalog.json", "type": "application/json"},
                {
                    "rel": "child",
                    "href": "./sentinel-2-l2a/collection.json",
                    "type": "application/json",
                },
            ],
        },
    )
    files = {
        p.relative_to(partial).as_posix(): p.stat().st_size
        for p in sorted(partial.rglob("*"))
        if p.is_file()
    }
    manifest = {
        "generator": GENERATOR_VERSION,
        "spec": asdict(spec),
        "seconds": round(time.perf_counter() - t0, 1),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    _dump(partial / "manifest.json", manifest)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return manifest


def _collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    boxes = [i["bbox"] for i in items]
    times = sorted(i["properties"]["datetime"] for i in items)
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "sentinel-2-l2a",
        "title": "Sentinel-2 L2A (generated)",
        "description": "Generated Sentinel-2 L2A scenes in Earth Search v1 style",
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


def check(spec: Spec, folder: Path) -> dict[str, Any] | None:
    """The manifest of a complete catalog of ``spec`` in ``folder``, else None."""
    try:
        manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("generator") != GENERATOR_VERSION or manifest.get("spec") != asdict(spec):
        return None
    for rel, size in manifest["files"].items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            return None
    return manifest


def ensure(spec: Spec, folder: Path) -> tuple[dict[str, Any], bool]:
    """(manifest, generated now) of the catalog of ``spec`` in ``folder``."""
    manifest = check(spec, folder)
    if manifest is not None:
        return manifest, False
    return generate(spec, folder), True
