"""Searching a STAC API with pystac-client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO

from ..errors import CatalogError
from ..hrefs import check_host, check_redirect
from ..scrub import scrub_href, scrub_message
from ._filters import Filters
from ._http import TRANSIENT_STATUS, Refused, RequestFailed, Transient, with_retries


class _RetryingIO(StacApiIO):
    """pystac-client's I/O with every request (landing page, conformance, each page of
    results) retried within the request deadline (see ``_http.py``).

    The retries are ours, not a urllib3 ``Retry`` on the session: urllib3 sees only what
    happens before the response headers, so a body cut short or stalled (raised later, as
    requests reads it) and an overall time limit are out of its reach; one loop covers all.
    """

    def __init__(
        self, deadline_s: float | None = None, allowed_hosts: tuple[str, ...] = ()
    ) -> None:
        super().__init__(max_retries=None)
        self.deadline_s = deadline_s
        self.allowed_hosts = allowed_hosts
        self.session.hooks["response"].append(self._check_redirect)

    def _check_redirect(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every redirect hop is checked before requests follows it (``hrefs.check_redirect``)."""
        if resp.is_redirect:
            try:
                check_redirect(resp.url, resp.headers.get("Location", ""), self.allowed_hosts)
            except CatalogError:
                resp.close()
                raise

    def request(
        self,
        href: str,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        if (method or "GET").upper() not in ("GET", "HEAD", "POST"):
            # transactions are not idempotent; clearcube only searches (GET or POST)
            return str(super().request(href, method, headers, parameters))

        check_host(href, self.allowed_hosts, "link")  # a next page, a collection

        def attempt(stall_s: float) -> str:
            self.timeout = (stall_s, stall_s)  # connect, and silence between two reads
            try:
                text = str(super(_RetryingIO, self).request(href, method, headers, parameters))
            except APIError as exc:
                if isinstance(exc.__context__, CatalogError):  # a redirect refused
                    raise exc.__context__ from None
                raise _classify(exc, stall_s) from None
            try:
                json.loads(text)
            except ValueError as exc:
                # a body cut short without Content-Length shows only as broken JSON
                raise Transient(f"not valid JSON ({exc})") from None
            return text

        return with_retries(href, attempt, deadline_s=self.deadline_s)


def _classify(exc: APIError, stall_s: float) -> Transient | Refused:
    status = getattr(exc, "status_code", None)
    if status is not None:
        if status in TRANSIENT_STATUS:
            return Transient(f"HTTP {status}")
        return Refused(f"HTTP {status}: {' '.join(str(exc).split())[:160]}")
    # pystac-client wraps the requests exception it caught (our __context__); a timeout
    # while the body is read comes as a ConnectionError that says "Read timed out"
    inner = exc.__context__
    text = str(inner)
    if "Connection refused" in text or "Failed to resolve" in text:
        return Refused("connection refused" if "refused" in text else "unknown host")
    if isinstance(inner, requests.exceptions.Timeout) or "timed out" in text:
        return Transient(f"no data for {stall_s:g} s (stalled)")
    if isinstance(inner, requests.exceptions.RequestException | UnicodeDecodeError):
        return Transient(f"{type(inner).__name__}: {' '.join(str(inner).split())[:160]}")
    return Refused(f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}")


def search_api(
    url: str,
    f: Filters,
    *,
    modifier: Any = None,
    check_collections: bool = False,
    allowed_hosts: tuple[str, ...] = (),
) -> Iterator[Any]:
    """pystac Items matching ``f``; an antimeridian box is searched as its two halves.
    ``check_collections``: an id of ``f.collections`` the API lacks is a CatalogError;
    ``allowed_hosts`` (empty: any) bounds every request and redirect hop."""
    import pystac_client

    try:
        client = pystac_client.Client.open(
            url, modifier=modifier, stac_io=_RetryingIO(allowed_hosts=allowed_hosts)
        )
    except RequestFailed as exc:
        raise CatalogError(
            f"cannot reach the STAC API at {scrub_href(url)}: {exc.cause} ({exc.tries}); "
            "check the URL and your network"
        ) from None
    except CatalogError:
        raise
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
    missing = []
    for collection in collections:
        try:
            if client.get_collection(collection) is None:
                missing.append(collection)
        except RequestFailed as exc:
            if not exc.cause.startswith("HTTP 404"):
                raise CatalogError(
                    f"cannot ask {scrub_href(url)} for its collections: {exc.cause}"
                ) from None
            missing.append(collection)  # the API answers 404 for a collection it lacks
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
