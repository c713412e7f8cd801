"""Catalog HTTP requests retried with backoff inside one deadline.

Every catalog request (a static catalog, collection or item file, a STAC API landing page,
a page of search results) gets the deadline of :data:`clearcube.gdal_env.REQUEST_DEADLINE_S`
(``CLEARCUBE_REQUEST_DEADLINE_S`` changes it): 429 and 5xx answers, connections reset,
bodies cut short or garbled (not JSON, not UTF-8) and stalls (no byte for
:func:`~clearcube.gdal_env.stall_timeout_s`) are retried after a growing pause while another
attempt like the last one still ends within it; then, or at once for a refusal (other 4xx, a
refused connection, an unknown host), a one-line :class:`CatalogError` names the scrubbed URL
and the cause. The deadline bounds when the last attempt may start and a stall ends an
attempt, so a stalled server fails within the deadline and a stall time or two.

A document is read in pieces and given up as soon as it passes :func:`max_document_bytes`
(``CLEARCUBE_CATALOG_MAX_MB``), never read whole first; every redirect hop is checked by
:func:`clearcube.hrefs.check_redirect` (http(s) only, on an allowed host) before it is followed.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..envopts import positive_option
from ..errors import CatalogError
from ..gdal_env import request_deadline_s, stall_timeout_s
from ..hrefs import MAX_REDIRECTS, check_redirect
from ..scrub import scrub_href

T = TypeVar("T")

#: HTTP statuses worth another attempt: overload, rate limits, gateway trouble
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

#: First pause between attempts, doubled each time (up to 4 s), with jitter.
BACKOFF_S = 0.25

#: The largest catalog, collection or item document read, in MB (``CLEARCUBE_CATALOG_MAX_MB``).
MAX_DOCUMENT_MB = 16.0
MAX_DOCUMENT_OPTION = "CLEARCUBE_CATALOG_MAX_MB"


def max_document_bytes() -> int:
    """The per-document size cap in force, in bytes (see :data:`MAX_DOCUMENT_MB`)."""
    mb = positive_option(MAX_DOCUMENT_OPTION, MAX_DOCUMENT_MB, "MB")
    return int(mb * 1e6)


def too_big(href: str, max_bytes: int) -> CatalogError:
    """The one-line error of a document over the size cap."""
    return CatalogError(
        f"{scrub_href(href)}: document larger than {max_bytes / 1e6:g} MB, the per-document "
        f"cap; set {MAX_DOCUMENT_OPTION} higher if it is genuine"
    )


class Transient(Exception):
    """One attempt failed in a way another attempt may not; ``cause`` says how."""

    def __init__(self, cause: str, retry_after_s: float | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after_s = retry_after_s


class Refused(Exception):
    """A failure no retry can change: the server answered a 4xx (but 408/425/429), or
    nobody listens at the address (connection refused, unknown host: a wrong URL far more
    often than a restart)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class RequestFailed(CatalogError):
    """A catalog request that failed for good, after ``attempts`` in ``took_s`` seconds."""

    def __init__(self, url: str, cause: str, attempts: int, took_s: float) -> None:
        self.url = scrub_href(url)
        self.cause = cause
        self.attempts = attempts
        self.took_s = took_s
        super().__init__(
            f"cannot read {self.url}: {cause} ({self.tries}); check the URL, or retry when "
            "the server is back"
        )

    @property
    def tries(self) -> str:
        """``"3 attempts in 4.2 s"``."""
        plural = "s" if self.attempts > 1 else ""
        return f"{self.attempts} attempt{plural} in {self.took_s:.1f} s"


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (the HTTP-date form is ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def with_retries(url: str, attempt: Callable[[float], T], *, deadline_s: float | None = None) -> T:
    """``attempt(timeout_s)`` until it returns, retrying :class:`Transient` failures.

    ``timeout_s`` is the stall time the attempt must use for its connection and each read.
    After the last attempt (see the module docstring) a :class:`Refused` or
    :class:`Transient` becomes a one-line :class:`RequestFailed` (a :class:`CatalogError`).
    """
    deadline = request_deadline_s() if deadline_s is None else deadline_s
    stall = float(stall_timeout_s(deadline))
    start = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        began = time.monotonic()
        try:
            return attempt(stall)
        except Refused as exc:
            cause = exc.cause
            give_up = True
            pause = 0.0
        except Transient as exc:
            cause = exc.cause
            pause = min(BACKOFF_S * 2 ** (attempts - 1), 4.0) * random.uniform(0.5, 1.0)
            if exc.retry_after_s is not None:
                pause = max(pause, exc.retry_after_s)
            now = time.monotonic()
            give_up = now - start + pause + (now - began) > deadline
        if give_up:
            raise RequestFailed(url, cause, attempts, time.monotonic() - start) from None
        time.sleep(pause)


def _read_body(
    resp: http.client.HTTPResponse, stall_s: float, url: str, max_bytes: int | None
) -> bytes:
    """The whole body, read in pieces: :class:`Transient` if it is cut short or stalls, a
    CatalogError as soon as it passes ``max_bytes``."""
    length = resp.headers.get("Content-Length", "")
    if max_bytes is not None and length.strip().isdigit() and int(length) > max_bytes:
        raise too_big(url, max_bytes)
    parts: list[bytes] = []
    total = 0
    try:
        while True:
            piece = resp.read(1 << 16)
            if not piece:
                return b"".join(parts)
            total += len(piece)
            if max_bytes is not None and total > max_bytes:
                raise too_big(url, max_bytes)
            parts.append(piece)
    except http.client.IncompleteRead as exc:
        got = total + len(exc.partial)
        raise Transient(f"body cut short ({got} of {got + (exc.expected or 0)} bytes)") from None
    except TimeoutError:
        raise Transient(f"no data for {stall_s:g} s (stalled)") from None
    except CatalogError:
        raise
    except OSError as exc:
        raise Transient(f"connection lost while reading ({exc})") from None


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only after :func:`~clearcube.hrefs.check_redirect` allowed it."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, allowed_hosts: tuple[str, ...]) -> None:
        super().__init__()
        self.allowed_hosts = allowed_hosts

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        try:
            check_redirect(req.full_url, newurl, self.allowed_hosts)
        except CatalogError:
            fp.close()  # urllib closes the redirect's answer only when it follows it
            raise
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def get_json(
    url: str,
    *,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
    allowed_hosts: Iterable[str] = (),
) -> Any:
    """The JSON document at ``url`` (http or https), retried as the module says.

    ``max_bytes`` (default :func:`max_document_bytes`) caps the document; ``allowed_hosts``
    (empty: any) the hosts a redirect may lead to.

    Raises
    ------
    CatalogError
        The request failed for good, the document is over the cap, or a redirect was refused.
    """
    cap = max_document_bytes() if max_bytes is None else max_bytes
    opener = urllib.request.build_opener(_CheckedRedirects(tuple(allowed_hosts)))

    def attempt(stall_s: float) -> Any:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with opener.open(request, timeout=stall_s) as resp:
                body = _read_body(resp, stall_s, url, cap)
        except CatalogError:
            raise  # over the cap, or a redirect refused: no retry changes that
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in TRANSIENT_STATUS:
                raise Transient(
                    f"HTTP {exc.code}", retry_after_s(exc.headers.get("Retry-After"))
                ) from None
            raise Refused(f"HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectionRefusedError):
                raise Refused("connection refused") from None
            if isinstance(reason, socket.gaierror):
                raise Refused(f"unknown host ({reason})") from None
            if isinstance(reason, TimeoutError):
                raise Transient(f"no answer within {stall_s:g} s") from None
            raise Transient(f"cannot connect ({reason})") from None
        except TimeoutError:
            raise Transient(f"no answer within {stall_s:g} s") from None
        except (http.client.HTTPException, OSError) as exc:
            # RemoteDisconnected (a reset or close before the answer), BadStatusLine, ...
            raise Transient(f"connection lost ({type(exc).__name__}: {exc})") from None
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            # without Content-Length a cut body is only seen as broken JSON: one more try
            raise Transient(f"not valid JSON ({exc.msg} at byte {exc.pos})") from None
        except UnicodeDecodeError as exc:
            # bytes garbled on the way (a body of the right length): one more try as well
            raise Transient(f"not valid JSON (not UTF-8 at byte {exc.start})") from None

    return with_retries(url, attempt, deadline_s=deadline_s)
