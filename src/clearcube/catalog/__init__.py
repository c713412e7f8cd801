"""Search: one query over STAC APIs and static catalogs, returning pystac items."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import CatalogError, ItemError, scrub_href
from ._filters import BBoxLike, DatetimeLike, normalise
from .providers import PROVIDERS, Provider, get_provider, modifier_for

if TYPE_CHECKING:
    from ..runconfig import SearchOptions

__all__ = [
    "PROVIDERS",
    "Found",
    "Provider",
    "canonical_json",
    "find",
    "item_digest",
    "item_json",
    "search",
]


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
) -> Any:
    """Find items by bbox, time and cloud cover in a STAC API or a static catalog.

    Parameters
    ----------
    bbox
        (west, south, east, north) in degrees; west > east crosses the antimeridian.
        None: anywhere.
    datetime
        RFC 3339 instant or interval (``"2024-01-01/2024-03-31"``, open ends ``..``), a
        datetime/date, or a (start, end) pair. None: any time.
    collections
        Collection ids; default for a known provider: its Sentinel-2 L2A and Landsat C2 L2.
    source
        ``earth-search``, ``planetary-computer``, ``cdse``, ``usgs-landsatlook``, any STAC API
        URL, or a path/URL to a ``catalog.json`` or an ItemCollection file.
    max_cloud
        Upper bound of ``eo:cloud_cover`` in percent (items without it are excluded).
    limit
        At most this many items. A remote API needs a bbox, a datetime or a limit.
    query
        Extra STAC query-extension conditions, e.g. ``{"platform": {"eq": "sentinel-2b"}}``.

    Returns
    -------
    pystac.ItemCollection
    """
    import pystac

    f = normalise(bbox, datetime, collections, max_cloud, limit, query)
    provider: Provider | None = None
    if source in PROVIDERS:
        provider = get_provider(source)
        url = provider.url
    elif "://" in source or os.sep in source or source.endswith(".json") or os.path.exists(source):
        url = source
    else:
        get_provider(source)  # raises the one-line "unknown provider" error
        raise AssertionError("unreachable")

    if _is_static(url) and provider is None:
        from ._static import search_static

        items = []
        for href, data in search_static(url, f):
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
        return pystac.ItemCollection(items, clone_items=False)

    if f.boxes is None and f.start is None and f.end is None and f.limit is None:
        raise CatalogError(
            f"refusing to search all of {url} without bbox, datetime or limit; narrow the query"
        )
    if f.collections is None and provider is not None:
        product = [c for cols in provider.collections.values() for c in cols]
        f = normalise(bbox, datetime, product, max_cloud, limit, query)
    from ._api import search_api

    found = list(search_api(url, f, modifier=modifier_for(provider)))
    return pystac.ItemCollection(found, clone_items=False)


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
    """

    options: SearchOptions
    items: tuple[Any, ...]
    digests: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """The audit record of the search."""
        from ..errors import scrub_href

        s = self.options
        return {
            "source": scrub_href(s.source),
            "bbox": s.bbox,
            "datetime": s.datetime,
            "items": len(self.items),
            "ids": [i.id for i in self.items],
            "digests": list(self.digests),
        }


def find(options: SearchOptions) -> Found:
    """The search stage: :func:`search` with a run's ``[search]`` options.

    Raises
    ------
    CatalogError
        The source cannot be searched, or the search found nothing.
    """
    items = search(
        bbox=options.bbox,
        datetime=options.datetime,
        collections=options.collections,
        source=options.source,
        max_cloud=options.max_cloud,
        limit=options.limit,
    )
    if not items:
        raise CatalogError(
            f"the search of {options.source} found no items; widen the bbox, dates or max_cloud"
        )
    return Found(options, tuple(items), tuple(item_digest(item_json(i)) for i in items))


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
