"""The run's output STAC: a Collection (``catalog.json``) of one item per product.

Items (STAC 1.1, under ``stac/``):

- ``run``: the run's records as assets (the scene table, the review queue, the audit trail, the
  config, the report), the evidence of every scene and plan-stage fallback, and a
  ``derived_from`` link to every source item;
- ``masked-cube``: the Zarr cube on the output grid, the evidence of its slices;
- ``composite-<period>``: the period's reflectance, clear-count and clear-dates COGs (for a
  medoid also the source-index COG and its lookup table; ``proj:`` grid and
  ``raster:bands`` read from the files, ``eo:bands``), ``datetime: null`` with the period's
  own start and end, the count and the evidence of the scenes that went into it, and
  ``derived_from`` links to those scenes only.

Every ``derived_from`` link is relative, to the source item's snapshot in the run folder
(:mod:`clearcube.products.sources`), so the folder can be moved and bundled. Every asset
carries ``file:checksum`` (SHA-256 multihash, as the audit trail records it) except the audit
trail itself: it is finished after the STAC is written (its records hold the STAC files'
checksums and its end record the catalog's), and ``clearcube verify`` checks its hash chain.
clearcube's own fields are under the ``clearcube:`` prefix; the extensions each object declares
are exactly those whose fields it uses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bands import BANDS
from ..layout import RunLayout
from ..scrub import scrub_value
from .evidence import SCENE_FIELDS, check_columns, evidence_columns
from .files import atomic_path, multihash_sha256
from .sources import SourceSnapshot, write_snapshot
from .tables import plain

if TYPE_CHECKING:
    import pandas as pd

    from ..outcome import Outcome
    from .publish import Publisher
    from .writers import Written

__all__ = ["COG", "EXTENSIONS", "STAC_VERSION", "write_stac"]

STAC_VERSION = "1.1.0"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
NDJSON = "application/x-ndjson"

#: The schema of each extension the output STAC uses, by field prefix.
EXTENSIONS = {
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "processing": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
}

_LINEAGE = (
    "clearcube run: search, QA decoding to sensor-neutral flags, dilation, cloud fractions "
    "over valid pixels, routing, reflectance of the used scenes, composites"
)
# eo:bands common names; HLS S30's broad B08 is a near-infrared band too
_COMMON = {"nir_broad": "nir"}


def write_stac(layout: RunLayout, outcome: Outcome, written: Written, publisher: Publisher) -> Path:
    """Write the source items' snapshots, one item per product and the Collection
    (``catalog.json``); every file but the Collection is published (and recorded), the
    Collection's checksum goes into the audit trail's end record."""
    for snapshot in written.sources.values():
        publisher.publish(snapshot.path, partial(_snapshot, snapshot=snapshot))
    items = _items(layout, outcome, written, publisher.sha256)
    for item in items:
        publisher.publish(layout.stac_item(item["id"]), partial(_dump, obj=item))
    collection = _collection(outcome, items)
    _dump(layout.catalog, collection)
    return layout.catalog


def _snapshot(path: Path, *, snapshot: SourceSnapshot) -> Path:
    return write_snapshot(path, snapshot)


def _dump(path: Path, obj: Mapping[str, Any]) -> Path:
    # allow_nan=False: NaN is not JSON; a missing number is null
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(scrub_value(obj), indent=1, allow_nan=False) + "\n")
    return path


def _collection_id(run_id: str) -> str:
    return f"clearcube-run-{run_id}"


def _iso(value: Any) -> str:
    """A naive-UTC time (numpy, pandas, ISO text) as ISO 8601 with ``Z``, to the second."""
    import numpy as np

    return str(np.datetime64(value, "s")) + "Z"


def _extensions(obj: Mapping[str, Any]) -> list[str]:
    """The schemas of the extensions whose fields ``obj`` (an item) uses."""
    used: set[str] = set()

    def scan(fields: Iterable[str]) -> None:
        for key in fields:
            prefix = key.split(":", 1)[0] if ":" in key else ""
            if prefix in EXTENSIONS:
                used.add(EXTENSIONS[prefix])

    scan(obj.get("properties", {}))
    for asset in obj.get("assets", {}).values():
        scan(asset)
    return sorted(used)


def _asset(
    layout: RunLayout,
    sha256: Callable[[Path], str] | None,
    path: Path,
    media: str,
    roles: Sequence[str],
    title: str,
    *,
    description: str | None = None,
) -> dict[str, Any]:
    """An asset of an item under ``stac/``: its href is relative to the item's file; with
    ``sha256``, its ``file:checksum`` (multihash sha2-256) and size."""
    out: dict[str, Any] = {
        "href": f"../{layout.rel(path)}",
        "type": media,
        "roles": list(roles),
        "title": title,
    }
    if description is not None:
        out["description"] = description
    if sha256 is not None:
        out["file:checksum"] = multihash_sha256(sha256(path))
        if path.is_file():
            out["file:size"] = path.stat().st_size
    return out


def _raster_fields(path: Path) -> dict[str, Any]:
    """``proj:`` grid and ``raster:bands`` of a GeoTIFF as the file itself declares them."""
    import rasterio

    bands = []
    with rasterio.open(path) as src:
        t = src.transform
        epsg = src.crs.to_epsg() if src.crs is not None else None
        grid = {
            "proj:code": f"EPSG:{epsg}" if epsg else None,
            "proj:shape": [src.height, src.width],
            "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
        }
        if epsg is None and src.crs is not None:
            grid["proj:wkt2"] = src.crs.to_wkt()
        for i in range(src.count):
            band: dict[str, Any] = {
                "data_type": src.dtypes[i],
                "scale": float(src.scales[i]),
                "offset": float(src.offsets[i]),
                "spatial_resolution": float(abs(src.res[0])),
            }
            nodata = src.nodatavals[i]
            if nodata is not None:
                value = float(nodata)
                if math.isnan(value):
                    band["nodata"] = "nan"
                elif math.isinf(value):
                    band["nodata"] = "inf" if value > 0 else "-inf"
                else:
                    band["nodata"] = int(value) if value.is_integer() else value
            bands.append(band)
    return {**grid, "raster:bands": bands}


def _eo_bands(names: Sequence[str]) -> list[dict[str, Any]]:
    centre = {b.name: b.centre_nm for b in BANDS}
    return [
        {
            "name": name,
            "common_name": _COMMON.get(name, name),
            "center_wavelength": round(centre[name] / 1000, 4),
        }
        for name in names
    ]


def _records(frame: pd.DataFrame, rows: Sequence[int], bands: Sequence[str]) -> list[Any]:
    """The evidence of the scene table's ``rows``, JSON-ready (unknown values as null)."""
    import pandas as pd

    names = (*SCENE_FIELDS, *evidence_columns(bands), *check_columns(bands))
    out = []
    for i in rows:
        record: dict[str, Any] = {}
        for name in names:
            value = frame[name].iloc[i] if name in frame else None
            if name == "time":
                value = None if value is None or pd.isna(value) else _iso(value)
            else:
                value = plain(value)
            record[name] = None if value == "" else value
        out.append(record)
    return out


def _derived_from(snapshots: Iterable[SourceSnapshot | None]) -> list[dict[str, Any]]:
    seen: dict[str, SourceSnapshot] = {}
    for snapshot in snapshots:
        if snapshot is not None:
            seen.setdefault(snapshot.href, snapshot)
    return [
        {
            "rel": "derived_from",
            "href": f"../{s.href}",
            "type": "application/geo+json",
            "title": s.id,
        }
        for s in seen.values()
    ]


def _items(
    layout: RunLayout, outcome: Outcome, written: Written, sha256: Callable[[Path], str]
) -> list[dict[str, Any]]:
    """The output items of a run, in catalog order: run, masked-cube, composites; ``sha256``
    gives each product's checksum (as the publisher recorded it)."""
    from .. import __version__

    cfg, planned = outcome.config, outcome.planned
    frame, bands, sources = written.scenes, written.bands, written.sources
    digest = cfg.digest()
    run_id = digest[:12]
    geobox = planned.geobox
    # the grid's four corners in lon/lat (no densified edges: the grid is small next to the
    # curvature of its CRS)
    extent = geobox.extent.to_crs("EPSG:4326", resolution=math.inf)
    bbox = [round(float(v), 7) for v in extent.boundingbox]
    ring = [[round(float(x), 7), round(float(y), 7)] for x, y in extent.exterior.coords]
    geometry = {"type": "Polygon", "coordinates": [ring]}
    a = geobox.affine
    grid = {
        "proj:code": planned.crs,
        "proj:shape": [int(geobox.shape.y), int(geobox.shape.x)],
        "proj:transform": [a.a, a.b, a.c, a.d, a.e, a.f],
        "proj:bbox": [float(v) for v in geobox.extent.boundingbox],
    }
    common = {
        "processing:software": {"clearcube": __version__},
        "processing:lineage": _LINEAGE,
        "clearcube:run_id": run_id,
        "clearcube:config_digest": digest,
        "clearcube:mask_digest": cfg.mask.digest(),
    }
    times = [s.time for s in planned.slices]
    span = (_iso(min(times)), _iso(max(times)))
    n_slices = len(planned.slices)
    by_slice = {s.id: i for i, s in enumerate(planned.slices)}

    def item(
        item_id: str,
        interval: tuple[str, str],
        properties: Mapping[str, Any],
        assets: Mapping[str, Any],
        derived: list[dict[str, Any]],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": [],
            "id": item_id,
            "collection": _collection_id(run_id),
            "geometry": geometry,
            "bbox": bbox,
            "properties": {
                "datetime": None,
                "start_datetime": interval[0],
                "end_datetime": interval[1],
                **common,
                **properties,
            },
            "assets": dict(assets),
            "links": [
                {"rel": "root", "href": "../catalog.json", "type": "application/json"},
                {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
                {"rel": "collection", "href": "../catalog.json", "type": "application/json"},
                *derived,
            ],
        }
        out["stac_extensions"] = _extensions(out)
        return out

    counts: dict[str, int] = {}
    for value in frame["decision"]:
        counts[str(value)] = counts.get(str(value), 0) + 1
    run_item = item(
        "run",
        span,
        {
            "clearcube:engine": cfg.load.engine,
            "clearcube:scenes": len(frame),
            "clearcube:decisions": counts,
            "clearcube:evidence": _records(frame, range(len(frame)), bands),
        },
        {
            "scenes": _asset(
                layout,
                sha256,
                layout.scenes,
                "text/csv",
                ["metadata"],
                "scene table",
                description="one row per scene: counts, cloud fraction, decision, reason and "
                "evidence (QA asset and encoding, baseline, offsets, mask rules, digests)",
            ),
            "review": _asset(
                layout, sha256, layout.review, NDJSON, ["metadata"], "scenes queued for review"
            ),
            "audit": _asset(
                layout,
                None,
                layout.audit,
                NDJSON,
                ["metadata"],
                "audit trail",
                description="hash-chained decision records, finished after this item was "
                "written (so it carries no checksum here); `clearcube verify` checks the "
                "chain and every product's recorded checksum",
            ),
            "config": _asset(
                layout, sha256, layout.run_json, "application/json", ["metadata"], "run config"
            ),
            "report": _asset(
                layout, sha256, layout.report, "text/html", ["overview"], "run report"
            ),
        },
        _derived_from(sources.values()),
    )
    cube_item = item(
        "masked-cube",
        span,
        {
            **grid,
            "clearcube:scenes": n_slices,
            "clearcube:evidence": _records(frame, range(n_slices), bands),
        },
        {
            "cube": _asset(
                layout,
                sha256,
                layout.cube,
                "application/vnd+zarr",
                ["data"],
                "masked datacube",
                description="Zarr v3: flags, clear, reflectance of the used scenes; per-time "
                "coordinates carry each scene's evidence. Checksum over the store's files "
                "(sorted relative paths and contents), as the audit trail records it",
            )
            | grid,
        },
        _derived_from(sources.get((m.id, m.collection)) for m in planned.scenes),
    )
    out = [run_item, cube_item]
    for c in written.composites:
        rows = [by_slice[i] for i in c.scenes]
        members = [m for i in rows for m in planned.slices[i].members]
        reflectance = _asset(
            layout,
            sha256,
            c.reflectance,
            COG,
            ["data", "reflectance"],
            f"{cfg.composite.method} of clear {', '.join(bands)}",
        )
        reflectance.update(_raster_fields(c.reflectance), **{"eo:bands": _eo_bands(bands)})
        count = _asset(layout, sha256, c.clear_count, COG, ["data"], "clear observations per pixel")
        count.update(_raster_fields(c.clear_count))
        assets = {"reflectance": reflectance, "clear_count": count}
        if c.clear_dates is not None:
            assets["clear_dates"] = _asset(
                layout,
                sha256,
                c.clear_dates,
                COG,
                ["data", "metadata"],
                "first and last clear-observation date per pixel",
                description="band 1 first_clear, band 2 last_clear: days since 1970-01-01 "
                "(uint16), 65535 where the pixel has no clear observation",
            ) | _raster_fields(c.clear_dates)
        if c.source_index is not None:
            assets["source_index"] = _asset(
                layout,
                sha256,
                c.source_index,
                COG,
                ["data", "metadata"],
                "source scene of each medoid pixel",
                description="index into the source_table asset (-1: no clear observation)",
            ) | _raster_fields(c.source_index)
        if c.source_table is not None:
            assets["source_table"] = _asset(
                layout,
                sha256,
                c.source_table,
                "application/json",
                ["metadata"],
                "source scenes of the source_index values",
                description="a JSON list of {index, id, datetime, date, sensor, platform, "
                "collection}, one per used scene",
            )
        out.append(
            item(
                f"composite-{c.label}",
                (c.start, c.end),
                {
                    **grid,
                    "clearcube:period": c.label,
                    "clearcube:method": cfg.composite.method,
                    "clearcube:scenes": len(c.scenes),
                    "clearcube:evidence": _records(frame, rows, bands),
                },
                assets,
                _derived_from(sources.get((m.id, m.collection)) for m in members),
            )
        )
    return out


def _collection(outcome: Outcome, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The Collection of the run's items; its extent is the union of theirs."""
    run_id = outcome.config.digest()[:12]
    boxes = [i["bbox"] for i in items]
    starts = sorted(i["properties"]["start_datetime"] for i in items)
    ends = sorted(i["properties"]["end_datetime"] for i in items)
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": _collection_id(run_id),
        "title": f"clearcube run {run_id}",
        "description": "Cloud-masked products of one clearcube run; audit.jsonl records every "
        "decision and `clearcube verify` re-checks the chain and checksums.",
        "license": "other",
        "providers": [
            {
                "name": "clearcube",
                "roles": ["processor"],
                "description": "cloud masking, scene routing and compositing of the source "
                "items linked from each item (derived_from)",
            }
        ],
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        min(b[0] for b in boxes),
                        min(b[1] for b in boxes),
                        max(b[2] for b in boxes),
                        max(b[3] for b in boxes),
                    ]
                ]
            },
            "temporal": {"interval": [[starts[0], ends[-1]]]},
        },
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            *[
                {
                    "rel": "item",
                    "href": f"./stac/{i['id']}.json",
                    "type": "application/geo+json",
                    "title": str(i["id"]),
                }
                for i in items
            ],
        ],
    }
