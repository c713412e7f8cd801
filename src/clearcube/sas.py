"""Shared access signatures: asset hrefs signed right before each read, never before.

A Planetary Computer asset (Azure Blob Storage) is readable only with a SAS token in its query
string, and a token lives for a while (about an hour). Signing the items at search time, as
``planetary_computer.sign_inplace`` does, puts the token into every href the plan holds, and a
run longer than the token's life fails half way (odc-stac#289). Here the plan and every
product keep the unsigned href; the read (:func:`clearcube.gdal_env.read_attempts`) signs it
just before it opens the file, with a token fetched from the provider's token endpoint
(``GET {token_url}/{collection}`` -> ``{"token": ..., "msft:expiry": ...}``, the protocol of
the ``planetary_computer`` package) and cached per process and collection until shortly
before its ``msft:expiry``. A read answered 403 (a token expired or revoked early) drops the
cached token and is tried once more with a fresh one; a second 403 is a read failure.

The switch is one entry of the GDAL options every read carries, :data:`SAS_OPTION` (the token
endpoint; GDAL ignores the key): a string, so the graph stays small and picklable and each
dask worker fetches and caches its own tokens. :func:`signing_options` gives it for a
provider's signing scheme; a run whose source is ``planetary-computer`` sets it itself.
``PC_SDK_SAS_URL`` and ``PC_SDK_SUBSCRIPTION_KEY`` in the environment are honoured as the
``planetary_computer`` package honours them (the key is read on the worker, sent as a header,
and never written anywhere).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from .errors import AssetReadError, ConfigError, scrub_href

__all__ = [
    "PLANETARY_COMPUTER_TOKEN_URL",
    "REFRESH_MARGIN_S",
    "SAS_OPTION",
    "Signer",
    "Token",
    "forget_tokens",
    "sign_href",
    "signer_of",
    "signing_for",
    "signing_options",
    "tokens_fetched",
]

log = logging.getLogger(__name__)

#: The GDAL-options key whose value, a token endpoint, switches signing on for the reads.
SAS_OPTION = "CLEARCUBE_SAS_TOKEN_URL"

#: Planetary Computer's token endpoint (``PC_SDK_SAS_URL`` in the environment replaces it).
PLANETARY_COMPUTER_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"

#: A cached token is replaced this long before its ``msft:expiry`` (at most a quarter of its
#: life, so that a short-lived token is still used for most of it).
REFRESH_MARGIN_S = 300.0

#: Seconds one token request may take, and how often a failed one is tried.
TOKEN_TIMEOUT_S = 10.0
TOKEN_ATTEMPTS = 3


def signing_options(scheme: str | None) -> dict[str, str]:
    """The GDAL options that make the reads sign hrefs under ``scheme`` (a provider's
    ``signing``: ``None`` or ``"planetary-computer"``)."""
    if scheme is None:
        return {}
    if scheme == "planetary-computer":
        return {SAS_OPTION: os.environ.get("PC_SDK_SAS_URL") or PLANETARY_COMPUTER_TOKEN_URL}
    raise ConfigError(f"unknown signing scheme {scheme!r}; known: planetary-computer")


#: Planetary Computer keeps its assets in Azure Blob Storage: an unsigned href on such a host
#: is one of its assets (no other provider clearcube knows serves from there).
PLANETARY_COMPUTER_STORAGE = ".blob.core.windows.net"


def signing_for(hrefs: Iterable[str]) -> dict[str, str]:
    """The signing options the ``hrefs`` need: Planetary Computer's where one of them is an
    unsigned href of its blob storage (so ``load`` of items from
    ``search(source="planetary-computer")`` signs its reads without being asked), else none."""
    for href in hrefs:
        parts = urlsplit(href)
        on_blobs = (parts.hostname or "").endswith(PLANETARY_COMPUTER_STORAGE)
        if on_blobs and "sig=" not in parts.query:
            return signing_options("planetary-computer")
    return {}


@dataclass(frozen=True)
class Token:
    """One SAS token of one collection, as this process holds it.

    Attributes
    ----------
    collection
        The collection it was fetched for.
    token
        The query string to append (``st=...&se=...&sig=...``).
    expires_at
        Its ``msft:expiry``, in seconds since the epoch.
    fetched_at
        When it was fetched, in seconds since the epoch.
    """

    collection: str
    token: str
    expires_at: float
    fetched_at: float

    def fresh(self, now: float) -> bool:
        """Whether it still has more than the refresh margin left."""
        margin = min(REFRESH_MARGIN_S, (self.expires_at - self.fetched_at) / 4)
        return now < self.expires_at - margin


# per process: (token endpoint, collection) -> the token in use; one lock per key, so that
# many threads reading one collection fetch one token, not one each
_tokens: dict[tuple[str, str], Token] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}
_guard = threading.Lock()
_fetched = [0]


def forget_tokens() -> None:
    """Drop every token this process holds (the next read fetches new ones)."""
    with _guard:
        _tokens.clear()


def tokens_fetched() -> int:
    """How many tokens this process has fetched (for logs and tests)."""
    return _fetched[0]


def _lock(key: tuple[str, str]) -> threading.Lock:
    with _guard:
        return _locks.setdefault(key, threading.Lock())


def _expiry(raw: object, url: str) -> float:
    if not isinstance(raw, str):
        raise ValueError(f"no msft:expiry in the answer of {url}")
    when = dt.datetime.fromisoformat(raw)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


@dataclass(frozen=True)
class Signer:
    """Signs hrefs with the tokens of one token endpoint (picklable: only the URL travels;
    the tokens are cached per process).

    Attributes
    ----------
    token_url
        The endpoint; a collection's token is at ``{token_url}/{collection}``.
    """

    token_url: str

    def token(self, collection: str | None, *, label: str) -> Token:
        """The cached token of ``collection``, fetched when missing or about to expire."""
        if not collection:
            raise AssetReadError(
                f"{label}: the item names no collection, so no SAS token can be asked for it; "
                "give the item its collection or read it unsigned",
                cause="no collection to ask a SAS token for",
            )
        key = (self.token_url, collection)
        held = _tokens.get(key)
        if held is not None and held.fresh(time.time()):
            return held
        with _lock(key):
            held = _tokens.get(key)
            if held is not None and held.fresh(time.time()):
                return held  # another thread fetched it meanwhile
            fresh = self._fetch(collection, label)
            _tokens[key] = fresh
            return fresh

    def forget(self, token: Token) -> None:
        """Drop ``token`` (answered 403: expired or revoked); a newer one stays."""
        key = (self.token_url, token.collection)
        with _lock(key):
            if _tokens.get(key) == token:
                del _tokens[key]

    def sign(self, href: str, collection: str | None, *, label: str) -> tuple[str, Token | None]:
        """``href`` with the collection's token in its query, and that token; an href that is
        not http(s), or that already carries a signature, unchanged (and None)."""
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or "sig=" in parts.query:
            return href, None
        token = self.token(collection, label=label)
        joiner = "&" if parts.query else "?"
        return f"{href}{joiner}{token.token}", token

    def _fetch(self, collection: str, label: str) -> Token:
        import urllib.error
        import urllib.request

        url = f"{self.token_url.rstrip('/')}/{quote(collection, safe='')}"
        headers = {"Accept": "application/json"}
        key = os.environ.get("PC_SDK_SUBSCRIPTION_KEY")
        if key:
            headers["Ocp-Apim-Subscription-Key"] = key
        cause = ""
        for attempt in range(TOKEN_ATTEMPTS):
            if attempt:
                time.sleep(0.25 * 2**attempt * random.uniform(0.5, 1.0))
            try:
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=TOKEN_TIMEOUT_S) as answer:
                    body = json.loads(answer.read())
                token = body["token"]
                if not isinstance(token, str) or not token:
                    raise ValueError(f"no token in the answer of {url}")
                expires_at = _expiry(body.get("msft:expiry"), url)
                fetched = Token(collection, token, expires_at, time.time())
            except urllib.error.HTTPError as exc:
                cause = f"HTTP {exc.code}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    break  # refused: another attempt gets the same answer
                continue
            except (OSError, ValueError, KeyError, TypeError) as exc:
                cause = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
                continue
            _fetched[0] += 1
            life = fetched.expires_at - fetched.fetched_at
            log.debug("SAS token for %s, valid %.0f s", collection, life)
            return fetched
        raise AssetReadError(
            f"{label}: cannot get a SAS token for collection {collection!r} from "
            f"{scrub_href(url)}: {cause}; check the network, the collection, or "
            "PC_SDK_SUBSCRIPTION_KEY",
            cause=f"no SAS token for {collection!r} ({cause})",
        )


def signer_of(options: Mapping[str, str]) -> Signer | None:
    """The signer the GDAL ``options`` ask for (:data:`SAS_OPTION`), or None."""
    url = options.get(SAS_OPTION)
    return Signer(url) if url else None


def sign_href(href: str, collection: str | None, options: Mapping[str, str], *, label: str) -> str:
    """``href`` signed as ``options`` ask (unchanged when they do not), for a one-off open
    such as a header probe; the window reads sign through ``read_attempts``."""
    signer = signer_of(options)
    if signer is None:
        return href
    return signer.sign(href, collection, label=label)[0]
