"""GDAL settings for reading COGs from local disk, HTTP(S) and object stores, and the retry
of a window read that GDAL does not retry itself.

clearcube sets these itself instead of leaving them to the user: without them GDAL lists every
remote "directory" on open, retries nothing, and fetches one range per request.

Every remote request has one deadline, :data:`REQUEST_DEADLINE_S` (30 s): a catalog or item
document, a page of search results, or one open + window read of a COG succeeds within it,
retries included, or fails with its cause; a stalled server is given up within twice that.
GDAL itself (3.10, measured against ``tests/servers/faults.py``) retries 429/5xx answers and
connections reset before any byte of the answer, but not a body cut short by a reset or a
close, a body that stalls, or corrupt tile bytes (a DEFLATE tile whose bytes were flipped
fails to decode); and after a failure it keeps answering that URL from its cache.
:func:`read_attempts` retries those, afresh, within the same deadline.
"""

from __future__ import annotations

import ctypes
import glob
import itertools
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any

from .envopts import positive_option
from .errors import AssetReadError
from .hrefs import is_remote, vsi_name
from .sas import Signer, Token, signer_of
from .scrub import scrub_href, scrub_text

__all__ = [
    "DEADLINE_OPTION",
    "GDAL_DEFAULTS",
    "HeaderError",
    "REQUEST_DEADLINE_S",
    "ReadAttempt",
    "clear_vsicurl_cache",
    "drop_dataset",
    "forget_href",
    "forget_open_datasets",
    "gdal_cause",
    "gdal_options",
    "http_settings",
    "open_dataset",
    "read_attempts",
    "request_deadline_s",
    "rio_env",
    "stall_timeout_s",
]

#: The deadline of one remote request, in seconds: a catalog or item JSON document, a page of
#: search results, or one open + window read of a COG, retries included. A request that keeps
#: failing gives up when the next attempt would end past it; a stalled one (no byte for
#: :func:`stall_timeout_s`) fails within twice the deadline. ``CLEARCUBE_REQUEST_DEADLINE_S``
#: in the environment, or ``gdal_options(deadline_s=...)`` for reads, changes it.
REQUEST_DEADLINE_S = 30.0

#: The key that carries the deadline inside the GDAL options (GDAL ignores it), so that the
#: retry of a read on a dask worker uses the deadline of the process that built the graph.
DEADLINE_OPTION = "CLEARCUBE_REQUEST_DEADLINE_S"


def request_deadline_s() -> float:
    """The deadline in force: ``CLEARCUBE_REQUEST_DEADLINE_S`` or :data:`REQUEST_DEADLINE_S`."""
    return positive_option(DEADLINE_OPTION, REQUEST_DEADLINE_S, "seconds")


def stall_timeout_s(deadline_s: float) -> int:
    """Seconds without progress after which one HTTP request counts as stalled: a sixth of
    the deadline (5 s of 30), at least 1, so that several attempts fit in the deadline."""
    return max(1, round(deadline_s / 6))


def http_settings(deadline_s: float) -> dict[str, str]:
    """GDAL's HTTP options for a deadline (see :data:`REQUEST_DEADLINE_S`).

    - ``GDAL_HTTP_MAX_RETRY``/``RETRY_DELAY``: 3 retries from 0.5 s (GDAL doubles the delay):
      a 503, a 429 or a reset before the answer costs about a second, not a new attempt;
    - ``GDAL_HTTP_LOW_SPEED_TIME``/``LIMIT``: under 1 kB/s for :func:`stall_timeout_s` is a
      stall; curl measures speed over its last 5 s, so a body that stops after a burst is
      given up 5 s later than one that never starts. GDAL does not retry these ("Operation too
      slow"), :func:`read_attempts` does;
    - ``GDAL_HTTP_CONNECTTIMEOUT``: the stall time; ``GDAL_HTTP_TIMEOUT`` half the deadline,
      the longest one request may take (a slower link needs a longer deadline).
    """
    stall = stall_timeout_s(deadline_s)
    return {
        "GDAL_HTTP_MAX_RETRY": "3",
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        "GDAL_HTTP_CONNECTTIMEOUT": str(stall),
        "GDAL_HTTP_LOW_SPEED_TIME": str(stall),
        "GDAL_HTTP_LOW_SPEED_LIMIT": "1024",
        "GDAL_HTTP_TIMEOUT": str(max(stall + 1, round(deadline_s / 2))),
        DEADLINE_OPTION: f"{deadline_s:g}",
    }


#: Defaults for cloud-optimised reads; override per call with ``gdal_options(**overrides)``.
GDAL_DEFAULTS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.jp2,.JP2",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    **http_settings(REQUEST_DEADLINE_S),
    "VSI_CACHE": "TRUE",
    "GDAL_NUM_THREADS": "1",
}


def gdal_options(
    overrides: Mapping[str, Any] | None = None, *, deadline_s: float | None = None
) -> dict[str, str]:
    """The defaults with the HTTP settings of ``deadline_s`` (default
    :func:`request_deadline_s`), updated by ``CLEARCUBE_GDAL_*`` environment variables (e.g.
    ``CLEARCUBE_GDAL_HTTP_MAX_RETRY=10``) and then by ``overrides``."""
    opts = dict(GDAL_DEFAULTS)
    opts.update(http_settings(request_deadline_s() if deadline_s is None else deadline_s))
    for key, value in os.environ.items():
        if key.startswith("CLEARCUBE_GDAL_"):
            opts[key.removeprefix("CLEARCUBE_")] = value
    for key, value in (overrides or {}).items():
        opts[key] = str(value)
    return opts


def rio_env(overrides: Mapping[str, Any] | None = None) -> Any:
    """A ``rasterio.Env`` with clearcube's GDAL options."""
    import rasterio

    return rasterio.Env(**gdal_options(overrides))


@lru_cache(maxsize=1)
def _libgdal() -> Any:
    import rasterio

    base = os.path.dirname(rasterio.__file__)
    candidates = sorted(glob.glob(os.path.join(base, "..", "rasterio.libs", "libgdal*")))
    if not candidates:
        return None
    return ctypes.CDLL(candidates[0])


def clear_vsicurl_cache() -> bool:
    """Forget GDAL's per-process memory of remote files (including failed ones).

    After a URL failed once, GDAL keeps failing it from its cache in that process, even when
    the server has recovered; an application-level retry must clear the cache first. Returns
    false when the GDAL library cannot be reached (e.g. a system GDAL build).
    """
    forget_open_datasets()
    lib = _libgdal()
    if lib is None:
        return False
    lib.VSICurlClearCache()
    return True


#: Open datasets kept per thread (a rasterio dataset must not be shared between threads).
#: Few on purpose: an open dataset keeps every block it decoded in GDAL's block cache (up to
#: GDAL_CACHEMAX, 5 % of RAM), so many open handles make a long job's memory grow with its
#: length; two spare the reopen between consecutive reads of one file (and of its overview).
MAX_OPEN_DATASETS = 2
_local = threading.local()
_generation = itertools.count()
_current = [next(_generation)]


def forget_open_datasets() -> None:
    """Make every thread reopen its datasets on next use (after files or servers changed)."""
    _current[0] = next(_generation)


def open_dataset(href: str, overview_level: int | None = None, options: Hashable = None) -> Any:
    """A rasterio dataset of ``href`` (or of one of its overview levels), kept open in this
    thread and reused by the next reads of the same file: opening a COG costs a header read
    (an HTTP request for a remote one), as much as decoding a small window.

    Call inside :func:`rio_env`; ``options`` (hashable, e.g. the GDAL options of that
    environment) is part of the key, so a handle opened under other credentials or headers is
    never reused. A local file is reopened when its size or modification time
    changed; :func:`forget_open_datasets` (also done by :func:`clear_vsicurl_cache`) drops
    every handle. At most :data:`MAX_OPEN_DATASETS` stay open per thread (least recently used
    closed first).
    """
    import rasterio

    cache: OrderedDict[tuple[Any, ...], Any] | None = getattr(_local, "cache", None)
    if cache is None or getattr(_local, "generation", None) != _current[0]:
        if cache is not None:
            for ds in cache.values():
                ds.close()
        cache = _local.cache = OrderedDict()
        _local.generation = _current[0]
    stamp: tuple[int, int] | None = None
    if "://" not in href and not href.startswith("/vsi"):
        try:
            st = os.stat(href)
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
    key = (href, overview_level, options, stamp)
    ds = cache.get(key)
    if ds is not None and not ds.closed:
        cache.move_to_end(key)
        return ds
    if overview_level is None:
        ds = rasterio.open(href)
    else:
        ds = rasterio.open(href, overview_level=overview_level)
    cache[key] = ds
    while len(cache) > MAX_OPEN_DATASETS:
        _, old = cache.popitem(last=False)
        old.close()
    return ds


def drop_dataset(href: str) -> None:
    """Close this thread's handles of ``href`` (after a read from it failed)."""
    cache = getattr(_local, "cache", None)
    if not cache:
        return
    for key in [k for k in cache if k[0] == href]:
        cache.pop(key).close()


# -- retrying a window read ----------------------------------------------------------------


def forget_href(href: str) -> None:
    """Drop what this process remembers of ``href``: this thread's open handles and GDAL's
    cached size, blocks and failures of that one URL (other URLs keep theirs)."""
    drop_dataset(href)
    name = vsi_name(href)
    lib = _libgdal()
    if name is None or lib is None:
        return
    lib.VSICurlPartialClearCache(name.encode())


def _vsi_error() -> str:
    """GDAL's last file-system error of this thread (e.g. the curl error of a reset)."""
    lib = _libgdal()
    if lib is None:
        return ""
    lib.VSIGetLastErrorMsg.restype = ctypes.c_char_p
    raw = lib.VSIGetLastErrorMsg()
    return raw.decode("utf-8", "replace") if raw else ""


def _vsi_error_reset() -> None:
    lib = _libgdal()
    if lib is not None:
        lib.VSIErrorReset()


def _generic(text: str) -> bool:
    """rasterio's own wrapper of a failed read, which says nothing about the cause."""
    return "See previous exception" in text and text.startswith(("Read failed", "Read or write"))


def gdal_cause(exc: BaseException, href: str, vsi_error: str = "") -> str:
    """GDAL's own messages behind ``exc``, root cause first, on one line and scrubbed.

    rasterio raises "Read failed. See previous exception for details." and chains the GDAL
    errors (``CPLE_*``) as causes; those say what went wrong (``ZIPDecode:Decoding error``,
    ``got 0 bytes, expected 113267``, ``HTTP response code: 404``). ``vsi_error`` is GDAL's
    last file-system error, which names a curl failure the chain may not carry.
    """
    found: list[str] = []
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        text = str(err).strip().rstrip(".")
        if text and not _generic(text):
            found.append(text)
        err = err.__cause__
    if vsi_error:
        found.append(vsi_error)
    messages: list[str] = []
    for text in reversed(found):  # the deepest cause first
        if any(text in other for other in found if other != text):
            continue  # "TIFFReadEncodedTile() failed." inside "band 1: IReadBlock failed ..."
        if text not in messages:
            messages.append(text)
    text = scrub_text("; ".join(messages) or type(exc).__name__, [href])
    return " ".join(text.split())[:400]


#: curl's words for "nobody listens there": a wrong URL far more often than a restart
_UNREACHABLE = (
    "Could not connect to server",
    "Couldn't connect to server",
    "Could not resolve host",
    "Couldn't resolve host",
)


def _permanent(cause: str, exc: BaseException) -> bool:
    """A failure that no retry can mend: the server refused (4xx but 408/425/429), or
    nobody listens at the address."""
    import re

    if any(words in cause for words in _UNREACHABLE):
        return True
    for code in re.findall(r"HTTP response code: (\d{3})", cause):
        if code.startswith("4") and code not in ("408", "425", "429"):
            return True
    names = {type(e).__name__ for e in (exc, exc.__cause__) if e is not None}
    return bool(
        names
        & {
            "CPLE_AWSObjectNotFoundError",
            "CPLE_AWSAccessDeniedError",
            "CPLE_AWSBucketNotFoundError",
            "CPLE_AWSInvalidCredentialsError",
        }
    )


class HeaderError(Exception):
    """A file that opened but whose header cannot be used (no CRS, say): inside a
    :class:`ReadAttempt` a failed read like GDAL's own errors (a header garbled on the way
    reads whole on the next attempt)."""


def _gdal_errors() -> tuple[type[BaseException], ...]:
    """What a failed read raises: GDAL's errors, and a CRS that rasterio or PROJ cannot parse
    (a garbled GeoKey directory)."""
    import pyproj.exceptions
    import rasterio.errors
    from rasterio._err import CPLE_BaseError

    return (
        rasterio.errors.RasterioError,
        rasterio.errors.CRSError,
        pyproj.exceptions.CRSError,
        CPLE_BaseError,
        HeaderError,
    )


#: First pause between two attempts of a read, doubled each time (up to 4 s), with jitter so
#: that many workers hitting one server do not retry in step.
RETRY_BACKOFF_S = 0.25


class ReadAttempt:
    """One attempt of a read; see :func:`read_attempts`.

    Attributes
    ----------
    href
        What this attempt opens: the href, signed with the collection's current SAS token
        when the options ask for signing (:mod:`clearcube.sas`). Never log it.
    """

    def __init__(self, retry: _Retry) -> None:
        self._retry = retry
        self.href = retry.href

    def __enter__(self) -> ReadAttempt:
        _vsi_error_reset()
        self._started = time.monotonic()
        retry = self._retry
        if retry.signer is not None:
            self.href, retry.token = retry.signer.sign(
                retry.href, retry.collection, label=retry.label
            )
        retry.opened = self.href
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self._retry.done = True
            return False
        if not isinstance(exc, _gdal_errors()):
            return False  # not a read failure: a bug, an interrupt
        self._retry.failed(exc, time.monotonic() - self._started)  # raises when giving up
        return True


class _Retry:
    def __init__(
        self,
        href: str,
        deadline_s: float,
        stall_s: float,
        label: str,
        signer: Signer | None = None,
        collection: str | None = None,
    ) -> None:
        self.href = href
        self.deadline_s = deadline_s
        self.stall_s = stall_s
        self.label = label
        self.signer = signer
        self.collection = collection
        self.token: Token | None = None  # the SAS token of the attempt under way
        self.opened = href  # what the attempt under way opened (signed or not)
        self.refreshed = False
        self.start = time.monotonic()
        self.attempts = 0
        self.delay_s = 0.0
        self.done = False

    def failed(self, exc: BaseException, took_s: float) -> None:
        self.attempts += 1
        cause = gdal_cause(exc, self.opened, _vsi_error())
        if took_s >= self.stall_s:
            # GDAL reports a stalled header read as "not recognized as being in a supported
            # file format" and keeps curl's "Operation too slow" to its debug output
            cause += f"; the attempt ran {took_s:.1f} s, past the {self.stall_s:g} s stall limit"
        forget_href(self.opened)  # the next attempt fetches afresh, not GDAL's cached failure
        elapsed = time.monotonic() - self.start
        base = min(RETRY_BACKOFF_S * 2 ** (self.attempts - 1), 4.0)
        self.delay_s = base * random.uniform(0.5, 1.0)
        if (
            self.signer is not None
            and self.token is not None
            and not self.refreshed
            and "HTTP response code: 403" in cause
        ):
            # the token expired or was revoked before its time: one more try with a new one
            self.signer.forget(self.token)
            self.refreshed = True
            self.delay_s = 0.0
            return
        if (
            not is_remote(self.href)
            or _permanent(cause, exc)
            # another attempt like this one would end past the deadline
            or elapsed + self.delay_s + took_s > self.deadline_s
        ):
            tries = f"{self.attempts} attempt{'s' if self.attempts > 1 else ''}"
            raise AssetReadError(
                f"{self.label}: cannot read {scrub_href(self.href)}: {cause} ({tries} in "
                f"{elapsed:.1f} s); check the URL and the server, or exclude the item",
                cause=f"{cause} ({tries} in {elapsed:.1f} s)",
            ) from None


def read_attempts(
    href: str, options: Mapping[str, str], *, label: str, collection: str | None = None
) -> Iterator[ReadAttempt]:
    """Attempts of "open + read a window" of ``href``, for a ``for``/``with`` loop::

        for attempt in read_attempts(href, options, label=item_id):
            with attempt, rio_env(options):
                data = open_dataset(attempt.href).read(1, window=window)

    With :data:`clearcube.sas.SAS_OPTION` in ``options``, each attempt opens ``attempt.href``:
    ``href`` signed right then with the current SAS token of ``collection`` (cached per
    process, refreshed before it expires); a 403 drops that token and the read is tried once
    more with a fresh one, and a second 403 fails as any refusal does. Messages and the
    failure name ``href`` without its token.

    A GDAL error inside an attempt drops this thread's handles and GDAL's cache of that URL
    (:func:`forget_href`) and, for a remote href, tries again after a growing pause while
    another attempt still fits in the deadline carried by ``options`` (:data:`DEADLINE_OPTION`,
    else :func:`request_deadline_s`). A transient fault (reset, truncated or stalled body,
    corrupt tile bytes, a 503 past GDAL's own retries) thus gives the pixels of a clean read;
    a persistent one, a refusal (404, 403) or an address where nobody listens at once, or a
    local file raise
    :class:`~clearcube.errors.AssetReadError` naming ``label``, the scrubbed href and GDAL's
    own cause. The loop ends after the first attempt that succeeds.
    """
    raw = options.get(DEADLINE_OPTION)
    deadline = float(raw) if raw else request_deadline_s()
    stall = float(options.get("GDAL_HTTP_LOW_SPEED_TIME") or stall_timeout_s(deadline))
    retry = _Retry(href, deadline, stall, label, signer_of(options), collection)
    while True:
        yield ReadAttempt(retry)
        if retry.done:
            return
        time.sleep(retry.delay_s)
