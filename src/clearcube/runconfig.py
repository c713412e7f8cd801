"""The main job's configuration: what to search, how to load, mask and composite (TOML).

A run config is one TOML file with the tables ``[search]``, ``[load]``, ``[mask]`` (a
:class:`~clearcube.MaskConfig`) and ``[composite]``; the packaged ``default`` config
(:func:`clearcube.resources.config_path`) runs the demo catalog offline. Relative paths in
``[search].source`` and ``[search].aoi`` are relative to the config file. Every search option
is checked when the config is built (bbox, datetime, collections, the AOI file), so a bad value
is one ConfigError before a run touches its output folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .config import MaskConfig, read_toml
from .errors import ClearcubeError, ConfigError

__all__ = [
    "CompositeOptions",
    "LoadOptions",
    "RunConfig",
    "SearchOptions",
    "config_file",
    "default_config_path",
    "load_run_config",
]


class _Table(BaseModel):
    """A table of the run config: built from Python, a wrong value is a one-line ConfigError
    naming the table (from TOML, :func:`load_run_config` names the file too)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    _table: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_squash(exc, f"invalid {self._table} options")) from None


#: The engines a run config may name.
ENGINES = ("native", "odc", "stackstac")


def default_config_path() -> Path:
    """The default run config: the demo catalog, offline (the packaged ``default.toml``)."""
    from .resources import config_path

    return config_path("default")


def _checked(check: Any, value: Any) -> None:
    """Run a search-filter check; its one-line CatalogError becomes a validation error."""
    try:
        check(value)
    except ClearcubeError as exc:
        raise ValueError(str(exc)) from None


class SearchOptions(_Table):
    """``[search]``: what :func:`clearcube.search` is asked.

    Attributes
    ----------
    source
        A provider name, STAC API URL, catalog.json / ItemCollection file, or ``demo``.
    bbox
        (west, south, east, north) in degrees.
    aoi
        A GeoJSON file (Polygon, MultiPolygon, Feature or FeatureCollection in lon/lat) as the
        area of interest instead of a bbox: the search asks for its bounding box, cloud
        fractions are counted inside the polygon.
    geometry
        The AOI polygon (read from ``aoi``, or given directly as a GeoJSON mapping).
    datetime
        As :func:`clearcube.search` takes it (``"2023"``, ``"2023-08/.."``, RFC 3339, ...).
    allowed_hosts
        Host names (``earth-search.aws.element84.com``, an s3 bucket) that the source URL,
        every catalog link, asset href and redirect must name; empty: any host. See
        :mod:`clearcube.hrefs`.
    """

    _table: ClassVar[str] = "[search]"

    source: str = "earth-search"
    bbox: tuple[float, float, float, float] | None = None
    aoi: str | None = None
    geometry: dict[str, Any] | None = None
    datetime: str | None = None
    collections: tuple[str, ...] | None = None
    max_cloud: float | None = None
    limit: int | None = None
    allowed_hosts: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _area(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        from .catalog import parse_geometry, read_aoi

        if data.get("bbox") is not None and (data.get("aoi") or data.get("geometry")):
            raise ValueError(
                "both bbox and aoi are set; keep one (the aoi's bounding box is searched)"
            )
        try:
            if data.get("geometry") is not None:
                data = {**data, "geometry": parse_geometry(data["geometry"], "geometry")}
            elif data.get("aoi"):
                data = {**data, "geometry": read_aoi(str(data["aoi"]))}
        except ClearcubeError as exc:
            raise ValueError(str(exc)) from None
        return data

    @field_validator("bbox", mode="before")
    @classmethod
    def _bbox(cls, value: Any) -> Any:
        from .catalog import parse_bbox

        _checked(parse_bbox, value)  # 4 numbers in range, not swapped
        return value

    @field_validator("datetime", mode="before")
    @classmethod
    def _datetime(cls, value: Any) -> Any:
        import datetime as dt

        from .catalog import parse_datetime

        if isinstance(value, int | dt.date) and not isinstance(value, bool):
            value = value.isoformat() if isinstance(value, dt.date) else str(value)  # TOML 2023
        _checked(parse_datetime, value)
        return value

    @field_validator("collections")
    @classmethod
    def _collections(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for cid in value or ():
            if not cid.strip():
                raise ValueError(f"collection id {cid!r} is blank; give ids such as sentinel-2-l2a")
        return value

    @field_validator("max_cloud")
    @classmethod
    def _max_cloud(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 100:
            raise ValueError(f"max_cloud {value} outside [0, 100] (percent); give e.g. 40")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from .hrefs import normalise_hosts

        return normalise_hosts(value)  # a blank one is a ValueError naming it

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"limit {value} must be at least 1; give a count, or none for all")
        return value

    @property
    def search_bbox(self) -> tuple[float, float, float, float] | None:
        """The box the search asks for: the bbox, or the AOI polygon's bounding box."""
        if self.geometry is not None:
            from .catalog import geometry_bbox

            return geometry_bbox(self.geometry)
        return self.bbox

    @property
    def is_remote(self) -> bool:
        """Whether the source is read over the network (a provider name or a URL)."""
        from .resources import DEMO_SOURCE

        if self.source == DEMO_SOURCE:
            return False
        return "://" in self.source or not (
            self.source.endswith(".json") or "/" in self.source or "\\" in self.source
        )


class LoadOptions(_Table):
    """``[load]``: how the cube is built (also the options of :func:`clearcube.load`).

    Attributes
    ----------
    engine
        ``native`` (windowed reads, exact nearest-neighbour placement, decode fused into the
        read), ``odc`` (odc-stac) or ``stackstac``.
    bands
        Canonical band names to load as reflectance (see :mod:`clearcube.bands`).
    chunks
        Chunk size in pixels (y and x).
    group_by
        ``solar_day`` merges the scenes of one platform and solar day (adjacent tiles of a
        pass) into one time step; ``none`` keeps one per scene.
    check_assets
        Open every QA asset's header first; an unreadable one becomes a recorded fallback.
    gdal
        Extra GDAL options for the reads (see :mod:`clearcube.gdal_env`).
    allow_local_hrefs
        Let items from a remote catalog point at local files (refused by default).
    on_read_error
        What :func:`clearcube.load` does with a window that cannot be read at compute:
        ``raise`` an AssetReadError naming the item and href, or ``flag`` it NODATA |
        UNREADABLE (never clear; counted as ``unreadable_px``). ``clearcube run`` always
        flags and records the failure.
    """

    _table: ClassVar[str] = "[load]"

    engine: str = "native"
    bands: tuple[str, ...] = ("red", "nir")
    chunks: int = Field(default=1024, ge=16)
    group_by: Literal["none", "solar_day"] = "none"
    check_assets: bool = False
    gdal: dict[str, str] = Field(default_factory=dict)
    allow_local_hrefs: bool = False
    on_read_error: Literal["raise", "flag"] = "raise"

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}; valid engines: {', '.join(ENGINES)}")
        return value

    @property
    def chunks_yx(self) -> tuple[int, int]:
        return (self.chunks, self.chunks)


class CompositeOptions(_Table):
    """``[composite]``: temporal composites written as COGs."""

    _table: ClassVar[str] = "[composite]"

    period: str = "yearly"
    method: Literal["median", "medoid"] = "median"

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        if value not in ("monthly", "quarterly", "yearly", "all"):
            raise ValueError(f"period {value!r}: use monthly, quarterly, yearly or all")
        return value


class RunConfig(BaseModel):
    """Everything a run needs; its digest names the run folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    search: SearchOptions = SearchOptions()
    load: LoadOptions = LoadOptions()
    mask: MaskConfig = MaskConfig()
    composite: CompositeOptions = CompositeOptions()

    def record(self) -> dict[str, Any]:
        """The config as run.json and the audit trail record it: its JSON with every secret
        scrubbed (a token in the source URL; :func:`clearcube.scrub.scrub_value`)."""
        from .scrub import scrub_value

        out: dict[str, Any] = scrub_value(self.model_dump(mode="json"))
        return out

    def digest(self) -> str:
        """SHA-256 of :meth:`record`'s canonical JSON: a renewed token keeps the run's name."""
        text = json.dumps(self.record(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_overrides(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some options of some tables replaced (from the command line).

        A new ``search.bbox`` replaces the config's AOI and a new ``search.aoi`` its bbox.
        """
        data = self.model_dump(mode="python")
        for name, values in sections.items():
            given = {k: v for k, v in values.items() if v is not None}
            if name == "search" and ("bbox" in given or "aoi" in given):
                given = {"bbox": None, "aoi": None, "geometry": None, **given}
            data[name] = {**data[name], **given}
        try:
            return RunConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_squash(exc, None)) from None


def _squash(exc: ValidationError, source: str | None) -> str:
    tables: dict[str, type[BaseModel]] = {
        m.__name__: m for m in (SearchOptions, LoadOptions, CompositeOptions, RunConfig)
    }
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        model = tables.get(exc.title)
        if err["type"] == "extra_forbidden" and model is not None and len(err["loc"]) == 1:
            msg = f"unknown option; valid options: {', '.join(model.model_fields)}"
        # a table's own error already says "invalid [table] options"
        parts.append(f"{loc}: {msg}" if loc and not msg.startswith("invalid [") else msg)
    return (f"{source}: " if source else "") + "; ".join(parts)


def config_file(value: str | Path | None) -> Path:
    """A run config's file: a TOML path as given, or the file of a packaged config named
    ``value`` (``default``, ``humid-tropics``); None is the packaged default."""
    import os

    from .resources import config_path

    if value is None:
        return config_path("default")
    text = str(value)
    if os.path.exists(text) or os.sep in text or "/" in text or text.endswith(".toml"):
        return Path(value)  # a path: load_run_config names it if it is missing
    return config_path(text)


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run config: a TOML file, or a packaged config by name (``default``,
    ``humid-tropics``); errors name the file and the table or option.

    Raises
    ------
    ConfigError
        A missing or malformed file, an unknown packaged name, a top-level table other than
        ``[search]``, ``[load]``, ``[mask]`` and ``[composite]`` (e.g. a misspelled
        ``[serch]``), or an invalid option.
    """
    path = config_file(path)
    doc = read_toml(path, tuple(RunConfig.model_fields))
    search = dict(doc.get("search", {}))
    source = search.get("source")
    if (
        isinstance(source, str)
        and "://" not in source
        and (source.endswith(".json") or "/" in source)
    ):
        resolved = (path.parent / source).resolve()
        search["source"] = str(resolved)
    if isinstance(search.get("aoi"), str):
        search["aoi"] = str((path.parent / search["aoi"]).resolve())
    mask = MaskConfig.from_mapping(doc.get("mask", {}), source=f"{path} [mask]")
    try:
        return RunConfig(
            search=SearchOptions.model_validate(search),
            load=LoadOptions.model_validate(doc.get("load", {})),
            mask=mask,
            composite=CompositeOptions.model_validate(doc.get("composite", {})),
        )
    except ValidationError as exc:
        raise ConfigError(_squash(exc, str(path))) from None
