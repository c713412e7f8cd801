"""Composites of a run, computed from the local cube store (never by reading COGs again) and
written as COGs in parallel."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from ..layout import RunLayout
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
    """

    label: str
    reflectance: Path
    clear_count: Path
    scenes: tuple[str, ...]
    times: tuple[str, ...]


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
) -> list[CompositeProduct]:
    """Composite the ``used`` time steps of ``cube`` per period and publish the COGs."""
    from ..composite import composite, period_labels

    if not used or not bands:
        return []
    chosen = cube.isel(time=list(used))
    comp = composite(chosen, period=period, method=method, bands=list(bands))
    (comp,) = compute.run("composites", [comp])
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
        products.append(
            CompositeProduct(
                str(label),
                refl,
                count,
                tuple(ids[i] for i in members),
                tuple(times[i] for i in members),
            )
        )
        jobs.append(
            (
                refl,
                lambda p, one=one: write_cog(
                    [one[b] for b in bands], p, nodata=float("nan"), descriptions=list(bands)
                ),
            )
        )
        jobs.append(
            (
                count,
                lambda p, one=one: write_cog([one["clear_count"]], p, descriptions=["clear_count"]),
            )
        )
    # GDAL compresses outside the GIL: the files are written in parallel, then published
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=".composites.", suffix=".tmp", dir=layout.root))
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
