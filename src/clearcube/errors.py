"""One exception hierarchy for clearcube.

Every error derives from :class:`ClearcubeError` and also from the matching builtin, so callers
that catch ``ValueError`` or ``OSError`` keep working. Messages are one line: what was wrong, on
which item or file, and how to fix it.
"""

from __future__ import annotations

# the scrubber lives in .scrub; its two functions stay importable from here, where error
# messages are built
from .scrub import scrub_href, scrub_message

__all__ = [
    "AssetReadError",
    "CatalogError",
    "ClearcubeError",
    "ClearcubeWarning",
    "ConfigError",
    "GridError",
    "ItemError",
    "QAError",
    "RunFailed",
    "scrub_href",
    "scrub_message",
]


class ClearcubeError(Exception):
    """Root of every error raised by clearcube."""


class ConfigError(ClearcubeError, ValueError):
    """A configuration value (MaskConfig, TOML file, CLI option) is invalid."""


class QAError(ClearcubeError, ValueError):
    """A QA array cannot be decoded as asked (wrong encoding, dtype or values)."""


class CatalogError(ClearcubeError, OSError):
    """A catalog or STAC API cannot be searched (unreachable, malformed, refused)."""


class ItemError(ClearcubeError, ValueError):
    """One STAC item cannot be used (missing QA asset, unknown sensor, bad metadata)."""


class AssetReadError(ClearcubeError, OSError):
    """The pixels of one asset of one item cannot be read (HTTP error, corrupt file).

    ``cause`` holds the reader's own message (GDAL's, for a COG), scrubbed.
    """

    def __init__(self, message: str, *, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class RunFailed(ClearcubeError, RuntimeError):
    """A run finished its products but must report failure (``fallback = "fail"`` and a scene
    that could not be judged)."""


class GridError(ClearcubeError, ValueError):
    """An output grid cannot be built from the request (CRS, resolution, extent)."""


class ClearcubeWarning(UserWarning):
    """Root of every warning emitted by clearcube."""
