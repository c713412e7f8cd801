"""The registry of QA encodings and the two sensor-neutral entry points, decode and is_clear."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from ..config import MaskConfig
from ..errors import QAError
from ..flags import FLAG_DTYPE, Flag
from ._lut import Encoding, check_dtype, decode_block
from .hls import FMASK
from .landsat import QA_PIXEL, QA_RADSAT
from .sentinel2 import QA60, SCL

__all__ = ["ENCODINGS", "decode", "get_encoding", "is_clear"]

#: Every encoding :func:`decode` accepts, by name.
ENCODINGS: dict[str, Encoding] = {e.name: e for e in (SCL, QA60, QA_PIXEL, QA_RADSAT, FMASK)}

_DEFAULT_CONFIG = MaskConfig()


def get_encoding(name: str | Encoding) -> Encoding:
    """Look up an encoding by name (case-insensitive; ``_`` and ``-`` alike)."""
    if isinstance(name, Encoding):
        return name
    key = str(name).strip().lower().replace("_", "-")
    try:
        return ENCODINGS[key]
    except KeyError:
        raise QAError(
            f"unknown QA encoding {name!r}; valid encodings: {', '.join(ENCODINGS)}"
        ) from None


def decode(qa: Any, encoding: str, config: MaskConfig | None = None) -> Any:
    """Decode a QA array into sensor-neutral :class:`~clearcube.Flag` bits (``uint16``).

    Parameters
    ----------
    qa
        Integer QA codes as the provider writes them: numpy, dask or xarray. Never a float
        array (a resampled or rescaled bitmask is not decodable).
    encoding
        One of ``s2-scl``, ``s2-qa60``, ``landsat-qa-pixel``, ``landsat-qa-radsat``,
        ``hls-fmask``.
    config
        Masking rules (Landsat confidence tiers, SCL class 8, undefined values). Default
        :class:`~clearcube.MaskConfig()`.

    Returns
    -------
    Same kind and shape as ``qa`` (numpy in, numpy out; dask in, dask out, lazily, block by
    block; an xarray DataArray keeps its coordinates), dtype ``uint16``.

    Raises
    ------
    QAError
        Unknown encoding, non-integer dtype, or (with ``on_undefined="raise"``) an undefined
        QA value.
    """
    enc = get_encoding(encoding)
    cfg = _DEFAULT_CONFIG if config is None else config
    if not isinstance(cfg, MaskConfig):
        raise QAError(f"config must be a MaskConfig, not {type(cfg).__name__}")

    import xarray as xr

    if isinstance(qa, xr.DataArray):
        flags = decode(qa.data, enc.name, cfg)
        out = qa.copy(data=flags)
        out.name = "flags"
        out.attrs = {
            "long_name": "clearcube sensor-neutral QA flags",
            "flag_masks": [int(f) for f in Flag],
            "flag_meanings": " ".join(f.name.lower() for f in Flag if f.name),
            "qa_encoding": enc.name,
        }
        return out

    if _is_dask(qa):
        check_dtype(enc, qa.dtype)
        return qa.map_blocks(
            partial(decode_block, encoding=enc, config=cfg),
            dtype=FLAG_DTYPE,
            token=f"decode-{enc.name}",
        )

    arr = np.asarray(qa)
    return decode_block(arr, enc, cfg)


def is_clear(flags: Any, config: MaskConfig | None = None) -> Any:
    """True where a pixel is valid (not NODATA) and carries none of the masked flags.

    Works on numpy, dask and xarray flags alike and returns the same kind of boolean array.
    """
    cfg = _DEFAULT_CONFIG if config is None else config
    dtype = getattr(flags, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind not in "ui":
        raise QAError(f"is_clear expects integer Flag arrays (uint16), got {dtype}")
    bits = np.uint16(int(Flag.NODATA) | cfg.masked_bits)
    if _is_dask(flags) or _is_xarray(flags):
        return (flags & bits) == 0
    return (np.asarray(flags) & bits) == 0


def _is_dask(obj: Any) -> bool:
    return type(obj).__module__.startswith("dask.") and hasattr(obj, "map_blocks")


def _is_xarray(obj: Any) -> bool:
    return type(obj).__module__.startswith("xarray.")
