"""Identifying STAC items: from an item (pystac.Item or its dict) to a validated ScenePlan.

Everything clearcube needs to read and judge a scene is resolved here, once, from the item's
own metadata: sensor family, QA asset and encoding, CRS, each asset's grid, nodata, scale and
offset (with the Sentinel-2 processing-baseline offset and where it came from). No asset path
is ever written by hand. An item that cannot be planned gives a :class:`Fallback` with the
reason, never silence.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ItemError, scrub_href
from . import hls, landsat, sentinel2
from ._family import SensorFamily, key_matches

__all__ = [
    "AssetGrid",
    "BandPlan",
    "Fallback",
    "ScenePlan",
    "identify",
    "plan_items",
]

#: Where a reflectance offset came from.
OFFSET_SOURCES = ("item-metadata", "baseline-rule", "provider-profile", "date-rule")


@dataclass(frozen=True)
class AssetGrid:
    """The pixel grid of one asset, when the item states it."""

    crs: str | None
    shape_yx: tuple[int, int] | None = None
    transform: tuple[float, float, float, float, float, float] | None = None

    @property
    def res_yx(self) -> tuple[float, float] | None:
        """Pixel size (y, x) as positive numbers, in CRS units."""
        if self.transform is None:
            return None
        a, b, _, d, e, _ = self.transform
        return (math.hypot(b, e), math.hypot(a, d))

    @property
    def bounds(self) -> tuple[float, float, float, float] | None:
        """(left, bottom, right, top) in the asset's CRS, for north-up grids."""
        if self.transform is None or self.shape_yx is None:
            return None
        a, _, c, _, e, f = self.transform
        h, w = self.shape_yx
        xs = (c, c + a * w)
        ys = (f, f + e * h)
        return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True)
class BandPlan:
    """One reflectance band: reflectance = DN * scale + offset, DN == nodata is missing."""

    name: str
    asset: str
    href: str
    scale: float
    offset: float
    nodata: float | None
    dtype: str | None
    grid: AssetGrid
    offset_source: str

    def __repr__(self) -> str:
        return (
            f"BandPlan({self.name!r} <- {self.asset!r}, scale={self.scale:g}, "
            f"offset={self.offset:g} [{self.offset_source}], href={scrub_href(self.href)!r})"
        )


@dataclass(frozen=True, eq=False)
class ScenePlan:
    """Everything resolved about one scene. Outside code relies on the names below."""

    id: str
    collection: str | None
    datetime: dt.datetime
    sensor: str
    platform: str
    qa_asset: str
    qa_encoding: str
    qa_href: str
    qa_dtype: str
    qa_nodata: int
    qa_grid: AssetGrid
    crs: str | None
    bands: Mapping[str, BandPlan]
    processing_baseline: str | None
    offset_source: str
    offset_conflict: str | None
    cloud_cover: float | None
    bbox: tuple[float, float, float, float] | None
    hrefs_local: bool
    origin_remote: bool
    properties: Mapping[str, Any] = field(repr=False)
    stac: Mapping[str, Any] = field(repr=False)

    @property
    def res_yx(self) -> tuple[float, float] | None:
        """Native pixel size of the QA band."""
        return self.qa_grid.res_yx

    @property
    def footprint(self) -> Mapping[str, Any] | None:
        """The item's GeoJSON geometry (lon/lat)."""
        geometry = self.stac.get("geometry")
        return geometry if isinstance(geometry, Mapping) else None

    @property
    def qa_declared_nodata(self) -> float | None:
        """The nodata value the item declares for its QA asset (None: none declared; the
        encoding's own fill then marks no data)."""
        asset = (self.stac.get("assets") or {}).get(self.qa_asset) or {}
        value = _raster_fields(asset).get("nodata") if isinstance(asset, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    @property
    def self_href(self) -> str | None:
        """Where the item itself was read from."""
        href = self.stac.get("clearcube:self_href")
        return str(href) if href else None

    def __repr__(self) -> str:
        return (
            f"ScenePlan(id={self.id!r}, sensor={self.sensor!r}, platform={self.platform!r}, "
            f"qa={self.qa_asset!r} [{self.qa_encoding}], crs={self.crs!r}, "
            f"bands={sorted(self.bands)}, offset_source={self.offset_source!r})"
        )


@dataclass(frozen=True)
class Fallback:
    """An item that could not be planned, and why (recorded by later stages, never dropped)."""

    id: str
    reason: str
    collection: str | None = None
    kind: str = "unplannable"


# ---------------------------------------------------------------------------- identification


def _as_dict(item: Any) -> dict[str, Any]:
    """The item as a dict whose asset hrefs are absolute (relative ones resolved against the
    item's own location), so the plan can be read from anywhere."""
    from urllib.parse import urljoin

    if isinstance(item, Mapping):
        out = dict(item)
        self_href = next(
            (link.get("href") for link in out.get("links", []) if link.get("rel") == "self"),
            None,
        )
    else:
        to_dict = getattr(item, "to_dict", None)
        if to_dict is None:
            raise ItemError(
                f"not a STAC item: {type(item).__name__}; pass a pystac.Item or its dict"
            )
        out = to_dict(include_self_link=True, transform_hrefs=False)
        self_href = item.get_self_href()
    if self_href:
        assets = {}
        for key, asset in (out.get("assets") or {}).items():
            href = str(asset.get("href", ""))
            if href and "://" not in href and not href.startswith("/"):
                base = self_href if "://" in self_href else os.path.abspath(self_href)
                href = (
                    urljoin(base, href)
                    if "://" in base
                    else os.path.normpath(os.path.join(os.path.dirname(base), href))
                )
            assets[key] = {**asset, "href": href}
        out["assets"] = assets
        out["clearcube:self_href"] = self_href
    return out


def _platform(props: Mapping[str, Any], item_id: str) -> str:
    raw = str(props.get("platform") or "").strip()
    if raw:
        norm = raw.lower().replace("_", "-").replace(" ", "-")
        norm = re.sub(r"^sentinel-?2", "sentinel-2", norm)
        return norm
    m = re.match(r"^S2([ABC])_", item_id)
    if m:
        return f"sentinel-2{m.group(1).lower()}"
    m = re.match(r"^L[COTE]0?([4-9])_", item_id)
    if m:
        return f"landsat-{m.group(1)}"
    return ""


def _family(item: Mapping[str, Any], platform: str) -> SensorFamily | None:
    item_id = str(item.get("id", ""))
    collection = str(item.get("collection") or "").lower()
    props = item.get("properties", {})
    assets = item.get("assets", {})
    if collection.startswith(("hls", "hls2")) or item_id.upper().startswith("HLS."):
        if "l30" in collection or ".L30." in item_id.upper() or "landsat" in platform:
            return hls.FAMILY_L30
        return hls.FAMILY_S30
    constellation = str(props.get("constellation") or "").lower().replace(" ", "-")
    if (
        platform.startswith("sentinel-2")
        or constellation.startswith("sentinel-2")
        or "sentinel-2" in collection
        or "sentinel-s2" in collection
    ):
        return sentinel2.FAMILY
    if platform.startswith("landsat") or "landsat" in collection:
        number = platform.rsplit("-", 1)[-1]
        if number in {"4", "5", "7"}:
            return landsat.FAMILY_TM
        return landsat.FAMILY
    if any(key_matches("qa_pixel", k) for k in assets):
        return landsat.FAMILY
    return None


def _find_asset(assets: Mapping[str, Any], candidates: Iterable[str]) -> str | None:
    for candidate in candidates:
        for key in assets:
            if key_matches(candidate, key):
                return key
    return None


def _crs_of(obj: Mapping[str, Any]) -> str | None:
    code = obj.get("proj:code")
    if code:
        return str(code).upper() if str(code).upper().startswith("EPSG:") else str(code)
    epsg = obj.get("proj:epsg")
    if epsg not in (None, ""):
        return f"EPSG:{int(epsg)}"
    return None


def _grid(asset: Mapping[str, Any], props: Mapping[str, Any]) -> AssetGrid:
    crs = _crs_of(asset) or _crs_of(props)
    # item-level proj:shape/transform describe every asset of single-resolution items (Landsat)
    shape = asset.get("proj:shape") or props.get("proj:shape")
    transform = asset.get("proj:transform") or props.get("proj:transform")
    shape_yx = (int(shape[0]), int(shape[1])) if shape else None
    tf = tuple(float(v) for v in transform[:6]) if transform else None
    return AssetGrid(crs, shape_yx, tf)  # type: ignore[arg-type]


def _raster_fields(asset: Mapping[str, Any]) -> dict[str, Any]:
    """nodata, data_type, scale, offset from raster v1 (``raster:bands``) or v2 (STAC 1.1)."""
    out: dict[str, Any] = {}
    bands = asset.get("raster:bands")
    if isinstance(bands, list) and bands and isinstance(bands[0], Mapping):
        first = bands[0]
        for key in ("nodata", "data_type", "scale", "offset"):
            if key in first:
                out[key] = first[key]
    for key in ("nodata", "data_type"):
        if key in asset and key not in out:
            out[key] = asset[key]
    for key in ("scale", "offset"):
        if f"raster:{key}" in asset and key not in out:
            out[key] = asset[f"raster:{key}"]
    return out


_PRODUCT_BASELINE = re.compile(r"_N(\d{2})(\d{2})_")


def _s2_baseline(props: Mapping[str, Any], item_id: str) -> str | None:
    for key in ("s2:processing_baseline", "sentinel:processing_baseline", "processing:version"):
        value = props.get(key)
        if value:
            return str(value)
    for key in ("s2:product_uri", "sentinel:product_id", "s2:product_id"):
        m = _PRODUCT_BASELINE.search(str(props.get(key) or ""))
        if m:
            return f"{m.group(1)}.{m.group(2)}"
    m = _PRODUCT_BASELINE.search(item_id)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    return None


def _is_local(href: str) -> bool:
    lower = href.lower()
    return not lower.startswith(("http://", "https://", "s3://", "gs://", "az://", "/vsi"))


def identify(item: Any) -> ScenePlan:
    """Resolve one STAC item into a :class:`ScenePlan`.

    Raises
    ------
    ItemError
        One line naming the item and what is missing (no recognisable sensor, no QA asset,
        no datetime).
    """
    data = _as_dict(item)
    item_id = str(data.get("id") or "<no id>")
    props: Mapping[str, Any] = data.get("properties") or {}
    assets: Mapping[str, Any] = data.get("assets") or {}
    platform = _platform(props, item_id)
    family = _family(data, platform)
    if family is None:
        raise ItemError(
            f"{item_id}: not a Sentinel-2, Landsat or HLS item (platform {platform or 'unset'}, "
            f"collection {data.get('collection')}); check the collection you searched"
        )

    usable = {
        k: v for k, v in assets.items() if not any(key_matches(n, k) for n in family.never_qa)
    }
    qa_asset = encoding = None
    for candidate, enc in family.qa_keys:
        key = _find_asset(usable, [candidate])
        if key is not None:
            qa_asset, encoding = key, enc
            break
    if qa_asset is None or encoding is None:
        level = str(props.get("processing:level") or data.get("collection") or "")
        hint = " (a Level-1C product has no SCL)" if "l1" in level.lower() else ""
        raise ItemError(
            f"{item_id}: no QA asset found{hint}; looked for "
            f"{', '.join(k for k, _ in family.qa_keys)} among {', '.join(assets) or 'no assets'}"
        )
    qa = assets[qa_asset]
    qa_fields = _raster_fields(qa)
    qa_grid = _grid(qa, props)

    when = props.get("datetime") or props.get("start_datetime")
    if not when:
        raise ItemError(f"{item_id}: no datetime; the item cannot be placed in time")
    when_dt = dt.datetime.fromisoformat(str(when).replace("Z", "+00:00"))

    baseline = _s2_baseline(props, item_id) if family.name == "sentinel-2" else None
    bands: dict[str, BandPlan] = {}
    sources: set[str] = set()
    conflicts: list[str] = []
    for name, candidates in family.band_keys.items():
        key = _find_asset(assets, candidates)
        if key is None:
            key = _band_by_common_name(assets, name)
        if key is None:
            continue
        asset = assets[key]
        fields = _raster_fields(asset)
        scale, offset, source, conflict = _radiometry(family, fields, baseline, props, when_dt)
        sources.add(source)
        if conflict:
            conflicts.append(conflict)
        bands[name] = BandPlan(
            name=name,
            asset=key,
            href=str(asset.get("href", "")),
            scale=scale,
            offset=offset,
            nodata=fields.get("nodata", family.nodata),
            dtype=fields.get("data_type"),
            grid=_grid(asset, props),
            offset_source=source,
        )

    hrefs = [str(a.get("href", "")) for a in assets.values() if isinstance(a, Mapping)]
    bbox = data.get("bbox")
    cloud = props.get("eo:cloud_cover")
    return ScenePlan(
        id=item_id,
        collection=data.get("collection"),
        datetime=when_dt,
        sensor=family.name,
        platform=platform,
        qa_asset=qa_asset,
        qa_encoding=encoding,
        qa_href=str(qa.get("href", "")),
        qa_dtype=str(qa_fields.get("data_type") or family.qa_dtype[encoding]),
        qa_nodata=int(qa_fields.get("nodata", family.qa_nodata[encoding])),
        qa_grid=qa_grid,
        crs=qa_grid.crs,
        bands=bands,
        processing_baseline=baseline,
        offset_source="+".join(sorted(sources)) if sources else "none",
        offset_conflict="; ".join(dict.fromkeys(conflicts)) or None,
        cloud_cover=float(cloud) if cloud is not None else None,
        bbox=tuple(float(v) for v in bbox[:4]) if bbox else None,  # type: ignore[arg-type]
        hrefs_local=any(_is_local(h) for h in hrefs if h),
        origin_remote=not _is_local(str(data.get("clearcube:self_href") or "")),
        properties=dict(props),
        stac=data,
    )


def _band_by_common_name(assets: Mapping[str, Any], name: str) -> str | None:
    for key, asset in assets.items():
        for band in asset.get("eo:bands") or []:
            if isinstance(band, Mapping) and band.get("common_name") == name:
                return str(key)
    return None


def _radiometry(
    family: SensorFamily,
    fields: Mapping[str, Any],
    baseline: str | None,
    props: Mapping[str, Any],
    when: dt.datetime,
) -> tuple[float, float, str, str | None]:
    """(scale, offset, offset_source, conflict) of one band."""
    if family.name != "sentinel-2":
        if "scale" in fields or "offset" in fields:
            return (
                float(fields.get("scale", 1.0)),
                float(fields.get("offset", 0.0)),
                "item-metadata",
                None,
            )
        return family.scale, family.offset, "provider-profile", None

    parsed = sentinel2.parse_baseline(baseline) if baseline else None
    rule = None if parsed is None else (sentinel2.BOA_OFFSET if parsed >= (4, 0) else 0.0)
    if "scale" in fields or "offset" in fields:
        scale = float(fields.get("scale", family.scale))
        offset = float(fields.get("offset", 0.0))
        conflict = None
        if rule is not None and not math.isclose(offset, rule, abs_tol=1e-9):
            conflict = f"item metadata offset {offset:g} but baseline {baseline} implies {rule:g}"
        return scale, offset, "item-metadata", conflict
    applied = props.get("sentinel:boa_offset_applied", props.get("earthsearch:boa_offset_applied"))
    if rule is not None:
        if applied is True and rule != 0.0:
            # Earth Search v0 shifted these COGs back to the old DN range itself.
            return (
                family.scale,
                0.0,
                "item-metadata",
                f"baseline {baseline} implies {rule:g} but boa_offset_applied is true",
            )
        return family.scale, rule, "baseline-rule", None
    # No baseline anywhere: the acquisition date is the only clue (reprocessed 05.xx products
    # of older dates would be missed: recorded as a conflict for the pixel check).
    cutoff = dt.datetime(2022, 1, 25, tzinfo=dt.UTC)
    aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    offset = sentinel2.BOA_OFFSET if aware >= cutoff else 0.0
    return family.scale, offset, "date-rule", "no processing baseline in the item"


def plan_items(items: Iterable[Any]) -> list[ScenePlan | Fallback]:
    """Identify every item; items that cannot be planned come back as :class:`Fallback`."""
    out: list[ScenePlan | Fallback] = []
    for item in items:
        try:
            out.append(identify(item))
        except ItemError as exc:
            data = item if isinstance(item, Mapping) else {}
            item_id = str(getattr(item, "id", None) or data.get("id") or "<no id>")
            collection = getattr(item, "collection_id", None) or data.get("collection")
            out.append(Fallback(id=item_id, reason=str(exc), collection=collection))
    return out
