"""Secrets never written: the one scrubber of URLs and text.

Signed hrefs and catalog URLs carry credentials: a token or an API key in the query string
(``?token=...``, ``?api_key=...``), an Azure SAS (``sv``, ``se``, ``sp``, ``sr``, ``sig``,
``skoid``, ...), an S3 or GCS presigned URL (``X-Amz-*``, ``X-Goog-*``), a CloudFront
signature (``Signature``, ``Policy``, ``Key-Pair-Id``), or a ``user:password@`` in the address.
Everything clearcube writes or prints (run.json, the audit trail, the scene table and review
queue, the output STAC and the source snapshots, the report, COG tags, log lines, error
messages, stdout) passes through :func:`scrub_href` (one href), :func:`scrub_text` (free text
such as a GDAL message or a log line) or :func:`scrub_value` (a JSON value: a config, a record).

An href keeps its scheme, host, port and path; its query string, fragment and user
information are dropped. In text, every URL is scrubbed so, every other query string
(``file.tif?sig=...``, ``/vsicurl?url=...``) is dropped, the value of a credential parameter
wherever it stands (``&sig=...``, ``token%3D...``) becomes ``***``, and so does the value of a
credential header (``Authorization: Bearer ...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "CREDENTIAL_PARAMETERS",
    "MASK",
    "is_credential",
    "scrub_href",
    "scrub_message",
    "scrub_text",
    "scrub_value",
]

#: What a removed secret value is replaced with in text.
MASK = "***"

#: Query parameters that carry credentials (compared case-insensitively); names starting with
#: ``x-amz-`` or ``x-goog-`` count too.
CREDENTIAL_PARAMETERS = frozenset(
    {
        # generic tokens and keys
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth",
        "auth_token",
        "authorization",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "session",
        "sessionid",
        "signature",
        "code",
        "jwt",
        # Azure shared access signatures
        "sig",
        "sv",
        "ss",
        "srt",
        "sp",
        "se",
        "st",
        "spr",
        "sr",
        "si",
        "sdd",
        "skoid",
        "sktid",
        "skt",
        "ske",
        "sks",
        "skv",
        "saoid",
        "suoid",
        "scid",
        # CloudFront signed URLs
        "policy",
        "key-pair-id",
        "expires",
    }
)

_PREFIXES = ("x-amz-", "x-goog-")

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
#: A query string (``?key=value...``) wherever it stands, e.g. after a local file name.
_QUERY = re.compile(r"\?[A-Za-z0-9_.%~-]+=[^\s'\"<>]*")
#: ``name=value`` (``=`` perhaps percent-encoded) not inside a longer name, also after a
#: percent-encoded ``?`` or ``&``.
_PARAMETER = re.compile(
    r"(?:(?<=%3[Ff])|(?<=%26)|(?<![A-Za-z0-9_.-]))"
    r"([A-Za-z][A-Za-z0-9_-]*)(=|%3[Dd])([^\s&'\"<>,;)\]}]*)"
)
#: ``user:password@`` after ``//`` in text no URL pattern caught (a percent-encoded URL).
_USERINFO = re.compile(r"(//|%2[Ff]%2[Ff])[^/\s@'\"<>]+(:|%3[Aa])[^/\s@'\"<>]*(@|%40)")
#: The value of a credential header, in a logged header mapping or a request line.
_SECRET_HEADER = re.compile(
    r"((?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key"
    r"|ocp-apim-subscription-key)['\"]?\s*[:=]\s*)(['\"]?)[^'\",}\n]*",
    re.IGNORECASE,
)
#: Text without any of these holds nothing the patterns above match (most strings: a fast path).
_MAYBE = re.compile(
    r"[=?@%]|://|bearer|authorization|cookie|api-key|subscription-key", re.IGNORECASE
)
_BEARER = re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]+")


def is_credential(name: str) -> bool:
    """Whether a query parameter named ``name`` carries a credential."""
    low = name.lower()
    return low in CREDENTIAL_PARAMETERS or low.startswith(_PREFIXES)


def scrub_href(href: str) -> str:
    """An href fit for logs, errors and every file a run writes: no query string (signed-URL
    tokens), no fragment, no user:password."""
    parts = urlsplit(href)
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive)
        return href.split("?", 1)[0].split("#", 1)[0]
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _parameter(match: re.Match[str]) -> str:
    name, equals, value = match.groups()
    if not value or value == MASK or not is_credential(name):
        return match.group(0)
    return f"{name}{equals}{MASK}"


def scrub_text(text: str, hrefs: Iterable[str] = ()) -> str:
    """``text`` with every secret it may quote removed (see the module's description).

    ``hrefs`` are the hrefs the text is about: each is also removed in the forms a reader
    quotes it in (its bare query string, percent-encoded, its user information).
    """
    for href in hrefs:
        parts = urlsplit(href)
        text = text.replace(href, scrub_href(href))
        if parts.query:
            text = text.replace("?" + parts.query, "")
            text = text.replace(quote("?" + parts.query, safe=""), "")
        if parts.password:
            text = text.replace(f"{parts.username}:{parts.password}@", "")
    if not _MAYBE.search(text):
        return text
    text = _URL.sub(lambda m: scrub_href(m.group(0)), text)
    text = _QUERY.sub("", text)
    text = _USERINFO.sub(r"\1", text)
    text = _PARAMETER.sub(_parameter, text)
    text = _SECRET_HEADER.sub(rf"\1\2{MASK}", text)
    return _BEARER.sub(rf"\1 {MASK}", text)


def scrub_value(value: Any) -> Any:
    """A JSON-like value (mappings, lists, strings, numbers) with every ``href`` scrubbed by
    :func:`scrub_href` and every other string by :func:`scrub_text`: a config, an audit
    record, a table row, a STAC item."""
    kind = type(value)
    if kind in _SCALARS:  # most values of an item: no abstract-class checks for them
        return value
    if kind is str or isinstance(value, str):
        return scrub_text(value)
    if kind is dict or isinstance(value, Mapping):
        return {
            k: scrub_href(v) if k == "href" and isinstance(v, str) else scrub_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


_SCALARS = frozenset({int, float, bool, type(None)})


def scrub_message(exc: BaseException, href: str) -> str:
    """The first line of ``exc``'s message, scrubbed (``href`` in every form it is quoted)."""
    text = scrub_text(str(exc), [href])
    return text.splitlines()[0] if text else type(exc).__name__
