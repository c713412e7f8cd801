"""Per-scene statistics over a flags cube: cloud fractions over valid pixels only.

The cloud fraction of a scene is the share of its *valid* pixels (no NODATA flag) that carry
any flag the :class:`~clearcube.MaskConfig` masks. No-data never counts as clear or as cloud; a
scene with no valid pixel in the area has no fraction (NaN), not 0 or 1. Pixels whose QA could
not be read carry UNREADABLE (with NODATA) and are counted apart, as ``unreadable_px``.

Everything is counted from one histogram of flag combinations per (scene, chunk): the screen
stage keeps the per-chunk counts (which chunks hold a clear pixel), :func:`cloud_fraction`
sums them per scene.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from .config import CONFIG_ATTR, MaskConfig
from .errors import QAError
from .flags import Flag

__all__ = [
    "CONFIG_ATTR",
    "N_PATTERNS",
    "cloud_fraction",
    "config_of",
    "counts_of",
    "scene_table",
    "window_histograms",
]

_PER_SCENE_COORDS = ("id", "platform", "sensor", "collection")

#: Number of distinct flag combinations (one bit per flag).
N_PATTERNS = 1 << len(Flag)

_VALUES = np.arange(N_PATTERNS)
_VALID = (_VALUES & int(Flag.NODATA)) == 0
_UNREADABLE = (_VALUES & int(Flag.UNREADABLE)) != 0
#: Patterns that cannot occur in decoded flags: UNREADABLE always comes with NODATA.
_IMPOSSIBLE = _UNREADABLE & _VALID


def config_of(ds: xr.Dataset | xr.DataArray, config: MaskConfig | None = None) -> MaskConfig:
    """The config to judge ``ds`` with: ``config`` if given, else the one ``ds`` was built
    with (its ``clearcube:mask_config`` attribute), else the default."""
    if config is not None:
        return config
    return MaskConfig.from_attrs(ds.attrs) or MaskConfig()


def counts_of(hist: npt.NDArray[np.int64], config: MaskConfig) -> dict[str, npt.NDArray[np.int64]]:
    """Pixel counts from histograms of flag combinations (``(..., N_PATTERNS)``).

    Returns ``valid_px``, ``masked_px``, ``clear_px``, ``unreadable_px``, ``nodata_px`` (all
    pixels that are not valid, unreadable ones included) and one ``<flag>_px`` per flag (valid
    pixels carrying it), each with the leading shape of ``hist``.
    """
    masked = _VALID & ((_VALUES & config.masked_bits) != 0)
    out: dict[str, npt.NDArray[np.int64]] = {
        "valid_px": hist[..., _VALID].sum(axis=-1),
        "masked_px": hist[..., masked].sum(axis=-1),
        "clear_px": hist[..., _VALID & ~masked].sum(axis=-1),
        "nodata_px": hist[..., ~_VALID].sum(axis=-1),
        "unreadable_px": hist[..., _UNREADABLE].sum(axis=-1),
    }
    for flag in Flag:
        if flag.name is None or flag in (Flag.NODATA, Flag.UNREADABLE):
            continue
        carrying = _VALID & ((_VALUES & int(flag)) != 0)
        out[f"{flag.name.lower()}_px"] = hist[..., carrying].sum(axis=-1)
    return out


def cloud_fraction(
    ds: xr.Dataset | xr.DataArray,
    config: MaskConfig | None = None,
    *,
    aoi: xr.DataArray | None = None,
) -> pd.DataFrame:
    """Per-scene pixel counts and cloud fraction over valid pixels.

    Parameters
    ----------
    ds
        A cube from :func:`clearcube.load` (its ``flags`` variable is used) or a flags
        DataArray with dims ``(time, y, x)`` (or ``(y, x)`` for one scene).
    config
        Which flags are masked and the threshold; default: the config ``ds`` was built with.
    aoi
        Boolean ``(y, x)`` mask of the area of interest (the geometry, not its bounding box).
        Default: the cube's ``aoi`` variable when it has one, else every pixel.

    Returns
    -------
    pandas.DataFrame
        One row per time step, indexed by ``time`` when present, with columns: the per-scene
        coordinates (``id``, ``platform``, ``sensor``, ``collection``) when present,
        ``aoi_px`` (pixels considered), ``valid_px``, ``nodata_px``, ``masked_px``, one
        ``<flag>_px`` column per flag (valid pixels carrying it), ``unreadable_px``,
        ``cloud_fraction`` (masked / valid, NaN when no pixel is valid),
        ``provider_cloud_cover`` (the item's ``eo:cloud_cover`` in percent, when the cube
        carries it) and ``over_threshold`` (nullable boolean, NA when no pixel is valid).

    Everything comes from one pass over the flags: per chunk, one ``bincount`` of the flag
    combinations, summed over chunks (one dask compute).
    """
    cfg = config_of(ds, config)
    flags = ds["flags"] if isinstance(ds, xr.Dataset) else ds
    if aoi is None and isinstance(ds, xr.Dataset) and "aoi" in ds:
        aoi = ds["aoi"]
    single = "time" not in flags.dims
    if single:
        flags = flags.expand_dims("time")
    spatial = [d for d in flags.dims if d != "time"]
    inside = None if aoi is None else aoi.astype(bool).transpose(*spatial)
    per_window = window_histograms(
        flags.transpose("time", *spatial).data, None if inside is None else inside.data
    )
    if hasattr(per_window, "compute"):
        import dask

        (per_window,) = dask.compute(per_window)
    hist = np.asarray(per_window).sum(axis=(1, 2))
    n_inside = (
        int(np.prod([flags.sizes[d] for d in spatial]))
        if inside is None
        else int(np.count_nonzero(np.asarray(inside.values)))
    )
    frame = scene_table(counts_of(hist, cfg), cfg, aoi_px=n_inside)
    for coord in _PER_SCENE_COORDS:
        if coord in flags.coords and flags[coord].dims == ("time",):
            frame.insert(0, coord, np.asarray(flags[coord].values))
    provider = _provider_cloud_cover(flags)
    if provider is not None:
        frame.insert(len(frame.columns) - 1, "provider_cloud_cover", provider)
    if not single and "time" in flags.coords:
        frame.index = pd.Index(flags["time"].values, name="time")
    ordered = [c for c in _PER_SCENE_COORDS if c in frame]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def scene_table(
    counts: Mapping[str, npt.NDArray[np.int64]],
    config: MaskConfig,
    *,
    aoi_px: int | Sequence[int] | npt.NDArray[np.int64],
) -> pd.DataFrame:
    """The per-scene counts table from :func:`counts_of` (one value per scene each):
    ``aoi_px``, ``valid_px``, ``nodata_px``, ``masked_px``, ``<flag>_px``, ``unreadable_px``,
    ``cloud_fraction`` and ``over_threshold``."""
    valid_px = np.asarray(counts["valid_px"])
    table: dict[str, Any] = {
        "aoi_px": np.broadcast_to(np.asarray(aoi_px, dtype=np.int64), valid_px.shape).copy(),
        "valid_px": valid_px,
        "nodata_px": np.asarray(counts["nodata_px"]),
        "masked_px": np.asarray(counts["masked_px"]),
    }
    for flag in Flag:
        if flag.name is None or flag in (Flag.NODATA, Flag.UNREADABLE):
            continue
        table[f"{flag.name.lower()}_px"] = np.asarray(counts[f"{flag.name.lower()}_px"])
    table["unreadable_px"] = np.asarray(counts["unreadable_px"])
    valid = valid_px.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(valid > 0, table["masked_px"] / valid, np.nan)
    table["cloud_fraction"] = fraction
    over = pd.array(fraction > config.cloud_threshold, dtype="boolean")
    over[np.isnan(fraction)] = pd.NA
    table["over_threshold"] = over
    return pd.DataFrame(table)


def _block_histogram(block: np.ndarray, inside: np.ndarray | None = None) -> np.ndarray:
    """Counts of each flag combination per time slice of one (time, y, x) block: a min/max
    pass, then one ``bincount`` unless the slice is constant."""
    out = np.zeros((block.shape[0], 1, 1, N_PATTERNS), dtype=np.int64)
    for t in range(block.shape[0]):
        values = block[t] if inside is None else block[t][inside]
        if values.size == 0:
            continue
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= N_PATTERNS:
            raise QAError("flags carry bits outside the clearcube vocabulary; decode them first")
        if low == high:  # a constant block (e.g. a chunk outside every scene): nothing to count
            counts = np.zeros(N_PATTERNS, dtype=np.int64)
            counts[low] = values.size
        else:
            counts = np.bincount(values.ravel(), minlength=N_PATTERNS)
        if counts[_IMPOSSIBLE].any():
            raise QAError(
                "flags carry bits outside the clearcube vocabulary (UNREADABLE without "
                "NODATA); decode them first"
            )
        out[t, 0, 0] = counts
    return out


def window_histograms(flags: Any, inside: Any = None) -> Any:
    """``(time, n_chunks_y, n_chunks_x, N_PATTERNS)`` counts of flag combinations per chunk.

    ``flags`` is a ``(time, y, x)`` integer array (numpy: one window per scene; dask: one per
    chunk, lazily); ``inside`` an optional ``(y, x)`` boolean mask of the pixels to count.
    """
    if getattr(flags, "dtype", np.dtype(np.uint16)).kind not in "ui":
        raise QAError(f"flag histograms need integer Flag arrays (uint16), got {flags.dtype}")
    if not hasattr(flags, "map_blocks"):
        arr = np.asarray(flags)
        return _block_histogram(arr, None if inside is None else np.asarray(inside))
    import dask.array as da

    mask = None
    if inside is not None:
        mask = da.asarray(inside).rechunk(flags.chunks[1:])
    ny, nx = (len(c) for c in flags.chunks[1:])
    return da.map_blocks(
        _block_histogram,
        flags,
        *([] if mask is None else [mask]),
        new_axis=3,
        chunks=(flags.chunks[0], (1,) * ny, (1,) * nx, (N_PATTERNS,)),
        dtype=np.int64,
        token="clearcube-flag-histogram",
    )


def _provider_cloud_cover(flags: xr.DataArray) -> np.ndarray | None:
    for name in ("eo:cloud_cover", "provider_cloud_cover", "cloud_cover"):
        if name in flags.coords and flags[name].dims == ("time",):
            return np.asarray(flags[name].values, dtype=float)
    return None
