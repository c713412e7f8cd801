"""The sensor-neutral flag vocabulary.

Every QA encoding is decoded into these bits, stored as ``uint16``. Everything downstream of
decoding (dilation, cloud fractions, composites, audit) speaks only flags.

A pixel is *valid* where :attr:`Flag.NODATA` is not set, and *clear* where it is valid and none
of the flags that :class:`clearcube.MaskConfig` masks is set.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["FLAG_DTYPE", "NEVER_VALID", "Flag", "flag_names", "parse_flag"]

#: dtype of every flags array.
FLAG_DTYPE = np.dtype(np.uint16)


class Flag(enum.IntFlag):
    """Sensor-neutral QA flags, one bit each, stored as ``uint16``.

    Attributes
    ----------
    NODATA
        Fill / no data. A no-data pixel carries no other flag and is neither clear nor cloudy.
    SATURATED
        Saturated or defective (SCL 1, any band of Landsat QA_RADSAT).
    CLOUD
        Opaque cloud (SCL 8 per config and 9, QA_PIXEL bit 3 or cloud confidence in the
        configured tiers, QA60 bit 10, Fmask bit 1).
    CIRRUS
        Cirrus (SCL 10, QA_PIXEL bit 2 or high cirrus confidence, QA60 bit 11).
    SHADOW
        Cloud shadow (SCL 3, QA_PIXEL bit 4, Fmask bit 3).
    DILATED
        Buffer around clouds, from the provider (QA_PIXEL bit 1, Fmask bit 2) or from
        clearcube's own dilation in metres.
    SNOW
        Snow or ice (SCL 11, QA_PIXEL bit 5, Fmask bit 4).
    WATER
        Water (SCL 6, QA_PIXEL bit 7, Fmask bit 5).
    TERRAIN_SHADOW
        Dark area / topographic shadow (SCL 2), terrain occlusion (QA_RADSAT bit 11).
    UNREADABLE
        The QA could not be read here (corrupt or truncated data, an HTTP error after the
        retries, a stalled server). Always set together with NODATA: such a pixel is neither
        valid nor clear, and the scene it belongs to is a recorded fallback.
    """

    NODATA = 1 << 0
    SATURATED = 1 << 1
    CLOUD = 1 << 2
    CIRRUS = 1 << 3
    SHADOW = 1 << 4
    DILATED = 1 << 5
    SNOW = 1 << 6
    WATER = 1 << 7
    TERRAIN_SHADOW = 1 << 8
    UNREADABLE = 1 << 9


#: Flags no mask rule can name: they mark pixels that are never valid.
NEVER_VALID = ("NODATA", "UNREADABLE")


def flag_names() -> tuple[str, ...]:
    """Names of all flags, in bit order."""
    return tuple(f.name for f in Flag if f.name is not None)


def parse_flag(value: str | int | Flag) -> Flag:
    """Turn a flag name (any case) or a single-bit integer into a :class:`Flag`.

    Raises
    ------
    ValueError
        With the valid names, when ``value`` names no flag.
    """
    if isinstance(value, Flag):
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_").replace(" ", "_")
        try:
            return Flag[key]
        except KeyError:
            raise ValueError(
                f"unknown flag {value!r}; valid flags: {', '.join(flag_names())}"
            ) from None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            flag = Flag(value)
        except ValueError:
            flag = None
        if flag is not None and flag.name is not None:
            return flag
        raise ValueError(
            f"{value} is not a single flag bit; valid flags: {', '.join(flag_names())}"
        )
    raise ValueError(f"a flag is a name or an int, not {type(value).__name__}")
