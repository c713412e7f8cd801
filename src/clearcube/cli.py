"""The command line: a thin layer over the Python API (``clearcube --help``).

stdout carries only a command's result (a table, or with ``--json`` exactly one JSON
document), so ``clearcube run --json | python -m json.tool`` works; progress, logs, notes and
errors go to stderr (:mod:`clearcube._cli_output`). Only the command line configures
:mod:`logging` (``-v``, ``--log-file``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from . import __version__
from ._cli_evidence import bundle_cmd, review_cmd
from ._cli_output import configure_logging, logging_options, remove_handlers, stdout_reserved
from .errors import ClearcubeError
from .scrub import scrub_href, scrub_text, scrub_value

_F = TypeVar("_F", bound=Callable[..., Any])

log = logging.getLogger(__name__)

_VERSIONED = (
    "numpy",
    "xarray",
    "dask",
    "rasterio",
    "pyproj",
    "pystac",
    "pystac-client",
    "odc-stac",
    "odc-geo",
    "pydantic",
    "click",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="clearcube")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@logging_options
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """clearcube: cloud-masked, grid-aligned datacubes from STAC catalogs."""
    ctx.obj = {"debug": debug}


@cli.command("show-versions")
def show_versions() -> None:
    """Print clearcube's, Python's, GDAL's and the main dependencies' versions."""
    import platform
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    click.echo(f"clearcube: {__version__}")
    click.echo(f"python: {sys.version.split()[0]} ({platform.platform()})")
    for name in _VERSIONED:
        try:
            click.echo(f"{name}: {dist_version(name)}")
        except PackageNotFoundError:
            click.echo(f"{name}: not installed")
    try:
        import rasterio

        click.echo(f"gdal: {rasterio.__gdal_version__}")
    except ImportError:  # pragma: no cover
        click.echo("gdal: not available")


def _table(rows: list[dict[str, str]], columns: list[str]) -> str:
    widths = {
        c: max(len(c), *(len(r.get(c, "")) for r in rows)) if rows else len(c) for c in columns
    }
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def _aoi_option(what: str) -> Callable[[_F], _F]:
    return click.option(
        "--aoi",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="FILE",
        help="A GeoJSON area (Polygon, MultiPolygon, Feature or FeatureCollection in lon/lat) "
        + what
        + ".",
    )


def _one_area(bbox: Sequence[float] | None, aoi: str | None) -> None:
    if bbox and aoi:
        raise click.UsageError("give --bbox or --aoi, not both")


@cli.command("search")
@click.option(
    "--bbox",
    nargs=4,
    type=float,
    default=None,
    metavar="W S E N",
    help="Area in degrees (west south east north).",
)
@_aoi_option("instead of --bbox: its bounding box is searched")
@click.option(
    "--datetime",
    "when",
    default=None,
    metavar="A/B",
    help="A year, month, day or RFC 3339 time, or an interval of them "
    "(2023, 2023-08/.., ../2023-08-14).",
)
@click.option(
    "--source",
    default="earth-search",
    show_default=True,
    help="Provider name, STAC API URL, catalog.json or ItemCollection file, or 'demo'.",
)
@click.option("--collections", default=None, help="Comma-separated collection ids.")
@click.option("--max-cloud", type=float, default=None, help="Upper bound of eo:cloud_cover (%).")
@click.option("--limit", type=int, default=None, help="At most this many items.")
@click.option(
    "--save",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the result as an ItemCollection JSON (e.g. catalogs/my-aoi.json).",
)
@click.option(
    "--allow-host",
    "allow_host",
    multiple=True,
    metavar="HOST",
    help="Only read catalogs, links and redirects on this host (repeatable; default: any host).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@logging_options
def search_cmd(
    bbox: tuple[float, float, float, float] | None,
    aoi: str | None,
    when: str | None,
    source: str,
    collections: str | None,
    max_cloud: float | None,
    limit: int | None,
    save: str | None,
    allow_host: tuple[str, ...],
    as_json: bool,
) -> None:
    """Find scenes and show what clearcube inferred for each (QA asset, CRS)."""
    import json

    from .catalog import geometry_bbox, read_aoi, search, source_policy
    from .sensors.plan import Fallback, plan_items

    _one_area(bbox, aoi)
    with stdout_reserved():
        area = geometry_bbox(read_aoi(aoi)) if aoi else (bbox or None)
        found = search(
            bbox=area,
            datetime=when,
            collections=[c.strip() for c in collections.split(",")] if collections else None,
            source=source,
            max_cloud=max_cloud,
            limit=limit,
            allowed_hosts=allow_host,
        )
        rows = []
        hrefs = source_policy(source, allow_host)
        for item, plan in zip(found, plan_items(found, hrefs=hrefs), strict=True):
            cloud = item.properties.get("eo:cloud_cover")
            row = {
                "id": item.id,
                "datetime": item.datetime.isoformat() if item.datetime else "",
                "platform": str(item.properties.get("platform", "")),
                "cloud": f"{cloud:.2f}" if type(cloud) in (int, float) else "",  # junk: blank
            }
            if isinstance(plan, Fallback):
                row.update(qa="-", crs="-", fallback=plan.reason)
            else:
                row.update(
                    qa=f"{plan.qa_asset} ({plan.qa_encoding})",
                    crs=str(plan.crs or "?"),
                    fallback="",
                )
            rows.append(row)
        if save:
            from pathlib import Path

            Path(save).parent.mkdir(parents=True, exist_ok=True)
            for item in found:
                item.make_asset_hrefs_absolute()  # the saved file must read from anywhere
            Path(save).write_text(json.dumps(found.to_dict(transform_hrefs=False), indent=1))
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    click.echo(_table(rows, ["id", "datetime", "platform", "cloud", "qa", "crs"]))
    for row in rows:
        if row["fallback"]:
            click.echo(f"fallback: {row['fallback']}", err=True)
    click.echo(f"{len(rows)} item(s)" + (f"; saved to {save}" if save else ""), err=True)


@cli.command("inspect")
@click.argument("item_or_id")
@click.option(
    "--source",
    default=None,
    help="Where to look an id up (default: the default config's source, 'demo').",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@logging_options
def inspect_cmd(item_or_id: str, source: str | None, as_json: bool) -> None:
    """Show what inference resolved for one item: a STAC item file or URL, or an item id."""
    with stdout_reserved():
        info = _inspect(item_or_id, source)
    if as_json:
        import json

        click.echo(json.dumps(info, indent=1))
    else:
        for key, value in info.items():
            click.echo(f"{key}: {value}")


def _inspect(item_or_id: str, source: str | None) -> dict[str, Any]:
    import pystac

    from .errors import ItemError
    from .sensors.plan import identify

    if os.path.exists(item_or_id) or "://" in item_or_id:
        item = pystac.Item.from_file(item_or_id)
    else:
        from .catalog import search
        from .runconfig import default_config_path, load_run_config

        where = source or load_run_config(default_config_path()).search.source
        found = (
            [i for i in search(source=where, query=None, limit=None) if i.id == item_or_id]
            if "://" not in where or where.endswith(".json")
            else list(search(source=where, query={"id": {"eq": item_or_id}}, limit=1))
        )
        if not found:
            raise ItemError(
                f"{item_or_id}: no such item in {scrub_href(where)}; give a file, URL or id"
            )
        item = found[0]
    plan = identify(item)
    info = {
        "id": plan.id,
        "sensor": plan.sensor,
        "platform": plan.platform,
        "collection": plan.collection,
        "datetime": plan.datetime.isoformat(),
        "qa_asset": plan.qa_asset,
        "qa_encoding": plan.qa_encoding,
        "crs": plan.crs,
        "qa_resolution": plan.res_yx,
        "processing_baseline": plan.processing_baseline,
        "offset_source": plan.offset_source,
        "offset_conflict": plan.offset_conflict,
        "bands": {
            k: {
                "asset": b.asset,
                "scale": b.scale,
                "offset": b.offset,
                "nodata": b.nodata,
                "offset_source": b.offset_source,
            }
            for k, b in plan.bands.items()
        },
    }
    return info


@cli.command("run")
@click.option(
    "--config",
    "config_path",
    default=None,
    metavar="TOML|NAME",
    help="Run config TOML, or a packaged config name: default (the demo, offline), humid-tropics.",
)
@click.option(
    "--bbox", nargs=4, type=float, default=None, metavar="W S E N", help="Override [search].bbox."
)
@_aoi_option("overriding [search].bbox/aoi: fractions are counted inside it")
@click.option(
    "--datetime",
    "when",
    default=None,
    metavar="A/B",
    help="Override [search].datetime (2023, 2023-08/.., RFC 3339 ...).",
)
@click.option("--source", default=None, help="Override [search].source.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder (default out/<run-id>).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="A dask.distributed scheduler address to compute on.",
)
@click.option("--overwrite", is_flag=True, help="Replace a run of another config in --out.")
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    help="Ed25519 private key (PKCS8 PEM) that signs the audit trail "
    "(default $CLEARCUBE_SIGNING_KEY; `clearcube keys new` makes one).",
)
@click.option(
    "--allow-host",
    "allow_host",
    multiple=True,
    metavar="HOST",
    help="Also allow this host for the catalog, links, asset hrefs and redirects "
    "(repeatable; adds to [search] allowed_hosts).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document: run id, output folder, counts and the scene table.",
)
@logging_options
def run_cmd(
    config_path: str | None,
    bbox: tuple[float, ...] | None,
    aoi: str | None,
    when: str | None,
    source: str | None,
    out: str | None,
    scheduler: str | None,
    overwrite: bool,
    signing_key: str | None,
    allow_host: tuple[str, ...],
    quiet: bool,
    as_json: bool,
) -> None:
    """Search, mask, composite and write auditable products (the demo catalog by default)."""
    import json

    from .job import run
    from .runconfig import load_run_config

    _one_area(bbox, aoi)
    with stdout_reserved():
        cfg = load_run_config(config_path or "default")
        cfg = cfg.with_overrides(
            search={
                "bbox": bbox or None,
                "aoi": os.path.abspath(aoi) if aoi else None,
                "datetime": when,
                "source": source,
                "allowed_hosts": (*cfg.search.allowed_hosts, *allow_host) if allow_host else None,
            }
        )
        log.info("run %s into %s", cfg.digest()[:12], out or f"out/{cfg.digest()[:12]}")
        result = run(
            cfg,
            out=out,
            overwrite=overwrite,
            scheduler=scheduler,
            progress=not quiet,
            signing_key=signing_key,
        )
        scenes = result.scenes
        counts = {str(k): int(v) for k, v in scenes["decision"].value_counts().items()}
    if as_json:
        cols = [
            c
            for c in (
                "id",
                "time",
                "sensor",
                "cloud_fraction",
                "provider_cloud_cover",
                "decision",
                "reason",
            )
            if c in scenes
        ]
        doc = {
            "run_id": result.run_id,
            "out_dir": str(result.out_dir),
            "summary": {"scenes": len(scenes), "decisions": dict(sorted(counts.items()))},
            "reused": result.reused,
            "audit_head": result.audit_head,
            "scenes": json.loads(scenes[cols].to_json(orient="records", date_format="iso")),
        }
        click.echo(json.dumps(scrub_value(doc), indent=1))
        return
    click.echo(
        f"run {result.run_id}: {len(scenes)} scenes ("
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + ")"
    )
    if result.reused:
        click.echo(f"resumed: reused {', '.join(result.reused)}")
    click.echo(f"products in {result.out_dir}/ (catalog.json, report.html, audit.jsonl)")


@cli.command("verify")
@click.argument("out_dir", type=click.Path(exists=True))
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="PUB",
    help="The producer's public key (PEM), obtained from them: also check who signed the run.",
)
def verify_cmd(out_dir: str, public_key: str | None) -> None:
    """Re-check a run folder or an evidence bundle (its zip or extracted folder): the audit
    chain (and its signature, with --public-key), every recorded file, the STAC checksums, no
    unrecorded files, a bundle's manifest. Exit 1 if anything is wrong, 2 if OUT_DIR is not a
    run folder or bundle."""
    from .errors import ConfigError
    from .verification import verify

    try:
        result = verify(out_dir, public_key=public_key)
    except ConfigError as exc:  # not a run folder, or not a public key: bad usage
        click.echo(str(exc), err=True)
        sys.exit(2)
    if not result.ok:
        for problem in result.problems:
            click.echo(problem, err=True)
        click.echo(f"verify failed: {len(result.problems)} problem(s) in {out_dir}", err=True)
        sys.exit(1)
    first, *rest = result.summary()
    click.echo(f"ok: {first}")
    for line in rest:
        click.echo(line)


@cli.group("keys")
def keys_group() -> None:
    """Ed25519 keys that sign audit trails (the private key stays with the producer; the public
    key goes to verifiers)."""


@keys_group.command("new")
@click.argument("folder", type=click.Path(file_okay=False))
def keys_new(folder: str) -> None:
    """Write a new key pair into FOLDER: clearcube-signing.pem (private, mode 0600) and
    clearcube-signing.pub.pem (public)."""
    from .products.signing import ENV_SIGNING_KEY, new_key_pair

    pair = new_key_pair(folder)
    click.echo(f"private key: {pair.private} (keep it secret; sign with {ENV_SIGNING_KEY})")
    click.echo(f"public key:  {pair.public} (give it to verifiers: verify --public-key)")
    click.echo(f"fingerprint: {pair.fingerprint}")


@keys_group.command("fingerprint")
@click.argument("key", type=click.Path(exists=True, dir_okay=False))
def keys_fingerprint(key: str) -> None:
    """Print the fingerprint of a public (or private) key PEM, as audit trails record it."""
    from .products.signing import load_public_key

    click.echo(load_public_key(key).fingerprint)


@cli.command("composite")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--period",
    default="yearly",
    show_default=True,
    type=click.Choice(["monthly", "quarterly", "yearly", "all"]),
)
@click.option(
    "--method", default="median", show_default=True, type=click.Choice(["median", "medoid"])
)
@click.option(
    "--dest",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the COGs (default OUT_DIR/composites-<method>-<period>).",
)
@logging_options
def composite_cmd(out_dir: str, period: str, method: str, dest: str | None) -> None:
    """Composite the used scenes of a finished run's masked cube into COGs."""
    with stdout_reserved():
        folder, count = _composite(out_dir, period, method, dest)
    click.echo(f"{count} composite(s) in {folder}")


def _composite(out_dir: str, period: str, method: str, dest: str | None) -> tuple[Any, int]:
    from pathlib import Path

    import xarray as xr
    from odc.geo.xr import assign_crs

    from .compositing import composite
    from .products.composites import write_composite_folder

    cube = xr.open_zarr(Path(out_dir) / "cube.zarr", consolidated=False)
    crs = cube["spatial_ref"].attrs.get("crs_wkt")
    cube = assign_crs(cube, crs)
    from .layout import RunLayout
    from .review import composite_positions, resolutions

    positions = composite_positions(
        [str(v) for v in cube["id"].values],
        [str(v) for v in cube["decision"].values],
        resolutions(RunLayout(Path(out_dir)).audit),
        Path(out_dir),
    )
    used = cube.isel(time=positions)
    # the store lists variables in no fixed order: put bands in spectral order
    canonical = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")
    bands = [b for b in canonical if b in used.data_vars]
    comp = composite(used, period=period, method=method, bands=bands).compute()
    folder = Path(dest) if dest else Path(out_dir) / f"composites-{method}-{period}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder, write_composite_folder(comp, used, folder, method=method, bands=bands)


cli.add_command(review_cmd)
cli.add_command(bundle_cmd)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: one-line errors on stderr, exit 1 on failure, 2 on bad
    usage (``argv`` defaults to the process's arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if not debug:
        import warnings

        warnings.filterwarnings("ignore", category=UserWarning, module="zarr")
    levels = [(lg, lg.level) for lg in (logging.getLogger(), logging.getLogger("clearcube"))]
    configure_logging(0, None)
    try:
        code = cli.main(args=args, prog_name="clearcube", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path if exc.ctx else 'clearcube'} --help')"
        _fail(exc.format_message().replace("\n", " ") + where, exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message().replace("\n", " "), exc.exit_code)
    except ClearcubeError as exc:
        if debug:
            raise
        _fail(str(exc), 1)
    except Exception as exc:
        if debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else ""
        _fail(f"{type(exc).__name__}: {message} (--debug shows the traceback)", 1)
    finally:
        remove_handlers()  # and the levels as they were: main() may run inside a host
        for logger, level in levels:
            logger.setLevel(level)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    """One line on stderr (the log file records it too), scrubbed of secrets, then exit with
    ``code``."""
    message = scrub_text(message)
    log.error("%s", message, extra={"file_only": True})
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
