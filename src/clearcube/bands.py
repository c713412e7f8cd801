"""The canonical reflectance bands: the one table of band names clearcube speaks.

Every sensor family maps its own asset keys onto these names (``sensors/``); everything after
identification (load, composites, the Zarr cube, COG band descriptions, the report's NDVI)
speaks only these names, in this spectral order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ItemError

__all__ = [
    "BANDS",
    "CANONICAL",
    "STANDARD_NAME",
    "Band",
    "check_bands",
    "long_name",
    "spectral_order",
]


@dataclass(frozen=True)
class Band:
    """One canonical band.

    Attributes
    ----------
    name
        The name clearcube uses (``red``).
    long_name
        What the band is, for CF ``long_name`` attributes and COG band descriptions.
    centre_nm
        Nominal centre wavelength in nanometres (Sentinel-2 MSI / Landsat OLI are close).
    """

    name: str
    long_name: str
    centre_nm: float


#: The canonical bands, in spectral order.
BANDS: tuple[Band, ...] = (
    Band("blue", "blue surface reflectance", 490.0),
    Band("green", "green surface reflectance", 560.0),
    Band("red", "red surface reflectance", 665.0),
    Band("nir", "near-infrared surface reflectance (the sensor's harmonised NIR)", 842.0),
    Band("nir_broad", "broad near-infrared surface reflectance (HLS S30 B08)", 842.0),
    Band("nir08", "narrow near-infrared surface reflectance (Sentinel-2 B8A)", 865.0),
    Band("swir16", "shortwave-infrared 1.6 um surface reflectance", 1610.0),
    Band("swir22", "shortwave-infrared 2.2 um surface reflectance", 2190.0),
)

#: The CF standard name of every canonical band (surface reflectance, units "1").
STANDARD_NAME = "surface_bidirectional_reflectance"

#: The canonical band names, in spectral order.
CANONICAL: tuple[str, ...] = tuple(b.name for b in BANDS)

_BY_NAME = {b.name: b for b in BANDS}


def check_bands(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, refusing any that is not canonical (one line naming the valid
    ones)."""
    out = tuple(names)
    for name in out:
        if name not in _BY_NAME:
            raise ItemError(f"unknown band {name!r}; canonical bands: {', '.join(CANONICAL)}")
    return out


def spectral_order(names: Iterable[str]) -> list[str]:
    """The canonical names among ``names``, in spectral order (a Zarr store lists its
    variables in no fixed order)."""
    present = set(names)
    return [n for n in CANONICAL if n in present]


def long_name(name: str) -> str:
    """The band's description (its name when it is not canonical)."""
    band = _BY_NAME.get(name)
    return band.long_name if band else name
