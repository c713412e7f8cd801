"""Search filters normalised once: bbox (antimeridian included), datetimes as pystac-client
reads them (years, months, days, RFC 3339 instants, open intervals), cloud, and a GeoJSON
area of interest."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CatalogError

BBoxLike = Sequence[float] | str | None
DatetimeLike = str | dt.datetime | dt.date | Sequence[Any] | None


@dataclass(frozen=True)
class Filters:
    """A search, normalised.

    ``boxes`` holds one bbox, or two when the requested box crosses the antimeridian (west >
    east): the parts east and west of 180 degrees.
    """

    boxes: tuple[tuple[float, float, float, float], ...] | None
    start: dt.datetime | None
    end: dt.datetime | None
    collections: tuple[str, ...] | None
    max_cloud: float | None
    limit: int | None
    query: Mapping[str, Any] | None

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        """The box as the user gave it (west > east when crossing the antimeridian)."""
        if self.boxes is None:
            return None
        if len(self.boxes) == 1:
            return self.boxes[0]
        east_part, west_part = self.boxes
        return (east_part[0], east_part[1], west_part[2], east_part[3])

    @property
    def datetime_text(self) -> str | None:
        if self.start is None and self.end is None:
            return None
        a = _iso(self.start) if self.start else ".."
        b = _iso(self.end) if self.end else ".."
        return f"{a}/{b}"


def _iso(value: dt.datetime) -> str:
    # as pystac-client writes it: UTC, "Z", microseconds only when there are some
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat("T") + "Z"


def parse_bbox(bbox: BBoxLike) -> tuple[tuple[float, float, float, float], ...] | None:
    """The boxes to search: one, or two halves of a box crossing the antimeridian.

    Raises
    ------
    CatalogError
        Not 4 numbers, a coordinate outside lon/lat range, or south above north, or west east
        of east for a box that does not cross 180 degrees (a swapped pair).
    """
    if bbox is None:
        return None
    parts: list[Any] = bbox.replace(",", " ").split() if isinstance(bbox, str) else list(bbox)
    try:
        west, south, east, north = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise CatalogError(
            f"bbox must be 4 numbers west south east north, got {bbox!r}; e.g. "
            "-54.1 -3.1 -53.9 -2.9"
        ) from None
    for name, lat in (("south", south), ("north", north)):
        if not -90 <= lat <= 90:
            raise CatalogError(
                f"bbox {name} latitude {lat} outside [-90, 90]; order is W S E N in degrees"
            )
    for name, lon in (("west", west), ("east", east)):
        if not -180 <= lon <= 180:
            raise CatalogError(
                f"bbox {name} longitude {lon} outside [-180, 180]; order is W S E N in degrees"
            )
    if south > north:
        raise CatalogError(f"bbox south {south} is north of north {north}; order is W S E N")
    if west > east:
        # Only a box that really crosses 180 degrees: west in the eastern hemisphere, east in
        # the western one. Anything else is a swapped pair.
        if west > 0 and east < 0:
            return ((west, south, 180.0, north), (-180.0, south, east, north))
        raise CatalogError(
            f"bbox west {west} is east of east {east}; order is W S E N (a box crossing the "
            "antimeridian has west > 0 and east < 0)"
        )
    return ((west, south, east, north),)


def swapped_boxes(
    boxes: tuple[tuple[float, float, float, float], ...] | None,
) -> tuple[tuple[float, float, float, float], ...] | None:
    """The box read in latitude-first order (S W N E), when that is a valid box too: what a
    search that found nothing tries before saying so (see :func:`clearcube.search`)."""
    if boxes is None or len(boxes) != 1:
        return None
    west, south, east, north = boxes[0]
    try:
        return parse_bbox((south, west, north, east))
    except CatalogError:
        return None


# pystac-client's grammar of a datetime component: a year, a month, a day or a full
# RFC 3339 date-time (time zone optional: UTC).
_COMPONENT = re.compile(
    r"^(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(?P<time>[Tt](?P<hms>\d{2}:\d{2}:\d{2}(\.\d+)?)"
    r"(?P<tz>[Zz]|[-+]\d{2}:\d{2})?)?)?)?$"
)

_DATETIME_FIX = (
    "use a year, month, day or RFC 3339 time (2023, 2023-08, 2023-08-14, "
    "2023-08-14T10:00:00Z) or an interval of them (2023-01/2023-06, open ends ..)"
)


def _component(text: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The first and last second a datetime component stands for, as pystac-client expands
    it: ``"2023"`` is 2023-01-01T00:00:00Z to 2023-12-31T23:59:59Z, a full date-time is
    itself. None for an open end."""
    text = text.strip()
    if text in ("", ".."):
        return None
    match = _COMPONENT.match(text)
    if match is None:
        raise CatalogError(f"datetime {text!r} is not understood; {_DATETIME_FIX}")
    try:
        if match["time"]:
            moment = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
            return moment, moment
        year = int(match["year"])
        if match["day"]:
            start = dt.datetime(year, int(match["month"]), int(match["day"]), tzinfo=dt.UTC)
            after = start + dt.timedelta(days=1)
        elif match["month"]:
            month = int(match["month"])
            start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
            after = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
        else:
            start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
            after = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise CatalogError(
            f"datetime {text!r} is not a valid date ({exc}); {_DATETIME_FIX}"
        ) from None
    return start, after - dt.timedelta(seconds=1)


def _one(value: Any) -> tuple[dt.datetime, dt.datetime] | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment, moment
    if isinstance(value, dt.date):
        return _component(value.isoformat())
    if isinstance(value, str):
        return _component(value)
    raise CatalogError(
        f"datetime part {value!r} is not a string, date or datetime; {_DATETIME_FIX}"
    )


def parse_datetime(value: DatetimeLike) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The first and last moment (UTC-aware, inclusive) a datetime query stands for, with
    pystac-client's semantics, so a static catalog and an API select the same items.

    Raises
    ------
    CatalogError
        Not a datetime, open at both ends, or reversed.
    """
    if value is None:
        return None, None
    if isinstance(value, str):
        parts: list[Any] = value.split("/")
    elif isinstance(value, dt.date):
        parts = [value]
    else:
        try:
            parts = list(value)
        except TypeError:
            raise CatalogError(
                f"datetime {value!r} is not a string, date or (start, end) pair; {_DATETIME_FIX}"
            ) from None
    if len(parts) == 1:
        one = _one(parts[0])
        if one is None:
            raise CatalogError(f"datetime {value!r} is empty; {_DATETIME_FIX}")
        return one
    if len(parts) != 2:
        raise CatalogError(
            f"datetime {value!r} is neither one instant nor a start/end pair; {_DATETIME_FIX}"
        )
    first, last = _one(parts[0]), _one(parts[1])
    if first is None and last is None:
        raise CatalogError(
            f"datetime {value!r} is open at both ends; give one end, or no datetime for any time"
        )
    start = first[0] if first else None
    stop = last[1] if last else None
    if start and stop and start > stop:
        raise CatalogError(
            f"datetime range {value!r} is reversed: {_iso(start)} is after {_iso(stop)}; give "
            "start/end"
        )
    return start, stop


_AOI_FIX = "give a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection in lon/lat"


def _polygons(obj: Any, where: str) -> list[Any]:
    """The polygons' coordinates of a GeoJSON object (Feature and FeatureCollection opened)."""
    if not isinstance(obj, Mapping):
        raise CatalogError(f"{where}: not a GeoJSON object; {_AOI_FIX}")
    kind = obj.get("type")
    crs = obj.get("crs")
    if isinstance(crs, Mapping):
        name = str((crs.get("properties") or {}).get("name", ""))
        if not (name.upper().endswith("CRS84") or name.endswith(("4326", ":4326"))):
            raise CatalogError(
                f"{where}: coordinates are in {name or 'an unnamed CRS'}, not lon/lat; reproject "
                "to EPSG:4326 (e.g. ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson)"
            )
    if kind == "Polygon":
        return [obj.get("coordinates")]
    if kind == "MultiPolygon":
        coords = obj.get("coordinates")
        if not isinstance(coords, list):
            raise CatalogError(f"{where}: MultiPolygon coordinates are not a list; {_AOI_FIX}")
        return list(coords)
    if kind == "Feature":
        if obj.get("geometry") is None:
            raise CatalogError(f"{where}: the Feature has no geometry; {_AOI_FIX}")
        return _polygons(obj["geometry"], where)
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list) or not features:
            raise CatalogError(f"{where}: the FeatureCollection has no features; {_AOI_FIX}")
        return [p for feature in features for p in _polygons(feature, where)]
    raise CatalogError(f"{where}: a GeoJSON {kind!r} is not an area; {_AOI_FIX}")


def _ring(ring: Any, where: str) -> list[tuple[float, float]]:
    try:
        points = [(float(p[0]), float(p[1])) for p in ring]
    except (TypeError, ValueError, IndexError, KeyError):
        raise CatalogError(
            f"{where}: a polygon ring is not a list of [lon, lat] positions; {_AOI_FIX}"
        ) from None
    for lon, lat in points:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise CatalogError(
                f"{where}: position [{lon:g}, {lat:g}] is not lon/lat (longitude first, in "
                "degrees); reproject to EPSG:4326 or swap the axes"
            )
    if len(points) < 4 or points[0] != points[-1]:
        raise CatalogError(
            f"{where}: a polygon ring needs at least 4 positions and must end where it starts "
            f"(got {len(points)}, from {list(points[0]) if points else '-'} to "
            f"{list(points[-1]) if points else '-'}); close the ring"
        )
    return points


def parse_geometry(obj: Any, where: str = "aoi") -> dict[str, Any]:
    """A GeoJSON area of interest as one valid lon/lat ``Polygon`` or ``MultiPolygon``.

    Parameters
    ----------
    obj
        A GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection (its polygons are
        joined into one MultiPolygon).
    where
        What the errors name (the file, for an AOI read from one).

    Raises
    ------
    CatalogError
        Not an area (a point, a line, no features), positions that are not lon/lat, open
        rings, or an invalid polygon (self-intersecting, no area).
    """
    polygons = []
    for poly in _polygons(obj, where):
        if not isinstance(poly, list) or not poly:
            raise CatalogError(f"{where}: a polygon has no rings; {_AOI_FIX}")
        polygons.append([[list(p) for p in _ring(ring, where)] for ring in poly])
    geometry: dict[str, Any] = (
        {"type": "Polygon", "coordinates": polygons[0]}
        if len(polygons) == 1
        else {"type": "MultiPolygon", "coordinates": polygons}
    )
    from shapely.geometry import shape
    from shapely.validation import explain_validity

    shp = shape(geometry)
    if shp.convex_hull.area == 0:  # all positions on one line (a bowtie's area is 0 too)
        raise CatalogError(f"{where}: the polygon has no area; {_AOI_FIX}")
    if not shp.is_valid:
        raise CatalogError(
            f"{where}: not a valid polygon ({explain_validity(shp)}); fix the geometry (e.g. "
            "shapely.make_valid or QGIS 'Fix geometries')"
        )
    return geometry


def geometry_bbox(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a lon/lat Polygon or MultiPolygon."""
    coords = geometry["coordinates"]
    polys = [coords] if geometry["type"] == "Polygon" else coords
    lons = [p[0] for poly in polys for ring in poly for p in ring]
    lats = [p[1] for poly in polys for ring in poly for p in ring]
    return (min(lons), min(lats), max(lons), max(lats))


def normalise(
    bbox: BBoxLike,
    datetime: DatetimeLike,
    collections: str | Sequence[str] | None,
    max_cloud: float | None,
    limit: int | None,
    query: Mapping[str, Any] | None,
) -> Filters:
    if max_cloud is not None and not 0 <= float(max_cloud) <= 100:
        raise CatalogError(
            f"max_cloud {max_cloud} outside [0, 100] (percent); give e.g. 40, or none for any"
        )
    if limit is not None and int(limit) < 1:
        raise CatalogError(f"limit {limit} must be at least 1; give a count, or none for all")
    cols = (
        (collections,)
        if isinstance(collections, str)
        else (tuple(collections) if collections else None)
    )
    for cid in cols or ():
        if not isinstance(cid, str) or not cid.strip() or not cid.isprintable():
            raise CatalogError(
                f"collection id {cid!r} is blank or not text; give collection ids such as "
                "sentinel-2-l2a (comma-separated on the command line)"
            )
    start, end = parse_datetime(datetime)
    return Filters(
        parse_bbox(bbox),
        start,
        end,
        cols,
        None if max_cloud is None else float(max_cloud),
        None if limit is None else int(limit),
        query,
    )
