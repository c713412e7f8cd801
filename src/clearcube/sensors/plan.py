"""Identifying STAC items: from an item (pystac.Item or its dict) to a validated ScenePlan.

Everything clearcube needs to read and judge a scene is resolved here, once, from the item's
own metadata: sensor family, QA asset and encoding, CRS, each asset's grid, nodata, scale and
offset (with where the offset came from and what disagrees with it, see
:mod:`clearcube.sensors._offsets`). No asset path is ever written by hand.

Only :class:`~clearcube.errors.ItemError` leaves :func:`identify` (and :func:`plan_items` turns
it into a :class:`Fallback`): one line naming the item, the field and the fix. It is raised
for what a plan cannot do without: the id, ``properties`` as an object, ``assets`` as an
object, a QA asset with an href, a recognisable sensor and a datetime. Everything else that is
present but unusable is ignored, never guessed at, and listed in :attr:`ScenePlan.notes`:
``bbox``, ``eo:cloud_cover``, ``collection``, ``proj:*`` (the grid is then unknown, as for items
that state none), raster fields (the family's defaults apply), a junk processing baseline or
Earth Search offset flag (the next source of the offset applies; a junk flag, and a fall to
the date rule, are also offset conflicts), and band assets that are not objects or have no
href (the band is not planned).

Provider quirks handled here: Planetary Computer ``landsat-8-c2-l2`` items stating
``proj:epsg: 3271`` for UTM zone 1 south of the equator are planned as EPSG:32601 (see
:func:`clearcube.sensors._stac_fields.utm_slip`); USGS per-scene items without ``proj:``
fields have no CRS or grid in the plan (an output grid then needs ``crs=`` or other items, and
only a reader that opens the rasters can place them).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ItemError
from ..hrefs import HrefPolicy, is_remote, self_link
from ..scrub import scrub_href
from . import hls, landsat, sentinel2
from ._family import SensorFamily, key_base, key_matches
from ._offsets import (
    Baseline,
    OffsetFlag,
    Radiometry,
    profile_radiometry,
    sentinel2_radiometry,
)
from ._stac_fields import (
    Notes,
    band_labels,
    bbox_of,
    crs_of,
    datetime_of,
    finite_number,
    integral,
    label,
    raster_fields,
    shape_of,
    show,
    transform_of,
    utm_slip,
)

__all__ = [
    "AssetGrid",
    "AuxQA",
    "BandPlan",
    "Fallback",
    "ScenePlan",
    "identify",
    "plan_items",
]

#: Where a reflectance offset came from: an Earth Search "already applied" flag (offset 0),
#: the item's raster metadata, the processing-baseline rule, the acquisition-date rule, or the
#: family's profile (Landsat, HLS).
OFFSET_SOURCES = (
    *sentinel2.BOA_OFFSET_APPLIED_KEYS,
    "item-metadata",
    "baseline-rule",
    "date-rule",
    "provider-profile",
)


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
    """One reflectance band: reflectance = DN * scale + offset, DN == nodata is missing.

    ``offset_source`` is one of ``OFFSET_SOURCES``; ``offset_conflict`` says which metadata
    disagreed with that choice (None when nothing did).
    """

    name: str
    asset: str
    href: str
    scale: float
    offset: float
    nodata: float | None
    dtype: str | None
    grid: AssetGrid
    offset_source: str
    offset_conflict: str | None = None

    def __repr__(self) -> str:
        return (
            f"BandPlan({self.name!r} <- {self.asset!r}, scale={self.scale:g}, "
            f"offset={self.offset:g} [{self.offset_source}], href={scrub_href(self.href)!r})"
        )


@dataclass(frozen=True)
class AuxQA:
    """A further QA layer whose flags are added to the mask's (e.g. Landsat QA_RADSAT)."""

    asset: str
    encoding: str
    href: str
    dtype: str
    grid: AssetGrid
    nodata_declared: float | None = None


@dataclass(frozen=True, eq=False)
class ScenePlan:
    """Everything resolved about one scene. Outside code relies on the names below.

    ``offset_source`` joins the bands' sources with ``+``; ``offset_conflict`` joins their
    conflicts with ``; ``. ``notes`` lists, one line each, the item metadata the plan ignored or
    corrected (empty for a clean item).
    """

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
    footprint: Mapping[str, Any] | None = field(default=None, repr=False)
    aux_qa: tuple[AuxQA, ...] = ()
    self_href: str | None = None
    qa_nodata_declared: float | None = None
    tile: str | None = None
    digest: str = ""
    notes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def res_yx(self) -> tuple[float, float] | None:
        """Native pixel size of the QA band."""
        return self.qa_grid.res_yx

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


# ---------------------------------------------------------------------------- the item


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _as_dict(item: Any) -> tuple[dict[str, Any], str | None]:
    """The item as a (shallow) dict and its own location (the ``self`` link), if known."""
    if isinstance(item, Mapping):
        out = dict(item)
        return out, self_link(out) or None
    to_dict = getattr(item, "to_dict", None)
    if to_dict is None:
        raise ItemError(f"not a STAC item: {type(item).__name__}; pass a pystac.Item or its dict")
    try:
        out = to_dict(include_self_link=True, transform_hrefs=False)
        self_href = item.get_self_href()
    except Exception as exc:  # whatever a malformed pystac object raises, at the edge
        name = getattr(item, "id", None)
        raise ItemError(
            f"{name if isinstance(name, str) else '<no id>'}: cannot read the pystac item "
            f"({type(exc).__name__}); rebuild it from its JSON"
        ) from exc
    if not isinstance(out, dict):
        raise ItemError(f"not a STAC item: {type(item).__name__}.to_dict() gave no dict")
    return out, self_href if isinstance(self_href, str) and self_href else None


def _item_id(data: Mapping[str, Any]) -> str:
    raw = data.get("id")
    if isinstance(raw, str) and raw.strip() and raw.isprintable():
        return raw
    if raw is None:
        what = "the item has no id"
    elif isinstance(raw, str):
        what = f"the item's id {show(raw)} is blank or holds control characters"
    else:
        what = f"the item's id {show(raw)} is no string"
    raise ItemError(f"<no id>: {what}; a STAC item needs one: fix the item")


def _assets(
    raw: Any, item_id: str, self_href: str | None, notes: Notes, policy: HrefPolicy
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """The usable assets (objects with an href, made absolute) and the keys of those without.

    Every href goes through the href policy (:mod:`clearcube.hrefs`) first: a refused one is
    the item's ItemError."""
    if raw is None:
        return {}, set()
    if not isinstance(raw, Mapping):
        raise ItemError(
            f"{item_id}: assets is {_kind(raw)}, not an object keyed by asset name; fix the item"
        )
    usable: dict[str, dict[str, Any]] = {}
    hrefless: set[str] = set()
    for key, asset in raw.items():
        name = str(key)
        if not isinstance(asset, Mapping):
            notes.append(f"asset {label(name)}: {show(asset)} is not an object (ignored)")
            hrefless.add(name)
            continue
        href = asset.get("href")
        if not isinstance(href, str) or not href.strip():
            notes.append(f"asset {label(name)}: href {show(href)} is not a URL or path (ignored)")
            hrefless.add(name)
            continue
        usable[name] = {
            **asset,
            "href": policy.asset(href, item_id=item_id, self_href=self_href),
        }
    return usable, hrefless


def _text(value: Any, field_name: str, notes: Notes) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    notes.append(f"{field_name} {show(value)} is not a string (ignored)")
    return None


def _platform(props: Mapping[str, Any], item_id: str) -> str:
    for key in ("platform", "eo:platform"):
        raw = props.get(key)
        if isinstance(raw, str) and raw.strip():
            norm = raw.strip().lower().replace("_", "-").replace(" ", "-")
            return re.sub(r"^sentinel-?2", "sentinel-2", norm)
    m = re.match(r"^S2([ABC])_", item_id)
    if m:
        return f"sentinel-2{m.group(1).lower()}"
    m = re.match(r"^L[COTE]0?([4-9])_", item_id)
    if m:
        return f"landsat-{m.group(1)}"
    return ""


def _family(
    item_id: str,
    collection: str | None,
    props: Mapping[str, Any],
    assets: Mapping[str, Any],
    platform: str,
) -> SensorFamily | None:
    coll = (collection or "").lower()
    if coll.startswith("hls") or item_id.upper().startswith("HLS."):
        if "l30" in coll or ".L30." in item_id.upper() or "landsat" in platform:
            return hls.FAMILY_L30
        return hls.FAMILY_S30
    raw = props.get("constellation")
    constellation = raw.lower().replace(" ", "-") if isinstance(raw, str) else ""
    if (
        platform.startswith("sentinel-2")
        or constellation.startswith("sentinel-2")
        or "sentinel-2" in coll
        or "sentinel-s2" in coll
    ):
        return sentinel2.FAMILY
    if platform.startswith("landsat") or "landsat" in coll:
        number = platform.rsplit("-", 1)[-1]
        if number in {"4", "5", "7"}:
            return landsat.FAMILY_TM
        return landsat.FAMILY
    if any(key_matches("qa_pixel", k) for k in assets):
        return landsat.FAMILY
    return None


def _find_asset(assets: Iterable[str], candidates: Iterable[str]) -> str | None:
    """The first key matching the first candidate that any key matches."""
    by_base: dict[str, str] = {}
    for key in assets:
        by_base.setdefault(key_base(key), key)
    return next((by_base[c.lower()] for c in candidates if c.lower() in by_base), None)


def _grid(key: str, asset: Mapping[str, Any], fallback: AssetGrid, notes: Notes) -> AssetGrid:
    """An asset's grid; the item-level ``proj:`` fields (``fallback``) describe every asset of
    single-resolution items (Landsat, HLS), so they stand in for missing asset-level ones."""
    where = f"asset {label(key)}"
    return AssetGrid(
        crs_of(asset, where, notes) or fallback.crs,
        shape_of(asset.get("proj:shape"), where, notes) or fallback.shape_yx,
        transform_of(asset.get("proj:transform"), where, notes) or fallback.transform,
    )


def _item_grid(props: Mapping[str, Any], notes: Notes) -> AssetGrid:
    """The grid the item's properties state (often only a CRS)."""
    return AssetGrid(
        crs_of(props, "properties", notes),
        shape_of(props.get("proj:shape"), "properties", notes),
        transform_of(props.get("proj:transform"), "properties", notes),
    )


def _match_bands(
    family: SensorFamily, assets: Mapping[str, Any], taken: set[str]
) -> dict[str, str]:
    """Canonical band name -> asset key.

    An asset is matched by its key or by its one ``eo:bands`` name among the family's
    candidates. Only a band still unmatched falls back to ``eo:bands`` common names, and only
    to an asset that no candidate names and that alone carries that common name: HLS S30 has
    two assets with common name "nir" (B08 broad, B8A narrow), and B08 must never be "nir".
    """
    by_base: dict[str, list[str]] = {}
    for asset_key in assets:
        by_base.setdefault(key_base(asset_key), []).append(asset_key)
    labels: dict[str, tuple[list[str], list[str]]] = {}

    def labelled(asset_key: str) -> tuple[list[str], list[str]]:
        if asset_key not in labels:
            labels[asset_key] = band_labels(assets[asset_key])
        return labels[asset_key]

    matched: dict[str, str] = {}
    used = set(taken)
    for name, candidates in family.band_keys.items():
        wanted = [c.lower() for c in candidates]
        key = next((k for c in wanted for k in by_base.get(c, []) if k not in used), None)
        if key is None:
            key = next(
                (
                    k
                    for k in assets
                    if k not in used
                    and len(labelled(k)[0]) == 1
                    and key_base(labelled(k)[0][0]) in wanted
                ),
                None,
            )
        if key is not None:
            matched[name] = key
            used.add(key)
    missing = [name for name in family.band_keys if name not in matched]
    every = {c.lower() for c in itertools.chain(*family.band_keys.values())} if missing else set()
    for name in missing:
        carriers = [
            k
            for k in assets
            if k not in used
            and name in labelled(k)[1]
            and key_base(k) not in every
            and not any(key_base(n) in every for n in labelled(k)[0])
        ]
        if len(carriers) == 1:
            matched[name] = carriers[0]
            used.add(carriers[0])
    return matched


_PRODUCT_BASELINE = re.compile(r"_N(\d{2})(\d{2})_")


def _s2_baseline(props: Mapping[str, Any], item_id: str, notes: Notes) -> Baseline | None:
    """The processing baseline from the properties, else a product name, else the id."""
    for key in sentinel2.BASELINE_KEYS:
        value = props.get(key)
        if value is None or value == "":
            continue
        try:
            parsed = sentinel2.parse_baseline(value)
        except ItemError:
            notes.append(f"{key} {show(value)} is not a processing baseline (ignored)")
            continue
        if parsed is not None:
            return Baseline(f"{parsed[0]:02d}.{parsed[1]:02d}", parsed, key)
    named = [(key, props.get(key)) for key in sentinel2.PRODUCT_NAME_KEYS]
    for key, value in [*named, ("id", item_id)]:
        m = _PRODUCT_BASELINE.search(value) if isinstance(value, str) else None
        if m:
            parsed = (int(m.group(1)), int(m.group(2)))
            return Baseline(f"{m.group(1)}.{m.group(2)}", parsed, key)
    return None


def _offset_flag(props: Mapping[str, Any], remarks: Notes) -> OffsetFlag | None:
    """The Earth Search flag (v1 first, then v0); a value that is not a bool is ignored."""
    flag = None
    for key in sentinel2.BOA_OFFSET_APPLIED_KEYS:
        value = props.get(key)
        if value is None:
            continue
        if not isinstance(value, bool):
            remarks.append(f"{key} {show(value)} is not true or false (ignored)")
        elif flag is None:
            flag = OffsetFlag(key, value)
        elif flag.applied != value:
            remarks.append(f"{flag.key} is {flag.applied} but {key} is {value}")
    return flag


def _cloud_cover(props: Mapping[str, Any], notes: Notes) -> float | None:
    raw = props.get("eo:cloud_cover")
    if raw is None:
        return None
    value = finite_number(raw)
    if value is None or not 0 <= value <= 100:
        notes.append(f"eo:cloud_cover {show(raw)} is not a percentage (ignored)")
        return None
    return value


def _fix_crs(objects: Iterable[dict[str, Any]], bad: str, good: str) -> None:
    """Write ``good`` over ``bad`` in the plan's copy of the item, so every engine reads it."""
    number = int(good.split(":")[1])
    for obj in objects:
        if crs_of(obj, "", []) == bad:
            if "proj:epsg" in obj:
                obj["proj:epsg"] = number
            if "proj:code" in obj:
                obj["proj:code"] = good


# ---------------------------------------------------------------------------- identification


def identify(item: Any, *, digest: str = "", hrefs: HrefPolicy | None = None) -> ScenePlan:
    """Resolve one STAC item into a :class:`ScenePlan`.

    See the module docstring for which fields are required and which are ignored (and
    listed in ``ScenePlan.notes``) when unusable. ``digest`` (the SHA-256 of the item's JSON
    as the search stage fetched it) is carried into the plan for the audit trail. ``hrefs`` is
    the href policy of the catalog the item came from (default: judged by the item's own
    ``self`` link, see :mod:`clearcube.hrefs`).

    Raises
    ------
    ItemError
        One line naming the item, the field and the fix: no id, ``properties`` or ``assets``
        that are not objects, no recognisable sensor, no QA asset (or one without href), no
        datetime or one that is not RFC 3339, an asset href the href policy refuses (a local
        file in a remote catalog, a GDAL virtual path, ...). Nothing else leaves this function.
    """
    data, self_href = _as_dict(item)
    item_id = _item_id(data)
    notes: Notes = []
    raw_props = data.get("properties")
    if not isinstance(raw_props, Mapping):
        raise ItemError(
            f"{item_id}: properties is {_kind(raw_props)}, not an object of fields; the item is "
            "malformed: fix it at the source"
        )
    # the plan's own copies: a corrected CRS is written into them, never into the caller's item
    props = dict(raw_props)
    policy = hrefs if hrefs is not None else HrefPolicy()
    assets, hrefless = _assets(data.get("assets"), item_id, self_href, notes, policy)
    data["properties"], data["assets"] = props, assets
    collection = _text(data.get("collection"), "collection", notes)
    bbox = bbox_of(data.get("bbox"), notes)
    platform = _platform(props, item_id)
    family = _family(item_id, collection, props, assets, platform)
    if family is None:
        raise ItemError(
            f"{item_id}: not a Sentinel-2, Landsat or HLS item (platform "
            f"{label(platform) if platform else 'unset'}, collection "
            f"{label(collection) if collection else None}); check the collection you searched"
        )

    usable = [k for k in assets if not any(key_matches(n, k) for n in family.never_qa)]
    qa_asset = _find_asset(usable, [candidate for candidate, _ in family.qa_keys])
    encoding = next(
        (enc for c, enc in family.qa_keys if qa_asset is not None and key_matches(c, qa_asset)),
        None,
    )
    if qa_asset is None or encoding is None:
        broken = _find_asset(sorted(hrefless), [c for c, _ in family.qa_keys])
        if broken is not None:
            raise ItemError(
                f"{item_id}: QA asset {label(broken)} has no href (or is not an object); the mask "
                "cannot be read: fix the item"
            )
        level = props.get("processing:level") or collection or ""
        fix = (
            "a Level-1C product has no SCL: search the L2A collection"
            if isinstance(level, str) and "l1" in level.lower()
            else "request the QA asset too (a fields filter may have dropped it) or search a "
            "collection that has it"
        )
        raise ItemError(
            f"{item_id}: no QA asset found; looked for "
            f"{', '.join(k for k, _ in family.qa_keys)} among "
            f"{', '.join(map(label, assets)) or 'no assets'}; {fix}"
        )
    qa = assets[qa_asset]
    qa_fields = raster_fields(qa, f"asset {label(qa_asset)}", notes)
    item_grid = _item_grid(props, notes)
    qa_grid = _grid(qa_asset, qa, item_grid, notes)
    when = datetime_of(props, item_id)

    bounds = qa_grid.bounds
    slip = utm_slip(qa_grid.crs, (bounds[3], bounds[1]) if bounds else None, bbox)
    if slip is not None and qa_grid.crs is not None:
        notes.append(
            f"{qa_grid.crs} is a SCAR IMW sheet, not this scene's CRS: the grid's negative "
            f"northings and the bbox put it in {slip} (a Planetary Computer metadata slip); "
            f"planned as {slip}"
        )
        _fix_crs([props, *assets.values()], qa_grid.crs, slip)
        item_grid = _item_grid(props, [])
        qa_grid = _grid(qa_asset, assets[qa_asset], item_grid, [])
    if qa_grid.crs is None:
        notes.append("no proj:code or proj:epsg: the item states no CRS, the rasters must")

    aux_qa = []
    for candidate, aux_encoding in family.aux_qa:
        key = _find_asset(usable, [candidate])
        if key is None:
            continue
        aux_fields = raster_fields(assets[key], f"asset {label(key)}", notes)
        aux_nodata = integral(aux_fields["nodata"]) if "nodata" in aux_fields else None
        aux_qa.append(
            AuxQA(
                asset=key,
                encoding=aux_encoding,
                href=assets[key]["href"],
                dtype=str(aux_fields.get("data_type") or "uint16"),
                grid=_grid(key, assets[key], item_grid, notes),
                nodata_declared=None if aux_nodata is None else float(aux_nodata),
            )
        )

    baseline = _s2_baseline(props, item_id, notes) if family is sentinel2.FAMILY else None
    remarks: Notes = []
    flag = _offset_flag(props, remarks) if family is sentinel2.FAMILY else None
    notes.extend(remarks)
    bands: dict[str, BandPlan] = {}
    for name, key in _match_bands(family, assets, {qa_asset}).items():
        asset = assets[key]
        fields = raster_fields(asset, f"asset {label(key)}", notes)
        radiometry: Radiometry
        if family is sentinel2.FAMILY:
            radiometry = sentinel2_radiometry(
                fields,
                family=family,
                flag=flag,
                baseline=baseline,
                when=when,
                remarks=tuple(remarks),
            )
        else:
            radiometry = profile_radiometry(fields, family)
        bands[name] = BandPlan(
            name=name,
            asset=key,
            href=asset["href"],
            scale=radiometry.scale,
            offset=radiometry.offset,
            nodata=fields.get("nodata", family.nodata),
            dtype=fields.get("data_type"),
            grid=_grid(key, asset, item_grid, notes),
            offset_source=radiometry.source,
            offset_conflict=radiometry.conflict,
        )

    qa_dtype = qa_fields.get("data_type")
    if qa_dtype is not None and not re.fullmatch(r"u?int(8|16|32|64)", qa_dtype):
        notes.append(
            f"asset {label(qa_asset)} data_type {qa_dtype} is not an integer type (ignored)"
        )
        qa_dtype = None
    qa_nodata = integral(qa_fields["nodata"]) if "nodata" in qa_fields else None
    if "nodata" in qa_fields and qa_nodata is None:
        notes.append(
            f"asset {label(qa_asset)} nodata {qa_fields['nodata']} is not an integer (ignored)"
        )
    sources = sorted({b.offset_source for b in bands.values()})
    conflicts = [b.offset_conflict for b in bands.values() if b.offset_conflict]
    return ScenePlan(
        id=item_id,
        collection=collection,
        datetime=when,
        sensor=family.name,
        platform=platform,
        qa_asset=qa_asset,
        qa_encoding=encoding,
        qa_href=qa["href"],
        qa_dtype=str(qa_dtype or family.qa_dtype[encoding]),
        qa_nodata=qa_nodata if qa_nodata is not None else family.qa_nodata[encoding],
        qa_grid=qa_grid,
        crs=qa_grid.crs,
        bands=bands,
        processing_baseline=baseline.text if baseline else None,
        offset_source="+".join(sources) if sources else "none",
        offset_conflict="; ".join(dict.fromkeys(conflicts)) or None,
        cloud_cover=_cloud_cover(props, notes),
        bbox=bbox,
        hrefs_local=any(not is_remote(a["href"]) for a in assets.values()),
        origin_remote=policy.remote(self_href),
        footprint=data["geometry"] if isinstance(data.get("geometry"), Mapping) else None,
        aux_qa=tuple(aux_qa),
        self_href=self_href,
        qa_nodata_declared=None if qa_nodata is None else float(qa_nodata),
        tile=_tile(family, props, item_id),
        digest=digest,
        notes=tuple(dict.fromkeys(notes)),
    )


_MGRS = re.compile(r"(?:^|_)T?(\d{2}[C-X][A-Z]{2})(?:_|\.|$)")
_WRS = re.compile(r"^L[COTEM]0\d_[A-Z0-9]{4}_(\d{6})_")


def _tile(family: SensorFamily, props: Mapping[str, Any], item_id: str) -> str | None:
    """The scene's tile (Sentinel-2 / HLS MGRS tile, Landsat WRS-2 path/row), so a series can
    be judged per tile; None when the item does not say."""
    if family.name == "landsat":
        path, row = props.get("landsat:wrs_path"), props.get("landsat:wrs_row")
        if path is not None and row is not None:
            try:
                return f"{int(path):03d}{int(row):03d}"
            except (TypeError, ValueError):
                pass
        m = _WRS.match(item_id)
        return m.group(1) if m else None
    for key in ("s2:mgrs_tile", "mgrs:tile"):
        value = props.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().upper().removeprefix("T")
    zone = props.get("mgrs:utm_zone")
    band, square = props.get("mgrs:latitude_band"), props.get("mgrs:grid_square")
    if zone is not None and isinstance(band, str) and isinstance(square, str):
        try:
            return f"{int(zone):02d}{band}{square}".upper()
        except (TypeError, ValueError):
            pass
    m = _MGRS.search(item_id.upper())
    return m.group(1) if m else None


def plan_items(
    items: Iterable[Any],
    digests: Sequence[str] | None = None,
    hrefs: HrefPolicy | None = None,
) -> list[ScenePlan | Fallback]:
    """Identify every item; items that cannot be planned come back as :class:`Fallback`.

    ``digests`` (one per item, from the search stage) are carried into the plans; ``hrefs``
    is the href policy of their catalog (see :func:`identify`)."""
    out: list[ScenePlan | Fallback] = []
    for k, item in enumerate(items):
        try:
            digest = digests[k] if digests is not None else ""
            out.append(identify(item, digest=digest, hrefs=hrefs))
        except ItemError as exc:
            if isinstance(item, Mapping):
                raw_id, raw_collection = item.get("id"), item.get("collection")
            else:
                raw_id = getattr(item, "id", None)
                raw_collection = getattr(item, "collection_id", None)
            item_id = (
                raw_id
                if isinstance(raw_id, str) and raw_id.strip() and raw_id.isprintable()
                else "<no id>"
            )
            collection = raw_collection if isinstance(raw_collection, str) else None
            out.append(Fallback(id=item_id, reason=str(exc), collection=collection))
    return out
