"""Where a band's reflectance scale and offset come from, and what disagrees with the choice.

Sentinel-2 (the precedence of :func:`sentinel2_radiometry`; provider facts in DESIGN.md
"Radiometry"):

1. ``earthsearch:boa_offset_applied: true`` (Earth Search v1; ``sentinel:boa_offset_applied``
   in v0): the provider removed BOA_ADD_OFFSET from the pixels, so the offset is 0 whatever
   ``raster:bands`` says; a ``raster:bands`` offset or a baseline rule that says otherwise is
   recorded as a conflict (both fields are known to be wrong on some items, earth-search#9,
   #66, #71: the pixel check downstream decides, the plan says what it followed).
2. The offset the item's raster metadata states (``raster:bands`` v1, ``raster:offset`` v2).
3. The processing-baseline rule: -0.1 from baseline 04.00, else 0.
4. The acquisition-date rule (from 25 January 2022), always recorded as a conflict: it misses
   older scenes reprocessed at 05.xx.

Landsat and HLS: the raster metadata, else the family's profile (USGS and LP DAAC fix them);
metadata that differs from the profile is recorded.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import sentinel2
from ._family import SensorFamily

__all__ = ["Baseline", "OffsetFlag", "Radiometry", "profile_radiometry", "sentinel2_radiometry"]

_CUTOFF = dt.datetime.fromisoformat(sentinel2.BASELINE_04_DATE).replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Baseline:
    """A Sentinel-2 processing baseline and the field it was read from."""

    text: str
    version: tuple[int, int]
    source: str


@dataclass(frozen=True)
class OffsetFlag:
    """An Earth Search "offset already applied" flag as the item states it."""

    key: str
    applied: bool


@dataclass(frozen=True)
class Radiometry:
    """reflectance = DN * scale + offset, where the offset came from, what disagrees."""

    scale: float
    offset: float
    source: str
    conflict: str | None


def _differs(a: float, b: float) -> bool:
    return not math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)


def sentinel2_radiometry(
    fields: Mapping[str, Any],
    *,
    family: SensorFamily,
    flag: OffsetFlag | None,
    baseline: Baseline | None,
    when: dt.datetime,
    remarks: tuple[str, ...] = (),
) -> Radiometry:
    """Scale and offset of one Sentinel-2 band by the precedence in the module docstring.

    ``fields`` are the band's usable raster fields; ``remarks`` (ignored offset metadata,
    e.g. a flag that is not a bool) join whatever conflict the decision records.
    """
    scale = float(fields.get("scale", family.scale))
    stated = fields.get("offset")
    rule = None
    named = ""
    if baseline is not None:
        rule = sentinel2.BOA_OFFSET if baseline.version >= sentinel2.BASELINE_04 else 0.0
        named = baseline.text
    conflicts = list(remarks)
    if flag is not None and flag.applied:
        against = []
        if stated is not None and _differs(stated, 0.0):
            against.append(f"the raster metadata offset is {stated:g}")
        if rule is not None and _differs(rule, 0.0):
            against.append(f"baseline {named} implies {rule:g}")
        if against:
            conflicts.append(f"{flag.key} is true (offset 0) but {' and '.join(against)}")
        return Radiometry(scale, 0.0, flag.key, "; ".join(conflicts) or None)
    if stated is not None:
        if rule is not None and _differs(stated, rule):
            conflicts.append(
                f"the raster metadata offset is {stated:g} but baseline {named} implies {rule:g}"
            )
        return Radiometry(scale, float(stated), "item-metadata", "; ".join(conflicts) or None)
    if rule is not None:
        return Radiometry(scale, rule, "baseline-rule", "; ".join(conflicts) or None)
    offset = sentinel2.BOA_OFFSET if when >= _CUTOFF else 0.0
    conflicts.append(
        "no usable processing baseline in the item: offset from the acquisition date (misses "
        "reprocessed 05.xx scenes)"
    )
    return Radiometry(scale, offset, "date-rule", "; ".join(conflicts))


def profile_radiometry(fields: Mapping[str, Any], family: SensorFamily) -> Radiometry:
    """Scale and offset of a Landsat or HLS band: the raster metadata, else the profile."""
    scale = float(fields.get("scale", family.scale))
    offset = float(fields.get("offset", family.offset))
    source = "item-metadata" if "offset" in fields else "provider-profile"
    differs = [
        f"{name} {stated:g}"
        for name, stated, profile in (
            ("scale", scale, family.scale),
            ("offset", offset, family.offset),
        )
        if name in fields and _differs(stated, profile)
    ]
    conflict = None
    if differs:
        conflict = (
            f"the raster metadata states {' and '.join(differs)} but the {family.name} profile "
            f"is scale {family.scale:g} offset {family.offset:g}"
        )
    return Radiometry(scale, offset, source, conflict)
