"""The command line: a thin layer over the Python API (``clearcube --help``)."""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import ClearcubeError

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


@cli.command("search")
@click.option(
    "--bbox",
    nargs=4,
    type=float,
    default=None,
    metavar="W S E N",
    help="Area in degrees (west south east north).",
)
@click.option(
    "--datetime",
    "when",
    default=None,
    metavar="A/B",
    help="RFC 3339 instant or interval, open ends '..' allowed.",
)
@click.option(
    "--source",
    default="earth-search",
    show_default=True,
    help="Provider name, STAC API URL, catalog.json or ItemCollection file.",
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def search_cmd(
    bbox: tuple[float, float, float, float] | None,
    when: str | None,
    source: str,
    collections: str | None,
    max_cloud: float | None,
    limit: int | None,
    save: str | None,
    as_json: bool,
) -> None:
    """Find scenes and show what clearcube inferred for each (QA asset, CRS)."""
    import json

    from .catalog import search
    from .sensors.plan import Fallback, plan_items

    found = search(
        bbox=bbox or None,
        datetime=when,
        collections=collections.split(",") if collections else None,
        source=source,
        max_cloud=max_cloud,
        limit=limit,
    )
    rows = []
    for item, plan in zip(found, plan_items(found), strict=True):
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
                qa=f"{plan.qa_asset} ({plan.qa_encoding})", crs=str(plan.crs or "?"), fallback=""
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
    help="Where to look an id up (default: the default config's source, the demo).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def inspect_cmd(item_or_id: str, source: str | None, as_json: bool) -> None:
    """Show what inference resolved for one item: a STAC item file or URL, or an item id."""
    import json
    import os

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
            raise ItemError(f"{item_or_id}: no such item in {where}; give a file, URL or id")
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
    if as_json:
        click.echo(json.dumps(info, indent=1))
    else:
        for key, value in info.items():
            click.echo(f"{key}: {value}")


@cli.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Run config TOML (default: configs/default.toml, the demo).",
)
@click.option(
    "--bbox", nargs=4, type=float, default=None, metavar="W S E N", help="Override [search].bbox."
)
@click.option("--datetime", "when", default=None, metavar="A/B", help="Override [search].datetime.")
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
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the scene table as JSON.")
def run_cmd(
    config_path: str | None,
    bbox: tuple[float, ...] | None,
    when: str | None,
    source: str | None,
    out: str | None,
    scheduler: str | None,
    overwrite: bool,
    signing_key: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Search, mask, composite and write auditable products (the demo catalog by default)."""
    from .run import run
    from .runconfig import default_config_path, load_run_config

    cfg = load_run_config(config_path or default_config_path())
    cfg = cfg.with_overrides(search={"bbox": bbox or None, "datetime": when, "source": source})
    result = run(
        cfg,
        out=out,
        overwrite=overwrite,
        scheduler=scheduler,
        progress=not quiet,
        signing_key=signing_key,
    )
    scenes = result.scenes
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
        click.echo(scenes[cols].to_json(orient="records", date_format="iso"))
    else:
        counts = scenes["decision"].value_counts().to_dict()
        click.echo(
            f"run {result.run_id}: {len(scenes)} scenes ("
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + ")"
        )
        if result.reused:
            click.echo(f"resumed: reused {', '.join(result.reused)}")
        click.echo(f"products in {result.out_dir}/ (catalog.json, report.html, audit.jsonl)")


@cli.command("verify")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="PUB",
    help="The producer's public key (PEM), obtained from them: also check who signed the run.",
)
def verify_cmd(out_dir: str, public_key: str | None) -> None:
    """Re-check a run folder: the audit chain (and its signature, with --public-key), every
    recorded file, the STAC checksums, no unrecorded files. Exit 1 if anything is wrong, 2 if
    OUT_DIR is not a run folder."""
    from .errors import ConfigError
    from .verify import verify

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
def composite_cmd(out_dir: str, period: str, method: str, dest: str | None) -> None:
    """Composite the used scenes of a finished run's masked cube into COGs."""
    from pathlib import Path

    import xarray as xr
    from odc.geo.xr import assign_crs

    from .composite import composite
    from .products.cog import write_cog

    cube = xr.open_zarr(Path(out_dir) / "cube.zarr", consolidated=False)
    crs = cube["spatial_ref"].attrs.get("crs_wkt")
    cube = assign_crs(cube, crs)
    used = cube.isel(time=[i for i, d in enumerate(cube["decision"].values) if d == "used"])
    # the store lists variables in no fixed order: put bands in spectral order
    canonical = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")
    bands = [b for b in canonical if b in used.data_vars]
    comp = composite(used, period=period, method=method, bands=bands).compute()
    folder = Path(dest) if dest else Path(out_dir) / f"composites-{method}-{period}"
    for label in comp["period"].values:
        one = assign_crs(comp.sel(period=label), crs)
        write_cog(
            [one[b] for b in bands],
            folder / f"{method}_{label}.tif",
            nodata=float("nan"),
            descriptions=bands,
        )
        write_cog(
            [one["clear_count"]], folder / f"clear_count_{label}.tif", descriptions=["clear_count"]
        )
    click.echo(f"{len(comp['period'])} composite(s) in {folder}")


def main() -> None:
    """Console-script entry point: one-line errors, exit 1 on failure, 2 on bad usage."""
    debug = "--debug" in sys.argv[1:]
    if not debug:
        import warnings

        warnings.filterwarnings("ignore", category=UserWarning, module="zarr")
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ClearcubeError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            f"error: {type(exc).__name__}: {message} (--debug shows the traceback)", err=True
        )
        sys.exit(1)
    sys.exit(0)
