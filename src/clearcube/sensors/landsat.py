"""Landsat Collection 2 Level-2 QA bands (Landsat 4-9): QA_PIXEL and QA_RADSAT.

Source: USGS LSDS-1619 (Landsat 8-9 C2 L2 Product Guide) and LSDS-1618 (Landsat 4-7).

QA_PIXEL bits: 0 fill, 1 dilated cloud, 2 cirrus (8/9 only), 3 cloud, 4 cloud shadow, 5 snow,
6 clear, 7 water, 8-9 cloud confidence, 10-11 cloud-shadow confidence, 12-13 snow/ice
confidence, 14-15 cirrus confidence (8/9 only); confidences 0 none, 1 low, 2 medium, 3 high.
Write-ups that put cloud confidence in bits 3-4, shadow in bit 5 or cirrus in bit 1 describe no
Collection 2 product.

USGS sets a cloud confidence on every valid pixel, so a non-fill QA_PIXEL value whose cloud
confidence is 00 (0 included) never occurs in a product: it is what a reader returns where a QA
raster without a nodata tag has no data (USGS writes none), and is decoded as NODATA, never
clear. QA_RADSAT has no fill code (0 means "nothing saturated"); only the bits listed below are
used by any Landsat 4-9 sensor, so a value with another bit set is undefined (NODATA).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import MaskConfig
from ..flags import FLAG_DTYPE, Flag
from ._family import SensorFamily
from ._lut import Encoding, FlagArray

__all__ = [
    "FAMILY",
    "FAMILY_TM",
    "QA_PIXEL",
    "QA_PIXEL_FILL",
    "QA_RADSAT",
    "QA_RADSAT_FILL",
    "decode_qa_pixel_bits",
    "decode_qa_radsat_bits",
]

_RADSAT_SATURATION_BITS = 0b0000_0001_0111_1111  # bands 1-7 (bits 0-6) and band 9/6H (bit 8)
_RADSAT_DROPPED_PIXEL = 1 << 9  # TM / ETM+: dropped pixel (defective)
_RADSAT_TERRAIN_OCCLUSION = 1 << 11  # OLI: terrain occlusion
# bits no Landsat 4-9 sensor uses (7, 10, 12-15): a value with one of them is not QA_RADSAT
_RADSAT_UNUSED_BITS = 0xFFFF & ~(
    _RADSAT_SATURATION_BITS | _RADSAT_DROPPED_PIXEL | _RADSAT_TERRAIN_OCCLUSION
)

#: The QA_PIXEL fill USGS writes (bit 0 alone), and what readers fill with outside a raster.
QA_PIXEL_FILL = 1
#: QA_RADSAT has no fill code: every bit set (undefined, so NODATA; a decoder that ignores the
#: unused bits still reads it as saturated, never as clean).
QA_RADSAT_FILL = 0xFFFF


def _flag_where(cond: npt.NDArray[Any], flag: Flag) -> FlagArray:
    return np.where(cond, np.uint16(flag), np.uint16(0)).astype(FLAG_DTYPE, copy=False)


def decode_qa_pixel_bits(
    qa: npt.NDArray[Any], confidence_tiers: tuple[int, ...] = (2, 3)
) -> FlagArray:
    """Decode QA_PIXEL with bitwise operations.

    CLOUD where bit 3 is set or the cloud confidence (bits 8-9) is one of ``confidence_tiers``;
    CIRRUS where bit 2 is set or the cirrus confidence (bits 14-15) is high; SHADOW from bit 4,
    DILATED from bit 1, SNOW from bit 5, WATER from bit 7. A fill pixel (bit 0) and a pixel
    whose cloud confidence is 00 (never written by USGS on a valid pixel; what a reader returns
    outside an untagged raster) carry NODATA and nothing else, so tier 0 selects nothing.
    """
    v = qa.astype(np.uint32, copy=False)
    cloud_conf = (v >> 8) & 3
    cirrus_conf = (v >> 14) & 3
    cloud = ((v >> 3) & 1).astype(bool)
    for tier in confidence_tiers:
        cloud |= cloud_conf == tier
    cirrus = ((v >> 2) & 1).astype(bool) | (cirrus_conf == 3)
    out = _flag_where(cloud, Flag.CLOUD)
    out |= _flag_where(cirrus, Flag.CIRRUS)
    out |= _flag_where((v >> 4) & 1, Flag.SHADOW)
    out |= _flag_where((v >> 1) & 1, Flag.DILATED)
    out |= _flag_where((v >> 5) & 1, Flag.SNOW)
    out |= _flag_where((v >> 7) & 1, Flag.WATER)
    nodata = ((v & 1) == 1) | (cloud_conf == 0)
    return np.where(nodata, np.uint16(Flag.NODATA), out).astype(FLAG_DTYPE, copy=False)


def _qa_pixel_tables(config: MaskConfig) -> tuple[FlagArray, npt.NDArray[np.bool_]]:
    values = np.arange(65536, dtype=np.uint32)
    # fill (bit 0) is defined; a non-fill value without a cloud confidence is not a product code
    defined = ((values & 1) == 1) | (((values >> 8) & 3) != 0)
    return decode_qa_pixel_bits(values, config.confidence_tiers), defined


def qa_pixel_provider_cloud(qa: npt.NDArray[Any]) -> tuple[int, int]:
    """USGS ``CLOUD_COVER``: pixels with bit 3 (cloud) among the non-fill pixels that carry a
    cloud confidence (every valid pixel of a real product does)."""
    v = qa.astype(np.uint32, copy=False)
    counted = ((v & 1) == 0) & (((v >> 8) & 3) != 0)
    cloudy = counted & (((v >> 3) & 1) == 1)
    return int(np.count_nonzero(cloudy)), int(np.count_nonzero(counted))


QA_PIXEL = Encoding(
    name="landsat-qa-pixel",
    n_values=65536,
    native_dtype="uint16",
    build=_qa_pixel_tables,
    description="Landsat Collection 2 QA_PIXEL (uint16, 30 m, fill = bit 0), Landsat 4-9",
    fill=QA_PIXEL_FILL,
    provider_cloud=qa_pixel_provider_cloud,
)


def decode_qa_radsat_bits(qa: npt.NDArray[Any]) -> FlagArray:
    """Decode QA_RADSAT: any saturated band (bits 0-6, 8) or a dropped pixel (bit 9, TM/ETM+)
    sets SATURATED; terrain occlusion (bit 11, OLI) sets TERRAIN_SHADOW.

    QA_RADSAT has no fill value (combine it with QA_PIXEL for the scene's no-data); a value
    with a bit no Landsat 4-9 sensor uses (7, 10, 12-15; :data:`QA_RADSAT_FILL` among them) is
    undefined and carries NODATA alone.
    """
    v = qa.astype(np.uint32, copy=False)
    out = _flag_where(v & (_RADSAT_SATURATION_BITS | _RADSAT_DROPPED_PIXEL), Flag.SATURATED)
    out |= _flag_where(v & _RADSAT_TERRAIN_OCCLUSION, Flag.TERRAIN_SHADOW)
    undefined = (v & _RADSAT_UNUSED_BITS) != 0
    return np.where(undefined, np.uint16(Flag.NODATA), out).astype(FLAG_DTYPE, copy=False)


def _qa_radsat_tables(config: MaskConfig) -> tuple[FlagArray, npt.NDArray[np.bool_]]:
    values = np.arange(65536, dtype=np.uint32)
    defined = ((values & _RADSAT_UNUSED_BITS) == 0) | (values == QA_RADSAT_FILL)
    return decode_qa_radsat_bits(values), defined


QA_RADSAT = Encoding(
    name="landsat-qa-radsat",
    n_values=65536,
    native_dtype="uint16",
    build=_qa_radsat_tables,
    description="Landsat Collection 2 QA_RADSAT (uint16): radiometric saturation per band",
    fill=QA_RADSAT_FILL,
)


# Common names are the same across collections; the file-style keys of USGS per-scene items
# (SR_B4.TIF) mean different bands on OLI (Landsat 8/9) and TM/ETM+ (Landsat 4-7).
_COMMON = {
    "blue": ("blue",),
    "green": ("green",),
    "red": ("red",),
    "nir": ("nir08", "nir"),
    "swir16": ("swir16",),
    "swir22": ("swir22",),
}


def _family(sr_bands: tuple[int, ...]) -> SensorFamily:
    return SensorFamily(
        name="landsat",
        qa_keys=(("qa_pixel", "landsat-qa-pixel"),),
        band_keys={
            name: (*keys, f"SR_B{band}")
            for (name, keys), band in zip(_COMMON.items(), sr_bands, strict=True)
        },
        scale=2.75e-5,
        offset=-0.2,
        nodata=0,
        qa_nodata={"landsat-qa-pixel": 1},
        qa_dtype={"landsat-qa-pixel": "uint16"},
        never_qa=("qa",),  # Earth Search / PC "qa" is ST_QA (surface temperature uncertainty)
        aux_qa=(("qa_radsat", "landsat-qa-radsat"),),
    )


#: Landsat 8/9 OLI.
FAMILY = _family((2, 3, 4, 5, 6, 7))
#: Landsat 4/5 TM and 7 ETM+.
FAMILY_TM = _family((1, 2, 3, 4, 5, 7))
