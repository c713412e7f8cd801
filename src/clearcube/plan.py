"""The plan stage: STAC items -> scene plans, fallbacks, the output grid and the cube's time
slices.

Each item is identified once (:func:`clearcube.identify`) into a :class:`~clearcube.ScenePlan`
that holds everything the later stages need; an item that cannot be used becomes a
:class:`~clearcube.Fallback` with its reason, never silence. The output grid is chosen once for
all scenes, scenes that miss the area of interest are recorded and dropped, and the rest are
put in time order and, when asked, grouped into one slice per platform and solar day (the
adjacent tiles of one overpass).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .compute import gc_paused
from .errors import GridError, ItemError
from .hrefs import HrefPolicy
from .sensors.plan import Fallback, ScenePlan, plan_items

if TYPE_CHECKING:
    from odc.geo.geobox import GeoBox

__all__ = ["Planned", "Slice", "plan", "solar_days"]

GROUPINGS = (None, "solar_day")


@dataclass(frozen=True, eq=False)
class Slice:
    """One time step of the cube: one scene, or the scenes of one overpass when grouped.

    Attributes
    ----------
    id
        The scene id, or the member ids joined by ``+``.
    members
        The scene plans, in time order; the first valid member supplies a pixel.
    """

    id: str
    members: tuple[ScenePlan, ...]

    @property
    def first(self) -> ScenePlan:
        return self.members[0]

    @property
    def datetime(self) -> dt.datetime:
        """The earliest member's acquisition time (timezone-aware)."""
        return self.first.datetime

    @property
    def time(self) -> np.datetime64:
        """The slice's time as naive-UTC ``datetime64[ns]`` (xarray's convention)."""
        when = self.first.datetime
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        return np.datetime64(when, "ns")

    @property
    def sensor(self) -> str:
        return self.first.sensor

    @property
    def platform(self) -> str:
        return self.first.platform

    @property
    def collection(self) -> str:
        return "+".join(dict.fromkeys(str(m.collection) for m in self.members))

    @property
    def cloud_cover(self) -> float:
        """The provider's ``eo:cloud_cover`` (mean over members), NaN when unknown."""
        values = [m.cloud_cover for m in self.members if m.cloud_cover is not None]
        return float(np.mean(values)) if values else float("nan")


@dataclass(frozen=True, eq=False)
class Planned:
    """What the plan stage resolved.

    Attributes
    ----------
    slices
        The cube's time steps, in time order.
    fallbacks
        Items that are not in the cube, each with its reason.
    geobox
        The output grid (odc-geo GeoBox).
    chunks_yx
        The chunk size of every array on that grid.
    bbox, geometry
        The area of interest in lon/lat, as given.
    bounds
        Each scene's footprint bounds in the grid's CRS (None when unknown), computed once
        here and reused by the engines to skip the chunks a scene cannot reach.
    """

    slices: tuple[Slice, ...]
    fallbacks: tuple[Fallback, ...]
    geobox: GeoBox
    chunks_yx: tuple[int, int]
    bbox: tuple[float, float, float, float] | None = None
    geometry: Mapping[str, Any] | None = None
    bounds: Mapping[str, tuple[float, float, float, float] | None] = field(default_factory=dict)

    @property
    def scenes(self) -> tuple[ScenePlan, ...]:
        """Every member of every slice, slice by slice."""
        return tuple(m for s in self.slices for m in s.members)

    @property
    def crs(self) -> str:
        """The output CRS as ``EPSG:n`` (or WKT when it has no EPSG code)."""
        crs = self.geobox.crs
        if crs is None:
            raise GridError("the output grid has no CRS")
        return f"EPSG:{crs.epsg}" if crs.epsg is not None else crs.to_wkt()

    @property
    def shape_chunks(self) -> tuple[int, int]:
        """Number of chunks along (y, x)."""
        ny, nx = self.geobox.shape.y, self.geobox.shape.x
        cy, cx = self.chunks_yx
        return (-(-ny // cy), -(-nx // cx))


@gc_paused()
def plan(
    items: Iterable[Any],
    *,
    bbox: Sequence[float] | None = None,
    geometry: Mapping[str, Any] | None = None,
    crs: str | None = None,
    resolution: float | None = None,
    chunks_yx: tuple[int, int] = (1024, 1024),
    group_by: str | None = None,
    allow_local_hrefs: bool | None = None,
    hrefs: HrefPolicy | None = None,
    check_assets: bool = False,
    gdal: Mapping[str, str] | None = None,
    digests: Sequence[str] | None = None,
) -> Planned:
    """Identify ``items``, choose the output grid and order the scenes into slices.

    Parameters
    ----------
    items
        STAC items (pystac or dicts) or :class:`~clearcube.ScenePlan` objects.
    bbox, geometry
        Area of interest in lon/lat (W, S, E, N) or as a GeoJSON geometry.
    crs, resolution
        Output grid; default: the most common UTM zone of the items at the QA band's native
        resolution.
    chunks_yx
        Chunk size (y, x) of every array on the grid.
    group_by
        ``"solar_day"`` merges the scenes of one platform and solar day into one slice.
    allow_local_hrefs
        Whether items from a remote catalog may point at local files. Default: refused.
    hrefs
        The href policy of the catalog the items came from (:class:`clearcube.hrefs.HrefPolicy`,
        as the search stage built it); default: each item judged by its own ``self`` link.
        An item with a refused href is a fallback naming the href.
    check_assets
        Open each QA asset's header first; an unreadable one becomes a fallback.
    gdal
        GDAL options for the header reads of ``check_assets``.
    digests
        One per item: the SHA-256 of its JSON as the search stage fetched it (for the audit).

    Raises
    ------
    ItemError
        No item can be used (the message quotes the first reasons).
    GridError
        No usable item overlaps the area of interest, or the grid cannot be built.
    """
    from .grid import footprint_bounds, output_geobox

    if group_by not in GROUPINGS:
        raise GridError(f"unknown group_by {group_by!r}; use None or 'solar_day'")
    scenes: list[ScenePlan] = []
    fallbacks: list[Fallback] = []
    policy = hrefs if hrefs is not None else HrefPolicy()
    if allow_local_hrefs is not None:
        policy = replace(policy, allow_local=allow_local_hrefs)
    for result in plan_items(items, digests, policy):
        if isinstance(result, Fallback):
            fallbacks.append(result)
        else:
            scenes.append(result)
    if policy.allowed_hosts:
        scenes, refused = _final_hrefs(scenes, policy.allowed_hosts)
        fallbacks.extend(refused)
    if not scenes:
        reasons = "; ".join(f.reason for f in fallbacks[:3]) or "no items"
        raise ItemError(f"nothing to load: {reasons}")

    geobox = output_geobox(scenes, bbox=bbox, geometry=geometry, crs=crs, resolution=resolution)
    gb_crs = f"EPSG:{geobox.crs.epsg}" if geobox.crs.epsg else geobox.crs.to_wkt()
    extent = geobox.extent.boundingbox
    kept: list[ScenePlan] = []
    bounds: dict[str, tuple[float, float, float, float] | None] = {}
    for scene in scenes:
        fb = footprint_bounds(scene, gb_crs)
        bounds[scene.id] = fb
        if fb is not None and not (
            fb[0] < extent.right
            and extent.left < fb[2]
            and fb[1] < extent.top
            and extent.bottom < fb[3]
        ):
            fallbacks.append(
                Fallback(
                    scene.id,
                    f"{scene.id}: does not overlap the area of interest",
                    scene.collection,
                    kind="outside",
                )
            )
        else:
            kept.append(scene)
    if not kept:
        raise GridError("no item overlaps the output grid; check the bbox and dates")
    kept.sort(key=lambda p: (p.datetime, p.id))
    if check_assets:
        kept, broken = _check_assets(kept, dict(gdal or {}))
        fallbacks.extend(broken)
        if not kept:
            raise ItemError(f"no QA asset could be opened: {broken[0].reason}")
    slices = _slices(kept, group_by)
    return Planned(
        slices=slices,
        fallbacks=tuple(fallbacks),
        geobox=geobox,
        chunks_yx=chunks_yx,
        bbox=None if bbox is None else tuple(float(v) for v in bbox),  # type: ignore[arg-type]
        geometry=geometry,
        bounds=bounds,
    )


def _slices(scenes: Sequence[ScenePlan], group_by: str | None) -> tuple[Slice, ...]:
    if group_by is None:
        return tuple(Slice(s.id, (s,)) for s in scenes)
    lons = [((s.bbox[0] + s.bbox[2]) / 2) if s.bbox else 0.0 for s in scenes]
    days = solar_days([s.datetime.replace(tzinfo=None) for s in scenes], lons)
    groups: dict[tuple[str, str], list[ScenePlan]] = {}
    for scene, day in zip(scenes, days, strict=True):
        groups.setdefault((scene.platform, day), []).append(scene)
    out = [Slice("+".join(m.id for m in members), tuple(members)) for members in groups.values()]
    out.sort(key=lambda s: (s.datetime, s.id))
    return tuple(out)


def solar_days(times: Sequence[Any], longitudes: Sequence[float]) -> list[str]:
    """Local solar date (YYYY-MM-DD) of each UTC time at each longitude (15 degrees per hour)."""
    out = []
    for t, lon in zip(times, longitudes, strict=True):
        shift = np.timedelta64(round(float(lon) / 15.0 * 3600e6), "us")
        local = np.datetime64(t, "us") + shift
        out.append(str(local.astype("datetime64[D]")))
    return out


def _final_hrefs(
    scenes: list[ScenePlan], allowed_hosts: tuple[str, ...]
) -> tuple[list[ScenePlan], list[Fallback]]:
    """Each scene with its http(s) hrefs replaced by where their redirects end (every hop on
    an allowed host, see :func:`clearcube.hrefs.final_url`): GDAL cannot be told to refuse a
    redirect, so it is only ever handed the final URL. A refused hop makes the scene a
    fallback naming it."""
    from concurrent.futures import ThreadPoolExecutor
    from functools import cache

    from .errors import CatalogError
    from .gdal_env import request_deadline_s, stall_timeout_s
    from .hrefs import final_url

    timeout = float(stall_timeout_s(request_deadline_s()))

    @cache
    def final(href: str) -> str:
        return final_url(href, allowed_hosts, timeout)

    def resolve(scene: ScenePlan) -> ScenePlan | Fallback:
        try:
            bands = {k: replace(b, href=final(b.href)) for k, b in scene.bands.items()}
            aux = tuple(replace(a, href=final(a.href)) for a in scene.aux_qa)
            qa = final(scene.qa_href)
        except CatalogError as exc:
            return Fallback(scene.id, f"{scene.id}: {exc}", scene.collection)
        return replace(scene, qa_href=qa, bands=bands, aux_qa=aux)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(resolve, scenes))
    return (
        [r for r in results if isinstance(r, ScenePlan)],
        [r for r in results if isinstance(r, Fallback)],
    )


def _check_assets(
    scenes: list[ScenePlan], gdal_opts: dict[str, str]
) -> tuple[list[ScenePlan], list[Fallback]]:
    """Open every QA asset's header in parallel; unreadable ones become fallbacks."""
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    from .errors import AssetReadError
    from .gdal_env import gdal_cause, rio_env
    from .sas import sign_href

    def probe(scene: ScenePlan) -> str | None:
        href = scene.qa_href
        try:
            href = sign_href(href, scene.collection, gdal_opts, label=scene.id)
            with rio_env(gdal_opts), rasterio.open(href) as src:
                if src.count < 1:
                    return "has no band"
        except AssetReadError as exc:
            return exc.cause or str(exc)
        except rasterio.errors.RasterioError as exc:
            return gdal_cause(exc, href)
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = list(pool.map(probe, scenes))
    good = [s for s, problem in zip(scenes, problems, strict=True) if problem is None]
    bad = [
        Fallback(
            s.id,
            f"{s.id}: QA asset {s.qa_asset!r} unreadable ({problem}); excluded, "
            "never treated as clear",
            s.collection,
        )
        for s, problem in zip(scenes, problems, strict=True)
        if problem is not None
    ]
    return good, bad
