"""Per-scene statistics over a flags cube: cloud fractions over valid pixels only.

The cloud fraction of a scene is the share of its *valid* pixels (no NODATA flag) that carry
any flag the :class:`~clearcube.MaskConfig` masks. No-data never counts as clear or as cloud; a
scene with no valid pixel in the area has no fraction (NaN), not 0 or 1.
"""

from __future__ import annotations

import json
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from .config import MaskConfig
from .errors import QAError
from .flags import Flag

__all__ = ["CONFIG_ATTR", "cloud_fraction", "config_of"]

#: Dataset attribute holding the JSON of the MaskConfig a cube was built with.
CONFIG_ATTR = "clearcube:mask_config"

_PER_SCENE_COORDS = ("id", "platform", "sensor", "collection")


def config_of(ds: xr.Dataset | xr.DataArray, config: MaskConfig | None = None) -> MaskConfig:
    """The config to judge ``ds`` with: ``config`` if given, else the one ``ds`` was built
    with (its ``clearcube:mask_config`` attribute), else the default."""
    if config is not None:
        return config
    raw = ds.attrs.get(CONFIG_ATTR)
    if raw:
        return MaskConfig.from_mapping(json.loads(raw), source=f"dataset attribute {CONFIG_ATTR}")
    return MaskConfig()


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
        ``<flag>_px`` column per flag (valid pixels carrying it), ``cloud_fraction`` (masked /
        valid, NaN when no pixel is valid), ``provider_cloud_cover`` (the item's
        ``eo:cloud_cover`` in percent, when the cube carries it) and ``over_threshold``
        (nullable boolean, NA when no pixel is valid).

    Everything comes from one pass over the flags: per chunk, one ``bincount`` of the flag
    combinations (9 bits, 512 patterns), summed over chunks (one dask compute).
    """
    cfg = config_of(ds, config)
    flags = ds["flags"] if isinstance(ds, xr.Dataset) else ds
    if flags.dtype.kind not in "ui":
        raise QAError(f"cloud_fraction needs integer Flag arrays (uint16), got {flags.dtype}")
    if aoi is None and isinstance(ds, xr.Dataset) and "aoi" in ds:
        aoi = ds["aoi"]
    single = "time" not in flags.dims
    if single:
        flags = flags.expand_dims("time")
    spatial = [d for d in flags.dims if d != "time"]

    inside = None if aoi is None else aoi.astype(bool).transpose(*spatial)
    hist = _flag_histogram(flags.transpose("time", *spatial), inside)  # (time, 512)
    values = np.arange(N_PATTERNS)
    valid_patterns = (values & int(Flag.NODATA)) == 0
    masked_patterns = valid_patterns & ((values & cfg.masked_bits) != 0)
    n_inside = (
        int(np.prod([flags.sizes[d] for d in spatial]))
        if inside is None
        else int(np.count_nonzero(np.asarray(inside.values)))
    )
    table: dict[str, Any] = {
        "aoi_px": np.full(hist.shape[0], n_inside, dtype=np.int64),
        "valid_px": hist[:, valid_patterns].sum(axis=1),
        "masked_px": hist[:, masked_patterns].sum(axis=1),
    }
    for flag in Flag:
        if flag is Flag.NODATA or flag.name is None:
            continue
        carrying = valid_patterns & ((values & int(flag)) != 0)
        table[f"{flag.name.lower()}_px"] = hist[:, carrying].sum(axis=1)
    table["nodata_px"] = table["aoi_px"] - table["valid_px"]

    frame = pd.DataFrame(table)
    for coord in _PER_SCENE_COORDS:
        if coord in flags.coords and flags[coord].dims == ("time",):
            frame.insert(0, coord, np.asarray(flags[coord].values))
    valid_px = frame["valid_px"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(valid_px > 0, frame["masked_px"].to_numpy() / valid_px, np.nan)
    frame["cloud_fraction"] = fraction
    provider = _provider_cloud_cover(flags)
    if provider is not None:
        frame["provider_cloud_cover"] = provider
    over = pd.array(fraction > cfg.cloud_threshold, dtype="boolean")
    over[np.isnan(fraction)] = pd.NA
    frame["over_threshold"] = over
    if not single and "time" in flags.coords:
        frame.index = pd.Index(flags["time"].values, name="time")
    ordered = [c for c in _PER_SCENE_COORDS if c in frame] + [
        "aoi_px",
        "valid_px",
        "nodata_px",
        "masked_px",
    ]
    rest = [c for c in frame.columns if c not in ordered]
    return frame[ordered + rest]


#: Number of distinct flag combinations (9 bits).
N_PATTERNS = 1 << len(Flag)


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
            out[t, 0, 0, low] = values.size
            continue
        counts = np.bincount(values.ravel(), minlength=N_PATTERNS)
        out[t, 0, 0] = counts
    return out


def _flag_histogram(flags: xr.DataArray, inside: xr.DataArray | None) -> np.ndarray:
    """(time, N_PATTERNS) counts of flag combinations, computed blockwise in one dask pass."""
    data = flags.data
    mask = None if inside is None else inside.data
    if not hasattr(data, "map_blocks"):
        arr = np.asarray(data)
        return _block_histogram(arr, None if mask is None else np.asarray(mask))[:, 0, 0, :]
    import dask.array as da

    if mask is not None:
        mask = da.asarray(mask).rechunk(data.chunks[1:])
    ny, nx = (len(c) for c in data.chunks[1:])
    blocks = da.map_blocks(
        _block_histogram,
        data,
        *([] if mask is None else [mask]),
        new_axis=3,
        chunks=(data.chunks[0], (1,) * ny, (1,) * nx, (N_PATTERNS,)),
        dtype=np.int64,
        token="clearcube-flag-histogram",
    )
    (hist,) = dask.compute(blocks.sum(axis=(1, 2)))
    return np.asarray(hist)


def _provider_cloud_cover(flags: xr.DataArray) -> np.ndarray | None:
    for name in ("eo:cloud_cover", "provider_cloud_cover", "cloud_cover"):
        if name in flags.coords and flags[name].dims == ("time",):
            return np.asarray(flags[name].values, dtype=float)
    return None
