"""Snapshots of the source items: each item's JSON as the run read it, in the run folder.

The output STAC's ``derived_from`` links point at these files (relative links), so a run folder
that is moved or bundled still names, and holds, every input it was made from. A snapshot is
the item's canonical JSON (sorted keys, no whitespace), the text whose SHA-256 the plan stage
records as the scene's digest (:attr:`clearcube.ScenePlan.digest`), with every ``href``
scrubbed of query strings and credentials and every other string of any secret it quotes
(:func:`clearcube.scrub.scrub_value`): a snapshot's own SHA-256 equals the recorded digest
unless the item carried a token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import canonical_json, item_digest, item_json
from ..layout import RunLayout
from ..scrub import scrub_value
from .files import atomic_path

__all__ = ["SourceKey", "SourceSnapshot", "source_snapshots", "write_snapshot"]

#: How a source item is found again: (id, collection).
SourceKey = tuple[str, str | None]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class SourceSnapshot:
    """One source item's snapshot.

    Attributes
    ----------
    id, collection
        The item's id and collection.
    path
        Where the snapshot goes (under :attr:`RunLayout.source_items`).
    href
        That path relative to the run folder (forward slashes).
    digest
        SHA-256 of the item's canonical JSON as given (before scrubbing): the plan stage's
        digest of the same item.
    text
        The snapshot's content: the canonical JSON with every href scrubbed.
    """

    id: str
    collection: str | None
    path: Path
    href: str
    digest: str
    text: str


def source_snapshots(items: Iterable[Any], layout: RunLayout) -> dict[SourceKey, SourceSnapshot]:
    """The snapshot of every item (in the order given), keyed by (id, collection).

    File names are the item id with characters outside ``[A-Za-z0-9._-]`` replaced by ``_``;
    a name already taken by another item gets the first 8 hex digits of its digest appended.
    Items without a usable id or JSON have no snapshot (the plan stage records them).
    """
    out: dict[SourceKey, SourceSnapshot] = {}
    taken: set[str] = set()
    for item in items:
        data = item_json(item)
        if data is None:
            continue
        raw_id, raw_collection = data.get("id"), data.get("collection")
        if not isinstance(raw_id, str) or not raw_id.strip():
            continue
        key = (raw_id, raw_collection if isinstance(raw_collection, str) else None)
        if key in out:
            continue
        digest = item_digest(data)
        name = _UNSAFE.sub("_", raw_id).lstrip(".")[:200] or "item"
        if name.lower() in taken:
            name = f"{name}-{digest[:8]}"
        taken.add(name.lower())
        path = layout.source_item(name)
        out[key] = SourceSnapshot(
            raw_id, key[1], path, layout.rel(path), digest, canonical_json(scrub_value(data))
        )
    return out


def write_snapshot(path: Path, snapshot: SourceSnapshot) -> Path:
    """Write one snapshot, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(snapshot.text.encode())
    return path
