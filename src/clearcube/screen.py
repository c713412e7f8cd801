"""The screen stage: every scene's QA read once per window, decoded, counted and stored.

One dask pass reads each QA window (through the engine, decoding in the read task), dilates,
merges the slices, and from the same chunks computes the histogram of flag combinations per
(slice, chunk) and writes the flags into the cube store. What comes out is small: per slice
its pixel counts, which chunks hold at least one clear pixel (the only windows the read stage
will fetch reflectance for), its read failures and, for a QA that carries no information, the
reason. A window that cannot be read is NODATA | UNREADABLE: never clear, counted, and its
failure recorded with the asset, the href and the reader's own message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import MaskConfig
from .cube import aoi_mask, lazy_flags
from .engines import ReadFailure
from .plan import Planned, Slice
from .sensors import is_clear
from .sensors.sentinel2 import qa60_empty_means_unknown
from .stats import counts_of, window_histograms

if TYPE_CHECKING:
    from .compute import Compute
    from .products.zarr import CubeStore

__all__ = ["Screened", "ScreenedSlice", "screen"]


@dataclass(frozen=True)
class ScreenedSlice:
    """What the screen found for one slice.

    Attributes
    ----------
    id
        The slice id.
    counts
        ``aoi_px``, ``valid_px``, ``nodata_px``, ``masked_px``, ``clear_px``,
        ``unreadable_px`` and one ``<flag>_px`` per flag (valid pixels carrying it).
    clear_windows
        The chunks ``(iy, ix)`` holding at least one clear pixel (inside the AOI).
    failures
        The QA windows that could not be read.
    uninformative
        Why the QA carries no information (e.g. an all-zero QA60 of baseline >= 04.00), or
        empty.
    provider_definition
        The cloud cover the provider's own definition gives over the whole scene (its QA
        overview, every member), in percent: what ``eo:cloud_cover`` should state. None when
        not known (no overview read, no definition for the encoding).
    """

    id: str
    counts: Mapping[str, int]
    clear_windows: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    failures: tuple[ReadFailure, ...] = ()
    uninformative: str = ""
    provider_definition: float | None = None

    @property
    def aoi_px(self) -> int:
        return int(self.counts["aoi_px"])

    @property
    def valid_px(self) -> int:
        return int(self.counts["valid_px"])

    @property
    def cloud_fraction(self) -> float:
        """Masked / valid pixels; NaN when no pixel is valid."""
        valid = self.valid_px
        return float(self.counts["masked_px"]) / valid if valid else float("nan")


@dataclass(frozen=True)
class Screened:
    """The screen stage's output: one :class:`ScreenedSlice` per slice of the plan."""

    slices: tuple[ScreenedSlice, ...]

    def windows(self) -> tuple[frozenset[tuple[int, int]], ...]:
        """Per slice, the output chunks (block indices) holding a clear pixel."""
        return tuple(s.clear_windows for s in self.slices)


def screen(
    planned: Planned,
    config: MaskConfig,
    *,
    engine: str = "native",
    gdal: Mapping[str, str] | None = None,
    store: CubeStore | None = None,
    compute: Compute | None = None,
) -> Screened:
    """Read, decode and count every slice's QA; write the flags into ``store`` if given.

    Parameters
    ----------
    planned
        The plan stage's output.
    config
        Masking rules (which flags are masked, dilation).
    engine
        The engine reading the QA windows.
    gdal
        GDAL options for the reads.
    store
        The cube store receiving ``flags``, ``clear`` (and the member index of grouped
        slices) in the same pass.
    compute
        How dask computes (scheduler, progress); default: the threaded scheduler.
    """
    from .compute import Compute

    lazy = lazy_flags(planned, config, engine=engine, gdal=gdal, on_error="flag")
    inside = aoi_mask(planned)
    hist = window_histograms(lazy.flags.data, None if inside is None else inside.data)
    overviews = _overview_tasks(planned, gdal)
    targets: list[Any] = [hist, *lazy.failures, overviews]
    if store is not None:
        clear = is_clear(lazy.flags, config).rename("clear")
        clear.attrs = {"long_name": "valid and carrying none of the masked flags"}
        targets.extend(store.write_screen(lazy.flags, clear, lazy.member))
    runner = compute if compute is not None else Compute()
    results = runner.run("screen", targets)
    per_window = np.asarray(results[0])
    failures = [f for group in results[1 : 1 + len(lazy.failures)] for f in group]
    whole: dict[str, tuple[int, int]] = dict(results[1 + len(lazy.failures)])

    n_inside = (
        planned.geobox.shape.y * planned.geobox.shape.x
        if inside is None
        else int(np.count_nonzero(np.asarray(inside.values)))
    )
    slice_of = {m.id: sl.id for sl in planned.slices for m in sl.members}
    by_slice: dict[str, list[ReadFailure]] = {}
    for failure in failures:
        by_slice.setdefault(slice_of.get(failure.scene, failure.scene), []).append(failure)
    window_counts = counts_of(per_window, config)
    totals = counts_of(per_window.sum(axis=(1, 2)), config)
    out = []
    for t, sl in enumerate(planned.slices):
        counts = {name: int(values[t]) for name, values in totals.items()}
        counts["aoi_px"] = n_inside
        clear = window_counts["clear_px"][t]
        windows = frozenset((int(iy), int(ix)) for iy, ix in zip(*np.nonzero(clear), strict=True))
        out.append(
            ScreenedSlice(
                id=sl.id,
                counts=counts,
                clear_windows=windows,
                failures=tuple(by_slice.get(sl.id, ())),
                uninformative=_uninformative(sl, counts),
                provider_definition=_provider_percent(sl, whole),
            )
        )
    return Screened(tuple(out))


def _empty_means_unknown(baseline: str | None) -> bool:
    try:
        return qa60_empty_means_unknown(baseline)
    except ValueError:  # a baseline the plan could not read: the cautious answer
        return True


#: The longest side of the QA overview read for the provider's own cloud cover.
OVERVIEW_PX = 512


def _overview_tasks(planned: Planned, gdal: Mapping[str, str] | None) -> Any:
    """A dask collection computing, per scene, (cloudy, counted) pixels of its whole QA under
    the provider's own definition, from a coarse overview (one small read per scene)."""
    import dask

    from .gdal_env import gdal_options

    opts = tuple(sorted(gdal_options(gdal).items()))
    tasks = [
        dask.delayed(_provider_counts)(m.id, m.qa_href, m.qa_encoding, opts, m.collection)
        for m in planned.scenes
    ]
    return dask.delayed(lambda *pairs: [p for p in pairs if p is not None])(*tasks)


def _provider_counts(
    scene_id: str,
    href: str,
    encoding: str,
    gdal: tuple[tuple[str, str], ...],
    collection: str | None = None,
) -> tuple[str, tuple[int, int]] | None:
    """(scene id, (cloudy, counted)) from the coarsest overview of at least OVERVIEW_PX px;
    None when the encoding has no provider definition or the overview cannot be read (the
    windows themselves were read and judged; this is only the metadata cross-check)."""
    import rasterio
    from rasterio.enums import Resampling

    from .errors import AssetReadError
    from .gdal_env import rio_env
    from .sas import sign_href
    from .sensors import get_encoding

    define = get_encoding(encoding).provider_cloud
    if define is None:
        return None
    try:
        signed = sign_href(href, collection, dict(gdal), label=scene_id)
        with rio_env(dict(gdal)), rasterio.open(signed) as src:
            factor = max(1, max(src.height, src.width) // OVERVIEW_PX)
            shape = (max(1, src.height // factor), max(1, src.width // factor))
            qa = src.read(1, out_shape=shape, resampling=Resampling.nearest)
    except (rasterio.errors.RasterioError, AssetReadError):
        return None
    return scene_id, define(qa)


def _provider_percent(sl: Slice, whole: Mapping[str, tuple[int, int]]) -> float | None:
    pairs = [whole[m.id] for m in sl.members if m.id in whole]
    if len(pairs) != len(sl.members):
        return None
    cloudy = sum(c for c, _ in pairs)
    counted = sum(n for _, n in pairs)
    return 100.0 * cloudy / counted if counted else None


def _uninformative(sl: Slice, counts: Mapping[str, int]) -> str:
    """Why a slice's QA tells nothing, or empty.

    QA60 lost its cloud polygons with processing baseline 04.00 (25 January 2022; the L1C
    cloud mask moved to MSK_CLASSI) and archives served it all-zero for such scenes: without a
    single cloud or cirrus bit inside the area, the QA60 of a baseline >= 04.00 (or unknown
    baseline) scene means "unknown", never "clear".
    """
    if counts["valid_px"] == 0:
        return ""
    if counts.get("cloud_px", 0) or counts.get("cirrus_px", 0):
        return ""
    for m in sl.members:
        if m.qa_encoding == "s2-qa60" and _empty_means_unknown(m.processing_baseline):
            shown = m.processing_baseline or "unknown"
            return (
                f"{m.id}: QA60 {m.qa_asset!r} holds no cloud or cirrus bit in the area at "
                f"processing baseline {shown} (the QA60 of baselines >= 04.00 is empty: "
                "unknown, not clear)"
            )
    return ""
