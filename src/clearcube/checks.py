"""Science checks: is the reflectance the mask kept plausible?

Counted in the read stage's pass, per (scene, chunk) of the windows it reads, from the
reflectance before masking and the stored flags, then summed per scene:

- **physical plausibility**: the share of clear pixels with reflectance below 0 or above 1, per
  band. Many clear pixels below 0 is what an offset applied twice looks like (Earth Search
  items whose pixels already had BOA_ADD_OFFSET removed, read with -0.1 again);
- **the offset seen from the pixels**: the darkest clear red pixels (the 1st percentile;
  water, shadowed forest and dark soil sit near 0.01-0.04). When that floor is high, the
  planned offset looks not applied (a raw-DN scene of baseline >= 04.00 planned with 0);
- **haze / thin-cirrus leakage**: the share of clear pixels with a positive haze-optimised
  transform (HOT = blue - 0.5 red - 0.08, Zhang et al. 2002), when blue is loaded;
- **spectra of kept vs masked pixels**: NDVI (and EVI, with blue) histograms of the clear
  pixels and of the valid pixels the mask removed, for the report and the evidence.

All of it is counted on a regular sample of a quarter of the pixels (every second pixel of
every second row, :data:`STRIDE`): the shares it judges are those of millions of pixels.

Each check has a threshold in :class:`~clearcube.MaskConfig`; a scene failing one goes to
review with a reason naming the check, the figure and, for the offset checks, the offset and
where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "NDVI_EDGES",
    "RED_EDGES",
    "Spectra",
    "block_stats",
    "lazy_spectra",
    "spectra_of",
    "verdicts",
]

#: NDVI / EVI histogram bin edges (0.05 wide over [-1, 1]; values outside go to the ends).
NDVI_EDGES = np.linspace(-1.0, 1.0, 41)
#: Clear red reflectance histogram edges (0.005 wide over [-0.2, 0.3]), for the dark floor.
RED_EDGES = np.linspace(-0.2, 0.3, 101)
#: Reflectance below this is "negative" (noise around 0 is not an offset problem).
NEGATIVE = -0.01

_NB = len(NDVI_EDGES) - 1
_NR = len(RED_EDGES) - 1


def _layout(bands: Sequence[str]) -> dict[str, slice]:
    """Where each statistic sits in a scene's stats vector."""
    out: dict[str, slice] = {}
    k = 0

    def take(name: str, n: int) -> None:
        nonlocal k
        out[name] = slice(k, k + n)
        k += n

    take("clear", 1)
    take("masked", 1)
    for b in bands:
        take(f"negative:{b}", 1)
        take(f"above_one:{b}", 1)
    take("red", _NR)
    take("ndvi_kept", _NB)
    take("ndvi_masked", _NB)
    take("evi_kept", _NB)
    take("evi_masked", _NB)
    take("haze", 1)
    take("haze_counted", 1)
    out["size"] = slice(k, k)
    return out


def _hist(values: npt.NDArray[Any], edges: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Counts of ``values`` on the equal-width bins ``edges``, values outside in the end bins
    (one bincount of the bin indices: np.histogram on explicit edges sorts the values)."""
    n = len(edges) - 1
    if values.size == 0:
        return np.zeros(n, np.int64)
    lo, width = edges[0], (edges[-1] - edges[0]) / n
    index = np.clip(((values - lo) / width).astype(np.int64), 0, n - 1)
    return np.bincount(index, minlength=n).astype(np.int64)


#: The statistics are counted on every STRIDE-th pixel of each row and column (a regular
#: sample of a quarter of the pixels): shares and histograms of a scene's millions of pixels do
#: not need every one, and the checks run in the pass that reads them.
STRIDE = 2


def block_stats(
    clear: npt.NDArray[np.bool_],
    valid: npt.NDArray[np.bool_],
    *arrays: npt.NDArray[np.float32],
    names: tuple[str, ...],
    stride: int = STRIDE,
) -> npt.NDArray[np.int64]:
    """The stats vector of each time step of one ``(time, y, x)`` block, counted on every
    ``stride``-th pixel of each row and column."""
    if stride > 1:
        cut = (slice(None), slice(None, None, stride), slice(None, None, stride))
        clear, valid = clear[cut], valid[cut]
        arrays = tuple(a[cut] for a in arrays)
    layout = _layout(names)
    size = layout["size"].start
    out = np.zeros((clear.shape[0], 1, 1, size), np.int64)
    for t in range(clear.shape[0]):
        kept = clear[t] & valid[t]
        masked = valid[t] & ~clear[t]
        band = {n: a[t] for n, a in zip(names, arrays, strict=True)}
        row = out[t, 0, 0]
        row[layout["clear"]] = np.count_nonzero(kept)
        row[layout["masked"]] = np.count_nonzero(masked)
        for n, a in band.items():
            v = a[kept]
            row[layout[f"negative:{n}"]] = np.count_nonzero(v < NEGATIVE)
            row[layout[f"above_one:{n}"]] = np.count_nonzero(v > 1.0)
        if "red" in band:
            red = band["red"][kept]
            row[layout["red"]] = _hist(red[np.isfinite(red)], RED_EDGES)
        if "red" in band and "nir" in band:
            with np.errstate(invalid="ignore", divide="ignore"):
                ndvi = (band["nir"] - band["red"]) / (band["nir"] + band["red"])
            for where, key in ((kept, "ndvi_kept"), (masked, "ndvi_masked")):
                v = ndvi[where]
                row[layout[key]] = _hist(v[np.isfinite(v)], NDVI_EDGES)
            if "blue" in band:
                with np.errstate(invalid="ignore", divide="ignore"):
                    evi = (
                        2.5
                        * (band["nir"] - band["red"])
                        / (band["nir"] + 6.0 * band["red"] - 7.5 * band["blue"] + 1.0)
                    )
                for where, key in ((kept, "evi_kept"), (masked, "evi_masked")):
                    v = evi[where]
                    row[layout[key]] = _hist(v[np.isfinite(v)], NDVI_EDGES)
        if "blue" in band and "red" in band:
            hot = band["blue"][kept] - 0.5 * band["red"][kept] - 0.08
            ok = np.isfinite(hot)
            row[layout["haze"]] = np.count_nonzero(hot[ok] > 0)
            row[layout["haze_counted"]] = np.count_nonzero(ok)
    return out


def lazy_spectra(bands: Mapping[str, Any], clear: Any, valid: Any) -> tuple[Any, tuple[str, ...]]:
    """``(time, n_chunks_y, n_chunks_x, K)`` stats of reflectance ``bands`` (dask arrays,
    before masking), ``clear`` and ``valid`` (boolean dask arrays on the same chunks), and the
    band names in the vector's order."""
    import dask.array as da

    names = tuple(bands)
    size = _layout(names)["size"].start
    first = clear
    ny, nx = (len(c) for c in first.chunks[1:])
    return (
        da.map_blocks(
            block_stats,
            clear,
            valid,
            *(bands[n] for n in names),
            names=names,
            new_axis=3,
            chunks=(first.chunks[0], (1,) * ny, (1,) * nx, (size,)),
            dtype=np.int64,
        ),
        names,
    )


@dataclass(frozen=True)
class Spectra:
    """A scene's reflectance statistics over the windows the read stage read.

    Attributes
    ----------
    clear_px, masked_px
        Clear pixels, and valid pixels the mask removed, counted.
    negative, above_one
        Per band, clear pixels below -0.01 and above 1.
    red_p01
        The 1st percentile of clear red reflectance (None without red or clear pixels).
    haze_share
        Share of clear pixels with a positive HOT (None without blue).
    ndvi_kept, ndvi_masked, evi_kept, evi_masked
        Histograms on :data:`NDVI_EDGES` (EVI all zero without blue).
    """

    clear_px: int
    masked_px: int
    negative: Mapping[str, int] = field(default_factory=dict)
    above_one: Mapping[str, int] = field(default_factory=dict)
    red_p01: float | None = None
    haze_share: float | None = None
    ndvi_kept: tuple[int, ...] = ()
    ndvi_masked: tuple[int, ...] = ()
    evi_kept: tuple[int, ...] = ()
    evi_masked: tuple[int, ...] = ()

    def share(self, counts: Mapping[str, int], band: str) -> float:
        """``counts[band]`` as a share of the clear pixels (0 without clear pixels)."""
        return counts.get(band, 0) / self.clear_px if self.clear_px else 0.0

    def median_ndvi(self, kept: bool = True) -> float | None:
        """The median NDVI of the kept (or masked) pixels, to the histogram's 0.05 bins; None
        without such pixels."""
        hist = np.asarray(self.ndvi_kept if kept else self.ndvi_masked)
        return _hist_median(hist, NDVI_EDGES)

    def median_evi(self, kept: bool = True) -> float | None:
        """The same for EVI (None without blue)."""
        hist = np.asarray(self.evi_kept if kept else self.evi_masked)
        return _hist_median(hist, NDVI_EDGES)


def _hist_median(hist: npt.NDArray[np.int64], edges: npt.NDArray[np.float64]) -> float | None:
    total = int(hist.sum())
    if total == 0:
        return None
    k = int(np.searchsorted(np.cumsum(hist), total / 2))
    return float((edges[k] + edges[k + 1]) / 2)


def spectra_of(vector: npt.NDArray[np.int64], names: Sequence[str]) -> Spectra:
    """A scene's :class:`Spectra` from its summed stats vector."""
    layout = _layout(names)

    def one(key: str) -> int:
        return int(vector[layout[key]][0])

    red = vector[layout["red"]]
    red_p01 = None
    if red.sum() > 0:
        k = int(np.searchsorted(np.cumsum(red), 0.01 * red.sum()))
        red_p01 = float(RED_EDGES[min(k + 1, len(RED_EDGES) - 1)])
    counted = one("haze_counted")
    return Spectra(
        clear_px=one("clear"),
        masked_px=one("masked"),
        negative={n: one(f"negative:{n}") for n in names},
        above_one={n: one(f"above_one:{n}") for n in names},
        red_p01=red_p01 if "red" in names else None,
        haze_share=one("haze") / counted if counted else None,
        ndvi_kept=tuple(int(v) for v in vector[layout["ndvi_kept"]]),
        ndvi_masked=tuple(int(v) for v in vector[layout["ndvi_masked"]]),
        evi_kept=tuple(int(v) for v in vector[layout["evi_kept"]]),
        evi_masked=tuple(int(v) for v in vector[layout["evi_masked"]]),
    )


def verdicts(spectra: Spectra, members: Sequence[Any], config: Any) -> list[str]:
    """The checks a scene fails, one reason each (empty: plausible). ``members`` are the
    slice's scene plans (their bands' offsets and sources name the suspect)."""
    reasons: list[str] = []
    if spectra.clear_px < config.min_check_px:
        return reasons

    def offset_of(band: str) -> str:
        parts = []
        for m in members:
            b = m.bands.get(band)
            if b is not None:
                parts.append(f"{b.offset:g} from {b.offset_source}")
        return ", ".join(dict.fromkeys(parts)) or "no band plan"

    for band in spectra.negative:
        share = spectra.share(spectra.negative, band)
        if share > config.max_negative_share:
            reasons.append(
                f"{100 * share:.1f} % of clear {band} pixels are below 0 (limit "
                f"{100 * config.max_negative_share:g} %): the offset ({offset_of(band)}) looks "
                "applied twice"
            )
    for band in spectra.above_one:
        share = spectra.share(spectra.above_one, band)
        if share > config.max_bright_share:
            reasons.append(
                f"{100 * share:.1f} % of clear {band} pixels are above 1 (limit "
                f"{100 * config.max_bright_share:g} %): the scale or offset ({offset_of(band)}) "
                "does not fit the pixels"
            )
    if spectra.red_p01 is not None and spectra.red_p01 > config.dark_floor:
        reasons.append(
            f"the darkest clear red pixels read {spectra.red_p01:.3f} (1st percentile; limit "
            f"{config.dark_floor:g}): the offset ({offset_of('red')}) looks not applied"
        )
    if spectra.haze_share is not None and spectra.haze_share > config.max_haze_share:
        reasons.append(
            f"{100 * spectra.haze_share:.1f} % of clear pixels look hazy (HOT > 0; limit "
            f"{100 * config.max_haze_share:g} %): thin cloud or cirrus the mask kept"
        )
    return reasons
