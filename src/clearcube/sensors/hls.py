"""Harmonized Landsat Sentinel-2 (HLS v2.0): the Fmask QA layer.

Source: the HLS production code (NASA-IMPACT/hls-landsat ``addFmaskSDS.c``) and the HLS v2.0
user guide. Bits: 0 cirrus (reserved, never set), 1 cloud, 2 adjacent to cloud/shadow,
3 cloud shadow, 4 snow/ice, 5 water, 6-7 aerosol level. Fill value 255.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import MaskConfig
from ..flags import FLAG_DTYPE, Flag
from ._family import SensorFamily
from ._lut import Encoding, FlagArray

__all__ = ["FAMILY_L30", "FAMILY_S30", "FMASK", "FMASK_FILL", "decode_fmask_bits"]

FMASK_FILL = 255


def decode_fmask_bits(qa: npt.NDArray[Any]) -> FlagArray:
    """Decode HLS Fmask bitwise. 255 -> NODATA only; bit 1 CLOUD, bit 2 DILATED (adjacent to
    cloud or shadow), bit 3 SHADOW, bit 4 SNOW, bit 5 WATER. Bit 0 is reserved and bits 6-7
    (aerosol level) carry no flag."""
    v = qa.astype(np.uint32, copy=False)
    out = np.zeros(qa.shape, dtype=FLAG_DTYPE)
    for bit, flag in (
        (1, Flag.CLOUD),
        (2, Flag.DILATED),
        (3, Flag.SHADOW),
        (4, Flag.SNOW),
        (5, Flag.WATER),
    ):
        out |= np.where((v >> bit) & 1, np.uint16(flag), np.uint16(0)).astype(FLAG_DTYPE)
    return np.where(v == FMASK_FILL, np.uint16(Flag.NODATA), out).astype(FLAG_DTYPE, copy=False)


def _fmask_tables(config: MaskConfig) -> tuple[FlagArray, npt.NDArray[np.bool_]]:
    values = np.arange(256, dtype=np.uint32)
    return decode_fmask_bits(values), np.ones(256, dtype=bool)


def fmask_provider_cloud(qa: npt.NDArray[Any]) -> tuple[int, int]:
    """HLS ``CLOUD_COVERAGE`` (the HLS v2.0 user guide: cloud and cloud shadow by Fmask):
    cloud (bit 1) or cloud shadow (bit 3) among the non-fill pixels."""
    v = qa.astype(np.uint32, copy=False)
    counted = v != FMASK_FILL
    cloudy = counted & ((v & 0b1010) != 0)
    return int(np.count_nonzero(cloudy)), int(np.count_nonzero(counted))


FMASK = Encoding(
    name="hls-fmask",
    n_values=256,
    native_dtype="uint8",
    build=_fmask_tables,
    description="HLS v2.0 Fmask (uint8, 30 m, fill 255)",
    fill=FMASK_FILL,
    provider_cloud=fmask_provider_cloud,
)


def _family(band_keys: dict[str, tuple[str, ...]]) -> SensorFamily:
    return SensorFamily(
        name="hls",
        qa_keys=(("Fmask", "hls-fmask"),),
        band_keys=band_keys,
        qa_nodata={"hls-fmask": FMASK_FILL},
        qa_dtype={"hls-fmask": "uint8"},
        scale=1e-4,
        offset=0.0,
        nodata=-9999,
    )


# Asset keys: LP DAAC / CMR-STAC use the band numbers (B8A), stactools-hls and Planetary
# Computer descriptive names (nir_narrow). HLS harmonises the narrow NIR of both sensors (OLI B05,
# MSI B8A), so that is "nir" in both profiles; the S30 broad NIR B08 has no L30 twin and keeps a
# name of its own: it is never "nir".
#: HLS S30 (Sentinel-2 MSI band numbers; NIR is the narrow B8A).
FAMILY_S30 = _family(
    {
        "blue": ("B02", "blue"),
        "green": ("B03", "green"),
        "red": ("B04", "red"),
        "nir": ("B8A", "nir_narrow"),
        "nir_broad": ("B08", "nir_broad"),
        "swir16": ("B11", "swir_1", "swir16"),
        "swir22": ("B12", "swir_2", "swir22"),
    }
)
#: HLS L30 (OLI band numbers).
FAMILY_L30 = _family(
    {
        "blue": ("B02", "blue"),
        "green": ("B03", "green"),
        "red": ("B04", "red"),
        "nir": ("B05", "nir_narrow"),
        "swir16": ("B06", "swir_1", "swir16"),
        "swir22": ("B07", "swir_2", "swir22"),
    }
)
