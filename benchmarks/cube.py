"""Flags and cloud fractions for a 50 km AOI: clearcube (odc and native engines) vs odc-stac
and stackstac used directly vs the physical floor (read + decompress the needed windows +
decode + count), plus graph-build time for 12, 120 and 1,200 items and peak memory against
the number of dates.

    python benchmarks/cube.py [--scale 21] [--repeat 3] [--workdir /tmp/clearcube-bench]
                              [--dates 13 52 208] [--sensor all|sentinel-2|landsat]
                              [--speckle 0.05] [--http] [--latency-ms 20]

The catalog is the demo generator's at full size (``--scale 21``: 5376 px SCL tiles, 5376 px
Landsat scenes; QA assets only), written once into the work directory; ``--speckle`` makes a
copy whose QA compresses like real products. ``--http`` serves it from nginx on loopback,
``--latency-ms`` adds a delay per request (a distant object store).

Each time is the median of ``--repeat`` runs on dask's threaded scheduler (one thread per
core), each run reading its bytes afresh (GDAL's cache of remote files and every open dataset
are dropped before it); ratios are to the floor run on as many threads (the 1-thread floor is
printed too). Peak memory is measured in a fresh process per figure: the peak resident set of
one run above the resident set before it, after a one-item run has paid the one-off costs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import clearcube as cc
from clearcube.demo import generate_demo
from clearcube.gdal_env import clear_vsicurl_cache, gdal_options, rio_env
from clearcube.grid import output_geobox
from clearcube.sensors import get_encoding
from clearcube.sensors.plan import ScenePlan, plan_items


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``fn``; before each run GDAL forgets what it cached of remote
    files and every open dataset, so each run reads its bytes afresh (the OS page cache of
    local files stays warm for every approach alike)."""
    times = []
    for _ in range(repeat):
        clear_vsicurl_cache()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def aoi_box(plans: list[ScenePlan], km: float) -> tuple[float, float, float, float]:
    lons = [(p.bbox[0] + p.bbox[2]) / 2 for p in plans if p.bbox]
    lats = [(p.bbox[1] + p.bbox[3]) / 2 for p in plans if p.bbox]
    lon, lat = float(np.mean(lons)), float(np.mean(lats))
    half_lat = km / 2 / 111.32
    half_lon = half_lat / np.cos(np.radians(lat))
    return (lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat)


def counts(flags: np.ndarray) -> np.ndarray:
    return np.stack([np.bincount(f.ravel(), minlength=1024) for f in flags])


def floor_run(plans: list[ScenePlan], geobox: Any, threads: int = 1) -> None:
    """Read + decompress exactly the source windows covering the grid, decode them and count
    the flag combinations, with no placement at all; items spread over ``threads``."""
    from concurrent.futures import ThreadPoolExecutor

    import rasterio
    from odc.geo.geom import box as gbox
    from rasterio.windows import Window, from_bounds

    crs = f"EPSG:{geobox.crs.epsg}"
    box = geobox.extent.boundingbox
    aoi = gbox(box.left, box.bottom, box.right, box.top, crs=crs)

    def one(plan: ScenePlan) -> None:
        src_box = aoi.to_crs(plan.crs).boundingbox  # the output grid in the source CRS
        with rio_env(), rasterio.open(plan.qa_href) as src:
            window = (
                from_bounds(src_box.left, src_box.bottom, src_box.right, src_box.top, src.transform)
                .round_offsets()
                .round_lengths()
            )
            window = window.intersection(Window(0, 0, src.width, src.height))
            qa = src.read(1, window=window)
        np.bincount(cc.decode(qa, plan.qa_encoding).ravel(), minlength=1024)

    if threads == 1:
        for plan in plans:
            one(plan)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, plans))


def many_items(items: list[Any], n: int) -> list[Any]:
    """``n`` items cycling over ``items``, each a distinct date of the same scene."""
    out = []
    for k in range(n):
        clone = items[k % len(items)].clone()
        clone.id = f"{clone.id}-{k}"
        clone.datetime = clone.datetime.replace(microsecond=k % 1000000)
        out.append(clone)
    return out


def speckle(base: Path, out: Path, fraction: float, seed: int = 0) -> None:
    """A copy of the catalog in ``base`` whose QA COGs have ``fraction`` of their valid
    pixels replaced by random codes drawn from the same file (same COG layout)."""
    import shutil

    import rasterio

    t0 = time.perf_counter()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(base, partial, ignore=shutil.ignore_patterns("truth"))
    rng = np.random.default_rng(seed)
    for path in sorted(p for p in partial.rglob("*") if p.suffix in (".tif", ".TIF")):
        with rasterio.open(path) as src:
            data = src.read(1)
            profile = src.profile
        valid = data != profile["nodata"]
        codes = np.unique(data[valid])
        flip = valid & (rng.random(data.shape) < fraction)
        data[flip] = rng.choice(codes, size=int(flip.sum()))
        with rasterio.open(
            path,
            "w",
            driver="COG",
            width=profile["width"],
            height=profile["height"],
            count=1,
            dtype=profile["dtype"],
            crs=profile["crs"],
            transform=profile["transform"],
            nodata=profile["nodata"],
            compress="DEFLATE",
            blocksize=profile["blockxsize"],
            overview_resampling="nearest",
        ) as dst:
            dst.write(data, 1)
    partial.rename(out)
    print(
        f"# speckled the QA COGs ({fraction:g} of valid pixels) in {time.perf_counter() - t0:.0f} s"
    )


@dataclass
class Job:
    """The benchmark's inputs: items (hrefs local or over HTTP), their plans and the grid."""

    items: list[Any]
    plans: list[ScenePlan]
    bbox: tuple[float, float, float, float]
    geobox: Any
    chunk: int


def setup(args: argparse.Namespace, work: Path, dates: int = 0) -> Job:
    """The catalog's items (over HTTP with ``--base-url``), the AOI grid (always from every
    item, so that ``--sensor`` runs share it), then the ``--sensor`` subset, cycled to
    ``dates`` items when given."""
    items = list(cc.search(source=str(work / "catalog.json")))
    if args.base_url is not None:
        for item in items:
            for asset in item.assets.values():
                rel = Path(asset.get_absolute_href() or asset.href).relative_to(work)
                asset.href = f"{args.base_url}/{rel.as_posix()}"
    plans = [p for p in plan_items(items) if isinstance(p, ScenePlan)]
    bbox = aoi_box(plans, args.aoi_km)
    geobox = output_geobox(plans, bbox=bbox)
    if args.sensor != "all":
        items = [i for i in items if str(i.collection_id).startswith(args.sensor)]
    if dates:
        items = many_items(items, dates)
    plans = [p for p in plan_items(items) if isinstance(p, ScenePlan)]
    return Job(items, plans, bbox, geobox, args.chunk)


def clearcube_run(job: Job, engine: str) -> Callable[[], Any]:
    cfg = cc.MaskConfig()

    def run() -> None:
        ds = cc.load(
            job.items,
            bbox=job.bbox,
            options=cc.LoadOptions(bands=(), engine=engine, chunks=job.chunk),
            mask=cfg,
        )
        cc.cloud_fraction(ds)

    return run


def direct(job: Job, library: str) -> Callable[[], Any]:
    """odc-stac or stackstac used as their users would: load the QA band lazily on the grid,
    decode, count (GDAL options as clearcube's; nearest resampling; the encoding's fill)."""
    gdal = gdal_options()
    py = [item.clone() for item in job.items]
    for item in py:
        item.make_asset_hrefs_absolute()  # stackstac reads hrefs as written
        code = item.properties.get("proj:code")
        if library == "stackstac" and code and "proj:epsg" not in item.properties:
            item.properties["proj:epsg"] = int(str(code).split(":")[1])  # stackstac 0.5
    geobox = job.geobox
    box = geobox.extent.boundingbox

    def lazy(sel: list[Any], asset: str, dtype: str, fill: int) -> Any:
        if library == "odc":
            import odc.stac

            odc.stac.configure_rio(cloud_defaults=False, **gdal)
            ds = odc.stac.load(
                sel,
                bands=[asset],
                geobox=geobox,
                groupby="id",
                preserve_original_order=True,
                resampling="nearest",
                dtype=dtype,
                nodata=fill,
                chunks={"time": 1, "y": job.chunk, "x": job.chunk},
            )
            return ds[asset].data
        import stackstac
        from rasterio.enums import Resampling

        arr = stackstac.stack(
            sel,
            assets=[asset],
            epsg=geobox.crs.epsg,
            resolution=abs(geobox.resolution.x),
            bounds=(box.left, box.bottom, box.right, box.top),
            snap_bounds=False,
            resampling=Resampling.nearest,
            chunksize=(1, 1, job.chunk, job.chunk),
            dtype=np.dtype(dtype),
            fill_value=np.dtype(dtype).type(fill),
            rescale=False,
            xy_coords="center",
            sortby_date=False,
            properties=False,
            band_coords=False,
            gdal_env=stackstac.DEFAULT_GDAL_ENV.updated(always=dict(gdal)),
        )
        return arr.isel(band=0).data

    def run() -> None:
        import dask

        parts = []
        for enc, asset, dtype in (
            ("s2-scl", "scl", "uint8"),
            ("landsat-qa-pixel", "qa_pixel", "uint16"),
        ):
            sel = [i for i in py if asset in i.assets]
            if not sel:
                continue
            flags = cc.decode(lazy(sel, asset, dtype, get_encoding(enc).fill), enc)
            parts.append(
                flags.map_blocks(
                    counts,
                    drop_axis=[1, 2],
                    new_axis=[1],
                    chunks=(flags.chunks[0], (1024,)),
                    dtype=np.int64,
                )
            )
        dask.compute(*parts)

    return run


APPROACHES: dict[str, Callable[[Job], Callable[[], Any]]] = {
    "floor": lambda job: lambda: floor_run(job.plans, job.geobox, threads=os.cpu_count() or 1),
    "floor-1": lambda job: lambda: floor_run(job.plans, job.geobox),
    "odc-stac": lambda job: direct(job, "odc"),
    "stackstac": lambda job: direct(job, "stackstac"),
    "clearcube-odc": lambda job: clearcube_run(job, "odc"),
    "clearcube-native": lambda job: clearcube_run(job, "native"),
}
LABELS = {
    "floor": f"floor: read+decode windows, {os.cpu_count()} thr",
    "floor-1": "  the same floor on 1 thread",
    "odc-stac": "odc-stac used directly",
    "stackstac": "stackstac used directly",
    "clearcube-odc": "clearcube engine=odc",
    "clearcube-native": "clearcube engine=native",
}


def probe(args: argparse.Namespace, work: Path) -> None:
    """In this fresh process: run one approach and print its peak resident memory above the
    resident memory before it (MB). A one-item run first pays the one-off costs (imports,
    GDAL's and clearcube's caches) without warming the allocator with the job itself; Linux's
    peak counter is reset in between."""
    job = setup(args, work, dates=args.dates[0])
    APPROACHES[args.probe](Job(job.items[:1], job.plans[:1], job.bbox, job.geobox, job.chunk))()
    fn = APPROACHES[args.probe](job)
    clear_vsicurl_cache()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (Linux >= 4.0)
    before = psutil.Process().memory_info().rss
    fn()
    status = Path("/proc/self/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    print(f"{max(0, hwm_kb * 1024 - before) / 1e6:.0f}")


def peak_mb(args: argparse.Namespace, name: str, dates: int) -> str:
    """Peak resident memory above the post-setup level of one run in a fresh process."""
    import subprocess
    import sys

    cmd = [sys.executable, __file__, "--probe", name, "--dates", str(dates)]
    cmd += ["--scale", str(args.scale), "--workdir", args.workdir, "--chunk", str(args.chunk)]
    cmd += ["--aoi-km", str(args.aoi_km), "--sensor", args.sensor, "--speckle", str(args.speckle)]
    if args.base_url:
        cmd += ["--base-url", args.base_url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=21)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--aoi-km", type=float, default=50.0)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--workdir", default="/tmp/clearcube-bench")
    ap.add_argument(
        "--dates",
        type=int,
        nargs="+",
        default=[13, 52, 208],
        help="numbers of dates for the peak-memory sweep",
    )
    ap.add_argument(
        "--http", action="store_true", help="read the COGs from nginx on loopback (Range requests)"
    )
    ap.add_argument(
        "--speckle",
        type=float,
        default=0.0,
        help="replace this share of valid QA pixels by other codes of the same file, so the "
        "COGs compress less (the generator's classes are smoother than real ones)",
    )
    ap.add_argument(
        "--sensor",
        choices=["all", "sentinel-2", "landsat"],
        default="all",
        help="only the items of one sensor (on the same grid)",
    )
    ap.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="with --http: delay every HTTP request by this much (a distant object store)",
    )
    ap.add_argument("--probe", choices=sorted(APPROACHES), help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    args = ap.parse_args()

    work = Path(args.workdir) / f"scale{args.scale}"
    if args.speckle:
        work = work.with_name(f"{work.name}-speckle{args.speckle:g}")
    if args.probe:
        probe(args, work)
        return
    base = Path(args.workdir) / f"scale{args.scale}"
    if not (base / "catalog.json").exists():
        t0 = time.perf_counter()
        generate_demo(base, scale=args.scale, qa_only=True)
        print(f"# generated the catalog in {time.perf_counter() - t0:.0f} s")
    if args.speckle and not (work / "catalog.json").exists():
        speckle(base, work, args.speckle)
    with contextlib.ExitStack() as stack:
        if args.http or args.latency_ms:
            import sys
            import tempfile

            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.servers.nginx import Nginx

            server = Nginx(work, Path(tempfile.mkdtemp(prefix="clearcube-bench-nginx-")))
            server.start()
            stack.callback(server.stop)
            args.base_url = f"{server.url}/data"
            if args.latency_ms:
                from latency import LatencyProxy

                proxy = stack.enter_context(LatencyProxy("127.0.0.1", server.port, args.latency_ms))
                args.base_url = f"http://127.0.0.1:{proxy.port}/data"
        report(args, work)


def _source(args: argparse.Namespace) -> str:
    if args.latency_ms:
        return f"over HTTP (nginx) with {args.latency_ms:g} ms per request"
    return "over HTTP (nginx)" if args.base_url else "from disk"


def report(args: argparse.Namespace, work: Path) -> None:
    job = setup(args, work)
    geobox, plans = job.geobox, job.plans
    pixels = geobox.shape.x * geobox.shape.y
    print(
        f"# {platform.python_version()} {platform.machine()}, {os.cpu_count()} cores; "
        f"dask threads; {len(plans)} items; grid {geobox.shape.y}x{geobox.shape.x} "
        f"@{geobox.resolution.x:g} m ({geobox.crs.epsg}); chunk {args.chunk}; "
        f"median of {args.repeat}; sensor {args.sensor}; speckle {args.speckle:g}; "
        f"COGs read {_source(args)}"
    )
    sizes = sorted({p.qa_grid.shape_yx for p in plans})
    raw = sum(np.prod(p.qa_grid.shape_yx) * np.dtype(p.qa_dtype).itemsize for p in plans)
    packed = 0 if args.base_url else sum(Path(p.qa_href).stat().st_size for p in plans)
    ratio = f"; DEFLATE ratio {raw / packed:.0f}:1" if packed else ""
    print(f"# source QA sizes: {sizes}{ratio}")

    results = {}
    print(f"\n{'approach':<40}{'median s':>10}{'x floor':>9}{'Mpx/s':>8}{'peak MB':>9}")
    for name, factory in APPROACHES.items():
        sec = timed(factory(job), args.repeat)
        results[name] = sec
        print(
            f"{LABELS[name]:<40}{sec:>10.2f}{sec / results['floor']:>9.2f}"
            f"{len(plans) * pixels / sec / 1e6:>8.0f}{peak_mb(args, name, len(plans)):>9}"
        )
    print(
        f"\nclearcube odc / odc-stac direct: {results['clearcube-odc'] / results['odc-stac']:.2f}"
    )
    print(f"odc-stac direct / native: {results['odc-stac'] / results['clearcube-native']:.2f}")
    print(f"stackstac direct / native: {results['stackstac'] / results['clearcube-native']:.2f}")

    print(f"\n{'graph build':<30}{'items':>7}{'seconds':>9}{'ms/item':>9}")
    for n in (12, 120, 1200, 12000):
        many = many_items(job.items, n)
        for engine in ("native", "odc"):
            if engine == "odc" and n > 1200:
                continue
            t0 = time.perf_counter()
            cc.load(
                many,
                bbox=job.bbox,
                options=cc.LoadOptions(bands=(), engine=engine, chunks=args.chunk),
            )
            sec = time.perf_counter() - t0
            print(f"{'load(engine=' + engine + ')':<30}{n:>7}{sec:>9.2f}{1000 * sec / n:>9.2f}")

    # Peak memory against the number of dates (the same scenes repeated as further dates),
    # each run in a fresh process.
    print(f"\n{'peak MB vs dates':<30}" + "".join(f"{n:>8}" for n in args.dates))
    for name in ("clearcube-native", "clearcube-odc", "odc-stac"):
        cells = "".join(f"{peak_mb(args, name, n):>8}" for n in args.dates)
        print(f"{LABELS[name]:<30}{cells}")


if __name__ == "__main__":
    main()
