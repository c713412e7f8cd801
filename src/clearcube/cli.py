"""The command line: a thin layer over the Python API (``clearcube --help``)."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

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


def main() -> None:
    """Console-script entry point: one-line errors, exit 1 on failure, 2 on bad usage."""
    debug = "--debug" in sys.argv[1:]
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
    sys.exit(0)
