"""Composites of a run, computed in the read stage's pass or from the local cube store (never
by reading COGs again), written as COGs in parallel.

Each COG names what it is in its tags: the period and its bounds, the method, the scenes that
went into it (``CLEARCUBE_SCENES``, a JSON list of ids) and how many, the run config's digest
and the software; each band its name, scale, offset and nodata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from ..layout import RunLayout
from ._files import temp_folder
from .cog import write_cog

if TYPE_CHECKING:
    from ..compute import Compute
    from .publish import Publisher

__all__ = ["CompositeProduct", "write_composites"]


@dataclass(frozen=True)
class CompositeProduct:
    """The files of one period's composite.

    Attributes
    ----------
    label
        The period (``2024``, ``2024-07``, ``2024Q3``, ``all``).
    reflectance, clear_count
        The two COGs.
    scenes
        Ids of the scenes that went into it.
    times
        Their acquisition times (naive UTC, ISO 8601).
    start, end
        The period's first and last second (UTC, ISO 8601 with ``Z``); for ``all``, the first
        and last acquisition.
    """

    label: str
    reflectance: Path
    clear_count: Path
    scenes: tuple[str, ...]
    times: tuple[str, ...]
    start: str = ""
    end: str = ""


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


def write_composites(
    cube: xr.Dataset,
    used: Sequence[int],
    *,
    layout: RunLayout,
    period: str,
    method: str,
    bands: Sequence[str],
    publisher: Publisher,
    compute: Compute,
    config_digest: str = "",
    computed: xr.Dataset | None = None,
) -> list[CompositeProduct]:
    """Composite the ``used`` time steps of ``cube`` per period and publish the COGs (tagged
    with the period, its scenes and ``config_digest``, the run config's digest).

    ``computed``: the same composites already computed (by the read stage, in its pass over
    the reflectance); else they are computed here from the local cube."""
    from ..compositing import composite, period_labels

    if not used or not bands:
        return []
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
    # GDAL compresses outside the GIL: the files are written in parallel, then published
    folder = temp_folder(layout.rel(layout.composites), layout.root)
    try:
        built = {path: folder / path.name for path, _ in jobs}
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), 4))) as pool:
            list(pool.map(lambda job: job[1](built[job[0]]), jobs))
        for path, _ in jobs:
            publisher.publish(path, built[path].replace)
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return products
