"""Review resolution: a person's decision on a scene of a finished run.

``clearcube review RUN ID --accept|--reject --reason TEXT`` appends a ``review_resolution``
record to the run's audit trail (a later attempt of the same chain: ``resumed``, the record,
a new ``end`` record, signed with the run's key when the run was signed). Nothing else in the
folder changes, so the folder still verifies. The next ``clearcube run`` of the same config
into the folder finds the resolutions recorded since its last attempt and runs again, the
decide stage applying them (:func:`apply_resolution`): an accepted scene is used, a rejected
one excluded (decision ``rejected``), each with the person's reason in its reason.
``clearcube composite`` applies them to the cube's decisions (:func:`composite_positions`).

A scene the mask cannot judge (a fallback) is never accepted: its mask is unknown, and an
unknown mask is never clear.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .layout import RunLayout

if TYPE_CHECKING:
    from .decide import Decision

__all__ = [
    "RESOLUTION",
    "Resolution",
    "apply_resolution",
    "composite_positions",
    "has_pending",
    "resolutions",
    "resolve",
]

#: The audit record kind of a review resolution.
RESOLUTION = "review_resolution"

#: Decisions a person cannot turn into ``used``: nothing can be judged or used.
_NOT_ACCEPTABLE = ("fallback", "no_valid_data")


@dataclass(frozen=True)
class Resolution:
    """A person's decision on one scene.

    Attributes
    ----------
    id
        The scene (slice) id.
    accept
        True: use the scene; False: exclude it.
    reason
        Why, as the person gave it.
    seq
        The audit record's position in the trail.
    """

    id: str
    accept: bool
    reason: str
    seq: int = -1

    @property
    def word(self) -> str:
        return "accepted" if self.accept else "rejected"


def _records(audit: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not audit.exists():
        return out
    for line in audit.read_text(encoding="utf-8").split("\n"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("data"), dict):
            out.append(record)
    return out


def resolutions(audit: str | Path) -> dict[str, Resolution]:
    """The latest resolution of each scene recorded in an audit trail."""
    out: dict[str, Resolution] = {}
    for record in _records(Path(audit)):
        data = record["data"]
        if record.get("kind") != RESOLUTION or not isinstance(data, dict):
            continue
        seq = record.get("seq")
        out[str(data["id"])] = Resolution(
            str(data["id"]),
            data.get("resolution") == "accept",
            str(data.get("reason", "")),
            seq if isinstance(seq, int) else -1,
        )
    return out


def has_pending(audit: str | Path) -> bool:
    """Whether a resolution was recorded after the last run attempt (its ``config`` record),
    so a run into the folder must apply it."""
    last_run = -1
    last_resolution = -1
    for record in _records(Path(audit)):
        seq = record.get("seq")
        if not isinstance(seq, int):
            continue
        if record.get("kind") == "config":
            last_run = seq
        elif record.get("kind") == RESOLUTION:
            last_resolution = seq
    return last_resolution > last_run


def apply_resolution(decision: Decision, resolution: Resolution | None) -> Decision:
    """The decision after a person's resolution: accepted -> ``used``, rejected ->
    ``rejected``, both naming the reason and the decision it replaces. A fallback or a scene
    without valid data keeps its decision (the resolution is noted in its reason)."""
    from .decide import Decision

    if resolution is None:
        return decision
    said = f"{resolution.word} in review: {resolution.reason}"
    was = f"was {decision.decision}" + (f": {decision.reason}" if decision.reason else "")
    if decision.decision in _NOT_ACCEPTABLE:
        return Decision(
            decision.id,
            decision.decision,
            f"{decision.reason}; {said} (not applied: the scene cannot be used)",
            False,
            decision.fallback,
        )
    if resolution.accept:
        return Decision(decision.id, "used", f"{said} ({was})")
    return Decision(decision.id, "rejected", f"{said} ({was})")


def composite_positions(
    ids: Sequence[str], decisions: Sequence[str], resolved: Mapping[str, Resolution], run: Path
) -> list[int]:
    """The cube positions ``clearcube composite`` uses: the used scenes, less those rejected
    in review since.

    Raises
    ------
    ConfigError
        A scene was accepted in review after the run: its reflectance was never read.
    """
    out = []
    for k, (scene, decision) in enumerate(zip(ids, decisions, strict=True)):
        r = resolved.get(scene)
        if r is not None and not r.accept:
            continue
        if r is not None and r.accept and decision != "used":
            raise ConfigError(
                f"{scene} was accepted in review after the run, so its reflectance was never "
                f"read; run `clearcube run` with the run's config and --out {run} to apply "
                "the review, then composite"
            )
        if decision == "used":
            out.append(k)
    return out


def resolve(
    out_dir: str | Path,
    scene_id: str,
    *,
    accept: bool,
    reason: str,
    signing_key: str | Path | None = None,
) -> Resolution:
    """Record a person's decision on one scene of a finished run in its audit trail.

    ``signing_key`` (default ``$CLEARCUBE_SIGNING_KEY``) signs the trail's new end record; a
    run signed before needs it, so that the trail still verifies with its public key.

    Raises
    ------
    ConfigError
        Not a run folder, the folder does not verify, no such scene, an empty reason,
        accepting a scene that cannot be used, or a signed run without its key.
    """
    import pandas as pd

    from .products.audit import RESUMED, AuditLog, verify_audit
    from .products.files import sha256_file
    from .products.signing import load_signing_key, signing_key_path
    from .products.tables import read_scenes
    from .verification import verify

    layout = RunLayout(Path(out_dir))
    if not layout.is_run():
        raise ConfigError(
            f"not a run folder: {layout.root} has no run.json and audit.jsonl; give the "
            "folder `clearcube run` wrote"
        )
    text = " ".join(reason.split())
    if not text:
        raise ConfigError("--reason is empty; say why the scene is accepted or rejected")
    checked = verify(layout.root)
    if not checked.ok:
        raise ConfigError(
            f"{layout.root} does not verify ({checked.problems[0]}); a review is recorded only "
            "in an intact run folder: run `clearcube verify` on it"
        )
    scenes = read_scenes(layout.scenes)  # escaped cells restored
    rows = scenes[scenes["id"].astype(str) == scene_id]
    if rows.empty:
        queued = (
            [str(r["id"]) for _, r in pd.read_json(layout.review, lines=True).iterrows()]
            if layout.review.stat().st_size
            else []
        )
        hint = f"queued for review: {', '.join(queued[:5])}" if queued else "none is queued"
        raise ConfigError(f"{scene_id}: no such scene in {layout.scenes}; {hint}")
    row = {k: v if isinstance(v, str) else "" for k, v in rows.iloc[0].items()}
    if accept and row["decision"] in _NOT_ACCEPTABLE:
        raise ConfigError(
            f"{scene_id} is {row['decision']} ({row['reason']}): it cannot be used, so it "
            "cannot be accepted; --reject records that it stays out"
        )
    chain = verify_audit(layout.audit)
    key_path = signing_key_path(signing_key)
    signer = load_signing_key(key_path) if key_path is not None else None
    if chain.signer is not None and signer is None:
        raise ConfigError(
            f"{layout.audit} is signed by key {chain.signer}; pass --signing-key (or set "
            "CLEARCUBE_SIGNING_KEY) with that key so the trail stays signed"
        )
    run_json = json.loads(layout.run_json.read_text())
    with AuditLog(layout.audit, reopen=True, signer=signer) as audit:
        audit.append(RESUMED, {"by": "review", "scene": scene_id})
        audit.append(
            RESOLUTION,
            {
                "id": scene_id,
                "resolution": "accept" if accept else "reject",
                "reason": text,
                "decision": row["decision"],
                "decision_reason": row["reason"],
            },
        )
        seq = audit.seq - 1
        audit.close(
            {
                "catalog_sha256": sha256_file(layout.catalog),
                "run_json_sha256": sha256_file(layout.run_json),
                "run_id": run_json.get("run_id"),
            }
        )
    return Resolution(scene_id, accept, text, seq)
