"""MaskConfig: what makes a pixel unusable, validated at the boundary, loadable from TOML.

``MaskConfig`` is the one pydantic model of the masking rules. It is frozen (hashable, safe to
put in a dask graph) and raises :class:`clearcube.errors.ConfigError` with a one-line message
for any invalid value, naming the field and the fix.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .flags import NEVER_VALID, Flag, parse_flag

__all__ = [
    "CONFIG_ATTR",
    "DEFAULT_MASKED",
    "RUN_TABLES",
    "MaskConfig",
    "check_crs_resolution",
    "load_config",
]

#: Flags that make a pixel unusable by default. Snow, water and terrain shadow are kept.
DEFAULT_MASKED: tuple[str, ...] = ("CLOUD", "CIRRUS", "SHADOW", "DILATED", "SATURATED")

FallbackPolicy = Literal["exclude", "review", "fail"]

#: Attribute of a cube (``clearcube.load``) holding the JSON of the MaskConfig it was built with.
CONFIG_ATTR = "clearcube:mask_config"


_PREFIX = "invalid MaskConfig: "


def _one_line(exc: ValidationError) -> str:
    """Squash a pydantic ValidationError into one line naming each field and its problem."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"])
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            fields = ", ".join(sorted(MaskConfig.model_fields))
            msg = f"unknown option; valid options: {fields}"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return _PREFIX + "; ".join(parts)


def _bits(names: tuple[str, ...]) -> int:
    bits = 0
    for name in names:
        bits |= int(Flag[name])
    return bits


def check_crs_resolution(crs: str, resolution: float) -> None:
    """Refuse a pixel size that cannot be meant in the units of ``crs``.

    Raises
    ------
    ValueError
        A resolution of 1 or more with a geographic CRS (degrees: 10 would be about 1100 km),
        or below 1 cm with a projected CRS (someone gave degrees to a metric CRS).
    """
    from pyproj import CRS

    parsed = CRS.from_user_input(crs)
    if parsed.is_geographic and resolution >= 1.0:
        raise ValueError(
            f"resolution {resolution:g} with geographic {crs} means {resolution:g} degrees per "
            "pixel; give degrees (10 m is about 0.0001) or use a projected CRS such as a UTM zone"
        )
    if parsed.is_projected and resolution < 0.01:
        raise ValueError(
            f"resolution {resolution:g} with projected {crs} means {resolution:g} metres per "
            "pixel; give metres (e.g. 10, 20, 30)"
        )


class MaskConfig(BaseModel):
    """Masking rules shared by every sensor.

    Parameters
    ----------
    masked_flags
        Names of the :class:`~clearcube.Flag` members that make a valid pixel unusable.
        Default: CLOUD, CIRRUS, SHADOW, DILATED, SATURATED (snow and water are kept).
    confidence_tiers
        Landsat QA_PIXEL cloud-confidence values (bits 8-9; 1 low, 2 medium, 3 high) that count
        as cloud in addition to bit 3. ``()`` means bit 3 alone, the definition behind USGS
        ``CLOUD_COVER``. Default ``(2, 3)``.
    scl_medium_as_cloud
        Whether Sentinel-2 SCL class 8 (cloud, medium probability) is CLOUD. Default true.
    cloud_threshold
        Scenes whose cloud fraction (over valid pixels) exceeds this share, in [0, 1], are
        flagged over threshold. Default 0.30.
    dilation_m
        Distance in metres by which the ``dilate_flags`` are grown (the ring is marked
        DILATED). Default 0.
    dilate_flags
        Flags whose pixels seed the dilation buffer. Default CLOUD and SHADOW (as Fmask does).
    despeckle_px
        Remove isolated masked specks of at most this many pixels before dilation. Default 0.
    crs
        Output CRS (anything pyproj understands: ``"EPSG:32633"``, ``32633``, WKT), or None to
        choose it from the items.
    resolution
        Output pixel size in units of ``crs`` (metres for UTM, degrees for EPSG:4326), or None
        for the QA band's native resolution.
    fallback
        What happens to a scene whose mask cannot be read or carries no information: ``exclude``
        it (default), send it to manual ``review``, or ``fail`` the run. Never "treat as clear".
    on_undefined
        What decoding does with a QA value the specification leaves undefined (e.g. SCL 12-255):
        ``nodata`` (default) or ``raise``. Never clear.
    review_margin_pp
        A scene whose cloud fraction differs from the provider's ``eo:cloud_cover`` by more than
        this many percentage points is sent to manual review. Default 25.
    outlier_z
        A scene whose cloud fraction is this many robust standard deviations (MAD) from the
        median of its series (same tile or path/row, same sensor) is sent to manual review.
        Default 3.5.
    outlier_floor
        The least spread a series is judged with (a share of valid pixels): a series of clear
        scenes has a MAD near 0, and without a floor any small difference would be an
        outlier. Default 0.05.
    max_negative_share
        Science check: a used scene with more than this share of clear pixels below 0 in a
        band goes to review (an offset applied twice). Default 0.02.
    max_bright_share
        Science check: the same above 1 (a wrong scale). Default 0.01.
    dark_floor
        Science check: a used scene whose darkest clear red pixels (1st percentile) read above
        this goes to review (an offset not applied: +0.1 on everything). Default 0.09.
    max_haze_share
        Science check (with blue loaded): the share of clear pixels with a positive
        haze-optimised transform above which the mask looks to have kept thin cloud.
        Default 0.25.
    min_check_px
        Science checks judge only scenes with at least this many clear pixels read.
        Default 1000.
    max_ndvi_jump
        Jump check per series (same tile or path/row, same sensor): a used scene whose median
        NDVI of kept pixels differs from both its series neighbours (the scenes before and
        after it), in the same direction, by more than this goes to review (cloud or haze the
        mask kept pulls NDVI down for one date; a lasting change, such as a harvest, moves the
        next date too and is not a jump). Default 0.25.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    masked_flags: tuple[str, ...] = DEFAULT_MASKED
    confidence_tiers: tuple[int, ...] = (2, 3)
    scl_medium_as_cloud: bool = True
    cloud_threshold: float = 0.30
    dilation_m: float = 0.0
    dilate_flags: tuple[str, ...] = ("CLOUD", "SHADOW")
    despeckle_px: int = 0
    crs: str | None = None
    resolution: float | None = None
    fallback: FallbackPolicy = "exclude"
    on_undefined: Literal["nodata", "raise"] = "nodata"
    review_margin_pp: float = 25.0
    outlier_z: float = 3.5
    outlier_floor: float = 0.05
    max_negative_share: float = 0.02
    max_bright_share: float = 0.01
    dark_floor: float = 0.09
    max_haze_share: float = 0.25
    min_check_px: int = 1000
    max_ndvi_jump: float = 0.25

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc)) from None

    # ------------------------------------------------------------------ validators
    @field_validator("masked_flags", "dilate_flags", mode="before")
    @classmethod
    def _check_flags(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str | int | Flag):
            value = (value,)
        names: list[str] = []
        for item in value:
            flag = parse_flag(item)
            if flag.name in NEVER_VALID:
                raise ValueError(
                    f"{flag.name} cannot be masked or dilated: such pixels are never valid; "
                    "remove it"
                )
            assert flag.name is not None
            if flag.name not in names:
                names.append(flag.name)
        return tuple(names)

    @field_validator("confidence_tiers", mode="before")
    @classmethod
    def _check_tiers(cls, value: Any) -> tuple[int, ...]:
        if isinstance(value, int):
            value = (value,)
        tiers: list[int] = []
        for tier in value:
            if isinstance(tier, bool) or not isinstance(tier, int):
                raise ValueError(
                    f"tier {tier!r} is not an integer; tiers are 0 none, 1 low, 2 medium, 3 high"
                )
            if not 0 <= tier <= 3:
                raise ValueError(
                    f"tier {tier} outside 0-3; tiers are 0 none, 1 low, 2 medium, 3 high"
                )
            if tier not in tiers:
                tiers.append(tier)
        return tuple(sorted(tiers))

    @field_validator("cloud_threshold")
    @classmethod
    def _check_threshold(cls, value: float) -> float:
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(
                f"threshold {value} outside [0, 1]; it is a share of valid pixels (0.3 = 30 %)"
            )
        return value

    @field_validator("dilation_m")
    @classmethod
    def _check_dilation(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"dilation {value} m must be a finite distance >= 0 metres")
        return value

    @field_validator(
        "review_margin_pp",
        "outlier_z",
        "outlier_floor",
        "max_negative_share",
        "max_bright_share",
        "dark_floor",
        "max_haze_share",
        "max_ndvi_jump",
    )
    @classmethod
    def _check_positive(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{value} must be a positive number")
        return value

    @field_validator("despeckle_px", "min_check_px")
    @classmethod
    def _check_pixels(cls, value: int, info: ValidationInfo) -> int:
        if value < 0:
            what = str(info.field_name).removesuffix("_px").replace("_", " ")
            raise ValueError(f"{what} {value} px must be >= 0 pixels")
        return value

    @field_validator("crs", mode="before")
    @classmethod
    def _check_crs(cls, value: Any) -> str | None:
        if value is None:
            return None
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        if isinstance(value, int) and not isinstance(value, bool):
            value = f"EPSG:{value}"
        try:
            crs = CRS.from_user_input(value)
        except CRSError:
            raise ValueError(
                f"unknown CRS {value!r}; give an EPSG code such as 'EPSG:32633' or a WKT string"
            ) from None
        epsg = crs.to_epsg()
        return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()

    @field_validator("resolution")
    @classmethod
    def _check_resolution(cls, value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"resolution {value} must be a positive pixel size")
        return value

    @model_validator(mode="after")
    def _check_crs_resolution(self) -> MaskConfig:
        if self.crs is not None and self.resolution is not None:
            check_crs_resolution(self.crs, self.resolution)
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def dilate_bits(self) -> int:
        """The OR of the flags that seed dilation."""
        return _bits(self.dilate_flags)

    @property
    def masked_bits(self) -> int:
        """The OR of the masked flags, as an int for bitwise tests."""
        return _bits(self.masked_flags)

    def __dask_tokenize__(self) -> tuple[str, str]:
        return ("clearcube.MaskConfig", self.digest())

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of this config (for the audit trail)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_attrs(self) -> dict[str, str]:
        """The config as dataset attributes (see :data:`CONFIG_ATTR`)."""
        return {CONFIG_ATTR: self.model_dump_json()}

    @classmethod
    def from_attrs(cls, attrs: Mapping[Any, Any]) -> MaskConfig | None:
        """The config stored in dataset attributes by :meth:`to_attrs`, or None."""
        raw = attrs.get(CONFIG_ATTR)
        if not raw:
            return None
        return cls.from_mapping(json.loads(raw), source=f"dataset attribute {CONFIG_ATTR}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | None = None) -> MaskConfig:
        """Validate a mapping (e.g. a TOML table); errors name ``source``."""
        try:
            return cls(**{str(k): v for k, v in data.items()})
        except ConfigError as exc:
            if source is None:
                raise
            detail = str(exc).removeprefix(_PREFIX)
            raise ConfigError(f"{source}: {detail}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> MaskConfig:
        """Read the ``[mask]`` table of a TOML file (see the packaged ``configs/default.toml``)."""
        return load_config(path)


#: The top-level tables of a run config (:class:`clearcube.RunConfig`). A mask config is a run
#: config's ``[mask]`` table, so the files :func:`load_config` reads may carry the others too.
RUN_TABLES: tuple[str, ...] = ("search", "load", "mask", "composite")


def read_toml(path: Path, tables: Sequence[str] | None = None) -> dict[str, Any]:
    """A TOML file as a dict; a missing or malformed file is a one-line ConfigError.

    With ``tables``, every top-level entry must be one of those tables: a misspelled table
    (``[serch]``) or a key outside any table is refused, as a misspelled option is.
    """
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found; check the path (`clearcube run --config default` "
            "runs the packaged default)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if tables is not None:
        valid = ", ".join(f"[{t}]" for t in tables)
        for key, value in doc.items():
            if key in tables and isinstance(value, dict):
                continue
            if key in tables:
                problem = f"{key} must be a table ([{key}]), not a value"
            else:
                kind = "table" if isinstance(value, dict) else "key"
                close = get_close_matches(key, tables, n=1)
                hint = f" (did you mean [{close[0]}]?)" if close else ""
                problem = f"unknown top-level {kind} {key!r}{hint}"
            raise ConfigError(f"{path}: {problem}; valid tables: {valid}")
    return doc


def load_config(path: str | Path) -> MaskConfig:
    """Load a :class:`MaskConfig` from the ``[mask]`` table of a TOML file.

    Raises
    ------
    ConfigError
        When the file is missing, is not valid TOML, has a top-level table other than those of
        a run config (``RUN_TABLES``) or holds an invalid value; the message names the file and
        the table or option.
    """
    path = Path(path)
    doc = read_toml(path, RUN_TABLES)
    return MaskConfig.from_mapping(doc.get("mask", {}), source=f"{path} [mask]")
