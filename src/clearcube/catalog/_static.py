"""Searching static catalogs (catalog.json trees) and ItemCollection files, streaming.

The walk reads one JSON document at a time and keeps only the matching items, so a catalog
with many thousands of items is never held in memory at once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

from ..errors import CatalogError, ItemError
from ..scrub import scrub_href
from ._filters import Filters
from ._http import get_json


def _read_json(href: str) -> Any:
    if href.startswith(("http://", "https://")):
        return get_json(href)  # retried within the request deadline; CatalogError after
    try:
        with open(href, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise CatalogError(f"{href}: no such catalog file; check the path") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{scrub_href(href)}: not valid JSON ({exc.msg}, line {exc.lineno}); fix the file"
        ) from None
    except OSError as exc:
        raise CatalogError(f"cannot read {scrub_href(href)}: {exc}") from None


def _join(base: str, href: str) -> str:
    if "://" in href or os.path.isabs(href):
        return href
    if "://" in base:
        return urljoin(base, href)
    return os.path.normpath(os.path.join(os.path.dirname(base), href))


def walk(root: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(self_href, item_dict)`` for every item under ``root`` (depth first)."""
    doc = _read_json(root)
    yield from _walk_doc(root, doc, seen=set())


def _walk_doc(href: str, doc: Any, seen: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    if href in seen:
        return
    seen.add(href)
    kind = doc.get("type") if isinstance(doc, Mapping) else None
    if kind == "Feature":
        yield href, doc
        return
    if kind == "FeatureCollection":
        for feature in doc.get("features", []):
            links = feature.get("links") if isinstance(feature, Mapping) else None
            self_href = next(
                (
                    link["href"]
                    for link in (links if isinstance(links, list) else [])
                    if isinstance(link, Mapping)
                    and link.get("rel") == "self"
                    and isinstance(link.get("href"), str)
                ),
                href,
            )
            yield _join(href, self_href), feature
        return
    if kind not in ("Catalog", "Collection"):
        raise CatalogError(
            f"{scrub_href(href)}: not a STAC catalog, collection or ItemCollection (type {kind!r})"
        )
    for link in doc.get("links", []):
        rel = link.get("rel")
        if rel in ("child", "item"):
            target = _join(href, link["href"])
            yield from _walk_doc(target, _read_json(target), seen)


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


def search_static(root: str, f: Filters) -> Iterator[tuple[str, dict[str, Any]]]:
    """Matching ``(self_href, item)`` pairs, at most ``f.limit`` of them."""
    found = 0
    for href, item in walk(root):
        if matches(item, f):
            yield href, item
            found += 1
            if f.limit is not None and found >= f.limit:
                return
