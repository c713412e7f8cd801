"""Searching static catalogs (catalog.json trees) and ItemCollection files, streaming.

The walk reads one JSON document at a time and keeps only the matching items, so a catalog
with many thousands of items is never held in memory at once.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..envopts import positive_option
from ..errors import CatalogError, ItemError
from ..gdal_env import request_deadline_s
from ..hrefs import HrefPolicy, is_url, self_link
from ..scrub import scrub_href
from ._filters import Filters
from ._http import get_json, max_document_bytes, too_big

#: How deep a walk goes below the root (the root is depth 0), ``CLEARCUBE_CATALOG_MAX_DEPTH``.
MAX_DEPTH = 32
MAX_DEPTH_OPTION = "CLEARCUBE_CATALOG_MAX_DEPTH"

#: The time one whole walk may take, in seconds, ``CLEARCUBE_CATALOG_DEADLINE_S``.
WALK_DEADLINE_S = 600.0
WALK_DEADLINE_OPTION = "CLEARCUBE_CATALOG_DEADLINE_S"


@dataclass(frozen=True)
class WalkLimits:
    """The bounds of one walk: link depth, bytes per document, seconds in all (defaults from
    ``CLEARCUBE_CATALOG_MAX_DEPTH``, ``CLEARCUBE_CATALOG_MAX_MB`` and
    ``CLEARCUBE_CATALOG_DEADLINE_S``)."""

    max_depth: int
    max_bytes: int
    deadline_s: float

    @classmethod
    def from_env(cls) -> WalkLimits:
        return cls(
            max_depth=int(positive_option(MAX_DEPTH_OPTION, MAX_DEPTH)),
            max_bytes=max_document_bytes(),
            deadline_s=positive_option(WALK_DEADLINE_OPTION, WALK_DEADLINE_S),
        )


def _read_json(
    href: str, policy: HrefPolicy, limits: WalkLimits, remaining_s: float | None = None
) -> Any:
    if is_url(href):
        deadline = request_deadline_s()
        if remaining_s is not None:
            deadline = max(0.1, min(deadline, remaining_s))
        # retried within the request deadline; CatalogError after
        return get_json(
            href,
            deadline_s=deadline,
            max_bytes=limits.max_bytes,
            allowed_hosts=policy.allowed_hosts,
        )
    try:
        with open(href, "rb") as fh:
            text = fh.read(limits.max_bytes + 1)
            if len(text) > limits.max_bytes:
                raise too_big(href, limits.max_bytes)
        return json.loads(text)
    except FileNotFoundError:
        raise CatalogError(f"{scrub_href(href)}: no such catalog file; check the path") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{scrub_href(href)}: not valid JSON ({exc.msg}, line {exc.lineno}); fix the file"
        ) from None
    except UnicodeDecodeError:
        raise CatalogError(f"{scrub_href(href)}: not UTF-8 JSON; fix the file") from None
    except CatalogError:
        raise
    except OSError as exc:
        raise CatalogError(f"cannot read {scrub_href(href)}: {exc.strerror or exc}") from None


def walk(
    root: str, policy: HrefPolicy | None = None, limits: WalkLimits | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(self_href, item_dict)`` for every item under ``root`` (depth first).

    Every link goes through ``policy`` (default: the policy of a catalog opened at ``root``,
    see :mod:`clearcube.hrefs`) before it is read. A document reached twice is read once.

    Raises
    ------
    CatalogError
        One line: a refused link, a cycle (a link back to a catalog on its own path), a link
        deeper than ``limits.max_depth``, a document over ``limits.max_bytes``, or a walk past
        ``limits.deadline_s``; each names the href and the limit.
    """
    policy = policy if policy is not None else HrefPolicy(root=root)
    limits = limits if limits is not None else WalkLimits.from_env()
    started = time.monotonic()

    def remaining(href: str) -> float:
        left = limits.deadline_s - (time.monotonic() - started)
        if left <= 0:
            raise CatalogError(
                f"walking {scrub_href(root)} took over {limits.deadline_s:g} s (next: "
                f"{scrub_href(href)}); set {WALK_DEADLINE_OPTION} higher or search a smaller "
                "catalog"
            )
        return left

    seen: set[str] = set()
    # depth first without recursion: (href, depth, the catalogs on the path to it)
    stack: list[tuple[str, int, tuple[str, ...]]] = [(root, 0, ())]
    while stack:
        href, depth, path = stack.pop()
        if href in path:
            raise CatalogError(
                f"{scrub_href(path[-1])}: link {scrub_href(href)} leads back to a catalog on its "
                "own path (a cycle); fix the catalog's links"
            )
        if href in seen:
            continue
        if depth > limits.max_depth:
            raise CatalogError(
                f"{scrub_href(href)}: more than {limits.max_depth} links below "
                f"{scrub_href(root)}; set {MAX_DEPTH_OPTION} higher if the catalog is that deep"
            )
        doc = _read_json(href, policy, limits, remaining(href))
        seen.add(href)
        kind = doc.get("type") if isinstance(doc, Mapping) else None
        if kind == "Feature":
            yield href, doc
            continue
        if kind == "FeatureCollection":
            for feature in doc.get("features", []):
                self_href = self_link(feature)
                yield (href if self_href is None else policy.link(self_href, href)), feature
            continue
        if kind not in ("Catalog", "Collection"):
            raise CatalogError(
                f"{scrub_href(href)}: not a STAC catalog, collection or ItemCollection (type "
                f"{kind!r})"
            )
        below = (*path, href)
        targets = [
            policy.link(link["href"], href)
            for link in doc.get("links", [])
            if isinstance(link, Mapping)
            and link.get("rel") in ("child", "item")
            and isinstance(link.get("href"), str)
        ]
        stack.extend((target, depth + 1, below) for target in reversed(targets))


def _item_boxes(item: Mapping[str, Any]) -> list[tuple[float, float, float, float]]:
    bbox = item.get("bbox")
    if not bbox:
        return []
    west, south, east, north = (float(v) for v in (bbox[0], bbox[1], bbox[-2], bbox[-1]))
    if west > east:  # the item itself crosses the antimeridian
        return [(west, south, 180.0, north), (-180.0, south, east, north)]
    return [(west, south, east, north)]


def _when(item: Mapping[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    props = item.get("properties", {})

    def parse(v: Any) -> dt.datetime | None:
        if not v:
            return None
        d = dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        return d if d.tzinfo else d.replace(tzinfo=dt.UTC)

    if props.get("datetime"):
        moment = parse(props["datetime"])
        return moment, moment
    return parse(props.get("start_datetime")), parse(props.get("end_datetime"))


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "in": lambda a, b: a in b,
}


@contextmanager
def _field(item: Mapping[str, Any], name: str, value: Any) -> Iterator[None]:
    """A field the filter needs that cannot be read is that item's error, named."""
    try:
        yield
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, OverflowError):
        raw = item.get("id")
        item_id = raw if isinstance(raw, str) and raw.isprintable() else "<no id>"
        raise ItemError(
            f"{item_id}: {name} {str(value)[:40]!r} cannot be read by this search's filter; fix "
            "the item or search without that filter"
        ) from None


def matches(item: Mapping[str, Any], f: Filters) -> bool:
    """The same semantics as a STAC API item search.

    Raises
    ------
    ItemError
        The item is not an object, or a field a filter needs is malformed (a bbox that is not
        numbers, a datetime that is not RFC 3339, an ``eo:cloud_cover`` that is not a number).
    """
    if not isinstance(item, Mapping) or not isinstance(item.get("properties", {}), Mapping):
        raise ItemError("<no id>: a feature or its properties is not an object; fix the catalog")
    if f.collections is not None and item.get("collection") not in f.collections:
        return False
    if f.boxes is not None:
        with _field(item, "bbox", item.get("bbox")):
            boxes = _item_boxes(item)
        if not any(
            a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
            for a in boxes
            for b in f.boxes
        ):
            return False
    props = item.get("properties", {})
    if f.start is not None or f.end is not None:
        with _field(item, "properties.datetime", props.get("datetime")):
            first, last = _when(item)
        if first is None or last is None:
            return False
        if f.start is not None and last < f.start:
            return False
        if f.end is not None and first > f.end:
            return False
    if f.max_cloud is not None:
        cloud = props.get("eo:cloud_cover")
        with _field(item, "properties.eo:cloud_cover", cloud):
            if cloud is None or float(cloud) > f.max_cloud:
                return False
    for prop, conds in (f.query or {}).items():
        value = props.get(prop)
        if value is None:
            return False
        for op, target in conds.items():
            if op not in _OPS:
                raise CatalogError(f"query operator {op!r} not supported; use {', '.join(_OPS)}")
            with _field(item, f"properties.{prop}", value):
                if not _OPS[op](value, target):
                    return False
    return True


def search_static(
    root: str, f: Filters, policy: HrefPolicy | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Matching ``(self_href, item)`` pairs, at most ``f.limit`` of them."""
    found = 0
    for href, item in walk(root, policy):
        if matches(item, f):
            yield href, item
            found += 1
            if f.limit is not None and found >= f.limit:
                return
