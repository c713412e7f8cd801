"""Search: one query over STAC APIs and static catalogs, returning pystac items."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CatalogError, ItemError
from ..hrefs import HrefPolicy, check_host
from ..scrub import scrub_href
from ._filters import (
    BBoxLike,
    DatetimeLike,
    Filters,
    geometry_bbox,
    normalise,
    parse_bbox,
    parse_datetime,
    parse_geometry,
    swapped_boxes,
)
from .providers import PROVIDERS, Provider, get_provider

if TYPE_CHECKING:
    from ..runconfig import SearchOptions

__all__ = [
    "PROVIDERS",
    "Found",
    "Provider",
    "canonical_json",
    "find",
    "geometry_bbox",
    "item_digest",
    "item_json",
    "parse_bbox",
    "parse_datetime",
    "parse_geometry",
    "read_aoi",
    "search",
    "source_policy",
]

log = logging.getLogger(__name__)


def _is_static(source: str) -> bool:
    if source.startswith(("http://", "https://")):
        return source.split("?", 1)[0].endswith(".json")
    return True


def search(
    bbox: BBoxLike = None,
    datetime: DatetimeLike = None,
    collections: str | Sequence[str] | None = None,
    source: str = "earth-search",
    max_cloud: float | None = None,
    limit: int | None = None,
    query: Mapping[str, Any] | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> Any:
    """Find items by bbox, time and cloud cover in a STAC API or a static catalog.

    Parameters
    ----------
    bbox
        (west, south, east, north) in degrees; west > east crosses the antimeridian.
        None: anywhere.
    datetime
        As pystac-client takes it: an RFC 3339 instant, a year ``"2023"``, a month
        ``"2023-08"`` or a day ``"2023-08-14"`` (each the whole period, to its last second), an
        interval of those (``"2023-01/2023-06"``, open ends ``..``: ``"2023/.."``), a
        datetime/date, or a (start, end) pair. None: any time. Static catalogs and APIs select
        the same items.
    collections
        Collection ids; default for a known provider: its Sentinel-2 L2A and Landsat C2 L2.
        An id the source does not have is an error naming the ones it has.
    source
        ``earth-search``, ``planetary-computer``, ``cdse``, ``usgs-landsatlook``, any STAC API
        URL, a path/URL to a ``catalog.json`` or an ItemCollection file, or ``demo`` (the demo
        catalog shipped with clearcube).
    max_cloud
        Upper bound of ``eo:cloud_cover`` in percent (items without it are excluded).
    limit
        At most this many items. A remote API needs a bbox, a datetime or a limit.
    query
        Extra STAC query-extension conditions, e.g. ``{"platform": {"eq": "sentinel-2b"}}``.
    allowed_hosts
        Host names the source URL, every catalog link and every redirect must name (None:
        any host). Links are checked by the href policy (:mod:`clearcube.hrefs`) either way.

    Returns
    -------
    pystac.ItemCollection

    Raises
    ------
    CatalogError
        A malformed query (one line naming the value and the fix), an unknown provider or
        collection, an unreadable source, a refused link or redirect, a walk over its bounds
        (see :func:`clearcube.catalog._static.walk`), or a bbox that finds nothing although
        its latitude-first reading (S W N E) would.
    """
    import pystac

    from ..resources import DEMO_SOURCE, demo_catalog_path

    f = normalise(bbox, datetime, collections, max_cloud, limit, query)
    provider: Provider | None = None
    log.info(
        "searching %s: bbox %s, datetime %s, collections %s",
        scrub_href(source),
        f.bbox,
        f.datetime_text,
        ",".join(f.collections) if f.collections else "default",
    )
    if source == DEMO_SOURCE:  # always the packaged one: a local folder is ./demo/...
        url = str(demo_catalog_path())
    elif source in PROVIDERS:
        provider = get_provider(source)
        url = provider.url
    elif "://" in source or os.sep in source or source.endswith(".json") or os.path.exists(source):
        url = source
    else:
        get_provider(source)  # raises the one-line "unknown provider" error
        raise AssertionError("unreachable")

    policy = source_policy(url, allowed_hosts)
    if _is_static(url) and provider is None:
        items = []
        for href, data in _static_hits(url, f, policy):
            try:
                item = pystac.Item.from_dict(data, preserve_dict=False)
            except Exception as exc:  # pystac raises many types on malformed items
                raw = data.get("id")
                name = raw if isinstance(raw, str) and raw.isprintable() else "<no id>"
                raise ItemError(
                    f"{name}: not a valid STAC item in {scrub_href(href)} ({type(exc).__name__}); "
                    "fix or remove it"
                ) from None
            item.set_self_href(href)
            items.append(item)
        log.info("found %d item(s) in %s", len(items), scrub_href(url))
        return pystac.ItemCollection(items, clone_items=False)

    if f.boxes is None and f.start is None and f.end is None and f.limit is None:
        raise CatalogError(
            f"refusing to search all of {url} without bbox, datetime or limit; narrow the query"
        )
    explicit = f.collections is not None
    if f.collections is None and provider is not None:
        product = [c for cols in provider.collections.values() for c in cols]
        f = normalise(bbox, datetime, product, max_cloud, limit, query)
    from ._api import search_api

    # hrefs stay unsigned (a provider's SAS tokens are added right before each read, by
    # clearcube.sas), so no token reaches the plan, the snapshots or any product
    hosts = policy.allowed_hosts
    found = list(search_api(url, f, check_collections=explicit, allowed_hosts=hosts))
    swapped = swapped_boxes(f.boxes) if not found else None
    again = replace(f, boxes=swapped, limit=1)
    if swapped and list(search_api(url, again, allowed_hosts=hosts)):
        _raise_swapped(f, swapped, url)
    log.info("found %d item(s) at %s", len(found), scrub_href(url))
    return pystac.ItemCollection(found, clone_items=False)


def _raise_swapped(f: Filters, swapped: tuple[tuple[float, ...], ...], url: str) -> None:
    def text(box: Sequence[float]) -> str:
        return " ".join(f"{v:g}" for v in box)

    raise CatalogError(
        f"bbox {text(f.boxes[0] if f.boxes else ())} finds no items in {scrub_href(url)}, "
        f"but {text(swapped[0])} does: bbox order is W S E N (longitude first)"
    )


def source_policy(source: str, allowed_hosts: Sequence[str] | None = None) -> HrefPolicy:
    """The href policy of the catalog a search ``source`` names (a provider, ``demo``, a STAC
    API, a catalog file or URL), after checking its own host against ``allowed_hosts``.

    Raises
    ------
    CatalogError
        The URL's host is not allowed, or an allowed host is blank.
    """
    url = _source_url(source)
    try:
        policy = HrefPolicy(root=url, allowed_hosts=tuple(allowed_hosts or ()))
    except ValueError as exc:
        raise CatalogError(str(exc)) from None
    check_host(url, policy.allowed_hosts)
    return policy


def _static_hits(url: str, f: Filters, policy: HrefPolicy) -> list[tuple[str, dict[str, Any]]]:
    """The matching ``(href, item)`` pairs of a static catalog (at most ``f.limit``).

    The walk goes on past the limit only until every asked collection was seen, so an id
    the catalog lacks is an error naming those it has rather than silently no item; a
    search that finds nothing checks the box read latitude-first on the same pass.
    """
    from ._static import matches, walk

    wanted = set(f.collections or ())
    seen: set[str] = set()
    swapped = swapped_boxes(f.boxes)
    as_swapped = replace(f, boxes=swapped) if swapped else None
    hits: list[tuple[str, dict[str, Any]]] = []
    swap_hit = False
    for href, data in walk(url, policy):
        cid = data.get("collection") if isinstance(data, Mapping) else None
        if isinstance(cid, str):
            seen.add(cid)
        if f.limit is None or len(hits) < f.limit:
            if matches(data, f):
                hits.append((href, data))
        elif wanted <= seen:
            break
        if not hits and as_swapped is not None and not swap_hit:
            swap_hit = matches(data, as_swapped)
    missing = sorted(wanted - seen)
    if missing:
        raise CatalogError(
            f"collection {', '.join(map(repr, missing))} not in {scrub_href(url)}; its "
            f"collections: {', '.join(sorted(seen)) or 'none'}"
        )
    if not hits and swapped and swap_hit:
        _raise_swapped(f, swapped, url)
    return hits


def read_aoi(path: str | Path) -> dict[str, Any]:
    """A GeoJSON area-of-interest file as one lon/lat ``Polygon`` or ``MultiPolygon``.

    Raises
    ------
    CatalogError
        The file is missing or not JSON, or holds no valid lon/lat area (see
        :func:`parse_geometry`).
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"aoi file {path} not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"aoi file {path} cannot be read ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"aoi file {path} is not JSON ({exc.msg} at line {exc.lineno}); give a GeoJSON file"
        ) from None
    return parse_geometry(doc, where=f"aoi file {path}")


@dataclass(frozen=True, eq=False)
class Found:
    """The search stage's output.

    Attributes
    ----------
    options
        What was asked.
    items
        The matching items (pystac), in the order the source returned them.
    digests
        Per item, the SHA-256 of its canonical JSON (the audit's record of the inputs).
    hrefs
        The href policy of the source, for the plan stage to judge the items' asset hrefs by.
    """

    options: SearchOptions
    items: tuple[Any, ...]
    digests: tuple[str, ...] = ()
    hrefs: HrefPolicy | None = None

    def inputs(self) -> dict[str, str]:
        """Per item (``collection/id``), the SHA-256 of its canonical JSON with credentials
        scrubbed (the text of its snapshot in the run folder): what a rerun compares to tell
        whether its inputs changed; an href signed anew for each fetch is the same input."""
        from ..scrub import scrub_value

        out = {}
        for item, digest in zip(self.items, self.digests, strict=False):
            data = item_json(item)
            key = f"{getattr(item, 'collection_id', None) or ''}/{getattr(item, 'id', '')}"
            out[key] = item_digest(scrub_value(data)) if data is not None else digest
        return out

    def record(self) -> dict[str, Any]:
        """The audit record of the search: what was asked, and every item's id, the digest of
        its JSON as fetched and its :meth:`inputs` digest."""
        from ..scrub import scrub_href

        s = self.options
        return {
            "source": scrub_href(s.source),
            "bbox": s.bbox,
            "aoi": s.aoi,
            "datetime": s.datetime,
            "items": len(self.items),
            "ids": [i.id for i in self.items],
            "digests": list(self.digests),
            "inputs": self.inputs(),
        }


def find(options: SearchOptions) -> Found:
    """The search stage: :func:`search` with a run's ``[search]`` options.

    Raises
    ------
    CatalogError
        The source cannot be searched, or the search found nothing.
    """
    items = search(
        bbox=options.search_bbox,
        datetime=options.datetime,
        collections=options.collections,
        source=options.source,
        max_cloud=options.max_cloud,
        limit=options.limit,
        allowed_hosts=options.allowed_hosts,
    )
    if not items:
        asked = [
            f"aoi {options.aoi}" if options.aoi else "",
            f"bbox {' '.join(f'{v:g}' for v in options.bbox)}" if options.bbox else "",
            f"datetime {options.datetime}" if options.datetime else "",
            f"max_cloud {options.max_cloud:g}" if options.max_cloud is not None else "",
        ]
        raise CatalogError(
            f"the search of {scrub_href(options.source)} for "
            + (", ".join(a for a in asked if a) or "everything")
            + " found no items; widen the bbox, dates or max_cloud"
        )
    return Found(
        options,
        tuple(items),
        tuple(item_digest(item_json(i)) for i in items),
        hrefs=source_policy(options.source, options.allowed_hosts),
    )


def _source_url(source: str) -> str:
    """The URL or path a search source names (a provider's URL, the demo catalog's path)."""
    from ..resources import DEMO_SOURCE, demo_catalog_path

    if source == DEMO_SOURCE:
        return str(demo_catalog_path())
    if source in PROVIDERS:
        return get_provider(source).url
    if "://" not in source and os.path.exists(source):
        return os.path.abspath(source)
    return source


def item_json(item: Any) -> dict[str, Any] | None:
    """An item's JSON as the run read it (a pystac Item: with its self link, hrefs as stored),
    or None when it has none."""
    if isinstance(item, Mapping):
        return dict(item)
    to_dict = getattr(item, "to_dict", None)
    if to_dict is None:
        return None
    try:
        out = to_dict(include_self_link=True, transform_hrefs=False)
    except Exception:  # a malformed pystac object: the plan stage records it
        return None
    return out if isinstance(out, dict) else None


def canonical_json(data: Any) -> str:
    """The canonical text of a JSON value (sorted keys, no whitespace): what digests hash."""
    import json

    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def item_digest(data: Mapping[str, Any] | None) -> str:
    """SHA-256 of an item's canonical JSON (empty for an item without JSON)."""
    import hashlib

    if data is None:
        return ""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()
