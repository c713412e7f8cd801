"""The run's output STAC catalog: one item per product, with processing metadata, checksums and
links to the source items it was derived from."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import scrub_href
from ._files import atomic_path

__all__ = ["write_catalog"]

_EXTENSIONS = [
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
]


def _bbox_geometry(bbox: Sequence[float]) -> dict[str, Any]:
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def write_catalog(
    out_dir: Path,
    *,
    run_id: str,
    bbox: Sequence[float],
    interval: tuple[str, str],
    crs: str,
    products: Mapping[str, Mapping[str, Any]],
    sources: Sequence[str],
    processing: Mapping[str, Any],
) -> Path:
    """Write ``catalog.json`` and one item JSON per product under ``out_dir/stac``.

    ``products`` maps an item id to ``{"assets": {key: {"href", "type", "roles", "checksum",
    "title"}}, "properties": {...}}``; hrefs are relative to ``out_dir``.
    """
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for item_id, product in products.items():
        item_path = out_dir / "stac" / f"{item_id}.json"
        assets = {}
        for key, asset in product["assets"].items():
            assets[key] = {
                "href": f"../{asset['href']}",
                "type": asset["type"],
                "roles": list(asset.get("roles", ["data"])),
                "title": asset.get("title", key),
                "file:checksum": asset["checksum"],
            }
        item = {
            "type": "Feature",
            "stac_version": "1.1.0",
            "stac_extensions": _EXTENSIONS,
            "id": item_id,
            "geometry": _bbox_geometry(bbox),
            "bbox": list(bbox),
            "properties": {
                "datetime": None,
                "start_datetime": interval[0],
                "end_datetime": interval[1],
                "proj:code": crs,
                **{f"processing:{k}": v for k, v in processing.items()},
                **product.get("properties", {}),
            },
            "assets": assets,
            "links": [
                {"rel": "root", "href": "../catalog.json", "type": "application/json"},
                {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
                *[
                    {"rel": "derived_from", "href": scrub_href(h), "type": "application/geo+json"}
                    for h in sources
                ],
            ],
        }
        with atomic_path(item_path) as tmp:
            tmp.write_text(json.dumps(item, indent=1))
        links.append(
            {"rel": "item", "href": f"./stac/{item_id}.json", "type": "application/geo+json"}
        )
    catalog = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": f"clearcube-run-{run_id}",
        "description": "Cloud-masked products of one clearcube run; audit.jsonl records every "
        "decision and `clearcube verify` re-checks the chain and checksums.",
        "links": links,
    }
    path = out_dir / "catalog.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(catalog, indent=1))
    return path
