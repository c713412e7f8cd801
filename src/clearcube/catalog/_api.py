"""Searching a STAC API with pystac-client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import CatalogError, scrub_href, scrub_message
from ._filters import Filters


def search_api(url: str, f: Filters, *, modifier: Any = None) -> Iterator[Any]:
    """pystac Items matching ``f``; an antimeridian box is searched as its two halves."""
    import pystac_client
    import requests

    try:
        client = pystac_client.Client.open(url, modifier=modifier, timeout=30)
    except (
        requests.exceptions.RequestException,
        pystac_client.exceptions.APIError,
        OSError,
    ) as exc:
        raise CatalogError(
            f"cannot reach the STAC API at {scrub_href(url)} ({type(exc).__name__}); check the "
            "URL and your network"
        ) from None
    query: dict[str, Any] = dict(f.query or {})
    if f.max_cloud is not None:
        query["eo:cloud_cover"] = {**query.get("eo:cloud_cover", {}), "lte": f.max_cloud}
    seen: set[tuple[str | None, str]] = set()
    found = 0
    for box in f.boxes or (None,):
        search = client.search(
            bbox=box,
            datetime=f.datetime_text,
            collections=list(f.collections) if f.collections else None,
            query=query or None,
            max_items=f.limit,
        )
        try:
            for item in search.items():
                key = (item.collection_id, item.id)
                if key in seen:
                    continue
                seen.add(key)
                yield item
                found += 1
                if f.limit is not None and found >= f.limit:
                    return
        except (requests.exceptions.RequestException, pystac_client.exceptions.APIError) as exc:
            raise CatalogError(
                f"search at {scrub_href(url)} failed: {scrub_message(exc, url)[:200]}"
            ) from None
