"""The scene table (``scenes.csv``) and the review queue (``review.jsonl``).

One row per cube slice (its counts, cloud fraction, the provider's figure, the decision and
the reason, then its evidence and what the science checks measured: see
:mod:`clearcube.products.evidence`), then one row per item
the plan stage could not use (with its digest and snapshot). The review queue holds the
rows a person should look at: scenes over the threshold, doubtful ones, and fallbacks when the
policy says ``review``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..checks import Spectra
from ..config import MaskConfig
from ..decide import Decisions
from ..plan import Planned
from ..screen import Screened
from ..scrub import scrub_text, scrub_value
from .evidence import check_evidence, fallback_evidence, slice_evidence
from .files import atomic_path
from .sources import SourceKey, SourceSnapshot

__all__ = [
    "csv_cell",
    "plain",
    "read_scenes",
    "scene_frame",
    "uncsv_cell",
    "write_review",
    "write_scenes",
]

#: A cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars unwrapped, NaN and NA as None, times as ISO text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN -> null
    if hasattr(value, "item"):
        return plain(value.item())
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def scene_frame(
    planned: Planned,
    screened: Screened,
    decisions: Decisions,
    config: MaskConfig,
    *,
    bands: Sequence[str] = (),
    config_digest: str = "",
    sources: Mapping[SourceKey, SourceSnapshot] | None = None,
    spectra: Mapping[str, Spectra] | None = None,
) -> pd.DataFrame:
    """The scene table of a run, in cube order, plan-stage fallbacks last.

    Parameters
    ----------
    planned, screened, decisions
        The stage outputs.
    config
        The mask rules the scenes were judged by.
    bands
        The loaded reflectance bands (one set of offset columns each).
    config_digest
        The run config's digest.
    sources
        The source items' snapshots (:func:`~clearcube.products.sources.source_snapshots`).
    spectra
        The science checks' statistics of the slices read (read stage), by slice id.
    """
    from ..stats import scene_table

    counts = [s.counts for s in screened.slices]
    names = [k for k in counts[0] if k != "aoi_px"] if counts else []
    columns = {k: np.array([c[k] for c in counts], dtype=np.int64) for k in names}
    table = scene_table(columns, config, aoi_px=[c["aoi_px"] for c in counts])
    slices = planned.slices
    front = pd.DataFrame(
        {
            "time": pd.DatetimeIndex([s.time for s in slices]),
            "id": [s.id for s in slices],
            "platform": [s.platform for s in slices],
            "sensor": [s.sensor for s in slices],
            "collection": [s.collection for s in slices],
        }
    )
    frame = pd.concat([front, table], axis=1)
    frame.insert(
        frame.columns.get_loc("over_threshold"),
        "provider_cloud_cover",
        [s.cloud_cover for s in slices],
    )
    frame["decision"] = [d.decision for d in decisions.slices]
    frame["reason"] = [d.reason for d in decisions.slices]
    frame["fallback"] = [d.fallback for d in decisions.slices]
    known = sources or {}
    evidence = slice_evidence(
        planned, config, bands=bands, config_digest=config_digest, sources=known
    )
    checks = check_evidence(planned, spectra or {}, bands=bands)
    frame = pd.concat([frame, evidence, checks], axis=1)
    if decisions.items:
        items = fallback_evidence(planned.fallbacks, config_digest=config_digest, sources=known)
        extra = pd.DataFrame(
            [
                {
                    "id": d.id,
                    "decision": d.decision,
                    "reason": d.reason,
                    "fallback": d.fallback,
                    **more,
                }
                for d, more in zip(decisions.items, items, strict=True)
            ]
        )
        frame = pd.concat([frame, extra], ignore_index=True)
    return frame


def csv_cell(value: Any) -> Any:
    """A table cell as a CSV file holds it: a text cell scrubbed of secrets and, when it starts
    with ``= + - @``, a tab or a carriage return (a formula to a spreadsheet) or with an
    apostrophe, behind a leading apostrophe; other values as they are."""
    if not isinstance(value, str):
        return value
    text = scrub_text(value)
    return "'" + text if text.startswith((*_FORMULA_START, "'")) else text


def uncsv_cell(value: Any) -> Any:
    """The cell :func:`csv_cell` escaped, as it was."""
    return value[1:] if isinstance(value, str) and value.startswith("'") else value


def write_scenes(path: Path, frame: pd.DataFrame) -> Path:
    """``scenes.csv``, atomically, every text cell through :func:`csv_cell` and quoted."""
    escaped = frame.copy()
    for name in escaped.select_dtypes(include="object").columns:
        escaped[name] = escaped[name].map(csv_cell)
    with atomic_path(path) as tmp:
        # text quoted: a line break or carriage return inside a cell cannot start a row
        escaped.to_csv(tmp, index=False, quoting=csv.QUOTE_NONNUMERIC)
    return path


def read_scenes(path: Path) -> pd.DataFrame:
    """A ``scenes.csv`` as :func:`write_scenes` was given it (escaped cells restored)."""
    frame = pd.read_csv(path)
    for name in frame.select_dtypes(include="object").columns:
        frame[name] = frame[name].map(uncsv_cell)
    return frame


def write_review(path: Path, frame: pd.DataFrame, decisions: Decisions) -> Path:
    """``review.jsonl``: one JSON line per queued scene, atomically."""
    queued = {d.id for d in decisions.all if d.queued}
    rows = frame[frame["id"].isin(queued)].to_dict("records")
    with atomic_path(path) as tmp:
        tmp.write_text(
            "".join(
                json.dumps(scrub_value({k: plain(v) for k, v in r.items()})) + "\n" for r in rows
            )
        )
    return path
