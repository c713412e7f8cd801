"""Choosing and validating the one output grid (an odc-geo GeoBox) for a query.

The user's CRS and resolution win. Otherwise the grid takes the most common UTM zone of the
items at the QA band's native resolution, and its pixel edges are snapped onto the source pixel
edges of the items in that CRS, so that same-CRS scenes are read without any resampling. South
of the equator a zone has two codes in use: Sentinel-2 writes 327zz, Landsat and HLS write the
north code 326zz with negative northings. The grid takes the code most of the zone's southern
items use (a tie or none: 327zz), because 30 m pixels of the two codes cannot share edges
(the codes differ by a 10,000,000 m false northing, no multiple of 30).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from affine import Affine

from .aoi import boxes_overlap, lonlat_bounds_in
from .config import check_crs_resolution
from .errors import GridError
from .sensors.plan import ScenePlan

__all__ = [
    "aoi_bounds",
    "choose_crs",
    "footprint_bounds",
    "output_geobox",
    "utm_zone",
]

_MIN_FRACTION_OF_NATIVE = 0.1


def utm_zone(crs: str | None) -> tuple[int, str] | None:
    """(zone, 'N'|'S') for a WGS 84 UTM CRS (EPSG:326xx / 327xx), else None."""
    if not crs or not crs.upper().startswith("EPSG:"):
        return None
    code = int(crs.split(":")[1])
    if 32601 <= code <= 32660:
        return (code - 32600, "N")
    if 32701 <= code <= 32760:
        return (code - 32700, "S")
    return None


def aoi_bounds(
    bbox: Sequence[float] | None = None, geometry: Mapping[str, Any] | None = None
) -> tuple[float, float, float, float] | None:
    """Validated (west, south, east, north) in degrees of a bbox or a GeoJSON geometry."""
    if geometry is not None:
        from odc.geo.geom import Geometry

        b = Geometry(dict(geometry), "EPSG:4326").boundingbox
        return (b.left, b.bottom, b.right, b.top)
    if bbox is None:
        return None
    if len(bbox) != 4:
        raise GridError(f"bbox needs 4 numbers (west, south, east, north), got {len(bbox)}")
    west, south, east, north = (float(v) for v in bbox)
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise GridError(f"bbox latitudes {south}, {north} outside [-90, 90]; order is W S E N")
    if south >= north:
        raise GridError(f"bbox south {south} is not below north {north}; order is W S E N")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise GridError(f"bbox longitudes {west}, {east} outside [-180, 180]")
    return (west, south, east, north)


def _centre_lonlat(aoi: tuple[float, float, float, float]) -> tuple[float, float]:
    west, south, east, north = aoi
    if west > east:  # crosses the antimeridian
        lon = (west + east + 360) / 2
        lon = lon - 360 if lon > 180 else lon
    else:
        lon = (west + east) / 2
    return lon, (south + north) / 2


def choose_crs(plans: Sequence[ScenePlan], aoi: tuple[float, float, float, float] | None) -> str:
    """The most common UTM zone of the plans, in the AOI's hemisphere.

    South of the equator the code is the one most of that zone's southern items are written
    in: EPSG:327zz (Sentinel-2) or EPSG:326zz with negative northings (Landsat, HLS); a tie or
    no such item gives 327zz.
    """
    crss = [p.crs for p in plans if p.crs]
    if not crss:
        raise GridError("no item states its CRS (proj:code / proj:epsg); pass crs=")
    zones = [utm_zone(c) for c in crss]
    if any(z is None for z in zones):
        counts = Counter(crss)
        (best, n), *rest = counts.most_common()
        if rest and rest[0][1] == n:
            raise GridError(
                f"items are in several CRSs ({', '.join(sorted(counts))}) and no CRS was given; "
                "pass crs= (e.g. the UTM zone of your area)"
            )
        return best
    if aoi is not None:
        lon, lat = _centre_lonlat(aoi)
    else:
        lons = [(p.bbox[0] + p.bbox[2]) / 2 for p in plans if p.bbox]
        lats = [(p.bbox[1] + p.bbox[3]) / 2 for p in plans if p.bbox]
        lon = sum(lons) / len(lons) if lons else 0.0
        lat = sum(lats) / len(lats) if lats else 0.0
    zone_counts: Counter[int] = Counter(z[0] for z in zones if z is not None)
    ranked = zone_counts.most_common()
    best_n = ranked[0][1]
    tied: list[int] = sorted(number for number, n in ranked if n == best_n)
    centre_zone = int((lon + 180) // 6) % 60 + 1
    zone = centre_zone if centre_zone in tied else tied[0]
    north, south = f"EPSG:{32600 + zone}", f"EPSG:{32700 + zone}"
    if lat >= 0:
        return north
    written = Counter(
        p.crs for p in plans if p.crs == south or (p.crs == north and _south_of_equator(p))
    )
    return north if written[north] > written[south] else south


def _south_of_equator(plan: ScenePlan) -> bool:
    """Whether a scene lies south of the equator: its grid's centre northing in a north-zone
    code (negative there), else its lon/lat bbox."""
    bounds = plan.qa_grid.bounds
    if bounds is not None:
        return (bounds[1] + bounds[3]) / 2 < 0
    return plan.bbox is not None and (plan.bbox[1] + plan.bbox[3]) / 2 < 0


def footprint_bounds(plan: ScenePlan, crs: str) -> tuple[float, float, float, float] | None:
    """The item's footprint bounds in ``crs`` (its grid when in that CRS, else its geometry)."""
    if plan.crs == crs and plan.qa_grid.bounds is not None:
        return plan.qa_grid.bounds
    return lonlat_bounds_in(plan.footprint, plan.bbox, crs)


def _snap(lo: float, hi: float, res: float, offset: float) -> tuple[float, float]:
    start = math.floor((lo - offset) / res + 1e-9) * res + offset
    stop = math.ceil((hi - offset) / res - 1e-9) * res + offset
    return start, stop


def output_geobox(
    plans: Sequence[ScenePlan],
    *,
    bbox: Sequence[float] | None = None,
    geometry: Mapping[str, Any] | None = None,
    crs: str | None = None,
    resolution: float | None = None,
) -> Any:
    """The output GeoBox for ``plans`` over a bbox/geometry (lon/lat), or their union.

    Raises
    ------
    GridError
        A resolution that cannot be meant in the CRS units, finer than a tenth of the native
        resolution, an AOI smaller than a pixel, or no item overlapping the AOI.
    """
    from odc.geo.geobox import GeoBox
    from odc.geo.geom import box
    from pyproj import CRS

    if not plans:
        raise GridError("no usable items to build a grid from; widen the search")
    aoi = aoi_bounds(bbox, geometry)
    if crs is None:
        crs = choose_crs(plans, aoi)
    else:
        try:
            epsg = CRS.from_user_input(crs).to_epsg()
        except Exception as exc:
            raise GridError(f"unknown CRS {crs!r}; give e.g. 'EPSG:32633'") from exc
        crs = f"EPSG:{epsg}" if epsg else str(crs)
    in_crs = [p for p in plans if p.crs == crs and p.res_yx]
    native = min((p.res_yx[1] for p in plans if p.res_yx), default=None)
    if resolution is None:
        if not in_crs:
            if native is None:
                raise GridError("no item states its pixel size; pass resolution=")
            resolution = native
        else:
            resolution = Counter(p.res_yx[1] for p in in_crs).most_common(1)[0][0]  # type: ignore[index]
    try:
        check_crs_resolution(crs, resolution)
    except ValueError as exc:
        raise GridError(str(exc)) from None
    if (
        native is not None
        and CRS.from_user_input(crs).is_projected
        and (resolution < _MIN_FRACTION_OF_NATIVE * native)
    ):
        raise GridError(
            f"resolution {resolution:g} is finer than a tenth of the native {native:g}; "
            "oversampling adds no information, use at least "
            f"{_MIN_FRACTION_OF_NATIVE * native:g}"
        )

    if aoi is not None:
        west, south, east, north = aoi
        if west > east:
            raise GridError(
                "an AOI crossing the antimeridian cannot be one projected grid; split it"
            )
        b = box(west, south, east, north, crs="EPSG:4326").to_crs(crs, resolution=math.inf)
        bounds = b.boundingbox
        extent = (bounds.left, bounds.bottom, bounds.right, bounds.top)
        overlapping = [
            p
            for p in plans
            if (fb := footprint_bounds(p, crs)) is not None and boxes_overlap(fb, extent)
        ]
        if not overlapping:
            raise GridError("no item overlaps the area of interest; check the bbox and dates")
    else:
        boxes = [fb for p in plans if (fb := footprint_bounds(p, crs)) is not None]
        if not boxes:
            raise GridError("no item states its footprint; pass bbox=")
        extent = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    # snap pixel edges onto the source grid of the items in this CRS at this resolution
    anchor = next(
        (p.qa_grid.transform for p in in_crs if p.res_yx and p.res_yx[1] == resolution), None
    )
    if anchor is None:
        anchor = next(
            (
                b.grid.transform
                for p in in_crs
                for b in p.bands.values()
                if b.grid.transform and b.grid.res_yx and b.grid.res_yx[1] == resolution
            ),
            None,
        )
    off_x = anchor[2] % resolution if anchor else 0.0
    off_y = anchor[5] % resolution if anchor else 0.0
    left, right = _snap(extent[0], extent[2], resolution, off_x)
    bottom, top = _snap(extent[1], extent[3], resolution, off_y)
    nx = round((right - left) / resolution)
    ny = round((top - bottom) / resolution)
    if aoi is not None and (
        extent[2] - extent[0] < resolution or extent[3] - extent[1] < resolution
    ):
        raise GridError(
            f"the area of interest is smaller than one {resolution:g} pixel; enlarge it"
        )
    return GeoBox((ny, nx), Affine(resolution, 0.0, left, 0.0, -resolution, top), crs)
