"""The files shipped inside the package: the run configs and the demo catalog.

They live under ``src/clearcube/`` (``configs/*.toml``, ``catalogs/demo/``) and are found with
:mod:`importlib.resources`, so ``clearcube run`` works the same from a clone, an editable
install or an installed wheel, from any folder.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import ConfigError

__all__ = ["DEMO_SOURCE", "config_names", "config_path", "demo_catalog_path"]

#: The search source name of the packaged demo catalog (``clearcube search --source demo``).
DEMO_SOURCE = "demo"


def _package_dir() -> Path:
    root = files("clearcube")
    # rasterio and the catalog walk need real files: an unzipped install has them
    if not isinstance(root, Path):
        raise ConfigError(
            f"clearcube is installed as an archive ({root}); install it unzipped "
            "(pip install clearcube) to use the packaged configs and demo catalog"
        )
    return root


def config_names() -> tuple[str, ...]:
    """Names of the packaged run configs (``default``, ``humid-tropics``, ...)."""
    return tuple(sorted(p.stem for p in (_package_dir() / "configs").glob("*.toml")))


def config_path(name: str = "default") -> Path:
    """The path of a packaged run config by name (``"default"`` runs the demo, offline).

    Raises
    ------
    ConfigError
        No packaged config has that name (the message lists the names).
    """
    path = _package_dir() / "configs" / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(
            f"no packaged config named {name!r}; packaged configs: {', '.join(config_names())}, "
            "or give the path of a TOML file"
        )
    return path


def demo_catalog_path() -> Path:
    """The ``catalog.json`` of the packaged demo catalog (source name ``"demo"``)."""
    return _package_dir() / "catalogs" / "demo" / "catalog.json"
