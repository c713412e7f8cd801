"""The run's output STAC catalog: one item per product, with processing metadata, checksums and
links to the source items it was derived from."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import scrub_href
from ..layout import RunLayout
from ._files import atomic_path, multihash_sha256

if TYPE_CHECKING:
    from ..outcome import Outcome
    from .publish import Publisher
    from .writers import Written

__all__ = ["write_catalog", "write_stac"]

COG = "image/tiff; application=geotiff; profile=cloud-optimized"

_EXTENSIONS = [
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
]


def _bbox_geometry(bbox: Sequence[float]) -> dict[str, Any]:
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def write_stac(layout: RunLayout, outcome: Outcome, written: Written, publisher: Publisher) -> Path:
    """Write the run's output STAC (catalog and one item per product) and record its files."""
    path = write_catalog(layout, **_catalog_products(layout, outcome, written))
    for item in sorted(layout.stac.glob("*.json")):
        publisher.record(item)
    return path


def _catalog_products(layout: RunLayout, outcome: Outcome, written: Written) -> dict[str, Any]:
    """The keyword arguments of :func:`write_catalog` for a run's products."""
    from .. import __version__

    cfg, planned = outcome.config, outcome.planned
    composites, bands = written.composites, written.bands

    def asset(path: Path, media: str, role: str, title: str | None = None) -> dict[str, Any]:
        out = {
            "href": layout.rel(path),
            "type": media,
            "roles": [role],
            "checksum": multihash_sha256(path),
        }
        if title is not None:
            out["title"] = title
        return out

    used_times = [s.time for s in planned.slices]
    products: dict[str, dict[str, Any]] = {
        "masked-cube": {
            "assets": {
                "cube": asset(layout.cube, "application/vnd+zarr", "data"),
                "scenes": asset(layout.scenes, "text/csv", "metadata"),
                "report": asset(layout.report, "text/html", "overview"),
            },
            "properties": {"clearcube:scenes": len(planned.slices)},
        }
    }
    n_used = sum(len(c.scenes) for c in composites)
    for c in composites:
        products[f"composite-{c.label}"] = {
            "assets": {
                "reflectance": asset(
                    c.reflectance,
                    COG,
                    "data",
                    f"{cfg.composite.method} of clear {', '.join(bands)}",
                ),
                "clear_count": asset(c.clear_count, COG, "data", "clear observations per pixel"),
            },
            "properties": {"clearcube:period": c.label, "clearcube:scenes": n_used},
        }
    import numpy as np

    times = np.array(used_times, dtype="datetime64[s]")
    bbox = cfg.search.bbox or tuple(planned.geobox.geographic_extent.boundingbox)
    return {
        "run_id": cfg.digest()[:12],
        "bbox": bbox,
        "interval": (str(times.min()) + "Z", str(times.max()) + "Z"),
        "crs": planned.crs,
        "products": products,
        "sources": [_source_href(s) for s in planned.scenes],
        "processing": {
            "software": {"clearcube": __version__},
            "lineage": "clearcube run: search, QA decoding to sensor-neutral flags, dilation, "
            "cloud fractions over valid pixels, routing, composites",
            "config_digest": cfg.digest(),
        },
    }


def _source_href(scene: Any) -> str:
    return str(scene.self_href or scene.id)


def write_catalog(
    layout: RunLayout,
    *,
    run_id: str,
    bbox: Sequence[float],
    interval: tuple[str, str],
    crs: str,
    products: Mapping[str, Mapping[str, Any]],
    sources: Sequence[str],
    processing: Mapping[str, Any],
) -> Path:
    """Write ``catalog.json`` and one item JSON per product under ``stac/``.

    ``products`` maps an item id to ``{"assets": {key: {"href", "type", "roles", "checksum",
    "title"}}, "properties": {...}}``; hrefs are relative to the run folder.
    """
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for item_id, product in products.items():
        item_path = layout.stac_item(item_id)
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
    path = layout.catalog
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(catalog, indent=1))
    return path
