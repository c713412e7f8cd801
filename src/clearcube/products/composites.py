"""Composites of a run, computed in the read stage's pass or from the local cube store (never
by reading COGs again), written as COGs in parallel.

Each COG names what it is in its tags: the period and its bounds, the method, the scenes that
went into it (``CLEARCUBE_SCENES``, a JSON list of ids) and how many, the run config's digest
and the software; each band its name, scale, offset and nodata.

Per-pixel provenance, from the same pass: every period has a clear-count COG and a clear-dates
COG (the first and last clear observation's date, uint16 days since 1970-01-01, 65535 where none); a
medoid composite also a source-index COG whose values index the run's source table
(``composites/source_scenes.json``: index -> scene id, date, sensor; -1 where no scene).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from ..compositing import NO_DATE
from ..compute import memory_returned
from ..layout import RunLayout
from .cog import write_cog
from .files import temp_folder

if TYPE_CHECKING:
    from ..compute import Compute
    from .publish import Publisher

__all__ = [
    "CompositeProduct",
    "PendingComposites",
    "source_table",
    "start_composites",
    "write_composite_folder",
]


@dataclass(frozen=True)
class CompositeProduct:
    """The files of one period's composite.

    Attributes
    ----------
    label
        The period (``2024``, ``2024-07``, ``2024Q3``, ``all``).
    reflectance, clear_count
        The reflectance and clear-count COGs.
    scenes
        Ids of the scenes that went into it.
    times
        Their acquisition times (naive UTC, ISO 8601).
    start, end
        The period's first and last second (UTC, ISO 8601 with ``Z``); for ``all``, the first
        and last acquisition.
    clear_dates
        The COG of each pixel's first and last clear-observation date (int32 days since
        1970-01-01, nodata -1).
    source_index
        For a medoid: the COG of each pixel's source scene, an index into ``source_table``
        (int16, nodata -1).
    source_table
        The run's table of source indices (JSON), for a medoid.
    """

    label: str
    reflectance: Path
    clear_count: Path
    scenes: tuple[str, ...]
    times: tuple[str, ...]
    start: str = ""
    end: str = ""
    clear_dates: Path | None = None
    source_index: Path | None = None
    source_table: Path | None = None


_FREQ = {"yearly": "Y", "quarterly": "Q", "monthly": "M"}


def period_bounds(label: str, period: str, times: Sequence[str]) -> tuple[str, str]:
    """The first and last second of a period label (``2024``, ``2024Q3``, ``2024-07``) as
    ISO 8601 UTC; for ``all``, the span of ``times`` (naive UTC, ISO 8601)."""
    import pandas as pd

    if period == "all":
        stamps = sorted(pd.Timestamp(t) for t in times)
        first, last = stamps[0], stamps[-1]
    else:
        span = pd.Period(label, freq=_FREQ[period])
        first, last = span.start_time, span.end_time.floor("s")
    return first.strftime("%Y-%m-%dT%H:%M:%SZ"), last.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags(product: CompositeProduct, method: str, config_digest: str) -> dict[str, str]:
    from .. import __version__

    return {
        "CLEARCUBE_PERIOD": product.label,
        "CLEARCUBE_START": product.start,
        "CLEARCUBE_END": product.end,
        "CLEARCUBE_METHOD": method,
        "CLEARCUBE_SCENE_COUNT": str(len(product.scenes)),
        "CLEARCUBE_SCENES": json.dumps(list(product.scenes)),
        "CLEARCUBE_CONFIG_DIGEST": config_digest,
        "CLEARCUBE_SOFTWARE": f"clearcube {__version__}",
    }


def source_table(chosen: xr.Dataset) -> list[dict[str, Any]]:
    """The medoid's lookup table: one row per scene of ``chosen`` (the used scenes, in cube
    order), its position as ``index`` (the value of the source-index COGs)."""
    import pandas as pd

    rows = []
    for k in range(chosen.sizes["time"]):
        scene = chosen.isel(time=k)
        row: dict[str, Any] = {
            "index": k,
            "id": str(scene["id"].values),
            "datetime": pd.Timestamp(scene["time"].values).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "date": pd.Timestamp(scene["time"].values).strftime("%Y-%m-%d"),
        }
        for name in ("sensor", "platform", "collection"):
            if name in scene.coords:
                row[name] = str(scene[name].values)
        rows.append(row)
    return rows


def _write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, indent=1) + "\n")
    return path


class PendingComposites:
    """The COGs of a run's composites being written on threads into a temporary folder (GDAL
    compresses outside the GIL, so other work goes on meanwhile); :meth:`publish` waits for
    them and publishes them, in order."""

    def __init__(
        self,
        layout: RunLayout,
        products: list[CompositeProduct],
        jobs: list[tuple[Path, Any]],
        table: list[dict[str, Any]] | None,
    ) -> None:
        self.layout = layout
        self.products = products
        self._paths = [path for path, _ in jobs]
        self._table = table
        self._folder = temp_folder(layout.rel(layout.composites), layout.root)
        self._built = {path: self._folder / path.name for path in self._paths}
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(len(jobs), 4)))
        self._futures = [self._pool.submit(write, self._built[path]) for path, write in jobs]

    def publish(self, publisher: Publisher) -> list[CompositeProduct]:
        """Wait for the files, then publish the source table (a medoid's) and the COGs."""
        try:
            with memory_returned():
                for future in self._futures:
                    future.result()
            if self._table is not None:
                table = self._table
                publisher.publish(self.layout.source_table, lambda p: _write_json(p, table))
            for path in self._paths:
                publisher.publish(path, self._built[path].replace)
        finally:
            self.discard()
        return self.products

    def discard(self) -> None:
        """Stop (what has not started), wait for the rest and remove the temporary folder."""
        import shutil

        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._folder, ignore_errors=True)


def start_composites(
    cube: xr.Dataset,
    used: Sequence[int],
    *,
    layout: RunLayout,
    period: str,
    method: str,
    bands: Sequence[str],
    compute: Compute,
    config_digest: str = "",
    computed: xr.Dataset | None = None,
) -> PendingComposites:
    """Start writing the composites of the ``used`` time steps of ``cube`` per period as COGs
    (tagged with the period, its scenes and ``config_digest``, the run config's digest); the
    cube's per-time ``id`` and ``time`` name their scenes.

    ``computed``: the same composites already computed (by the read stage, in its pass over
    the reflectance); else they are computed here from the local cube."""
    from ..compositing import composite, period_labels

    if not used or not bands:
        return PendingComposites(layout, [], [], None)
    chosen = cube.isel(time=list(used))
    if computed is not None:
        comp = computed
    else:
        lazy = composite(chosen, period=period, method=method, bands=list(bands))
        (comp,) = compute.run("composites", [lazy])
    labels = period_labels(chosen["time"].values, period)
    ids = [str(v) for v in chosen["id"].values]
    times = [str(v)[:19] for v in chosen["time"].values]
    jobs: list[tuple[Path, Any]] = []
    products = []
    medoid = "source_index" in comp
    table = source_table(chosen) if medoid else None
    for label in comp["period"].values:
        one = comp.sel(period=label)
        refl = layout.composite(method, str(label))
        count = layout.clear_count(str(label))
        members = [i for i, lab in enumerate(labels) if lab == str(label)]
        member_times = tuple(times[i] for i in members)
        start, end = period_bounds(str(label), period, member_times)
        product = CompositeProduct(
            str(label),
            refl,
            count,
            tuple(ids[i] for i in members),
            member_times,
            start,
            end,
            clear_dates=layout.clear_dates(str(label)),
            source_index=layout.source_index(str(label)) if medoid else None,
            source_table=layout.source_table if medoid else None,
        )
        products.append(product)
        tags = _tags(product, method, config_digest)
        jobs.append(
            (
                refl,
                lambda p, one=one, tags=tags: write_cog(
                    [one[b] for b in bands],
                    p,
                    nodata=float("nan"),
                    descriptions=list(bands),
                    tags=tags,
                    band_tags=[{"CLEARCUBE_BAND": b} for b in bands],
                ),
            )
        )
        jobs.append(
            (
                count,
                lambda p, one=one, tags=tags: write_cog(
                    [one["clear_count"]],
                    p,
                    descriptions=["clear_count"],
                    tags=tags,
                    band_tags=[{"CLEARCUBE_BAND": "clear_count"}],
                ),
            )
        )
        jobs.append(
            (
                layout.clear_dates(str(label)),
                lambda p, one=one, tags=tags: write_cog(
                    [one["first_clear"], one["last_clear"]],
                    p,
                    nodata=NO_DATE,
                    descriptions=["first_clear", "last_clear"],
                    tags=tags,
                    band_tags=[
                        {"CLEARCUBE_BAND": b, "UNITS": "days since 1970-01-01"}
                        for b in ("first_clear", "last_clear")
                    ],
                ),
            )
        )
        if product.source_index is not None:
            jobs.append(
                (
                    product.source_index,
                    lambda p, one=one, tags=tags: write_cog(
                        [one["source_index"]],
                        p,
                        nodata=-1,
                        descriptions=["source_index"],
                        tags={**tags, "CLEARCUBE_SOURCE_TABLE": layout.source_table.name},
                        band_tags=[{"CLEARCUBE_BAND": "source_index"}],
                    ),
                )
            )
    return PendingComposites(layout, products, jobs, table)


def write_composite_folder(
    comp: xr.Dataset, chosen: xr.Dataset, folder: Path, *, method: str, bands: Sequence[str]
) -> int:
    """Write computed composites (``clearcube composite``, outside a run's records) into
    ``folder`` under the run folder's file names: reflectance, clear count, clear dates, and
    for a medoid the source index with its table. Returns the number of periods."""
    from odc.geo.xr import assign_crs

    names = RunLayout(folder)  # the file names only: the files go straight into ``folder``
    crs = chosen.odc.crs
    for label in comp["period"].values:
        one = assign_crs(comp.sel(period=label), crs)
        name = str(label)
        write_cog(
            [one[b] for b in bands],
            folder / names.composite(method, name).name,
            nodata=float("nan"),
            descriptions=list(bands),
        )
        write_cog(
            [one["clear_count"]],
            folder / names.clear_count(name).name,
            descriptions=["clear_count"],
        )
        write_cog(
            [one["first_clear"], one["last_clear"]],
            folder / names.clear_dates(name).name,
            nodata=NO_DATE,
            descriptions=["first_clear", "last_clear"],
        )
        if "source_index" in one:
            write_cog(
                [one["source_index"]],
                folder / names.source_index(name).name,
                nodata=-1,
                descriptions=["source_index"],
            )
    if "source_index" in comp:
        _write_json(folder / names.source_table.name, source_table(chosen))
    return int(comp.sizes["period"])
