"""Per-scene evidence: what a verifier asks of each number, one row per cube slice.

Which scene (the source item's digest and snapshot), which mask rules (the QA asset and its
encoding, the flags masked, the SCL classes or QA_PIXEL confidence tiers that counted, the
dilation), which offsets (each loaded band's scale and offset, where the offset came from and
what disagreed with it, the processing baseline) and under which config (its digest). The
same columns go into ``scenes.csv``, the cube's per-time coordinates and the output STAC
items, so the three can be compared field by field.

For a slice of several scenes (``group_by = "solar_day"``) a field whose members agree holds
that value; otherwise the members' values joined with ``+``, in member order (as the slice id).

And what the science checks measured on the pixels (:func:`check_evidence`): the clear pixels
checked, the median NDVI and EVI of kept and of masked pixels, per band the shares of clear
pixels below 0 and above 1, the dark floor of red and the hazy share. Empty (NaN) for a scene
whose reflectance was not read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..checks import Spectra
from ..config import MaskConfig
from ..flags import Flag
from ..plan import Planned, Slice
from ..sensors import get_encoding
from ..sensors.landsat import QA_PIXEL
from ..sensors.plan import Fallback, ScenePlan
from ..sensors.sentinel2 import SCL
from .sources import SourceKey, SourceSnapshot

__all__ = [
    "BAND_FIELDS",
    "check_columns",
    "check_evidence",
    "SCENE_FIELDS",
    "cube_coords",
    "evidence_columns",
    "fallback_evidence",
    "slice_evidence",
]

#: The per-band evidence fields (columns ``<band>_<field>``).
BAND_FIELDS = ("scale", "offset", "offset_source", "offset_conflict")

#: The scene table's columns that, with :func:`evidence_columns`, make a scene's record in the
#: cube and the output STAC.
SCENE_FIELDS = (
    "id",
    "time",
    "platform",
    "collection",
    "provider_cloud_cover",
    "cloud_fraction",
    "decision",
    "reason",
    "fallback",
)


def evidence_columns(bands: Sequence[str]) -> tuple[str, ...]:
    """The evidence columns, in table order, for the loaded ``bands``."""
    return (
        "qa_asset",
        "qa_encoding",
        "aux_qa",
        "processing_baseline",
        "tile",
        *(f"{b}_{f}" for b in bands for f in BAND_FIELDS),
        "masked_flags",
        "masked_classes",
        "confidence_tiers",
        "dilation_m",
        "dilate_flags",
        "item_digest",
        "source_item",
        "config_digest",
    )


def check_columns(bands: Sequence[str]) -> tuple[str, ...]:
    """The science checks' columns, in table order, for the loaded ``bands``."""
    return (
        "checked_px",
        "ndvi_kept_median",
        "ndvi_masked_median",
        "evi_kept_median",
        "evi_masked_median",
        *(f"{b}_negative_share" for b in bands),
        *(f"{b}_above_one_share" for b in bands),
        "red_p01",
        "haze_share",
    )


def _nan(value: float | None) -> float:
    return float("nan") if value is None else round(float(value), 4)


def check_evidence(
    planned: Planned, spectra: Mapping[str, Spectra], *, bands: Sequence[str]
) -> pd.DataFrame:
    """What the science checks measured on every slice of the plan, in cube order (columns
    :func:`check_columns`; NaN for a slice whose reflectance was not read)."""
    rows: list[dict[str, Any]] = []
    for sl in planned.slices:
        got = spectra.get(sl.id)
        if got is None:
            rows.append({})
            continue
        row: dict[str, Any] = {
            "checked_px": got.clear_px,
            "ndvi_kept_median": _nan(got.median_ndvi()),
            "ndvi_masked_median": _nan(got.median_ndvi(kept=False)),
            "evi_kept_median": _nan(got.median_evi()),
            "evi_masked_median": _nan(got.median_evi(kept=False)),
            "red_p01": _nan(got.red_p01),
            "haze_share": _nan(got.haze_share),
        }
        for b in bands:
            row[f"{b}_negative_share"] = got.share(got.negative, b) if got.clear_px else np.nan
            row[f"{b}_above_one_share"] = got.share(got.above_one, b) if got.clear_px else np.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(check_columns(bands)))
    frame["checked_px"] = frame["checked_px"].astype("Int64")
    return frame


def _masked_classes(encoding: str, config: MaskConfig) -> str:
    """The SCL classes that count as masked under ``config`` (from the decoding table itself),
    space-separated; empty for bitmask encodings, which have no classes."""
    if encoding != SCL.name:
        return ""
    flags, defined = get_encoding(encoding).tables(config)
    masked = np.uint16(config.masked_bits)
    nodata = np.uint16(int(Flag.NODATA))
    codes = np.nonzero(defined & ((flags & nodata) == 0) & ((flags & masked) != 0))[0]
    return " ".join(str(int(c)) for c in codes)


def _confidence_tiers(encoding: str, config: MaskConfig) -> str:
    """The QA_PIXEL cloud-confidence tiers that count as cloud besides bit 3 (``none``: bit 3
    alone); empty for other encodings."""
    if encoding != QA_PIXEL.name:
        return ""
    return " ".join(str(t) for t in config.confidence_tiers) or "none"


def _joined(values: Sequence[Any]) -> Any:
    """One value when the members agree, else their values joined with ``+``."""
    unique = list(dict.fromkeys(values))
    if len(unique) == 1:
        return unique[0]
    return "+".join(
        "" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in values
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _member_record(
    scene: ScenePlan,
    config: MaskConfig,
    bands: Sequence[str],
    config_digest: str,
    snapshot: SourceSnapshot | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "qa_asset": scene.qa_asset,
        "qa_encoding": scene.qa_encoding,
        # further QA layers whose flags were added (e.g. "qa_radsat:landsat-qa-radsat")
        "aux_qa": " ".join(f"{a.asset}:{a.encoding}" for a in scene.aux_qa),
        "processing_baseline": _text(scene.processing_baseline),
        "tile": _text(scene.tile),
    }
    for name in bands:
        band = scene.bands.get(name)
        row[f"{name}_scale"] = float("nan") if band is None else float(band.scale)
        row[f"{name}_offset"] = float("nan") if band is None else float(band.offset)
        row[f"{name}_offset_source"] = "" if band is None else band.offset_source
        row[f"{name}_offset_conflict"] = "" if band is None else _text(band.offset_conflict)
    row.update(
        masked_flags=" ".join(config.masked_flags),
        masked_classes=_masked_classes(scene.qa_encoding, config),
        confidence_tiers=_confidence_tiers(scene.qa_encoding, config),
        dilation_m=float(config.dilation_m),
        dilate_flags=" ".join(config.dilate_flags),
        item_digest=scene.digest,
        source_item="" if snapshot is None else snapshot.href,
        config_digest=config_digest,
    )
    return row


def _slice_record(
    sl: Slice,
    config: MaskConfig,
    bands: Sequence[str],
    config_digest: str,
    sources: Mapping[SourceKey, SourceSnapshot],
) -> dict[str, Any]:
    members = [
        _member_record(m, config, bands, config_digest, sources.get((m.id, m.collection)))
        for m in sl.members
    ]
    if len(members) == 1:
        return members[0]
    return {k: _joined([m[k] for m in members]) for k in members[0]}


def slice_evidence(
    planned: Planned,
    config: MaskConfig,
    *,
    bands: Sequence[str],
    config_digest: str,
    sources: Mapping[SourceKey, SourceSnapshot],
) -> pd.DataFrame:
    """The evidence of every slice of the plan, in cube order (columns
    :func:`evidence_columns`)."""
    rows = [_slice_record(s, config, bands, config_digest, sources) for s in planned.slices]
    return pd.DataFrame(rows, columns=list(evidence_columns(bands)))


def fallback_evidence(
    fallbacks: Sequence[Fallback],
    *,
    config_digest: str,
    sources: Mapping[SourceKey, SourceSnapshot],
) -> list[dict[str, Any]]:
    """What is known of the items the plan stage could not use: their digest and snapshot
    (the plan has no QA asset or offsets for them)."""
    out = []
    for fb in fallbacks:
        snapshot = sources.get((fb.id, fb.collection))
        out.append(
            {
                "item_digest": "" if snapshot is None else snapshot.digest,
                "source_item": "" if snapshot is None else snapshot.href,
                "config_digest": config_digest,
            }
        )
    return out


def cube_coords(frame: pd.DataFrame, n_slices: int, bands: Sequence[str]) -> dict[str, list[Any]]:
    """The per-time coordinates of the cube from the scene table's first ``n_slices`` rows:
    clearcube's cloud fraction, the decision and its reason, every evidence column and what the
    science checks measured (numbers as floats, NaN when unknown; text as strings, empty when
    unknown)."""
    out: dict[str, list[Any]] = {}
    names = ("cloud_fraction", "decision", "reason", *evidence_columns(bands))
    for name in (*names, *check_columns(bands)):
        values = frame[name].iloc[:n_slices]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out[name] = [float("nan") if pd.isna(v) else float(v) for v in values]
        else:
            out[name] = [
                "" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values
            ]
    return out
