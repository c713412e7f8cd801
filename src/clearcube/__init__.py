"""clearcube: cloud-masked, grid-aligned, lazy datacubes from STAC catalogs.

The public API is re-exported here; see the README for a first example. Names are imported
on first use, so ``import clearcube`` (and ``clearcube --version``) stays fast: numpy, dask,
rasterio and the engines load only when something needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .catalog import search
    from .compositing import composite
    from .config import MaskConfig, load_config
    from .cube import load
    from .errors import (
        CatalogError,
        ClearcubeError,
        ClearcubeWarning,
        ConfigError,
        GridError,
        ItemError,
        QAError,
        RunFailed,
    )
    from .flags import Flag
    from .job import RunResult, run
    from .runconfig import LoadOptions, RunConfig, load_run_config
    from .sensors import ENCODINGS, decode, is_clear, qa60_uninformative
    from .sensors.plan import Fallback, ScenePlan, identify
    from .stats import cloud_fraction
    from .verification import verify

#: Where each public name lives.
_HOMES = {
    "ENCODINGS": ".sensors",
    "CatalogError": ".errors",
    "ClearcubeError": ".errors",
    "ClearcubeWarning": ".errors",
    "ConfigError": ".errors",
    "Fallback": ".sensors.plan",
    "Flag": ".flags",
    "GridError": ".errors",
    "ItemError": ".errors",
    "LoadOptions": ".runconfig",
    "MaskConfig": ".config",
    "QAError": ".errors",
    "RunConfig": ".runconfig",
    "RunFailed": ".errors",
    "RunResult": ".job",
    "ScenePlan": ".sensors.plan",
    "cloud_fraction": ".stats",
    "composite": ".compositing",
    "decode": ".sensors",
    "identify": ".sensors.plan",
    "is_clear": ".sensors",
    "load": ".cube",
    "load_config": ".config",
    "load_run_config": ".runconfig",
    "qa60_uninformative": ".sensors",
    "run": ".job",
    "search": ".catalog",
    "verify": ".verification",
}

__all__ = [
    "CatalogError",
    "ClearcubeError",
    "ClearcubeWarning",
    "ConfigError",
    "ENCODINGS",
    "Fallback",
    "Flag",
    "GridError",
    "ItemError",
    "LoadOptions",
    "MaskConfig",
    "QAError",
    "RunConfig",
    "RunFailed",
    "RunResult",
    "ScenePlan",
    "__version__",
    "cloud_fraction",
    "composite",
    "decode",
    "identify",
    "is_clear",
    "load",
    "load_config",
    "load_run_config",
    "qa60_uninformative",
    "run",
    "search",
    "verify",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'clearcube' has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
