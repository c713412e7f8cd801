"""Sentinel-2: the L2A Scene Classification (SCL), the L1C QA60 bits, processing baselines.

Sources: ESA L2A product metadata (``MTD_MSIL2A.xml``, SCL class list unchanged across
baselines 02.12, 04.00 and 05.09); Earth Engine's QA60 band table (bit 10 opaque cloud, bit 11
cirrus; from baseline 04.00 the L1C cloud mask moved to ``MSK_CLASSI``).

QA60 has no fill code: 0 is a legal "no cloud". ESA uses only bits 10 and 11, so a value with
any other bit set is undefined (NODATA, or raised with ``on_undefined="raise"``), and engines
that return raw codes fill with :data:`QA60_FILL`, one such value.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import MaskConfig
from ..errors import ItemError, QAError
from ..flags import FLAG_DTYPE, Flag
from ._family import SensorFamily
from ._lut import Encoding, FlagArray

__all__ = [
    "FAMILY",
    "QA60",
    "QA60_FILL",
    "SCL",
    "SCL_FILL",
    "SCL_CLASSES",
    "decode_qa60_bits",
    "parse_baseline",
    "qa60_uninformative",
]

#: SCL class values and ESA's names for them.
SCL_CLASSES: dict[int, str] = {
    0: "NO_DATA",
    1: "SATURATED_OR_DEFECTIVE",
    2: "DARK_AREA_PIXELS",
    3: "CLOUD_SHADOWS",
    4: "VEGETATION",
    5: "NOT_VEGETATED",
    6: "WATER",
    7: "UNCLASSIFIED",
    8: "CLOUD_MEDIUM_PROBABILITY",
    9: "CLOUD_HIGH_PROBABILITY",
    10: "THIN_CIRRUS",
    11: "SNOW",
}

# Baseline 04.00 (25 January 2022) introduced BOA_ADD_OFFSET and retired the QA60 polygons.
BASELINE_04 = (4, 0)

#: SCL class 0, NO_DATA: what ESA writes outside the swath and readers fill with.
SCL_FILL = 0
#: The bits of QA60 ESA uses: 10 opaque cloud, 11 cirrus.
_QA60_BITS = 0x0C00
#: QA60 has no fill code; every bit set is undefined (so NODATA), and a decoder that tests
#: only bits 10/11 still reads it as cloud, never as clear.
QA60_FILL = 0xFFFF


def _scl_tables(config: MaskConfig) -> tuple[FlagArray, npt.NDArray[np.bool_]]:
    flags = np.full(256, Flag.NODATA, dtype=FLAG_DTYPE)  # 12-255 undefined -> NODATA
    by_class = {
        0: Flag.NODATA,
        1: Flag.SATURATED,
        2: Flag.TERRAIN_SHADOW,
        3: Flag.SHADOW,
        4: Flag(0),
        5: Flag(0),
        6: Flag.WATER,
        7: Flag(0),
        8: Flag.CLOUD if config.scl_medium_as_cloud else Flag(0),
        9: Flag.CLOUD,
        10: Flag.CIRRUS,
        11: Flag.SNOW,
    }
    for value, flag in by_class.items():
        flags[value] = flag
    defined = np.zeros(256, dtype=bool)
    defined[: len(SCL_CLASSES)] = True
    return flags, defined


def scl_provider_cloud(qa: npt.NDArray[Any]) -> tuple[int, int]:
    """ESA's L2A cloud cover (what Earth Search copies into ``eo:cloud_cover``): classes 8, 9
    and 10 among the classified pixels (1-11)."""
    counted = (qa >= 1) & (qa <= 11)
    cloudy = (qa >= 8) & (qa <= 10)
    return int(np.count_nonzero(cloudy)), int(np.count_nonzero(counted))


def qa60_provider_cloud(qa: npt.NDArray[Any]) -> tuple[int, int]:
    """The L1C cloud cover of the QA60 era: opaque (bit 10) or cirrus (bit 11) pixels among
    the pixels holding a defined code."""
    v = qa.astype(np.uint32, copy=False)
    counted = (v & ~np.uint32(0x0C00)) == 0
    cloudy = counted & ((v & np.uint32(0x0C00)) != 0)
    return int(np.count_nonzero(cloudy)), int(np.count_nonzero(counted))


SCL = Encoding(
    name="s2-scl",
    n_values=256,
    native_dtype="uint8",
    build=_scl_tables,
    description="Sentinel-2 L2A Scene Classification (uint8, 20 m, 0 no data, classes 0-11)",
    fill=SCL_FILL,
    provider_cloud=scl_provider_cloud,
)


def decode_qa60_bits(qa: npt.NDArray[Any]) -> FlagArray:
    """Decode QA60 bitwise: bit 10 opaque cloud -> CLOUD, bit 11 cirrus -> CIRRUS; a value
    with any other bit set is undefined and carries NODATA alone.

    QA60 has no fill value: 0 means "no cloud polygon", which for baselines >= 04.00 may mean
    "unknown" (see :func:`qa60_uninformative`).
    """
    v = qa.astype(np.uint32, copy=False)
    out = np.zeros(qa.shape, dtype=FLAG_DTYPE)
    out |= np.where((v >> 10) & 1, np.uint16(Flag.CLOUD), np.uint16(0))
    out |= np.where((v >> 11) & 1, np.uint16(Flag.CIRRUS), np.uint16(0))
    undefined = (v & ~np.uint32(_QA60_BITS)) != 0
    return np.where(undefined, np.uint16(Flag.NODATA), out).astype(FLAG_DTYPE, copy=False)


def _qa60_tables(config: MaskConfig) -> tuple[FlagArray, npt.NDArray[np.bool_]]:
    values = np.arange(65536, dtype=np.uint32)
    defined = ((values & ~np.uint32(_QA60_BITS)) == 0) | (values == QA60_FILL)
    return decode_qa60_bits(values), defined


QA60 = Encoding(
    name="s2-qa60",
    n_values=65536,
    native_dtype="uint16",
    build=_qa60_tables,
    description="Sentinel-2 QA60 (uint16, 60 m): bit 10 opaque cloud, bit 11 cirrus",
    fill=QA60_FILL,
    provider_cloud=qa60_provider_cloud,
)


_BASELINE_RE = re.compile(r"^N?(\d{1,2})\.?(\d{2})$")


def parse_baseline(value: str | float | int | None) -> tuple[int, int] | None:
    """Parse a Sentinel-2 processing baseline into ``(major, minor)``.

    Accepts ``"04.00"``, ``"05.09"``, ``"N0400"``, ``"0400"``, ``4.0``, ``5.09``. Returns None
    for None or an empty string.

    Raises
    ------
    ItemError
        (a ``ValueError``) When the value is not a baseline: another string (``"unknown"``), a
        negative or non-finite number, a bool or any other type.
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0 or value >= 100:
            raise ItemError(
                f"{value!r} is not a Sentinel-2 processing baseline (expected e.g. 4.0 or '04.00')"
            )
        major = int(value)
        minor = round((float(value) - major) * 100)
        return (major, minor)
    if not isinstance(value, str):
        raise ItemError(
            f"{_short(value)} is not a Sentinel-2 processing baseline (expected a string such "
            "as '04.00' or 'N0400')"
        )
    text = value.strip()
    if not text:
        return None
    match = _BASELINE_RE.match(text)
    if match is None:
        raise ItemError(
            f"{_short(value)} is not a Sentinel-2 processing baseline (expected e.g. '04.00' or "
            "'N0400')"
        )
    return (int(match.group(1)), int(match.group(2)))


def _short(value: object) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def qa60_uninformative(qa: Any, processing_baseline: str | float | int | None) -> bool:
    """True when a QA60 array carries no cloud information and must not be read as clear.

    From processing baseline 04.00 (25 January 2022) the L1C cloud polygons that QA60 was
    rasterised from were retired; archives served all-zero QA60 for such scenes for a while.
    An all-zero QA60 of a baseline >= 04.00 scene therefore means "unknown": later stages route
    the scene as a fallback (excluded or sent to review), never as clear. An unknown baseline
    with an all-zero QA60 is treated as uninformative too (the cautious answer).

    Only defined codes count as information: a value with bits other than 10/11 (such as
    :data:`QA60_FILL` outside a raster) is no data, not a cloud.

    ``qa`` may be numpy or dask (a dask array is reduced, which computes it).
    """
    arr = qa.data if type(qa).__module__.startswith("xarray.") else qa
    if not hasattr(arr, "dtype"):
        arr = np.asarray(arr)
    if arr.dtype.kind not in "ui":
        raise QAError(f"s2-qa60: QA60 must hold integer codes, got {arr.dtype}")
    any_bits = ((arr == 0x0400) | (arr == 0x0800) | (arr == 0x0C00)).any()  # defined clouds
    if hasattr(any_bits, "compute"):
        any_bits = any_bits.compute()
    if bool(any_bits):
        return False
    return qa60_empty_means_unknown(processing_baseline)


def qa60_empty_means_unknown(processing_baseline: str | float | int | None) -> bool:
    """Whether a QA60 without a cloud bit says "unknown" rather than "clear" at this
    baseline: from 04.00 the polygons QA60 was rasterised from were retired; an unknown
    baseline gets the cautious answer.

    Raises
    ------
    ValueError
        ``processing_baseline`` is not a baseline (see :func:`parse_baseline`).
    """
    baseline = parse_baseline(processing_baseline)
    return baseline is None or baseline >= BASELINE_04


#: Asset names across Earth Search v0/v1, Planetary Computer and CDSE (see DESIGN.md).
FAMILY = SensorFamily(
    name="sentinel-2",
    qa_keys=(
        ("scl", "s2-scl"),
        ("SCL_20m", "s2-scl"),
        ("SCL_60m", "s2-scl"),
        ("qa60", "s2-qa60"),
    ),
    band_keys={
        "blue": ("blue", "B02", "B02_10m"),
        "green": ("green", "B03", "B03_10m"),
        "red": ("red", "B04", "B04_10m"),
        "nir": ("nir", "B08", "B08_10m"),
        "nir08": ("nir08", "B8A", "B8A_20m"),
        "swir16": ("swir16", "B11", "B11_20m"),
        "swir22": ("swir22", "B12", "B12_20m"),
    },
    scale=1e-4,
    offset=0.0,
    nodata=0,
    qa_nodata={"s2-scl": 0, "s2-qa60": 0},
    qa_dtype={"s2-scl": "uint8", "s2-qa60": "uint16"},
)

#: Reflectance offset of baselines >= 04.00: BOA_ADD_OFFSET -1000 DN at scale 1e-4.
BOA_OFFSET = -0.1

#: Item properties that name the processing baseline, in order of trust (Earth Search and
#: Planetary Computer, Earth Search v0, CDSE).
BASELINE_KEYS = ("s2:processing_baseline", "sentinel:processing_baseline", "processing:version")
#: Item properties holding a product name with the baseline as ``_Nxxyy_``.
PRODUCT_NAME_KEYS = ("s2:product_uri", "sentinel:product_id", "s2:product_id")
#: Earth Search flags saying that BOA_ADD_OFFSET was already removed from the pixels (v1, v0).
#: True means: apply no offset, whatever ``raster:bands`` says (earth-search#9).
BOA_OFFSET_APPLIED_KEYS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
#: The first day of processing baseline 04.00; the offset rule for items without a baseline.
BASELINE_04_DATE = "2022-01-25"
