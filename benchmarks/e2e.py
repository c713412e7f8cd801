"""The whole job, `clearcube run` against the odc-stac script a user would write for it.

    python benchmarks/e2e.py [--data /tmp/clearcube-e2e-data] [--work /tmp/clearcube-e2e]
                             [--dates 8] [--aoi-km 25] [--repeat 3]
                             [--modes local http latency] [--latency-ms 20]

The job: the Sentinel-2 L2A scenes of a cloudy series over an area of interest, masked with
SCL (clearcube's default ``MaskConfig``), a cloud fraction per scene over its valid pixels,
scenes over 30 % dropped, the masked cube of red and nir written to Zarr and the per-year
median of the kept scenes written to COGs, on one 10 m grid in EPSG:32721.

The data (``benchmarks/_e2e_data.py``) are generated once into ``--data`` (outside the
repository; reused while its manifest matches): ``--dates`` passes over two overlapping
full-size MGRS tiles, so 2 x ``--dates`` scenes (SCL 5490 px, B04/B08 10980 px, COGs like
Earth Search's). The area of interest, ``--aoi-km`` wide, is centred on the tiles' overlap.

The two sides, each run in a fresh process (so GDAL's caches start cold), alternately:

- ``clearcube run --config FILE --out DIR --quiet``, the public command line, with a config
  for this job (``clearcube.toml`` in the work folder; the routing rules the script has no
  equivalent of, the provider cross-check and the outlier screen, are turned off);
- ``benchmarks/_e2e_odc.py``, the same job written with ``odc.stac.load``, dask and xarray.

Modes: ``local`` reads the files from disk (page cache warm for both, after a first untimed
run of each side under strace that counts the bytes and read calls on the COGs); ``http``
serves the same folder (catalog included) from nginx on loopback, whose access log gives the
bytes and requests; ``latency`` adds ``--latency-ms`` per request through
``benchmarks/latency.py``. Each mode checks that both sides kept the same scenes with the same
fractions and wrote the same composites (and, in the first mode, the same masked cube):
>= 99.9 % of pixels equal within 1e-6 reflectance. Printed: median wall time of ``--repeat``
runs (min-max) and CPU time (user + system, steadier than wall time on a shared machine; the
load average at the start of each run is printed too), bytes and requests split QA /
reflectance / catalog, the peak resident set of the process, and the ratios clearcube /
script; ``results.json`` in the work folder keeps every run's figures.

A quick run (about a minute once the data exist): ``--repeat 1 --modes local --aoi-km 10``.
The full run: the defaults (about 12 minutes to generate the data once, then 15-30 minutes,
depending on the machine's load).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import _e2e_data as data  # noqa: E402

SIDES = ("clearcube", "odc-stac")
LABELS = {"clearcube": "clearcube run", "odc-stac": "odc-stac script"}
KINDS = ("qa", "reflectance", "catalog", "other")
RESOLUTION_M = 10.0
THRESHOLD = 0.30
PERIOD = "2023-01-01/2024-12-31"
EQUAL_ATOL = 1e-6  # a hundredth of a DN
MIN_EQUAL_SHARE = 0.999


def kind_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1].split("?", 1)[0]
    if name == "SCL.tif":
        return "qa"
    if name in ("B04.tif", "B08.tif"):
        return "reflectance"
    if name.endswith(".json"):
        return "catalog"
    return "other"


@dataclass
class Run:
    """One run of one side: wall time, peak resident set, bytes and requests by kind."""

    wall_s: float
    rss_mb: float
    cpu_s: float = 0.0  # user + system time of the process (less noisy on a shared machine)
    load: float = 0.0  # the machine's 1-minute load average when the run started
    bytes_by_kind: dict[str, int] = field(default_factory=dict)
    requests_by_kind: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    distinct_by_kind: dict[str, int] = field(default_factory=dict)  # HTTP: bytes of the union


# ------------------------------------------------------------------------------ the job


def aoi_bbox(spec: data.Spec, km: float) -> tuple[float, float, float, float]:
    """A lon/lat box ``km`` wide centred on the tiles' overlap."""
    from pyproj import Transformer

    x, y = spec.overlap_centre()
    lon, lat = Transformer.from_crs(data.CRS, "EPSG:4326", always_xy=True).transform(x, y)
    half_lat = km / 2 / 111.32
    half_lon = half_lat / np.cos(np.radians(lat))
    west, south, east, north = lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat
    return (round(float(west), 6), round(south, 6), round(float(east), 6), round(north, 6))


def write_config(path: Path, source: str, bbox: tuple[float, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""# clearcube run config of benchmarks/e2e.py (written by it)
[search]
source = {json.dumps(source)}
bbox = [{", ".join(f"{v:.6f}" for v in bbox)}]
datetime = "{PERIOD}"
collections = ["sentinel-2-l2a"]

[load]
engine = "native"
bands = ["red", "nir"]

[composite]
period = "yearly"
method = "median"

[mask]
crs = "{data.CRS}"
resolution = {RESOLUTION_M}
cloud_threshold = {THRESHOLD}
# routing rules the odc-stac script has no equivalent of, off: the cross-check against the
# tile's eo:cloud_cover (no gap can exceed 100 points) and the outlier screen
review_margin_pp = 100.0
outlier_z = 1000000.0
"""
    )


def commands(source: str, config: Path, bbox: tuple[float, ...], work: Path) -> dict[str, Any]:
    """Per side: (command, output folder)."""
    exe = Path(sys.executable).parent / "clearcube"
    clearcube = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from clearcube.cli import main; main()"]
    )
    script = [sys.executable, str(HERE / "_e2e_odc.py"), "--catalog", source]
    script += ["--bbox", *(f"{v:.6f}" for v in bbox), "--datetime", PERIOD]
    script += ["--crs", data.CRS, "--resolution", f"{RESOLUTION_M:g}"]
    script += ["--threshold", f"{THRESHOLD:g}"]
    outs = {side: work / side for side in SIDES}
    return {
        "clearcube": (
            [
                *clearcube,
                "run",
                "--config",
                str(config),
                "--out",
                str(outs["clearcube"]),
                "--quiet",
            ],
            outs["clearcube"],
        ),
        "odc-stac": ([*script, "--out", str(outs["odc-stac"])], outs["odc-stac"]),
    }


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    paths = env.get("PYTHONPATH", "").split(os.pathsep)
    if src not in paths:
        env["PYTHONPATH"] = os.pathsep.join(p for p in [src, *paths] if p)
    return env


def spawn(
    cmd: list[str], log: Path, *, prefix: list[str] | None = None
) -> tuple[float, float, float]:
    """Run ``cmd`` in a fresh process; (wall seconds, peak resident set in MB, CPU seconds)."""
    t0 = time.perf_counter()
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [*(prefix or []), *cmd], stdout=fh, stderr=subprocess.STDOUT, env=child_env()
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise SystemExit(f"failed ({code}): {shlex.join(cmd)}\n{tail}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # maxrss: KiB


# ------------------------------------------------------------------------------ measuring

_TRACE_LINE = re.compile(r"^\w+\(\d+<([^>]*)>.*\)\s+=\s+(\d+)")


def traced(cmd: list[str], log: Path, folder: Path) -> Run:
    """One untimed run under strace: the bytes the process read from the input files and the
    number of read calls it made on them (read/pread64/readv/preadv)."""
    trace = Path(tempfile.mkdtemp(prefix="clearcube-e2e-strace-"))
    try:
        prefix = ["strace", "-f", "-ff", "-qq", "-y", "-s", "0", "--seccomp-bpf"]
        prefix += ["-e", "trace=read,pread64,readv,preadv,preadv2", "-o", str(trace / "t")]
        spawn(cmd, log, prefix=prefix)
        run = Run(0.0, 0.0, bytes_by_kind=dict.fromkeys(KINDS, 0))
        run.requests_by_kind = dict.fromkeys(KINDS, 0)
        for part in trace.iterdir():
            for line in part.read_text(errors="replace").splitlines():
                m = _TRACE_LINE.match(line)
                if m is None or not m.group(1).startswith(f"{folder}/"):
                    continue
                k = kind_of(m.group(1))
                run.bytes_by_kind[k] += int(m.group(2))
                run.requests_by_kind[k] += 1
        return run
    finally:
        shutil.rmtree(trace, ignore_errors=True)


def _distinct(ranges: dict[str, list[tuple[int, int]]]) -> int:
    """Bytes in the union of the half-open byte ranges of each file."""
    total = 0
    for spans in ranges.values():
        end = -1
        for a, b in sorted(spans):
            if b > end:
                total += b - max(a, end)
                end = b
    return total


def served(server: Any) -> Run:
    """Bytes, requests (by kind), distinct bytes and statuses in nginx's access log since it
    was cleared."""
    previous = -1
    for _ in range(50):  # nginx logs a request after its response left: wait for the last
        found = server.requests()
        if len(found) == previous:
            break
        previous = len(found)
        time.sleep(0.1)
    run = Run(0.0, 0.0, bytes_by_kind=dict.fromkeys(KINDS, 0))
    run.requests_by_kind = dict.fromkeys(KINDS, 0)
    spans: dict[str, dict[str, list[tuple[int, int]]]] = {k: {} for k in KINDS}
    for r in found:
        if r.path == "/healthz":
            continue
        k = kind_of(r.path)
        run.bytes_by_kind[k] += r.bytes_sent
        run.requests_by_kind[k] += 1
        run.statuses[r.status] = run.statuses.get(r.status, 0) + 1
        mine = spans[k].setdefault(r.path, [])
        if r.status == 206 and r.range.startswith("bytes="):
            for part in r.range.removeprefix("bytes=").split(","):
                first, _, last = part.partition("-")
                mine.append((int(first), int(last) + 1))
        else:
            mine.append((0, r.bytes_sent))
    run.distinct_by_kind = {k: _distinct(spans[k]) for k in KINDS}
    return run


# ------------------------------------------------------------------------------ checking


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= EQUAL_ATOL
    return np.asarray(both_nan | close)


def check_outputs(outs: dict[str, Path], *, cube: bool) -> list[str]:
    """Compare both sides' products; lines to print, failures marked MISMATCH."""
    import pandas as pd
    import rasterio

    lines = []
    cc = pd.read_csv(outs["clearcube"] / "scenes.csv").set_index("id")
    sc = pd.read_csv(outs["odc-stac"] / "fractions.csv").set_index("id")
    same_ids = set(cc.index) == set(sc.index)
    gap = float((cc.loc[sc.index, "cloud_fraction"] - sc["cloud_fraction"]).abs().max())
    used = set(cc.index[cc["decision"] == "used"])
    kept = set(sc.index[sc["kept"]])
    ok = same_ids and gap < 1e-9 and used == kept
    lines.append(
        f"{'ok' if ok else 'MISMATCH'}: {len(sc)} scenes, fractions differ by at most {gap:.1e}; "
        f"{len(kept)} kept by the script, {len(used)} used by clearcube"
        + ("" if used == kept else f" (differ: {sorted(used ^ kept)})")
    )
    for median in sorted(outs["odc-stac"].glob("median_*.tif")):
        year = median.stem.split("_")[-1]
        pairs = [
            (median, outs["clearcube"] / "composites" / f"median_{year}.tif"),
            (
                outs["odc-stac"] / f"clear_count_{year}.tif",
                outs["clearcube"] / "composites" / f"clear_count_{year}.tif",
            ),
        ]
        for mine, theirs in pairs:
            if not theirs.exists():
                lines.append(f"MISMATCH: clearcube wrote no {theirs.name}")
                continue
            with rasterio.open(mine) as a, rasterio.open(theirs) as b:
                grid_ok = (a.crs == b.crs) and (a.transform == b.transform) and (a.shape == b.shape)
                if not grid_ok or a.count != b.count:
                    lines.append(
                        f"MISMATCH: {theirs.name}: grid {b.shape} {tuple(b.transform)[:6]} vs "
                        f"{a.shape} {tuple(a.transform)[:6]}, {b.count} vs {a.count} bands"
                    )
                    continue
                x, y = a.read().astype(np.float64), b.read().astype(np.float64)
            share = float(_equal(x, y).mean())
            good = share >= MIN_EQUAL_SHARE
            lines.append(
                f"{'ok' if good else 'MISMATCH'}: {theirs.name}: {100 * share:.4f} % of "
                f"{x.size} values equal; grid {a.shape[0]}x{a.shape[1]} identical"
            )
    if cube:
        lines.append(_check_cube(outs))
    return lines


def _check_cube(outs: dict[str, Path]) -> str:
    """The masked cubes agree: clear flags for every scene, reflectance for the scenes
    clearcube used (it reads no reflectance for the scenes its screen excluded, which the
    script keeps in its cube, masked)."""
    import xarray as xr

    a = xr.open_zarr(outs["odc-stac"] / "cube.zarr")
    b = xr.open_zarr(outs["clearcube"] / "cube.zarr", consolidated=False)
    where = {str(v): i for i, v in enumerate(b["id"].values)}
    equal = total = clear_equal = clear_total = 0
    for i, scene in enumerate(a["id"].values):
        j = where.get(str(scene))
        if j is None:
            return f"MISMATCH: cube.zarr: {scene} missing from clearcube's cube"
        used = "decision" not in b or str(b["decision"].values[j]) == "used"
        for band in ("red", "nir") if used else ():
            x = a[band].isel(time=i).values.astype(np.float64)
            y = b[band].isel(time=j).values.astype(np.float64)
            equal += int(_equal(x, y).sum())
            total += x.size
        c = a["clear"].isel(time=i).values == b["clear"].isel(time=j).values
        clear_equal += int(c.sum())
        clear_total += c.size
    share, clear_share = equal / total, clear_equal / clear_total
    good = share >= MIN_EQUAL_SHARE and clear_share >= MIN_EQUAL_SHARE
    return (
        f"{'ok' if good else 'MISMATCH'}: cube.zarr: {100 * share:.4f} % of {total} masked "
        f"reflectance values and {100 * clear_share:.4f} % of clear flags equal"
    )


# ------------------------------------------------------------------------------ modes


@contextlib.contextmanager
def serving(mode: str, folder: Path, latency_ms: float) -> Iterator[tuple[str, Any]]:
    """(catalog source, nginx or None) for a mode."""
    if mode == "local":
        yield str(folder / "catalog.json"), None
        return
    sys.path.insert(0, str(ROOT))
    from tests.servers.nginx import Nginx

    server = Nginx(folder, Path(tempfile.mkdtemp(prefix="clearcube-e2e-nginx-")))
    server.start()
    try:
        if mode == "http":
            yield f"{server.url}/data/catalog.json", server
            return
        from latency import LatencyProxy

        with LatencyProxy("127.0.0.1", server.port, latency_ms) as proxy:
            yield f"http://127.0.0.1:{proxy.port}/data/catalog.json", server
    finally:
        server.stop()
        shutil.rmtree(server.work, ignore_errors=True)


def run_mode(
    mode: str, args: argparse.Namespace, folder: Path, bbox: tuple[float, ...], first: bool
) -> dict[str, list[Run]]:
    work = Path(args.work) / mode
    runs: dict[str, list[Run]] = {side: [] for side in SIDES}
    with serving(mode, folder, args.latency_ms) as (source, server):
        config = work / "clearcube.toml"
        write_config(config, source, bbox)
        cmds = commands(source, config, bbox, work)
        print(f"\n## {describe(mode, args)}")
        for side in SIDES:
            print(f"# {LABELS[side]}: {shlex.join(cmds[side][0])}")
        counted: dict[str, Run] = {}
        if mode == "local" and not args.no_strace:
            for side in SIDES:  # also warms the page cache for both sides
                cmd, out = cmds[side]
                shutil.rmtree(out, ignore_errors=True)
                counted[side] = traced(cmd, work / f"{side}-strace.log", folder)
        for rep in range(args.repeat):
            order = SIDES if rep % 2 == 0 else SIDES[::-1]
            for side in order:
                cmd, out = cmds[side]
                shutil.rmtree(out, ignore_errors=True)
                if server is not None:
                    server.clear_log()
                load = os.getloadavg()[0]
                wall, rss, cpu = spawn(cmd, work / f"{side}-{rep}.log")
                run = Run(wall, rss, cpu, load)
                if server is not None:
                    got = served(server)
                    run.bytes_by_kind, run.requests_by_kind = (
                        got.bytes_by_kind,
                        got.requests_by_kind,
                    )
                    run.statuses, run.distinct_by_kind = got.statuses, got.distinct_by_kind
                elif side in counted:
                    run.bytes_by_kind = counted[side].bytes_by_kind
                    run.requests_by_kind = counted[side].requests_by_kind
                runs[side].append(run)
                print(
                    f"#   run {rep + 1} {LABELS[side]}: {wall:.1f} s, {cpu:.1f} s CPU, "
                    f"{rss:.0f} MB (load average {load:.1f} at start)"
                )
        for line in check_outputs({s: cmds[s][1] for s in SIDES}, cube=first and args.check_cube):
            print(f"# {line}")
            if line.startswith("MISMATCH"):
                args.failed = True
    table(mode, runs)
    return runs


def describe(mode: str, args: argparse.Namespace) -> str:
    if mode == "local":
        how = (
            "no byte counts" if args.no_strace else "bytes and read calls: strace of one extra run"
        )
        return f"local files (page cache warm; {how})"
    if mode == "http":
        return "HTTP from nginx on loopback (bytes and requests: nginx's access log)"
    return f"HTTP from nginx on loopback with {args.latency_ms:g} ms per request"


def table(mode: str, runs: dict[str, list[Run]]) -> None:
    unit = "reads" if mode == "local" else "requests"
    head = f"{'':<18}{'wall s':>8}{'(min-max)':>14}{'CPU s':>7}{'QA MB':>9}{'refl MB':>9}"
    head += f"{'cat MB':>8}"
    print(f"\n{head}{unit:>10}{'peak RSS MB':>13}")
    med: dict[str, dict[str, float]] = {}
    for side in SIDES:
        rs = runs[side]
        walls = [r.wall_s for r in rs]
        m = {
            "wall": statistics.median(walls),
            "cpu": statistics.median(r.cpu_s for r in rs),
            "rss": statistics.median(r.rss_mb for r in rs),
            "qa": statistics.median(r.bytes_by_kind.get("qa", 0) for r in rs) / 1e6,
            "refl": statistics.median(r.bytes_by_kind.get("reflectance", 0) for r in rs) / 1e6,
            "cat": statistics.median(r.bytes_by_kind.get("catalog", 0) for r in rs) / 1e6,
            "req": statistics.median(sum(r.requests_by_kind.values()) for r in rs),
        }
        med[side] = m
        spread = f"({min(walls):.1f}-{max(walls):.1f})"
        counted = bool(rs[0].bytes_by_kind)
        cells = (
            f"{m['qa']:>9.1f}{m['refl']:>9.1f}{m['cat']:>8.2f}{m['req']:>10.0f}"
            if counted
            else f"{'-':>9}{'-':>9}{'-':>8}{'-':>10}"
        )
        print(
            f"{LABELS[side]:<18}{m['wall']:>8.1f}{spread:>14}{m['cpu']:>7.1f}{cells}"
            f"{m['rss']:>13.0f}"
        )
    a, b = med["clearcube"], med["odc-stac"]

    def ratio(key: str, width: int) -> str:
        return f"{a[key] / b[key]:>{width}.2f}" if b[key] else f"{'-':>{width}}"

    print(
        f"{'clearcube/script':<18}{ratio('wall', 8)}{'':>14}{ratio('cpu', 7)}{ratio('qa', 9)}"
        f"{ratio('refl', 9)}"
        f"{ratio('cat', 8)}{ratio('req', 10)}{ratio('rss', 13)}"
    )
    if runs["clearcube"][0].distinct_by_kind:
        parts = []
        for side in SIDES:
            r = runs[side][-1]
            times = {
                k: r.bytes_by_kind[k] / r.distinct_by_kind[k]
                for k in ("qa", "reflectance")
                if r.distinct_by_kind.get(k)
            }
            qa_mb = r.distinct_by_kind["qa"] / 1e6
            refl_mb = r.distinct_by_kind["reflectance"] / 1e6
            parts.append(
                f"{LABELS[side]} QA {times.get('qa', 0):.2f}x of {qa_mb:.1f} MB, "
                f"reflectance {times.get('reflectance', 0):.2f}x of {refl_mb:.1f} MB"
            )
        print("# bytes sent per distinct byte (last run): " + "; ".join(parts))
    statuses: dict[int, int] = {}
    for side in SIDES:
        for r in runs[side]:
            for code, n in r.statuses.items():
                statuses[code] = statuses.get(code, 0) + n
    if statuses and set(statuses) - {200, 206}:
        print(f"# HTTP statuses: {dict(sorted(statuses.items()))}")


# ------------------------------------------------------------------------------ main


def _version(name: str) -> str:
    try:
        return dist_version(name)
    except Exception:
        return "?"


def environment() -> str:
    import psutil
    import rasterio

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        commit += "+changes" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    libs = ", ".join(
        f"{n} {_version(n)}" for n in ("odc-stac", "odc-geo", "dask", "xarray", "numpy", "zarr")
    )
    return (
        f"# {platform.python_version()} {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; GDAL {rasterio.__gdal_version__}; "
        f"clearcube {_version('clearcube')} at {commit}; {libs}; dask threaded scheduler, "
        "one fresh process per run"
    )


def describe_data(manifest: dict[str, Any], generated: bool, spec: data.Spec) -> None:
    files: dict[str, int] = manifest["files"]
    raw = {"qa": spec.scl_px**2, "reflectance": 2 * spec.tile_px**2}
    packed: dict[str, int] = {}
    count: dict[str, int] = {}
    for rel, size in files.items():
        k = kind_of(rel)
        packed[k] = packed.get(k, 0) + size
        count[k] = count.get(k, 0) + 1
    when = "generated now" if generated else f"reused (generated {manifest['created']})"
    print(
        f"# data: {2 * spec.dates} scenes on 2 tiles, {sum(files.values()) / 1e9:.2f} GB in "
        f"{len(files)} files; {when}, generation took {manifest['seconds']:.0f} s"
    )
    for k, label in (("qa", "SCL"), ("reflectance", "B04+B08")):
        ratio = raw[k] * count[k] / packed[k]
        print(
            f"#   {label}: {count[k]} COGs, {packed[k] / 1e6:.0f} MB, "
            f"{packed[k] / count[k] / 1e6:.1f} MB each, DEFLATE ratio {ratio:.1f}:1 "
            "(with overviews)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/clearcube-e2e-data", help="data cache folder")
    ap.add_argument("--work", default="/tmp/clearcube-e2e", help="outputs and logs")
    ap.add_argument("--dates", type=int, default=8, help="passes (2 scenes each)")
    ap.add_argument("--tile-px", type=int, default=10980, help="10 m pixels per tile side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--aoi-km", type=float, default=25.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--modes",
        nargs="+",
        choices=["local", "http", "latency"],
        default=["local", "http", "latency"],
    )
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--no-strace", action="store_true", help="local: skip the counting runs")
    ap.add_argument(
        "--no-check-cube",
        dest="check_cube",
        action="store_false",
        help="skip comparing the two Zarr cubes pixel by pixel",
    )
    args = ap.parse_args()
    args.failed = False
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    spec = data.Spec(dates=args.dates, tile_px=args.tile_px, seed=args.seed)
    folder = Path(args.data).resolve() / f"dates{spec.dates}-px{spec.tile_px}-seed{spec.seed}"
    if data.check(spec, folder) is None:
        print(f"# generating {2 * spec.dates} scenes into {folder} ...", flush=True)
    manifest, generated = data.ensure(spec, folder)
    print(f"# {shlex.join([Path(sys.executable).name, *sys.argv])}")
    env = environment()
    print(env)
    describe_data(manifest, generated, spec)
    bbox = aoi_bbox(spec, args.aoi_km)
    print(
        f"# job: AOI {args.aoi_km:g} km across the tiles' overlap, bbox {list(bbox)}; "
        f"grid {data.CRS} at {RESOLUTION_M:g} m; SCL classes 1 3 8 9 10 masked; threshold "
        f"{THRESHOLD:.0%}; yearly median; {args.repeat} runs per side and mode, alternating"
    )
    results: dict[str, Any] = {"argv": sys.argv, "environment": env, "bbox": bbox, "modes": {}}
    for i, mode in enumerate(args.modes):
        runs = run_mode(mode, args, folder, bbox, first=i == 0)
        results["modes"][mode] = {side: [asdict(r) for r in rs] for side, rs in runs.items()}
        # every figure of every run so far, for later comparison
        (Path(args.work) / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    if args.failed:
        raise SystemExit("the two sides disagree (MISMATCH above)")


if __name__ == "__main__":
    main()
