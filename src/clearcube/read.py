"""The read stage: reflectance only where it can be used.

Bands are read for the used slices only, and only in the chunks the screen found at least one
clear pixel in; every other chunk is NaN without a request. Each read chunk is turned into
reflectance (scale, offset), masked by the stored ``clear`` flags, and written into the cube
store in the same pass, which also counts the science checks' statistics
(:mod:`clearcube.checks`). A window that cannot be read is recorded with the asset, the href and
the reader's message; the decide stage then makes its scene a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from .checks import Spectra, lazy_spectra, spectra_of
from .cube import lazy_bands
from .decide import Decisions
from .engines import ReadFailure
from .flags import Flag
from .plan import Planned
from .screen import Screened

if TYPE_CHECKING:
    from .compute import Compute
    from .products.zarr import CubeStore
    from .runconfig import CompositeOptions

__all__ = ["ReadResult", "read"]


@dataclass(frozen=True)
class ReadResult:
    """The read stage's output.

    Attributes
    ----------
    bands
        The bands written into the store.
    failures
        Read failures of reflectance windows, by slice id.
    windows
        How many (slice, chunk) windows were read.
    spectra
        The science checks' statistics of every slice that was read, by slice id.
    composite
        The composites of the used slices, computed in the same pass (in memory), or None.
    composite_of
        The positions of the slices that composite was made of (if a later decision changes
        the used slices, the products stage composites again from the local cube).
    """

    bands: tuple[str, ...]
    failures: Mapping[str, tuple[ReadFailure, ...]]
    windows: int
    spectra: Mapping[str, Spectra] = field(default_factory=dict)
    composite: xr.Dataset | None = None
    composite_of: tuple[int, ...] = ()


def read(
    planned: Planned,
    screened: Screened,
    decisions: Decisions,
    bands: Sequence[str],
    *,
    store: CubeStore,
    engine: str = "native",
    gdal: Mapping[str, str] | None = None,
    compute: Compute | None = None,
    composite: CompositeOptions | None = None,
) -> ReadResult:
    """Read, mask and store the reflectance of the used slices' clear windows; with
    ``composite``, composite them per period in the same pass (each chunk read once)."""
    from .compute import Compute, blocks_of

    if not bands:
        return ReadResult((), {}, 0)
    used = set(decisions.used)
    windows = tuple(w if k in used else frozenset() for k, w in enumerate(screened.windows()))
    cube = store.open()
    member = cube.get("member", None)
    lazy = lazy_bands(
        planned,
        bands,
        engine=engine,
        gdal=gdal,
        member=member,
        windows=windows,
        on_error="flag",
    )
    clear = cube["clear"].data.astype(bool)
    valid = (cube["flags"].data & np.uint16(Flag.NODATA)) == 0
    masked = {name: band.where(clear).astype("float32") for name, band in lazy.bands.items()}
    stats, names = lazy_spectra({n: b.data for n, b in lazy.bands.items()}, clear, valid)
    chosen = tuple(decisions.used)
    lazy_comp = None
    if composite is not None and chosen:
        from .compositing import composite as make_composite

        picked = xr.Dataset(
            {name: band.isel(time=list(chosen)) for name, band in masked.items()}
        ).assign(clear=cube["clear"].isel(time=list(chosen)))
        lazy_comp = make_composite(
            picked, period=composite.period, method=composite.method, bands=list(bands)
        )
    runner = compute if compute is not None else Compute()
    # only the windows that are read are counted and written: the others are NaN, and the
    # culled graph never computes them
    read_blocks = [(k, iy, ix) for k, w in enumerate(windows) for iy, ix in sorted(w)]
    targets = [
        blocks_of(stats, [(*b, 0) for b in read_blocks]),
        *lazy.failures,
        *store.write_bands(masked, read_blocks),
    ]
    results = runner.run("read", [*targets, *([] if lazy_comp is None else [lazy_comp])])
    computed = results.pop() if lazy_comp is not None else None
    summed = np.zeros((len(windows), stats.shape[-1]), dtype=np.int64)
    for (k, _, _), block in zip(read_blocks, results.pop(0), strict=True):
        summed[k] += np.asarray(block).reshape(-1)
    spectra = {
        sl.id: spectra_of(summed[k], names) for k, sl in enumerate(planned.slices) if windows[k]
    }
    slice_of = {m.id: sl.id for sl in planned.slices for m in sl.members}
    by_slice: dict[str, list[ReadFailure]] = {}
    for group in results[: len(lazy.failures)]:
        for failure in group:
            by_slice.setdefault(slice_of.get(failure.scene, failure.scene), []).append(failure)
    return ReadResult(
        tuple(bands),
        {k: tuple(v) for k, v in by_slice.items()},
        sum(len(w) for w in windows),
        spectra,
        computed,
        chosen if computed is not None else (),
    )
