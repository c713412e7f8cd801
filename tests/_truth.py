"""Bit-level truth tables written from the ESA and USGS specifications, one QA value at a time.

These are deliberately plain Python (no numpy, no lookup tables, no code shared with
``clearcube.sensors``) so that they are an independent oracle for the vectorised decoders.
Flag bits are spelled out as integers here too, and checked against ``clearcube.Flag`` once.
"""

from __future__ import annotations

NODATA, SATURATED, CLOUD, CIRRUS, SHADOW, DILATED, SNOW, WATER, TERRAIN_SHADOW = (
    1,
    2,
    4,
    8,
    16,
    32,
    64,
    128,
    256,
)


def bit(value: int, n: int) -> bool:
    return (value // (2**n)) % 2 == 1


def field(value: int, first: int) -> int:
    """Two-bit field starting at bit ``first``."""
    return (value // (2**first)) % 4


#: The raw code each encoding is filled with where there is no data (outside a raster): the
#: product's own fill where it has one; QA60 and QA_RADSAT have none, so every bit set, a value
#: their specifications leave undefined.
FILL = {
    "s2-scl": 0,
    "s2-qa60": 65535,
    "landsat-qa-pixel": 1,
    "landsat-qa-radsat": 65535,
    "hls-fmask": 255,
}


def scl(value: int, *, medium_is_cloud: bool = True) -> int:
    """ESA L2A Scene Classification, classes 0-11; anything else is undefined (no data)."""
    table = {
        0: NODATA,  # no data
        1: SATURATED,  # saturated or defective
        2: TERRAIN_SHADOW,  # dark area pixels / topographic shadow
        3: SHADOW,  # cloud shadows
        4: 0,  # vegetation
        5: 0,  # not vegetated
        6: WATER,  # water
        7: 0,  # unclassified
        8: CLOUD if medium_is_cloud else 0,  # cloud medium probability
        9: CLOUD,  # cloud high probability
        10: CIRRUS,  # thin cirrus
        11: SNOW,  # snow / ice
    }
    return table.get(value, NODATA)


def scl_defined(value: int) -> bool:
    return 0 <= value <= 11


def qa60(value: int) -> int:
    """QA60: bit 10 opaque cloud, bit 11 cirrus; no fill value. ESA uses no other bit, so a
    value with another bit set is undefined: no data."""
    if any(bit(value, n) for n in range(16) if n not in (10, 11)):
        return NODATA
    out = 0
    if bit(value, 10):
        out += CLOUD
    if bit(value, 11):
        out += CIRRUS
    return out


def qa60_defined(value: int) -> bool:
    return value in (0, 1024, 2048, 3072) or value == FILL["s2-qa60"]


def qa_pixel(value: int, tiers: tuple[int, ...] = (2, 3)) -> int:
    """USGS C2 QA_PIXEL (LSDS-1619 / LSDS-1618)."""
    if bit(value, 0):  # fill: no data and nothing else
        return NODATA
    if field(value, 8) == 0:  # USGS gives every valid pixel a cloud confidence: not a pixel
        return NODATA
    out = 0
    if bit(value, 3) or field(value, 8) in tiers:  # cloud flag or cloud confidence tier
        out += CLOUD
    if bit(value, 2) or field(value, 14) == 3:  # cirrus flag or high cirrus confidence
        out += CIRRUS
    if bit(value, 4):
        out += SHADOW
    if bit(value, 1):
        out += DILATED
    if bit(value, 5):
        out += SNOW
    if bit(value, 7):
        out += WATER
    return out


def qa_pixel_defined(value: int) -> bool:
    return bit(value, 0) or field(value, 8) != 0


def qa_radsat(value: int) -> int:
    """QA_RADSAT: bits 0-6 and 8 band saturation, 9 dropped pixel (TM/ETM+), 11 terrain
    occlusion (OLI); bits 7, 10, 12-15 unused by every sensor: a value with one is no data."""
    if any(bit(value, n) for n in (7, 10, 12, 13, 14, 15)):
        return NODATA
    out = 0
    if any(bit(value, n) for n in (0, 1, 2, 3, 4, 5, 6, 8, 9)):
        out += SATURATED
    if bit(value, 11):
        out += TERRAIN_SHADOW
    return out


def qa_radsat_defined(value: int) -> bool:
    unused = any(bit(value, n) for n in (7, 10, 12, 13, 14, 15))
    return not unused or value == FILL["landsat-qa-radsat"]


def fmask(value: int) -> int:
    """HLS v2.0 Fmask: 255 fill; bit 1 cloud, 2 adjacent, 3 shadow, 4 snow/ice, 5 water."""
    if value == 255:
        return NODATA
    out = 0
    if bit(value, 1):
        out += CLOUD
    if bit(value, 2):
        out += DILATED
    if bit(value, 3):
        out += SHADOW
    if bit(value, 4):
        out += SNOW
    if bit(value, 5):
        out += WATER
    return out


def fmask_defined(value: int) -> bool:
    return 0 <= value <= 255


#: Per encoding: (decoder, whether a value is defined, number of values).
TRUTH = {
    "s2-scl": (scl, scl_defined, 256),
    "s2-qa60": (qa60, qa60_defined, 65536),
    "landsat-qa-pixel": (qa_pixel, qa_pixel_defined, 65536),
    "landsat-qa-radsat": (qa_radsat, qa_radsat_defined, 65536),
    "hls-fmask": (fmask, fmask_defined, 256),
}
