"""Searching a STAC API with pystac-client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import CatalogError, scrub_href, scrub_message
from ._filters import Filters


def search_api(
    url: str, f: Filters, *, modifier: Any = None, check_collections: bool = False
) -> Iterator[Any]:
    """pystac Items matching ``f``; an antimeridian box is searched as its two halves.
    ``check_collections``: an id of ``f.collections`` the API lacks is a CatalogError."""
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
    if check_collections and f.collections:
        require_collections(client, f.collections, url)
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


def require_collections(client: Any, collections: tuple[str, ...], url: str) -> None:
    """Raise a CatalogError naming the API's collections when one of ``collections`` is not
    among them (one GET per id; the list is fetched only then)."""
    import pystac_client
    import requests
    from pystac_client.conformance import ConformanceClasses

    if not client.conforms_to(ConformanceClasses.COLLECTIONS):
        return  # no /collections to ask: the search itself is all there is
    try:
        missing = [c for c in collections if client.get_collection(c) is None]
    except (requests.exceptions.RequestException, pystac_client.exceptions.APIError) as exc:
        raise CatalogError(
            f"cannot ask {scrub_href(url)} for its collections: {scrub_message(exc, url)[:200]}"
        ) from None
    if missing:
        try:
            have = ", ".join(sorted(c.id for c in client.get_collections())) or "none"
        except Exception:  # the list is only a hint for the message
            have = "(the API did not list them)"
        raise CatalogError(
            f"collection {', '.join(map(repr, missing))} not at {scrub_href(url)}; its "
            f"collections: {have}"
        )
