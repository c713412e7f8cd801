"""clearcube: cloud-masked, grid-aligned, lazy datacubes from STAC catalogs.

The public API is re-exported here; see the README for a first example.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .catalog import search
from .composite import composite
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
from .run import RunResult, run
from .runconfig import LoadOptions, RunConfig, load_run_config
from .sensors import ENCODINGS, decode, is_clear, qa60_uninformative
from .sensors.plan import Fallback, ScenePlan, identify
from .stats import cloud_fraction
from .verify import verify

try:
    __version__ = version("clearcube")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "ENCODINGS",
    "CatalogError",
    "ClearcubeError",
    "ClearcubeWarning",
    "ConfigError",
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
