"""The job of benchmarks/e2e.py as an odc-stac user would write it, without clearcube.

    python benchmarks/_e2e_odc.py --catalog CATALOG --bbox W S E N --datetime A/B
        --crs EPSG:32721 --resolution 10 --threshold 0.3 --out DIR [--chunk 1024]

Find the Sentinel-2 L2A items of a static catalog over the area and period; load SCL, red and
nir on one grid with ``odc.stac.load`` (lazy, dask chunks); mask with the SCL classes
clearcube's default ``MaskConfig`` masks (1 saturated or defective, 3 cloud shadow, 8 and 9
cloud, 10 thin cirrus; 0 and 12-255 are no data); compute each scene's cloud fraction over
its valid pixels; keep the scenes at or under the threshold; write the masked cube (every
scene, reflectance with scale and offset applied) to Zarr and the per-year median of the kept
scenes, with its count of clear observations, to COGs. SCL is read once (kept in memory: it
is small), red and nir once, in one compute with the Zarr write.

Writes ``fractions.csv``, ``cube.zarr``, ``median_<year>.tif`` and ``clear_count_<year>.tif``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import warnings
from pathlib import Path

import dask
import numpy as np
import odc.geo.xr
import odc.stac
import pandas as pd
import pystac
import xarray as xr
from shapely.geometry import box, shape

MASKED_CLASSES = [1, 3, 8, 9, 10]  # saturated/defective, cloud shadow, cloud medium/high, cirrus
VALID_CLASSES = list(range(1, 12))  # 0 is no data; 12-255 are undefined, so no data too
BANDS = ["red", "nir"]


def find_items(catalog: str, bbox: list[float], period: str) -> list[pystac.Item]:
    """Items of the catalog over the bbox whose datetime is inside the period."""
    start, end = (dt.datetime.fromisoformat(p).replace(tzinfo=dt.UTC) for p in period.split("/"))
    end = end + dt.timedelta(days=1)  # the end date is inclusive
    aoi = box(*bbox)
    root = pystac.Catalog.from_file(catalog)
    return [
        item
        for item in root.get_items(recursive=True)
        if item.datetime is not None
        and start <= item.datetime < end
        and shape(item.geometry).intersects(aoi)
    ]


def raster_band(item: pystac.Item, asset: str, key: str, default: float) -> float:
    bands = item.assets[asset].extra_fields.get("raster:bands") or [{}]
    return float(bands[0].get(key, default))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--bbox", type=float, nargs=4, required=True)
    ap.add_argument("--datetime", required=True)
    ap.add_argument("--crs", required=True)
    ap.add_argument("--resolution", type=float, required=True)
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)

    odc.stac.configure_rio(cloud_defaults=True)
    items = sorted(find_items(args.catalog, args.bbox, args.datetime), key=lambda i: i.datetime)
    ds = odc.stac.load(
        items,
        bands=["scl", *BANDS],
        groupby="id",  # one time step per scene: fractions are per scene
        crs=args.crs,
        resolution=args.resolution,
        bbox=args.bbox,
        chunks={"x": args.chunk, "y": args.chunk},
    )
    by_time = {np.datetime64(i.datetime.replace(tzinfo=None), "ns"): i for i in items}
    scenes = [by_time[t] for t in ds.time.values]

    scl = ds.scl.persist()  # the SCL of the area is small; read it once
    valid = scl.isin(VALID_CLASSES)
    clear = valid & ~scl.isin(MASKED_CLASSES)
    fraction = ((valid & ~clear).sum(("y", "x")) / valid.sum(("y", "x"))).compute()
    keep = fraction <= args.threshold  # NaN (no valid pixel) is not kept

    cube = xr.Dataset({"scl": scl, "clear": clear})
    for band in BANDS:
        scale = xr.DataArray(
            np.float32([raster_band(i, band, "scale", 1.0) for i in scenes]), dims="time"
        )
        offset = xr.DataArray(
            np.float32([raster_band(i, band, "offset", 0.0) for i in scenes]), dims="time"
        )
        dn = ds[band]
        cube[band] = (dn.astype(np.float32) * scale + offset).where((dn != 0) & clear)
    cube = cube.assign_coords(id=("time", [i.id for i in scenes]), kept=("time", keep.values))

    years = pd.DatetimeIndex(cube.time.values).year
    composites = {}
    for year in sorted(set(years)):
        kept = cube.isel(time=np.flatnonzero(keep.values & (years == year)))
        if kept.sizes["time"]:
            median = kept[BANDS].chunk(time=-1).median("time")
            count = kept.clear.sum("time").astype(np.uint16)
            composites[year] = (median, count)
    write = cube.to_zarr(out / "cube.zarr", mode="w", compute=False)
    _, composites = dask.compute(write, composites)

    for year, (median, count) in composites.items():
        median.to_array("band").odc.write_cog(out / f"median_{year}.tif", overwrite=True)
        count.odc.write_cog(out / f"clear_count_{year}.tif", overwrite=True)
    pd.DataFrame(
        {"id": cube.id.values, "cloud_fraction": fraction.values, "kept": keep.values}
    ).to_csv(out / "fractions.csv", index=False)


if __name__ == "__main__":
    main()
