"""The products stage: everything a run writes from its stage outputs, in order.

The decisions go into the audit trail first; then the scene table and the review queue, the
cube store (completed with the per-scene evidence as per-time coordinates and moved into
place), the composites (from the local cube), the report and the output STAC (with the source
items' snapshots it links to). Every file is published through the :class:`Publisher`: written
atomically, recorded with its checksum, and kept when a resumed run finds it unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..bands import spectral_order
from ..layout import RunLayout
from ..outcome import Outcome
from .composites import CompositeProduct, PendingComposites, start_composites
from .evidence import cube_coords
from .publish import Publisher
from .sources import SourceKey, SourceSnapshot, source_snapshots
from .tables import plain, scene_frame, write_review, write_scenes
from .zarr import CubeStore, open_cube

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from ..compute import Compute

__all__ = ["Written", "write_products"]

_RECORD_KINDS = {
    "used": "scene_used",
    "review": "scene_review",
    "fallback": "scene_fallback",
    "rejected": "scene_rejected",
}


@dataclass(frozen=True, eq=False)
class Written:
    """What the products stage wrote.

    Attributes
    ----------
    scenes
        The scene table (``scenes.csv``).
    composites
        The composites, one per period.
    bands
        The reflectance bands of the cube and the composites, in spectral order.
    sources
        The source items' snapshots, by (id, collection).
    """

    scenes: pd.DataFrame
    composites: tuple[CompositeProduct, ...]
    bands: tuple[str, ...]
    sources: Mapping[SourceKey, SourceSnapshot] = field(default_factory=dict)


def write_products(
    outcome: Outcome,
    *,
    layout: RunLayout,
    store: CubeStore,
    publisher: Publisher,
    compute: Compute,
) -> Written:
    """Record the decisions, then write the scene table, the review queue, the cube, the
    composites, the report and the output STAC."""
    cfg, decisions = outcome.config, outcome.decisions
    digest = cfg.digest()
    bands = tuple(spectral_order(cfg.load.bands))
    # the read stage's composites, when it composited exactly the scenes still used: their
    # COGs are written on threads (GDAL compresses outside the GIL) while the tables and the
    # cube are finished here, and published after the cube
    early = outcome.read.composite if outcome.read.composite_of == tuple(decisions.used) else None

    def start(cube: xr.Dataset, computed: xr.Dataset | None = None) -> PendingComposites:
        return start_composites(
            cube,
            decisions.used,
            layout=layout,
            period=cfg.composite.period,
            method=cfg.composite.method,
            bands=bands,
            compute=compute,
            config_digest=digest,
            computed=computed,
        )

    pending = start(store.open(), early) if early is not None else None
    try:
        return _written(outcome, layout, store, publisher, digest, bands, pending, start)
    except BaseException:
        if pending is not None:
            pending.discard()
        raise


def _written(
    outcome: Outcome,
    layout: RunLayout,
    store: CubeStore,
    publisher: Publisher,
    digest: str,
    bands: tuple[str, ...],
    pending: PendingComposites | None,
    start: Callable[[xr.Dataset], PendingComposites],
) -> Written:
    from .report import report_sections, write_report
    from .stac import write_stac

    cfg, planned, decisions = outcome.config, outcome.planned, outcome.decisions
    sources = source_snapshots(outcome.found.items, layout)
    frame = scene_frame(
        planned,
        outcome.screened,
        decisions,
        cfg.mask,
        bands=bands,
        config_digest=digest,
        sources=sources,
        spectra=outcome.read.spectra,
    )
    # the report's figures need no product file: drawn on a thread from here, while GDAL
    # compresses the composites (outside the GIL) on the others
    pool = ThreadPoolExecutor(max_workers=1)
    sections = pool.submit(report_sections, outcome, frame, bands)
    pool.shutdown(wait=False)
    for row in frame.to_dict("records"):
        kind = _RECORD_KINDS.get(str(row["decision"]), "scene_excluded")
        publisher.audit.append(kind, {k: plain(v) for k, v in row.items()})

    publisher.publish(layout.scenes, lambda p: write_scenes(p, frame))
    publisher.publish(layout.review, lambda p: write_review(p, frame, decisions))

    attrs = {
        **cfg.mask.to_attrs(),
        "clearcube:fallbacks": json.dumps(
            [{"id": f.id, "reason": f.reason} for f in planned.fallbacks]
        ),
        "clearcube:engine": cfg.load.engine,
        "clearcube:config_digest": digest,
        "clearcube:run_id": digest[:12],
    }
    store.complete(cube_coords(frame, len(planned.slices), bands), attrs)
    publisher.publish_built(layout.cube, store.path, store.move_into_place, store.discard)

    cube = open_cube(layout.cube)
    if pending is None:  # a read removed a scene from use: composited again from the cube
        pending = start(cube)
    composites = pending.publish(publisher)
    written = Written(frame, tuple(composites), bands, sources)
    drawn = sections.result()
    publisher.publish(layout.report, lambda p: write_report(p, outcome, written, cube, drawn))
    write_stac(layout, outcome, written, publisher)
    return written
