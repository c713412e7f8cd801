"""Areas of interest and footprints: the one home of "does this scene reach that area".

An area of interest is a lon/lat bbox (west, south, east, north) or a GeoJSON (multi)polygon;
a footprint is an item's GeoJSON geometry, or its bbox when it has none. Everything that asks
whether two of them overlap, or where a lon/lat shape falls in a projected grid, asks here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "Bounds",
    "aoi_polygon",
    "boxes_overlap",
    "footprint_polygon",
    "lonlat_bounds_in",
]

#: (left, bottom, right, top) in some CRS, or (west, south, east, north) in degrees.
Bounds = tuple[float, float, float, float]


def boxes_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two (left, bottom, right, top) boxes share more than an edge."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _box_polygon(bbox: Sequence[float]) -> Any:
    from shapely.geometry import box

    w, s, e, n = (float(v) for v in (bbox[0], bbox[1], bbox[-2], bbox[-1]))
    return box(w, s, e, n)


def aoi_polygon(bbox: Sequence[float] | None, geometry: Mapping[str, Any] | None) -> Any:
    """The area of interest as a shapely geometry in lon/lat, or None when unbounded."""
    if geometry is not None:
        from shapely.geometry import shape

        return shape(dict(geometry))
    if bbox is None:
        return None
    return _box_polygon(bbox)


def footprint_polygon(footprint: Mapping[str, Any] | None, bbox: Sequence[float] | None) -> Any:
    """An item's footprint as a shapely geometry in lon/lat (its geometry, else its bbox), or
    None when it states neither (or states them unreadably)."""
    from shapely.errors import GEOSException
    from shapely.geometry import shape

    if footprint:
        try:
            geom = shape(dict(footprint))
        except (GEOSException, ValueError, TypeError, KeyError, AttributeError):
            geom = None
        if geom is not None and not geom.is_empty:
            return geom if geom.is_valid else geom.buffer(0)
    if bbox and len(bbox) >= 4:
        return _box_polygon(bbox)
    return None


@lru_cache(maxsize=64)
def _from_lonlat(crs: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _rings(geometry: Mapping[str, Any]) -> list[list[Sequence[float]]]:
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        return [coords[0]] if coords else []
    if kind == "MultiPolygon":
        return [poly[0] for poly in coords if poly]
    return []


def lonlat_bounds_in(
    geometry: Mapping[str, Any] | None, bbox: Sequence[float] | None, crs: str
) -> Bounds | None:
    """Bounds in ``crs`` of a lon/lat footprint (GeoJSON polygon(s), else a bbox).

    Each edge is densified (16 points) before the exact pyproj transform, so the curved image
    of a straight lon/lat edge is bounded; one vectorised transform per footprint keeps this
    cheap enough to run for every item of a large query.
    """
    rings = _rings(geometry) if geometry else []
    if not rings and bbox:
        w, s, e, n = (float(v) for v in (bbox[0], bbox[1], bbox[-2], bbox[-1]))
        rings = [[(w, s), (e, s), (e, n), (w, n), (w, s)]]
    if not rings:
        return None
    t = np.linspace(0.0, 1.0, 16)
    lons, lats = [], []
    for ring in rings:
        pts = np.asarray(ring, dtype=float)[:, :2]
        a, b = pts[:-1], pts[1:]
        lons.append((a[:, 0, None] + (b[:, 0] - a[:, 0])[:, None] * t).ravel())
        lats.append((a[:, 1, None] + (b[:, 1] - a[:, 1])[:, None] * t).ravel())
    x, y = _from_lonlat(crs).transform(np.concatenate(lons), np.concatenate(lats))
    x, y = np.asarray(x), np.asarray(y)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return None
    return (float(x[ok].min()), float(y[ok].min()), float(x[ok].max()), float(y[ok].max()))
