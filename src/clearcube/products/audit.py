"""A tamper-evident audit trail: one JSON record per decision, each chained to the previous one.

Every line of ``audit.jsonl`` is a JSON object with ``seq`` (0, 1, 2, ...), ``kind``, ``data``,
``prev`` (the hash of the previous record; 64 zeros for the first) and ``hash``: SHA-256 of the
record's canonical JSON without ``hash`` (HMAC-SHA-256 with a key, when the run was given one).
The last record of a finished trail has kind ``end`` and states how many records precede it, so
editing, deleting, inserting or reordering any line, or cutting the file short, is detected by
:func:`verify_audit`. A later attempt in the same folder (a rerun that retries what failed)
continues the same chain: its first record, right after the ``end``, has kind ``resumed``.

Without a key anyone can recompute the chain after rewriting it; anchor the ``end`` hash
elsewhere (the output STAC catalog carries it) or use a key (``CLEARCUBE_AUDIT_KEY``) when
that matters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GENESIS", "AuditLog", "AuditVerification", "record_hash", "verify_audit"]

GENESIS = "0" * 64
END = "end"
RESUMED = "resumed"


def _canonical(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def record_hash(record: dict[str, Any], key: bytes | None = None) -> str:
    """Hash of a record (without its own ``hash`` field)."""
    body = _canonical({k: v for k, v in record.items() if k != "hash"})
    if key:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


def _key_from_env() -> bytes | None:
    value = os.environ.get("CLEARCUBE_AUDIT_KEY")
    return value.encode() if value else None


class AuditLog:
    """Append-only writer of a chained audit trail.

    Each :meth:`append` writes and flushes one line, so a crash leaves a valid (unfinished)
    prefix; :meth:`close` appends the ``end`` record. Reopening an unfinished trail continues
    its chain (a resumed run).
    """

    def __init__(self, path: str | Path, *, key: bytes | None = None, reopen: bool = False) -> None:
        self.path = Path(path)
        self.key = key if key is not None else _key_from_env()
        self.seq = 0
        self.head = GENESIS
        if self.path.exists() and self.path.stat().st_size > 0:
            result = verify_audit(self.path, key=self.key, require_end=False)
            if not result.ok:
                raise ValueError(f"{self.path}: existing audit trail is broken: {result.error}")
            if result.finished and not reopen:
                raise ValueError(f"{self.path}: audit trail is finished; start a new run folder")
            self.seq = result.records
            self.head = result.head
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def append(self, kind: str, data: dict[str, Any] | None = None) -> str:
        """Append one record; returns its hash."""
        if self._fh.closed:
            raise ValueError(f"{self.path}: audit trail is closed")
        record = {
            "seq": self.seq,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "kind": kind,
            "data": data or {},
            "prev": self.head,
        }
        record["hash"] = record_hash(record, self.key)
        self._fh.write(_canonical(record).decode() + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.seq += 1
        self.head = str(record["hash"])
        return self.head

    def close(self, data: dict[str, Any] | None = None) -> str:
        """Finish the trail with the ``end`` record; returns the final hash."""
        final = self.append(END, {"records": self.seq, **(data or {})})
        self._fh.close()
        return final

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._fh.closed:
            self._fh.close()


@dataclass
class AuditVerification:
    """Outcome of :func:`verify_audit`."""

    ok: bool
    records: int = 0
    head: str = GENESIS
    finished: bool = False
    error: str | None = None
    kinds: dict[str, int] = field(default_factory=dict)


def verify_audit(
    path: str | Path, *, key: bytes | None = None, require_end: bool = True
) -> AuditVerification:
    """Re-check every record's hash and link; name the first record that fails."""
    key = key if key is not None else _key_from_env()
    out = AuditVerification(ok=False)
    prev = GENESIS
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        out.error = f"cannot read {path}: {exc.strerror or exc}"
        return out
    for n, line in enumerate(lines):
        where = f"line {n + 1}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.error = f"{where}: not a JSON record"
            return out
        if not isinstance(record, dict):
            out.error = f"{where}: not a JSON record"
            return out
        if record.get("seq") != n:
            out.error = f"{where}: record seq {record.get('seq')!r}, expected {n} (deleted, "
            out.error += "inserted or reordered records)"
            return out
        if record.get("prev") != prev:
            out.error = f"{where} (seq {n}): does not link to the previous record"
            return out
        if record.get("hash") != record_hash(record, key):
            out.error = f"{where} (seq {n}, kind {record.get('kind')!r}): content was altered"
            return out
        if out.finished:
            if record.get("kind") != RESUMED:
                out.error = f"{where} (seq {n}): record after the end of the trail"
                return out
            out.finished = False  # a later attempt continues the chain
        if record.get("kind") == END:
            if record.get("data", {}).get("records") != n:
                out.error = f"{where}: end record counts {record['data'].get('records')} records"
                return out
            out.finished = True
        kind = str(record.get("kind"))
        out.kinds[kind] = out.kinds.get(kind, 0) + 1
        prev = record["hash"]
    out.records = len(lines)
    out.head = prev
    if require_end and not out.finished:
        out.error = f"the trail ends after {len(lines)} records without an end record (cut short)"
        return out
    out.ok = True
    return out
