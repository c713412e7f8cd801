"""The synthetic world behind the demo catalog: landscape, clouds, shadows, sensor QA codes.

Everything is a function of longitude/latitude (and the date), so two Sentinel-2 tiles in two
UTM zones and a Landsat scene in a third CRS see the same forest, the same river, the same
clearings and, on the same day, the same clouds. The truth (where clouds, cirrus and shadows
really are) is computed first; the QA codes are what a provider's classifier writes for it,
including its usual behaviour at cloud rims (medium probability / medium confidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import Transformer

F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

# Cloud-top height (m) used to cast shadows; thin cirrus casts none worth mapping.
CLOUD_HEIGHT_M = 1500.0
M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class Blob:
    lon: float
    lat: float
    radius_m: float


@dataclass(frozen=True)
class Weather:
    """One day's sky over the demo area."""

    clouds: tuple[Blob, ...]
    cirrus: tuple[Blob, ...]
    sun_azimuth: float
    sun_elevation: float


@dataclass(frozen=True)
class Truth:
    """Per-pixel truth on one grid."""

    valid: B
    cloud: B
    rim: B
    cirrus: B
    shadow: B
    water: B
    clearing: B
    texture: F


def lonlat_grid(crs: str, transform: Affine, shape_yx: tuple[int, int]) -> tuple[F, F]:
    """Longitude and latitude of every pixel centre."""
    ny, nx = shape_yx
    cols, rows = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
    x = transform.c + transform.a * cols + transform.b * rows
    y = transform.f + transform.d * cols + transform.e * rows
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def _metres(lon: F, lat: F, lon0: float, lat0: float) -> tuple[F, F]:
    """Local east/north metres from (lon0, lat0)."""
    east = (lon - lon0) * M_PER_DEG * math.cos(math.radians(lat0))
    north = (lat - lat0) * M_PER_DEG
    return east, north


def _blob_field(lon: F, lat: F, blobs: tuple[Blob, ...]) -> F:
    field = np.zeros(lon.shape)
    for b in blobs:
        e, n = _metres(lon, lat, b.lon, b.lat)
        # lumpy edges: modulate the radius with the direction around the centre
        angle = np.arctan2(n, e)
        r = b.radius_m * (1 + 0.18 * np.sin(3 * angle + b.lon * 50) + 0.1 * np.cos(5 * angle))
        field = np.maximum(field, np.exp(-(e**2 + n**2) / (r**2)))
    return field


def landscape(lon: F, lat: F, year_index: int) -> tuple[B, B, F]:
    """(water, clearing, texture): a meandering river, clearings that grow every year."""
    river_lat = -3.004 + 0.004 * np.sin((lon + 54.0) * 140) + 0.0015 * np.sin((lon + 54) * 410)
    water = np.abs(lat - river_lat) < 0.00045
    # clearings: fishbone pattern along a road, growing with the year (the MRV signal)
    road = np.abs(lon - (-54.012 + 0.3 * (lat + 3.0))) < 0.0004
    strips = (np.sin(lat * 2600) > 0.55) & (
        np.abs(lon + 54.012 - 0.3 * (lat + 3.0)) < 0.004 + 0.0035 * year_index
    )
    patch = ((lon + 53.975) ** 2 / 0.0001 + (lat + 2.992) ** 2 / 0.00003) < (
        0.2 + 0.25 * year_index
    )
    clearing = (road | strips | patch) & ~water
    texture = (
        0.5 * np.sin(lon * 3100) * np.cos(lat * 2900)
        + 0.3 * np.sin((lon + lat) * 7300)
        + 0.2 * np.cos((lon - 2 * lat) * 5100)
    )
    return water, clearing, texture


def truth_on_grid(lon: F, lat: F, weather: Weather, year_index: int, valid: B) -> Truth:
    """The truth for one scene on one grid."""
    water, clearing, texture = landscape(lon, lat, year_index)
    field = _blob_field(lon, lat, weather.clouds)
    cloud = (field > 0.55) & valid
    rim = (field > 0.35) & ~cloud & valid
    cirrus = (_blob_field(lon, lat, weather.cirrus) > 0.5) & ~cloud & valid
    # The shadow of a cloud at C falls at C + d * (direction away from the sun).
    d = CLOUD_HEIGHT_M / math.tan(math.radians(weather.sun_elevation))
    az = math.radians(weather.sun_azimuth)
    shift_e, shift_n = -d * math.sin(az), -d * math.cos(az)
    dlon = shift_e / (M_PER_DEG * math.cos(math.radians(float(np.mean(lat)))))
    dlat = shift_n / M_PER_DEG
    cast = _blob_field(lon - dlon, lat - dlat, weather.clouds) > 0.55
    shadow = cast & ~cloud & ~rim & valid
    return Truth(valid, cloud, rim, cirrus, shadow, water & valid, clearing & valid, texture)


def shadow_shift_m(weather: Weather) -> tuple[float, float]:
    """(east, north) metres from a cloud to its shadow."""
    d = CLOUD_HEIGHT_M / math.tan(math.radians(weather.sun_elevation))
    az = math.radians(weather.sun_azimuth)
    return (-d * math.sin(az), -d * math.cos(az))


def reflectance(t: Truth) -> tuple[F, F]:
    """(red, nir) surface reflectance of the truth, as a sensor would see it."""
    red = np.where(t.clearing, 0.095, 0.032) + 0.006 * t.texture
    nir = np.where(t.clearing, 0.21, 0.31) + 0.03 * t.texture
    red = np.where(t.water, 0.045, red)
    nir = np.where(t.water, 0.025, nir)
    red = np.where(t.shadow, red * 0.45, red)
    nir = np.where(t.shadow, nir * 0.45, nir)
    red = np.where(t.cirrus, red + 0.06, red)
    nir = np.where(t.cirrus, nir + 0.05, nir)
    red = np.where(t.rim, 0.5 * red + 0.2, red)
    nir = np.where(t.rim, 0.5 * nir + 0.25, nir)
    red = np.where(t.cloud, 0.55 + 0.02 * t.texture, red)
    nir = np.where(t.cloud, 0.6 + 0.02 * t.texture, nir)
    return red, nir


def scl_codes(t: Truth, lon: F, lat: F) -> npt.NDArray[np.uint8]:
    """Sentinel-2 SCL for the truth (rims are classed medium probability, as Sen2Cor does)."""
    scl = np.where(t.clearing, 5, 4).astype(np.uint8)
    scl[t.water] = 6
    speck = (np.sin(lon * 91_000) * np.cos(lat * 87_000)) > 0.9995
    scl[speck & ~t.water] = 7  # a few unclassified pixels
    dark = (np.sin(lon * 53_000 + 1) * np.cos(lat * 61_000)) > 0.9997
    scl[dark] = 2
    scl[t.shadow] = 3
    scl[t.cirrus] = 10
    scl[t.rim] = 8
    scl[t.cloud] = 9
    scl[~t.valid] = 0
    return scl


# QA_PIXEL words as USGS writes them (see DESIGN.md): confidences low unless stated.
_LOW = (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14)
QA_CLEAR = _LOW | (1 << 6)  # 21824
QA_WATER = QA_CLEAR | (1 << 7)  # 21952
QA_CLOUD = (1 << 3) | (3 << 8) | (1 << 10) | (1 << 12) | (1 << 14)  # 22280
QA_RIM = (1 << 1) | (2 << 8) | (1 << 10) | (1 << 12) | (1 << 14)  # 22018, dilated + medium
QA_RING = (1 << 1) | _LOW  # 21762, dilated, low confidence
QA_SHADOW = QA_CLEAR | (1 << 4) | (3 << 10)  # 23888
QA_CIRRUS = QA_CLEAR | (1 << 2) | (3 << 14)  # 54596
QA_CLOUD_CIRRUS = QA_CLOUD | (1 << 2) | (3 << 14)  # 55052
QA_FILL = 1


def qa_pixel_codes(t: Truth, ring: B) -> npt.NDArray[np.uint16]:
    """Landsat C2 QA_PIXEL for the truth, internally consistent as in real USGS rasters."""
    qa = np.full(t.valid.shape, QA_CLEAR, dtype=np.uint16)
    qa[t.water] = QA_WATER
    qa[t.shadow] = QA_SHADOW
    qa[t.cirrus] = QA_CIRRUS
    qa[ring & ~t.cloud & ~t.rim] = QA_RING
    qa[t.rim] = QA_RIM
    qa[t.cloud] = QA_CLOUD
    core_cirrus = t.cloud & (np.roll(t.cirrus, 1, axis=0) | np.roll(t.cirrus, 1, axis=1))
    qa[core_cirrus] = QA_CLOUD_CIRRUS
    qa[~t.valid] = QA_FILL
    return qa
