"""Growing masked flags by a distance in metres, and removing isolated specks, blockwise.

Used by the cube stage. Distances are exact Euclidean distances between pixel centres on the
output grid (``scipy.ndimage.distance_transform_edt`` with the pixel size as sampling), so the
cost does not grow with the radius. On dask arrays the work runs per chunk with an overlap deep
enough that the result does not depend on where the chunk edges fall.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from .flags import FLAG_DTYPE, Flag

__all__ = ["dilate_flags", "overlap_depth_px"]

# 8-connectivity: a speck touching another masked pixel diagonally is not isolated.
_CONNECTIVITY = np.ones((3, 3), dtype=bool)


def overlap_depth_px(
    distance_m: float, res_yx: tuple[float, float], despeckle_px: int
) -> tuple[int, int]:
    """Pixels of overlap (y, x) a chunk needs so that dilation and despeckling are exact.

    Dilation reaches ``ceil(distance / res)`` pixels. Whether a seed that far out is a speck
    needs ``despeckle_px`` more: a speck of at most ``despeckle_px`` pixels lies entirely within
    ``despeckle_px`` pixels of any of its pixels, and a larger component seen through that
    margin still shows more than ``despeckle_px`` pixels.
    """
    ry, rx = (abs(r) for r in res_yx)
    dy = math.ceil(distance_m / ry - 1e-9) if distance_m > 0 else 0
    dx = math.ceil(distance_m / rx - 1e-9) if distance_m > 0 else 0
    return (dy + despeckle_px, dx + despeckle_px)


def _dilate_2d(
    flags: npt.NDArray[np.uint16],
    distance_m: float,
    res_yx: tuple[float, float],
    grow_bits: int,
    despeckle_px: int,
) -> npt.NDArray[np.uint16]:
    out = flags.copy()
    valid = (flags & Flag.NODATA) == 0
    seeds = ((flags & np.uint16(grow_bits)) != 0) & valid
    if despeckle_px > 0 and seeds.any():
        labels, n = ndimage.label(seeds, structure=_CONNECTIVITY)
        if n:
            sizes = np.bincount(labels.ravel())
            small = sizes <= despeckle_px
            small[0] = False
            speck = small[labels]
            out[speck] &= np.uint16(~grow_bits & 0xFFFF)
            seeds &= ~speck
    if distance_m > 0 and seeds.any():
        sampling = (abs(res_yx[0]), abs(res_yx[1]))
        distance = ndimage.distance_transform_edt(~seeds, sampling=sampling)
        ring = (distance <= distance_m) & ~seeds & valid
        out[ring] |= np.uint16(Flag.DILATED)
    return out


def _dilate_block(
    block: npt.NDArray[np.uint16],
    distance_m: float,
    res_yx: tuple[float, float],
    grow_bits: int,
    despeckle_px: int,
) -> npt.NDArray[np.uint16]:
    if block.ndim == 2:
        return _dilate_2d(block, distance_m, res_yx, grow_bits, despeckle_px)
    out = np.empty_like(block)
    for index in np.ndindex(*block.shape[:-2]):
        out[index] = _dilate_2d(block[index], distance_m, res_yx, grow_bits, despeckle_px)
    return out


def dilate_flags(
    flags: Any,
    *,
    distance_m: float,
    res_yx: tuple[float, float],
    grow_bits: int,
    despeckle_px: int = 0,
) -> Any:
    """Mark DILATED every valid pixel within ``distance_m`` of a pixel carrying ``grow_bits``.

    Parameters
    ----------
    flags
        uint16 Flag array (numpy or dask), the last two axes being (y, x).
    distance_m
        Buffer distance in the grid's units (metres on a projected grid), between pixel centres.
    res_yx
        Pixel size (y, x) in the same units.
    grow_bits
        Flags whose pixels seed the buffer (e.g. CLOUD | SHADOW).
    despeckle_px
        Before dilating, 8-connected groups of at most this many seed pixels lose their
        ``grow_bits`` flags (isolated false detections) and seed nothing.

    Returns
    -------
    Same kind as ``flags``; no-data pixels are never marked.
    """
    if distance_m <= 0 and despeckle_px <= 0:
        return flags
    if type(flags).__module__.startswith("dask."):
        dy, dx = overlap_depth_px(distance_m, res_yx, despeckle_px)
        depth = {flags.ndim - 2: dy, flags.ndim - 1: dx}
        depth.update({axis: 0 for axis in range(flags.ndim - 2)})
        return flags.map_overlap(
            _dilate_block,
            depth=depth,
            boundary="none",
            dtype=FLAG_DTYPE,
            distance_m=distance_m,
            res_yx=res_yx,
            grow_bits=grow_bits,
            despeckle_px=despeckle_px,
        )
    return _dilate_block(np.asarray(flags), distance_m, res_yx, grow_bits, despeckle_px)
