"""Applying a decoding lookup table to numpy, dask and xarray QA arrays.

Each encoding describes itself as an :class:`Encoding`: a table from every possible QA value to
``uint16`` flags, built once per (encoding, config) by the encoding's own vectorised bitwise
function, and a table of which values the specification defines. Decoding is then one
``np.take`` per block, the fastest correct expression on both uint8 and uint16 input.

Each encoding also names its *fill*: the raw code a reader writes where there is no data
(outside a raster, inside its declared no-data). The fill always decodes to NODATA and nothing
else, and is never "undefined", so engines that return raw codes can fill with it and decoding
still says "no data", never "clear". Callers take it from :attr:`Encoding.fill`; nobody
hard-codes 0, which is a legal "clear" in QA60 and Fmask.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import QAError
from ..flags import FLAG_DTYPE, Flag

if TYPE_CHECKING:
    from ..config import MaskConfig

FlagArray = npt.NDArray[np.uint16]
LutBuilder = Callable[["MaskConfig"], tuple[FlagArray, npt.NDArray[np.bool_]]]


@dataclass(frozen=True)
class Encoding:
    """A QA encoding known to :func:`clearcube.decode`.

    Attributes
    ----------
    name
        The name ``decode`` accepts, e.g. ``"s2-scl"``.
    n_values
        Number of possible QA values (256 for uint8 rasters, 65536 for uint16).
    native_dtype
        dtype of the QA raster as the provider writes it.
    build
        Returns ``(flags_table, defined_table)`` for a config: ``flags_table[v]`` is the
        flags of QA value ``v``; ``defined_table[v]`` is false where the specification leaves
        ``v`` undefined (decoded as NODATA, or raised with ``on_undefined="raise"``).
    description
        One line naming the product and the specification.
    fill
        The raw code a reader writes where there is no data (outside a raster, or where the
        item or file declares no-data): the product's own fill where it has one (QA_PIXEL 1,
        SCL 0, Fmask 255), else a code the specification leaves undefined. It decodes to
        NODATA alone and never raises.
    provider_cloud
        The provider's own cloud-cover definition (what its ``eo:cloud_cover`` states) on raw
        codes: ``(cloudy, counted)`` pixel counts, or None when no provider figure is defined
        on this QA (e.g. QA_RADSAT). Compared like with like, it checks the metadata against
        the mask it came from.
    """

    name: str
    n_values: int
    native_dtype: str
    build: LutBuilder
    description: str
    fill: int
    provider_cloud: Callable[[npt.NDArray[Any]], tuple[int, int]] | None = None

    def tables(self, config: MaskConfig) -> tuple[FlagArray, npt.NDArray[np.bool_]]:
        """The (read-only, cached) flags and defined tables under ``config``."""
        return _tables(self, config)


@lru_cache(maxsize=64)
def _tables(encoding: Encoding, config: MaskConfig) -> tuple[FlagArray, npt.NDArray[np.bool_]]:
    flags, defined = encoding.build(config)
    flags = np.ascontiguousarray(flags, dtype=FLAG_DTYPE)
    defined = np.ascontiguousarray(defined, dtype=bool)
    if flags.shape != (encoding.n_values,) or defined.shape != (encoding.n_values,):
        raise AssertionError(f"{encoding.name}: lookup table has the wrong size")
    if flags[encoding.fill] != Flag.NODATA or not defined[encoding.fill]:
        # engines fill with this code; anything else would make "no data" clear (or raise)
        raise AssertionError(f"{encoding.name}: fill {encoding.fill} must decode to NODATA")
    flags.setflags(write=False)
    defined.setflags(write=False)
    return flags, defined


@lru_cache(maxsize=64)
def _pair_table(encoding: Encoding, config: MaskConfig) -> npt.NDArray[np.uint32]:
    """For 8-bit encodings: the flags of two adjacent pixels read as one little-endian uint16.

    Looking up pixel pairs halves the number of (index-converting) lookups; measured 1.7-2.4x
    faster than a per-pixel ``np.take`` on a full SCL tile (benchmarks/decode.py).
    """
    flags, _ = _tables(encoding, config)
    v = np.arange(65536, dtype=np.uint32)
    low = flags[v & 0xFF].astype(np.uint32)
    high = flags[v >> 8].astype(np.uint32)
    pair: npt.NDArray[np.uint32] = low | (high << np.uint32(16))
    pair.setflags(write=False)
    return pair


def check_dtype(encoding: Encoding, dtype: np.dtype[Any]) -> None:
    """Refuse QA arrays that cannot hold exact QA codes (floats were resampled or rescaled)."""
    if dtype.kind not in "ui":
        raise QAError(
            f"{encoding.name}: QA arrays must hold integer codes, got {dtype}; load the QA asset "
            f"with dtype {encoding.native_dtype} and nearest resampling (never bilinear or a "
            "float dtype on a bitmask)"
        )


def decode_block(qa: npt.NDArray[Any], encoding: Encoding, config: MaskConfig) -> FlagArray:
    """Decode one numpy block through the encoding's tables."""
    check_dtype(encoding, qa.dtype)
    flags, defined = _tables(encoding, config)
    n = encoding.n_values
    info = np.iinfo(qa.dtype)
    if info.min >= 0 and info.max < n:
        # every code indexes the table (checked above), so no bounds check: mode="clip"
        if n == 256 and qa.dtype == np.uint8 and _pairable(qa):
            out = _take_pairs(_pair_table(encoding, config), flags, qa)
        else:
            out = np.take(flags, qa, mode="clip")
        if config.on_undefined == "raise":
            bad = ~np.take(defined, qa)
            if bad.any():
                _raise_undefined(encoding, qa[bad])
        return out
    # Wider or signed integers: values outside the table are undefined codes.
    outside = (qa < 0) | (qa >= n)
    idx = np.where(outside, 0, qa)
    out = np.take(flags, idx, mode="clip")
    out[outside] = Flag.NODATA
    if config.on_undefined == "raise":
        bad = outside | ~np.take(defined, idx)
        if bad.any():
            _raise_undefined(encoding, qa[bad])
    return out


def _pairable(qa: npt.NDArray[Any]) -> bool:
    return sys.byteorder == "little" and qa.size >= 2


def _take_pairs(
    pair: npt.NDArray[np.uint32], flags: npt.NDArray[Any], qa: npt.NDArray[Any]
) -> FlagArray:
    """Decode uint8 codes two at a time: consecutive bytes of the flattened array read as one
    uint16 index into the 65,536-entry pair table (any shape; an odd last pixel alone)."""
    flat = np.ascontiguousarray(qa).reshape(-1)
    out = np.empty(flat.size, dtype=FLAG_DTYPE)
    even = flat.size - flat.size % 2
    np.take(pair, flat[:even].view(np.uint16), out=out[:even].view(np.uint32), mode="clip")
    if even < flat.size:
        out[-1] = flags[flat[-1]]
    return out.reshape(qa.shape)


def _raise_undefined(encoding: Encoding, values: npt.NDArray[Any]) -> None:
    uniq = np.unique(values)
    shown = ", ".join(str(int(v)) for v in uniq[:8])
    more = "" if uniq.size <= 8 else f" (and {uniq.size - 8} more)"
    raise QAError(
        f"{encoding.name}: {values.size} pixel(s) hold undefined QA values {shown}{more}; the "
        "raster is not this encoding, was resampled, or was read outside its data without the "
        f"encoding's fill ({encoding.fill}); set on_undefined='nodata' to mask them"
    )


def tables(encoding: Encoding, config: MaskConfig) -> tuple[FlagArray, npt.NDArray[np.bool_]]:
    """The (read-only) flags and defined tables of ``encoding`` under ``config``."""
    return _tables(encoding, config)
