"""The href policy: which hrefs a catalog may lead to, checked before any reader sees one.

Every catalog link (child, item, an ItemCollection feature's ``self``) and every item asset
href goes through here before it is fetched or handed to GDAL:

- a catalog opened over http(s) or s3 (a *remote* catalog) leads only to ``http``, ``https``
  and ``s3`` URLs. ``file:`` URLs, absolute paths, relative hrefs that climb out of the
  catalog's root (``../..``) and every other scheme (``zip+file:``, ``GTIFF_RAW:``, ...) are
  refused; ``[load] allow_local_hrefs`` lets items of a remote catalog name local files;
- a GDAL virtual path (``/vsicurl/``, ``/vsicurl?``, ``/vsicached?``, ``/vsisubfile/``,
  ``/vsizip/``, ``/vsitar/``, ``/vsigzip/``, any ``/vsi*``) is refused in every catalog:
  clearcube builds the GDAL file names it reads itself (``https://`` becomes ``/vsicurl/...``
  inside rasterio);
- a local static catalog (a file on disk, the user's own) reads remote URLs, local paths as
  written out in full (absolute, ``file:``: a saved ItemCollection names the files of the
  catalog it was searched in) and relative hrefs inside its root folder (the folder of the
  file that was opened); a relative href that climbs out of it is refused;
- with ``allowed_hosts`` (``[search] allowed_hosts``, ``--allow-host``) every URL (the
  catalog's, its links, asset hrefs and every redirect hop) must name one of those hosts (an
  ``s3://`` URL's bucket counts as its host).

A refused link is a :class:`~clearcube.errors.CatalogError`, a refused asset href an
:class:`~clearcube.errors.ItemError` naming the item; both name the scrubbed href.

Redirects: the JSON fetches check every hop (``catalog/_http.py``, and a requests hook on
pystac-client's session). GDAL 3.10 has no option to refuse a redirect or to bound its
hosts (``/vsicurl/`` lets curl follow any http(s) ``Location``; curl itself never follows
one to ``file:``; ``CPL_VSIL_CURL_USE_S3_REDIRECT`` and
``CPL_VSIL_CURL_AUTHORIZATION_HEADER_ALLOWED_IF_REDIRECT`` only tune S3 signed URLs and
credentials), so with an allow-list :func:`final_url` follows an asset URL's redirects
itself (HEAD, or a one-byte GET where HEAD is refused, redirects off, each ``Location``
checked) and the plan hands GDAL the final URL.
"""

from __future__ import annotations

import http.client
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from .errors import CatalogError, ItemError
from .scrub import scrub_href

__all__ = [
    "MAX_REDIRECTS",
    "REMOTE_SCHEMES",
    "HrefPolicy",
    "check_host",
    "check_redirect",
    "final_url",
    "is_remote",
    "is_url",
    "normalise_hosts",
    "self_link",
    "vsi_name",
]

#: The schemes a remote catalog may lead to.
REMOTE_SCHEMES = ("http", "https", "s3")

#: Redirect hops followed for one request before it is refused.
MAX_REDIRECTS = 10

#: GDAL file-system prefixes that read over the network (what GDAL's caches are keyed by).
_REMOTE_VSI = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift")
_VSI_OF_SCHEME = {
    "http": "/vsicurl/",
    "https": "/vsicurl/",
    "s3": "/vsis3/",
    "gs": "/vsigs/",
    "az": "/vsiaz/",
}


#: A URL scheme, or a GDAL driver prefix (``GTIFF_RAW:``, ``NETCDF:``, ``HDF5:``), which a URL
#: parser does not take for a scheme (the underscore) but GDAL does.
_PREFIX = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_+.\-]*):")


def _scheme(href: str) -> str:
    """The URL scheme (or GDAL driver prefix) of ``href``, lower case; "" for a path (a
    Windows drive letter is a path)."""
    m = _PREFIX.match(href)
    scheme = m.group(1).lower() if m else ""
    return "" if len(scheme) == 1 else scheme


def is_url(href: str) -> bool:
    """Whether ``href`` is an ``http``, ``https`` or ``s3`` URL (what a remote catalog is)."""
    return _scheme(href) in REMOTE_SCHEMES


def is_remote(href: str) -> bool:
    """Whether GDAL reads ``href`` over the network (a URL other than ``file:``, or one of
    GDAL's network file systems)."""
    return ("://" in href and _scheme(href) not in ("", "file")) or href.startswith(_REMOTE_VSI)


def vsi_name(href: str) -> str | None:
    """The GDAL file name behind ``href`` (what GDAL's caches are keyed by), None for a path."""
    if href.startswith("/vsi"):
        return href
    prefix = _VSI_OF_SCHEME.get(_scheme(href))
    if prefix is None:
        return None
    return prefix + (href if prefix == "/vsicurl/" else href.split("://", 1)[1])


def _is_virtual(href: str) -> bool:
    # GDAL's prefixes are case-sensitive, the refusal is not; "\vsi" is the Windows spelling
    return href.lower().lstrip().replace("\\", "/").startswith("/vsi")


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def normalise_hosts(hosts: Iterable[str] | None) -> tuple[str, ...]:
    """Host names as the allow-list compares them: lower case, no scheme, port or path.

    Raises
    ------
    ValueError
        A blank entry.
    """
    out: list[str] = []
    for raw in hosts or ():
        text = str(raw).strip().lower()
        if "://" in text:
            text = urlsplit(text).hostname or ""
        text = text.split("/", 1)[0]
        if text.startswith("[") and "]" in text:  # [::1]:8080
            text = text[1 : text.index("]")]
        elif text.count(":") == 1:
            text = text.split(":", 1)[0]
        if not text:
            raise ValueError(f"allowed host {raw!r} is blank; give a host name such as example.com")
        out.append(text)
    return tuple(dict.fromkeys(out))


def _host_refusal(url: str, allowed_hosts: tuple[str, ...]) -> str | None:
    if not allowed_hosts or not is_url(url):
        return None
    host = _host(url)
    if host in allowed_hosts:
        return None
    return f"host {host or '(none)'} is not in allowed_hosts ({', '.join(allowed_hosts)})"


def check_host(url: str, allowed_hosts: Iterable[str] | None, what: str = "catalog") -> None:
    """Refuse a URL whose host is not in ``allowed_hosts`` (no list: every host).

    Raises
    ------
    CatalogError
        One line naming the scrubbed URL and the hosts allowed.
    """
    refusal = _host_refusal(url, normalise_hosts(allowed_hosts))
    if refusal:
        raise CatalogError(
            f"{what} {scrub_href(url)} refused: {refusal}; add the host with --allow-host "
            "or [search] allowed_hosts"
        )


def check_redirect(url: str, location: str, allowed_hosts: Iterable[str] | None) -> str:
    """The absolute target of a redirect from ``url`` to ``location``, if it may be followed:
    an http(s) URL on an allowed host.

    Raises
    ------
    CatalogError
        The target is another scheme (``file:``, ...) or a host outside ``allowed_hosts``.
    """
    target = urljoin(url, location.strip())
    if _scheme(target) not in ("http", "https"):
        raise CatalogError(
            f"redirect from {scrub_href(url)} to {scrub_href(target)} refused: only http(s) "
            "redirects are followed; fix the server or the catalog"
        )
    refusal = _host_refusal(target, normalise_hosts(allowed_hosts))
    if refusal:
        raise CatalogError(
            f"redirect from {scrub_href(url)} to {scrub_href(target)} refused: {refusal}; "
            "add the host with --allow-host or [search] allowed_hosts"
        )
    return target


_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})


def _probe(url: str, method: str, timeout_s: float) -> tuple[int, str]:
    """One request with redirects off: its status and ``Location`` header."""
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
    conn = kind(parts.hostname or "", parts.port, timeout=timeout_s)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request(method, target, headers={"Range": "bytes=0-0"} if method == "GET" else {})
        resp = conn.getresponse()
        resp.read(1024)
        return resp.status, resp.getheader("Location") or ""
    finally:
        conn.close()


def final_url(url: str, allowed_hosts: Iterable[str] | None, timeout_s: float = 10.0) -> str:
    """Where an http(s) ``url`` ends after its redirects, every hop checked by
    :func:`check_redirect` (an ``s3://`` URL or a path comes back as it is).

    Raises
    ------
    CatalogError
        A hop is refused, there are more than :data:`MAX_REDIRECTS`, or the server cannot be
        asked (named with the cause).
    """
    hosts = normalise_hosts(allowed_hosts)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        if _scheme(current) not in ("http", "https"):
            return current
        try:
            status, location = _probe(current, "HEAD", timeout_s)
            if status in (403, 405, 501):  # HEAD not allowed (some signed URLs): ask for a byte
                status, location = _probe(current, "GET", timeout_s)
        except (OSError, http.client.HTTPException) as exc:
            raise CatalogError(
                f"cannot ask {scrub_href(current)} where it leads ({type(exc).__name__}: "
                f"{str(exc)[:120]}); check the URL, or retry when the server is back"
            ) from None
        if status not in _REDIRECT_STATUS or not location:
            return current
        current = check_redirect(current, location, hosts)
    raise CatalogError(
        f"{scrub_href(url)}: more than {MAX_REDIRECTS} redirects; fix the server or the catalog"
    )


def _inside(path: str, root_dir: str) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(root_dir)
    try:
        return os.path.commonpath([real, root]) == root
    except ValueError:  # another drive
        return False


def _url_inside(url: str, root: str) -> bool:
    """Whether ``url`` is on the root's host and under the root's folder."""
    a, b = urlsplit(url), urlsplit(root)
    if (a.scheme.lower(), a.netloc.lower()) != (b.scheme.lower(), b.netloc.lower()):
        return True  # another server: an absolute URL, judged by the host list
    folder = b.path.rsplit("/", 1)[0] + "/"
    return a.path.startswith(folder) and "/../" not in (a.path + "/")


@dataclass(frozen=True)
class HrefPolicy:
    """Where the hrefs of one catalog may lead (see the module docstring).

    Attributes
    ----------
    root
        The catalog that was opened: a URL (a remote catalog or STAC API) or a local file.
        None: judge each item by its own ``self`` link (remote if it is a URL).
    allowed_hosts
        Host names every URL must name (empty: any host).
    allow_local
        Items of a remote catalog may name local files (``[load] allow_local_hrefs``).
    """

    root: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    allow_local: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", normalise_hosts(self.allowed_hosts))

    def remote(self, base: str | None = None) -> bool:
        """Whether hrefs are judged as those of a remote catalog: the root is a URL, or the
        document they are read from (``base``) is one."""
        return any(is_url(origin) for origin in (self.root, base) if origin)

    def _root_dir(self) -> str | None:
        if self.root is None or is_url(self.root):
            return None
        root = os.path.abspath(self.root)
        return root if os.path.isdir(root) else os.path.dirname(root)

    def _judge(self, href: str, base: str | None) -> tuple[str, str | None]:
        """``(target, refusal)``: ``href`` resolved against ``base`` and why it is refused
        (None when it may be read)."""
        href = href.strip()
        remote = self.remote(base)
        if _is_virtual(href):
            return href, (
                "a GDAL virtual path; give an http(s) or s3 URL"
                + (" or a path inside the catalog" if not remote else "")
            )
        scheme = _scheme(href)
        if scheme in REMOTE_SCHEMES:
            target = href
        elif scheme and scheme != "file":
            return href, f"scheme {scheme}: is not read; give an http(s) or s3 URL"
        elif remote and not self.allow_local:
            if scheme == "file" or href.startswith(("/", "\\")) or os.path.isabs(href):
                return href, "a local file in a remote catalog; only http(s)/s3 hrefs are read"
            if base is None or not is_url(base):
                return href, "a local file in a remote catalog; only http(s)/s3 hrefs are read"
            target = urljoin(base, href)
            if self.root is not None and is_url(self.root) and not _url_inside(target, self.root):
                return href, "a relative href that climbs out of the catalog's root"
        else:
            path = unquote(urlsplit(href).path) if scheme == "file" else href
            written_absolute = os.path.isabs(path)
            if written_absolute or base is None:
                target = path
            elif is_url(base):
                target = urljoin(base, path)
            else:
                target = os.path.normpath(
                    os.path.join(os.path.dirname(os.path.abspath(base)), path)
                )
            root_dir = self._root_dir()
            if (
                not remote
                and not written_absolute
                and root_dir is not None
                and not is_url(target)
                and not _inside(target, root_dir)
            ):
                return href, (
                    f"a relative href that climbs out of the catalog's folder {root_dir}; "
                    "keep it inside, or write the path out in full"
                )
        return target, _host_refusal(target, self.allowed_hosts)

    def link(self, href: str, base: str) -> str:
        """A catalog link of the document at ``base``, made absolute.

        Raises
        ------
        CatalogError
            The link is refused (one line naming the document, the link and why).
        """
        target, refusal = self._judge(href, base)
        if refusal:
            raise CatalogError(
                f"{scrub_href(base)}: link {scrub_href(href.strip())} refused: {refusal}"
            )
        return target

    def asset(self, href: str, *, item_id: str, self_href: str | None) -> str:
        """An item's asset href made absolute against the item's ``self_href``.

        Raises
        ------
        ItemError
            The href is refused (one line naming the item, the href and why).
        """
        target, refusal = self._judge(href, self_href)
        if refusal:
            raise ItemError(f"{item_id}: asset href {scrub_href(href.strip())} refused: {refusal}")
        return target


def self_link(obj: Any) -> str | None:
    """The href of a STAC object's ``self`` link (a dict's ``links``), or None."""
    links = obj.get("links") if isinstance(obj, Mapping) else None
    return next(
        (
            link["href"]
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, Mapping)
            and link.get("rel") == "self"
            and isinstance(link.get("href"), str)
        ),
        None,
    )
