"""Flags and cloud fractions for a 50 km AOI: clearcube (odc and native engines) vs odc-stac
and stackstac used directly vs the physical floor (read + decompress the needed windows +
decode), plus graph-build time for 12, 120 and 1,200 items and peak memory.

    python benchmarks/cube.py [--scale 21] [--repeat 3] [--workdir /tmp/clearcube-bench]

The catalog is the demo generator's at full size (``--scale 21``: 5376 px SCL tiles, 5376 px
Landsat scenes; QA assets only), written once into the work directory. Each figure is the
median of ``--repeat`` runs on the threaded scheduler; ratios are to the floor.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import clearcube as cc
from clearcube.demo import generate_demo
from clearcube.engines import ReadRequest, get_engine
from clearcube.gdal_env import gdal_options, rio_env
from clearcube.grid import output_geobox
from clearcube.sensors.plan import ScenePlan, plan_items


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self) -> PeakRSS:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.base) / 1e6


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times, peaks = [], []
    for _ in range(repeat):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        peaks.append(mem.extra_mb)
    return statistics.median(times), max(peaks)


def aoi_box(plans: list[ScenePlan], km: float) -> tuple[float, float, float, float]:
    lons = [(p.bbox[0] + p.bbox[2]) / 2 for p in plans if p.bbox]
    lats = [(p.bbox[1] + p.bbox[3]) / 2 for p in plans if p.bbox]
    lon, lat = float(np.mean(lons)), float(np.mean(lats))
    half_lat = km / 2 / 111.32
    half_lon = half_lat / np.cos(np.radians(lat))
    return (lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat)


def counts(flags: np.ndarray) -> np.ndarray:
    return np.stack([np.bincount(f.ravel(), minlength=512) for f in flags])


def floor_run(plans: list[ScenePlan], geobox: Any) -> None:
    """Read + decompress exactly the source windows covering the grid, and decode them."""
    import rasterio
    from rasterio.windows import from_bounds

    from clearcube.grid import footprint_bounds

    crs = f"EPSG:{geobox.crs.epsg}"
    box = geobox.extent.boundingbox
    for plan in plans:
        fb = footprint_bounds(plan, crs)
        assert fb is not None
        # the AOI in the source CRS: bounds of the output grid transformed
        from odc.geo.geom import box as gbox

        src_box = (
            gbox(box.left, box.bottom, box.right, box.top, crs=crs).to_crs(plan.crs).boundingbox
        )
        with rio_env(), rasterio.open(plan.qa_href) as src:
            window = (
                from_bounds(src_box.left, src_box.bottom, src_box.right, src_box.top, src.transform)
                .round_offsets()
                .round_lengths()
            )
            window = window.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
            qa = src.read(1, window=window)
        np.bincount(cc.decode(qa, plan.qa_encoding).ravel(), minlength=512)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=21)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--aoi-km", type=float, default=50.0)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--workdir", default="/tmp/clearcube-bench")
    args = ap.parse_args()

    work = Path(args.workdir) / f"scale{args.scale}"
    if not (work / "catalog.json").exists():
        t0 = time.perf_counter()
        generate_demo(work, scale=args.scale, qa_only=True)
        print(f"# generated the catalog in {time.perf_counter() - t0:.0f} s")
    items = cc.search(source=str(work / "catalog.json"))
    plans = [p for p in plan_items(items) if isinstance(p, ScenePlan)]
    bbox = aoi_box(plans, args.aoi_km)
    geobox = output_geobox(plans, bbox=bbox)
    pixels = geobox.shape.x * geobox.shape.y
    print(
        f"# {platform.python_version()} {platform.machine()}, {os.cpu_count()} cores; "
        f"dask threads; {len(plans)} items; grid {geobox.shape.y}x{geobox.shape.x} "
        f"@{geobox.resolution.x:g} m ({geobox.crs.epsg}); chunk {args.chunk}; "
        f"median of {args.repeat}"
    )
    sizes = {p.id: p.qa_grid.shape_yx for p in plans}
    print(f"# source QA sizes: {sorted(set(sizes.values()))}")

    cfg = cc.MaskConfig()
    gdal = gdal_options()

    def clearcube_run(engine: str) -> Callable[[], Any]:
        def run() -> None:
            ds = cc.load(items, bbox=bbox, bands=(), engine=engine, chunks=args.chunk, config=cfg)
            cc.cloud_fraction(ds)

        return run

    def direct(engine: str) -> Callable[[], Any]:
        py = tuple(items)
        for item in py:
            item.make_asset_hrefs_absolute()  # stackstac reads hrefs as written

        def run() -> None:
            import dask

            parts = []
            for enc, asset, dtype, nodata in (
                ("s2-scl", "scl", "uint8", 0),
                ("landsat-qa-pixel", "qa_pixel", "uint16", 1),
            ):
                sel = tuple(i for i in py if asset in i.assets)
                req = ReadRequest(
                    items=sel,
                    asset=asset,
                    geobox=geobox,
                    dtype=np.dtype(dtype),
                    nodata=nodata,
                    chunks_yx=(args.chunk, args.chunk),
                    gdal=gdal,
                )
                raw = get_engine(engine).read(req)
                flags = cc.decode(raw.data, enc)
                parts.append(
                    flags.map_blocks(
                        counts,
                        drop_axis=[1, 2],
                        new_axis=[1],
                        chunks=(flags.chunks[0], (512,)),
                        dtype=np.int64,
                    )
                )
            dask.compute(*parts)

        return run

    rows = [
        ("floor: read+decompress windows+decode", lambda: floor_run(plans, geobox)),
        ("odc-stac used directly", direct("odc")),
        ("stackstac used directly", direct("stackstac")),
        ("clearcube engine=odc", clearcube_run("odc")),
        ("clearcube engine=native", clearcube_run("native")),
    ]
    results = {}
    print(f"\n{'approach':<40}{'median s':>10}{'x floor':>9}{'Mpx/s':>8}{'peak MB':>9}")
    for name, fn in rows:
        sec, peak = timed(fn, args.repeat)
        results[name] = sec
        floor = results[rows[0][0]]
        print(
            f"{name:<40}{sec:>10.2f}{sec / floor:>9.2f}{len(plans) * pixels / sec / 1e6:>8.0f}"
            f"{peak:>9.0f}"
        )
    print(
        f"\nclearcube odc / odc-stac direct: "
        f"{results['clearcube engine=odc'] / results['odc-stac used directly']:.2f}"
    )
    print(
        f"odc-stac direct / native: "
        f"{results['odc-stac used directly'] / results['clearcube engine=native']:.2f}"
    )

    print(f"\n{'graph build':<30}{'items':>7}{'seconds':>9}{'ms/item':>9}")
    base = list(items)
    for n in (12, 120, 1200):
        many = []
        for k in range(n):
            clone = base[k % len(base)].clone()
            clone.id = f"{clone.id}-{k}"
            clone.datetime = clone.datetime.replace(microsecond=k % 1000000)
            many.append(clone)
        for engine in ("native", "odc"):
            if engine == "odc" and n > 120 and args.repeat < 2:
                continue
            t0 = time.perf_counter()
            cc.load(many, bbox=bbox, bands=(), engine=engine, chunks=args.chunk)
            sec = time.perf_counter() - t0
            print(f"{'load(engine=' + engine + ')':<30}{n:>7}{sec:>9.2f}{1000 * sec / n:>9.2f}")


if __name__ == "__main__":
    main()
