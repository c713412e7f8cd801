"""Two small SCL-like COGs on either side of a UTM zone boundary, with STAC items."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_geom
from scipy import ndimage

TILES = {  # (epsg, west, north): 5.12 km x 5.12 km at 20 m, overlapping the zone boundary
    "T21": (32721, 828000, 9700000),
    "T22": (32722, 164000, 9700000),
}


def blobby_classes(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Coherent class patches (like a classification), values 1-11."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), 6)
    edges = np.quantile(field, np.linspace(0, 1, 12)[1:-1])
    return (np.digitize(field, edges) + 1).astype(np.uint8)


def write_tile(folder: Path, name: str, epsg: int, west: float, north: float, seed: int):
    rng = np.random.default_rng(seed)
    data = blobby_classes(rng, (256, 256))
    data[:, :20] = 0  # no-data edge
    transform = from_origin(west, north, 20, 20)
    path = folder / f"{name}.tif"
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=256,
        height=256,
        count=1,
        dtype="uint8",
        crs=f"EPSG:{epsg}",
        transform=transform,
        nodata=0,
        compress="DEFLATE",
        blocksize=128,
        overview_resampling="nearest",
    ) as dst:
        dst.write(data, 1)
    ring = [
        (west, north),
        (west + 5120, north),
        (west + 5120, north - 5120),
        (west, north - 5120),
        (west, north),
    ]
    geom = transform_geom(f"EPSG:{epsg}", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    lons = [p[0] for p in geom["coordinates"][0]]
    lats = [p[1] for p in geom["coordinates"][0]]
    item = pystac.Item(
        id=name,
        geometry=geom,
        bbox=[min(lons), min(lats), max(lons), max(lats)],
        datetime=dt.datetime(2024, 1, 1 + seed, 13, 40, tzinfo=dt.UTC),
        properties={"proj:code": f"EPSG:{epsg}", "platform": "sentinel-2b"},
    )
    item.add_asset(
        "scl",
        pystac.Asset(
            href=str(path),
            media_type=pystac.MediaType.COG,
            roles=["data"],
            extra_fields={
                "proj:shape": [256, 256],
                "proj:transform": list(transform)[:6],
                "raster:bands": [{"data_type": "uint8", "nodata": 0}],
            },
        ),
    )
    return item, data, transform


@pytest.fixture(scope="session")
def scl_tiles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scl_tiles")
    return {
        name: write_tile(folder, name, *spec, seed=i)
        for i, (name, spec) in enumerate(TILES.items())
    }
