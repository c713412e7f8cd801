"""The main job's configuration: what to search, how to load, mask and composite (TOML).

A run config is one TOML file with the tables ``[search]``, ``[load]``, ``[mask]`` (a
:class:`~clearcube.MaskConfig`) and ``[composite]``; ``configs/default.toml`` runs the demo
catalog offline. Relative paths in ``[search].source`` are relative to the config file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config import MaskConfig, read_toml
from .errors import ConfigError

__all__ = ["CompositeOptions", "LoadOptions", "RunConfig", "SearchOptions", "load_run_config"]


class SearchOptions(BaseModel):
    """``[search]``: what :func:`clearcube.search` is asked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = "earth-search"
    bbox: tuple[float, float, float, float] | None = None
    datetime: str | None = None
    collections: tuple[str, ...] | None = None
    max_cloud: float | None = None
    limit: int | None = None


class LoadOptions(BaseModel):
    """``[load]``: how :func:`clearcube.load` builds the cube."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Literal["odc", "stackstac", "native"] = "native"
    bands: tuple[str, ...] = ("red", "nir")
    chunks: int = Field(default=512, ge=16)
    group_by: Literal["none", "solar_day"] = "none"
    check_assets: bool = True


class CompositeOptions(BaseModel):
    """``[composite]``: temporal composites written as COGs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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

    def digest(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_overrides(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some options of some tables replaced (from the command line)."""
        data = self.model_dump(mode="python")
        for name, values in sections.items():
            data[name] = {**data[name], **{k: v for k, v in values.items() if v is not None}}
        try:
            return RunConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_squash(exc, "options")) from None


def _squash(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {str(err['msg']).removeprefix('Value error, ')}")
    return f"{source}: " + "; ".join(parts)


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run config TOML; errors name the file and the table or option.

    Raises
    ------
    ConfigError
        A missing or malformed file, a top-level table other than ``[search]``, ``[load]``,
        ``[mask]`` and ``[composite]`` (e.g. a misspelled ``[serch]``), or an invalid option.
    """
    path = Path(path)
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
    mask = MaskConfig.from_mapping(doc.get("mask", {}), source=f"{path} [mask]")
    try:
        return RunConfig(
            search=SearchOptions(**search),
            load=LoadOptions(**doc.get("load", {})),
            mask=mask,
            composite=CompositeOptions(**doc.get("composite", {})),
        )
    except ValidationError as exc:
        raise ConfigError(_squash(exc, str(path))) from None
