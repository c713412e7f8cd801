"""A scene that covers part of the area: every engine, every encoding, QA COGs with and without
a nodata tag. Pixels outside the raster, and pixels equal to the nodata the file or the item
declares, are no data; the valid count is the number of data pixels the fixture wrote.

The raster lies strictly inside the area (a margin of pixels on the left, top and bottom; the
right half of the area is beyond its edge), on the output grid's pixel edges, so the expected
count does not depend on how the grid is snapped: it is the number of pixels the fixture wrote
as data, times four when the output pixel is half the source pixel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

import clearcube as cc

EPSG = 32722
WEST, NORTH = 600000.0, 9700020.0
AOI_PX = (64, 96)  # rows, cols of the area at the native resolution
RASTER_PX = (58, 46)  # the raster: inside the area, covering about half of it
OFFSET_PX = (3, 2)  # rows below the area's top, cols right of its left edge


@dataclass(frozen=True)
class Kind:
    encoding: str
    asset: str
    dtype: str
    res: float
    item: dict[str, Any]  # id prefix, collection, properties
    data_codes: tuple[int, ...]  # legal codes of valid pixels, as the product writes them
    product_fill: int | None  # what the product writes where it has no data (None: QA60)
    legal_code: int  # a legal "clear" code, declared as nodata in two variants
    tag_fill: int  # the nodata tag of a tagged file


KINDS = {
    "s2-scl": Kind(
        "s2-scl",
        "scl",
        "uint8",
        20.0,
        {"id": "S2B_22MBA_20240101_0_L2A", "collection": "sentinel-2-l2a"},
        tuple(range(1, 12)),
        0,
        4,
        0,
    ),
    "s2-qa60": Kind(
        "s2-qa60",
        "qa60",
        "uint16",
        60.0,
        {"id": "S2B_22MBA_20210101_0_L1C", "collection": "sentinel-2-l1c"},
        (0, 0, 0, 1024, 2048, 3072),
        None,
        0,
        65535,
    ),
    "landsat-qa-pixel": Kind(
        "landsat-qa-pixel",
        "qa_pixel",
        "uint16",
        30.0,
        {"id": "LC08_L2SP_226062_20240101_02_T1", "collection": "landsat-c2-l2"},
        # USGS values: clear land, clear water, cloud, cloud + cirrus, shadow, dilated, snow
        (21824, 21952, 22280, 55052, 23888, 21762, 30048),
        1,
        21824,
        1,
    ),
    "hls-fmask": Kind(
        "hls-fmask",
        "Fmask",
        "uint8",
        30.0,
        {"id": "HLS.S30.T22MBA.2024001T134711.v2.0", "collection": "HLSS30_2.0"},
        (0, 0, 64, 2, 4, 8, 16, 32, 96, 128),
        255,
        0,
        255,
    ),
}

#: How a file says where it has no data: (file nodata tag, item raster:bands nodata, value of
#: the no-data pixels inside the raster), each from the encoding's Kind.
VARIANTS = ("no-tag", "tag-fill", "tag-legal-code", "item-nodata")


def variant_values(kind: Kind, variant: str) -> tuple[int | None, int | None, int | None]:
    if variant == "no-tag":  # as USGS writes QA_PIXEL: no tag, fill codes inside
        return None, None, kind.product_fill
    if variant == "tag-fill":  # the usual tag: the product's fill (QA60: 65535)
        return kind.tag_fill, None, kind.tag_fill
    if variant == "tag-legal-code":  # a tag on a legal code: whatever the tag says wins
        return kind.legal_code, None, kind.legal_code
    return None, kind.legal_code, kind.legal_code  # declared by the item only


def write_scene(folder: Path, kind: Kind, variant: str) -> tuple[dict[str, Any], int]:
    """A QA COG and its item; returns the item and the number of data pixels written."""
    tag, declared, hole_value = variant_values(kind, variant)
    rng = np.random.default_rng(sum(map(ord, kind.encoding + variant)))
    codes = np.array([c for c in kind.data_codes if c != hole_value], dtype=kind.dtype)
    data = rng.choice(codes, size=RASTER_PX)
    holes = np.zeros(RASTER_PX, dtype=bool)
    if hole_value is not None:
        holes[:3, :] = holes[-3:, :] = holes[:, :3] = True  # a no-data margin, like a scene's
        holes |= rng.random(RASTER_PX) < 0.05  # and no-data pixels inside
        data[holes] = hole_value
    r = kind.res
    west = WEST + OFFSET_PX[1] * r
    north = NORTH - OFFSET_PX[0] * r
    transform = from_origin(west, north, r, r)
    path = folder / f"{kind.encoding}-{variant}.tif"
    profile = dict(
        driver="COG",
        width=RASTER_PX[1],
        height=RASTER_PX[0],
        count=1,
        dtype=kind.dtype,
        crs=f"EPSG:{EPSG}",
        transform=transform,
        compress="DEFLATE",
        blocksize=16,
    )
    if tag is not None:
        profile["nodata"] = tag
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    with rasterio.open(path) as src:  # the file says what the variant means
        assert src.nodata == (None if tag is None else float(tag))

    east, south = west + RASTER_PX[1] * r, north - RASTER_PX[0] * r
    lon0, lat0, lon1, lat1 = transform_bounds(f"EPSG:{EPSG}", "EPSG:4326", west, south, east, north)
    raster_bands: dict[str, Any] = {"data_type": kind.dtype}
    if declared is not None:
        raster_bands["nodata"] = declared
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"{kind.item['id']}_{variant}",
        "collection": kind.item["collection"],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]],
        },
        "bbox": [lon0, lat0, lon1, lat1],
        "properties": {
            "datetime": dt.datetime(2024, 1, 1, 13, 40, tzinfo=dt.UTC).isoformat(),
            "proj:code": f"EPSG:{EPSG}",
        },
        "assets": {
            kind.asset: {
                "href": str(path),
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "proj:shape": list(RASTER_PX),
                "proj:transform": list(transform)[:6],
                "raster:bands": [raster_bands],
            }
        },
        "links": [],
    }
    return item, int(np.count_nonzero(~holes))


def aoi_bbox(res: float) -> tuple[float, float, float, float]:
    """The area in lon/lat: the raster's margin on three sides, twice its width."""
    east = WEST + AOI_PX[1] * res
    south = NORTH - AOI_PX[0] * res
    return transform_bounds(f"EPSG:{EPSG}", "EPSG:4326", WEST, south, east, NORTH)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("half_scene")
    return {
        (name, variant): write_scene(folder, kind, variant)
        for name, kind in KINDS.items()
        for variant in VARIANTS
    }


@pytest.mark.parametrize("engine", ["native", "odc", "stackstac"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("encoding", sorted(KINDS))
def test_valid_pixels_are_the_pixels_inside_the_scene_data(scenes, encoding, variant, engine):
    kind = KINDS[encoding]
    item, n_data = scenes[(encoding, variant)]
    assert cc.identify(item).qa_encoding == encoding
    ds = cc.load(
        [item],
        bbox=aoi_bbox(kind.res),
        options=cc.LoadOptions(bands=(), engine=engine, chunks=32),
        mask=cc.MaskConfig(crs=f"EPSG:{EPSG}", resolution=kind.res),
    )
    assert ds.sizes["y"] >= AOI_PX[0]
    assert ds.sizes["x"] >= AOI_PX[1]  # the grid holds the whole area, twice the raster
    row = cc.cloud_fraction(ds).iloc[0]
    assert row["valid_px"] == n_data, (encoding, variant, engine)
    assert row["nodata_px"] == row["aoi_px"] - n_data
    assert row["aoi_px"] >= 2 * RASTER_PX[0] * RASTER_PX[1]


@pytest.mark.parametrize("engine", ["native", "odc", "stackstac"])
@pytest.mark.parametrize("variant", ["no-tag", "tag-legal-code"])
@pytest.mark.parametrize("encoding", sorted(KINDS))
def test_resampled_read_keeps_the_count(scenes, encoding, variant, engine):
    # half the source pixel: every engine resamples (odc and stackstac through GDAL's warper),
    # each source pixel becomes four output pixels, and no-data stays no data
    kind = KINDS[encoding]
    item, n_data = scenes[(encoding, variant)]
    ds = cc.load(
        [item],
        bbox=aoi_bbox(kind.res),
        options=cc.LoadOptions(bands=(), engine=engine, chunks=64),
        mask=cc.MaskConfig(crs=f"EPSG:{EPSG}", resolution=kind.res / 2),
    )
    assert cc.cloud_fraction(ds).iloc[0]["valid_px"] == 4 * n_data, (encoding, variant, engine)


@pytest.mark.parametrize("engine", ["native", "odc", "stackstac"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("encoding", sorted(KINDS))
def test_raw_reads_write_the_encoding_fill_wherever_there_is_no_data(
    scenes, encoding, variant, engine
):
    # what odc and stackstac hand to the decoder: the fill outside the raster and at every
    # pixel the file or the item calls no data, the written codes everywhere else
    import pystac
    from odc.geo.geobox import GeoBox

    from clearcube.engines import ReadRequest, get_engine
    from clearcube.sensors import get_encoding

    kind = KINDS[encoding]
    item, n_data = scenes[(encoding, variant)]
    fill = get_encoding(encoding).fill
    r = kind.res
    geobox = GeoBox.from_bbox(
        (WEST, NORTH - AOI_PX[0] * r, WEST + AOI_PX[1] * r, NORTH), crs=f"EPSG:{EPSG}", resolution=r
    )
    request = ReadRequest.from_items(
        (pystac.Item.from_dict(item),),
        kind.asset,
        geobox=geobox,
        dtype=np.dtype(kind.dtype),
        fill=fill,
        chunks_yx=(32, 32),
    )
    raw = get_engine(engine).read(request)
    assert raw.dims == ("time", "y", "x")
    assert raw.dtype == np.dtype(kind.dtype)
    values = raw.values
    assert int((values != fill).sum()) == n_data  # no data code equals the fill
    assert set(np.unique(values[values != fill])) <= set(kind.data_codes)
