"""Search filters normalised once: bbox (antimeridian included), RFC 3339 intervals, cloud."""

from __future__ import annotations

import datetime as dt
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
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_bbox(bbox: BBoxLike) -> tuple[tuple[float, float, float, float], ...] | None:
    if bbox is None:
        return None
    parts: list[Any] = bbox.replace(",", " ").split() if isinstance(bbox, str) else list(bbox)
    try:
        west, south, east, north = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise CatalogError(f"bbox must be 4 numbers west south east north, got {bbox!r}") from None
    for name, lat in (("south", south), ("north", north)):
        if not -90 <= lat <= 90:
            raise CatalogError(f"bbox {name} latitude {lat} outside [-90, 90]; order is W S E N")
    for name, lon in (("west", west), ("east", east)):
        if not -180 <= lon <= 180:
            raise CatalogError(f"bbox {name} longitude {lon} outside [-180, 180]")
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


def _parse_instant(text: str, *, end: bool) -> dt.datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if len(text) == 10:  # a date: the whole day
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
            return moment.replace(tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CatalogError(
            f"datetime {text!r} is not RFC 3339 (e.g. 2024-01-31 or 2024-01-31T10:00:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_datetime(value: DatetimeLike) -> tuple[dt.datetime | None, dt.datetime | None]:
    if value is None:
        return None, None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment, moment
    if isinstance(value, dt.date):
        return (
            _parse_instant(value.isoformat(), end=False),
            _parse_instant(value.isoformat(), end=True),
        )
    if isinstance(value, str):
        if "/" in value:
            a, b = value.split("/", 1)
        else:
            a = b = value
        start, stop = _parse_instant(a, end=False), _parse_instant(b, end=True)
    else:
        pair = list(value)
        if len(pair) != 2:
            raise CatalogError(
                f"datetime must be one instant or a (start, end) pair, got {value!r}"
            )
        start = parse_datetime(pair[0])[0] if pair[0] not in (None, "..") else None
        stop = parse_datetime(pair[1])[1] if pair[1] not in (None, "..") else None
    if start and stop and start > stop:
        raise CatalogError(
            f"datetime range is reversed: {_iso(start)} is after {_iso(stop)}; give start/end"
        )
    return start, stop


def normalise(
    bbox: BBoxLike,
    datetime: DatetimeLike,
    collections: str | Sequence[str] | None,
    max_cloud: float | None,
    limit: int | None,
    query: Mapping[str, Any] | None,
) -> Filters:
    if max_cloud is not None and not 0 <= float(max_cloud) <= 100:
        raise CatalogError(f"max_cloud {max_cloud} outside [0, 100] (percent)")
    if limit is not None and int(limit) < 1:
        raise CatalogError(f"limit {limit} must be at least 1")
    cols = (
        (collections,)
        if isinstance(collections, str)
        else (tuple(collections) if collections else None)
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
