"""What identification needs to know about a sensor family, as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class SensorFamily:
    """Asset naming and radiometry of one sensor family across providers.

    Attributes
    ----------
    name
        ``"sentinel-2"``, ``"landsat"`` or ``"hls"``.
    qa_keys
        ``(asset key, encoding)`` candidates in order of preference; keys match
        case-insensitively and with or without a file extension (``QA_PIXEL.TIF``).
    band_keys
        Canonical band name -> candidate asset keys, in order of preference.
    scale, offset, nodata
        Reflectance = DN * scale + offset where the item says nothing; ``nodata`` of the bands.
    qa_nodata
        The QA band's fill value per encoding.
    never_qa
        Asset keys that look like QA but are not cloud masks (e.g. Landsat ``qa`` = ST_QA).
    aux_qa
        ``(asset key, encoding)`` of further QA layers whose flags are added to the mask's
        where the item has them (Landsat QA_RADSAT: saturated pixels).
    """

    name: str
    qa_keys: tuple[tuple[str, str], ...]
    band_keys: Mapping[str, tuple[str, ...]]
    scale: float
    offset: float
    nodata: float
    qa_nodata: Mapping[str, int]
    qa_dtype: Mapping[str, str]
    never_qa: tuple[str, ...] = field(default=())
    aux_qa: tuple[tuple[str, str], ...] = field(default=())


@lru_cache(maxsize=4096)
def key_base(key: str) -> str:
    """The form asset keys are compared in: lower case, without a raster file extension.

    Cached: the same few dozen keys recur in every item of a search."""
    lower = key.lower()
    return lower.rsplit(".", 1)[0] if lower.endswith((".tif", ".tiff", ".jp2")) else lower


def key_matches(candidate: str, key: str) -> bool:
    """``QA_PIXEL.TIF`` matches ``qa_pixel``; ``B04`` matches ``b04``."""
    return key_base(key) == candidate.lower()
