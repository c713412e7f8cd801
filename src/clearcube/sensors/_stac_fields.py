"""Reading the fields of one STAC item defensively, for :mod:`clearcube.sensors.plan`.

Every reader returns a clean value or None. A field that is present but unusable (a string
where a number belongs, a transform of 3 numbers, a CRS code "abc") is never guessed at: the
reader returns None and appends one line to ``notes`` saying what it ignored, so the plan can
carry it into the audit trail. Fields a plan cannot do without (the datetime) raise
:class:`~clearcube.errors.ItemError` instead.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ItemError

__all__ = [
    "Notes",
    "band_labels",
    "bbox_of",
    "crs_of",
    "datetime_of",
    "finite_number",
    "integral",
    "label",
    "nodata_of",
    "raster_fields",
    "shape_of",
    "show",
    "transform_of",
    "utm_slip",
]

Notes = list[str]

#: ``data_type`` values of the STAC raster extension.
DATA_TYPES = frozenset(
    [
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "cint16",
        "cint32",
        "cfloat32",
        "cfloat64",
        "other",
    ]
)


def show(value: Any) -> str:
    """A short one-line repr of ``value`` for messages."""
    try:
        text = " ".join(repr(value).split())
    except Exception:  # a repr that fails is itself junk; name its type only
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def label(text: str) -> str:
    """A name from the item (asset key, collection) fit for a one-line message."""
    return text if text.isprintable() and len(text) <= 60 else show(text)


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float when it is an int or float (not a bool), else None."""
    if type(value) is float:  # the common case first: JSON numbers
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) else None


def integral(value: Any) -> int | None:
    """An int from an int, an integral float or a string of digits; else None."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    number = finite_number(value)
    if number is None or number != int(number):
        return None
    return int(number)


def nodata_of(value: Any) -> float | None:
    """A raster-extension nodata: a number, or the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "-inf", "+inf"):
        return float(value.strip().lower())
    number = finite_number(value)
    return number


def crs_of(obj: Mapping[str, Any], where: str, notes: Notes) -> str | None:
    """The CRS an object (asset or properties) states, as ``"EPSG:n"`` where possible.

    ``proj:code`` (projection v2) first, then ``proj:epsg`` (v1). A value that is not a CRS
    code is ignored with a note; ``null`` means "no EPSG code" in the extension and is silent.
    """
    code = obj.get("proj:code")
    if code is not None:
        text = code.strip() if isinstance(code, str) else ""
        if text.upper().startswith("EPSG:"):
            number = integral(text[5:])
            if number is not None and number > 0:
                return f"EPSG:{number}"
        elif re.fullmatch(r"[A-Za-z][\w.-]*:\w+", text):
            return text  # another authority (IAU_2015:30100, ESRI:54009)
        notes.append(f"{where} proj:code {show(code)} is not a CRS code (ignored)")
    epsg = obj.get("proj:epsg")
    if epsg is not None:
        number = integral(epsg)
        if number is not None and number > 0:
            return f"EPSG:{number}"
        notes.append(f"{where} proj:epsg {show(epsg)} is not an EPSG code (ignored)")
    return None


def shape_of(value: Any, where: str, notes: Notes) -> tuple[int, int] | None:
    """``proj:shape``: two positive integers (rows, columns)."""
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        rows, cols = integral(value[0]), integral(value[1])
        if rows is not None and cols is not None and rows > 0 and cols > 0:
            return (rows, cols)
    notes.append(f"{where} proj:shape {show(value)} is not two positive integers (ignored)")
    return None


def transform_of(
    value: Any, where: str, notes: Notes
) -> tuple[float, float, float, float, float, float] | None:
    """``proj:transform``: 6 numbers (or 9 ending in 0, 0, 1) of an invertible affine map."""
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (6, 9):
        numbers = [finite_number(v) for v in value]
        if all(n is not None for n in numbers):
            a, b, c, d, e, f = (float(n) for n in numbers[:6] if n is not None)
            last_row = tuple(numbers[6:]) in ((), (0.0, 0.0, 1.0))
            if last_row and a * e - b * d != 0:
                return (a, b, c, d, e, f)
    notes.append(
        f"{where} proj:transform {show(value)} is not 6 numbers of an invertible affine "
        "transform (ignored)"
    )
    return None


def raster_fields(asset: Mapping[str, Any], where: str, notes: Notes) -> dict[str, Any]:
    """nodata, data_type, scale, offset from raster v1 (``raster:bands``) or v2 (STAC 1.1).

    Only usable values are returned: numbers for scale/offset/nodata, a raster-extension type
    name for data_type; anything else is left out with a note.
    """
    out: dict[str, Any] = {}
    bands = asset.get("raster:bands")
    first = bands[0] if isinstance(bands, list) and bands else None
    if bands is not None and not isinstance(first, Mapping):
        notes.append(f"{where} raster:bands {show(bands)} is not a list of objects (ignored)")
        first = None
    v1 = {key: key for key in ("nodata", "data_type", "scale", "offset")}
    v2 = {
        "nodata": "nodata",
        "data_type": "data_type",
        "scale": "raster:scale",
        "offset": "raster:offset",
    }
    sources: list[tuple[Mapping[str, Any], dict[str, str], str]] = [(asset, v2, "")]
    if isinstance(first, Mapping):
        sources.insert(0, (first, v1, "raster:bands[0]."))
    for obj, names, prefix in sources:
        for key, name in names.items():
            if key in out or obj.get(name) is None:
                continue
            raw = obj[name]
            if key == "data_type":
                value: Any = raw if isinstance(raw, str) and raw in DATA_TYPES else None
            elif key == "nodata":
                value = nodata_of(raw)
            else:
                value = finite_number(raw)
            if value is None:
                notes.append(f"{where} {prefix}{name} {show(raw)} is not usable (ignored)")
            else:
                out[key] = value
    return out


def band_labels(asset: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(band names, common names) an asset declares in ``eo:bands`` (or STAC 1.1 ``bands``).

    Entries that are not objects (the band indexes of old USGS items) are skipped.
    """
    names: list[str] = []
    common: list[str] = []
    for key in ("eo:bands", "bands"):
        entries = asset.get(key)
        if not isinstance(entries, list):
            continue
        for band in entries:
            if not isinstance(band, Mapping):
                continue
            if isinstance(band.get("name"), str):
                names.append(band["name"])
            for field in ("common_name", "eo:common_name"):
                if isinstance(band.get(field), str):
                    common.append(band[field])
    return names, common


def bbox_of(value: Any, notes: Notes) -> tuple[float, float, float, float] | None:
    """The item's lon/lat bbox (west, south, east, north); 3-D bboxes lose their heights.

    west > east is kept (the item crosses the antimeridian). Anything else that is not 4 or 6
    numbers within the globe is ignored with a note: the plan does not need it.
    """
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (4, 6):
        numbers = [finite_number(v) for v in value]
        if all(n is not None for n in numbers):
            flat = [float(n) for n in numbers if n is not None]
            west, south, east, north = (
                flat if len(flat) == 4 else [flat[0], flat[1], flat[3], flat[4]]
            )
            if -180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90:
                return (west, south, east, north)
    notes.append(
        f"bbox {show(value)} is not 4 (or 6) numbers west, south, east, north in degrees (ignored)"
    )
    return None


def datetime_of(props: Mapping[str, Any], item_id: str) -> dt.datetime:
    """The item's datetime (``datetime``, else ``start_datetime``), timezone-aware (UTC when
    the item gives none).

    Raises
    ------
    ItemError
        No datetime, or one that is not RFC 3339: the item cannot be placed in time.
    """
    key = "datetime" if props.get("datetime") is not None else "start_datetime"
    raw = props.get(key)
    if raw is None:
        raise ItemError(
            f"{item_id}: no datetime (properties.datetime and start_datetime are missing); the "
            "item cannot be placed in time: fix the item"
        )
    when = None
    if isinstance(raw, str):
        try:
            when = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            when = None
    if when is None:
        raise ItemError(
            f"{item_id}: properties.{key} {show(raw)} is not an RFC 3339 datetime (e.g. "
            "2024-01-31T10:00:00Z); fix the item"
        )
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


_SCAR_SHEET = re.compile(r"^EPSG:327([1-9])$")


def utm_slip(
    crs: str | None,
    top_bottom: tuple[float, float] | None,
    bbox: tuple[float, float, float, float] | None,
) -> str | None:
    """The UTM north-zone code a mistyped ``EPSG:3271``...``3279`` stands for, when certain.

    Planetary Computer's ``landsat-8-c2-l2`` states ``proj:epsg: 3271`` for scenes of UTM zone
    1 south of the equator. EPSG:3271-3279 are SCAR IMW sheets (Antarctic conic projections)
    that no Landsat or Sentinel-2 product uses; the grid's negative northings are USGS's
    north-zone convention for southern scenes, so the raster is EPSG:32601 (zone 1 N). The fix
    is applied only when the grid has negative northings and the item's lon/lat bbox centre
    lies in that zone; otherwise None (the stated code stands).
    """
    match = _SCAR_SHEET.match(crs or "")
    if match is None or top_bottom is None or bbox is None:
        return None
    zone = int(match.group(1))
    top, bottom = top_bottom
    if not (top <= 0 and bottom < 0):
        return None
    west, _, east, _ = bbox
    lon = (west + east) / 2 if west <= east else (west + east + 360) / 2
    lon = lon - 360 if lon > 180 else lon
    if not -180 + 6 * (zone - 1) <= lon <= -180 + 6 * zone:
        return None
    return f"EPSG:{32600 + zone}"
