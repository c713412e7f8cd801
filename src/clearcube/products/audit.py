"""A tamper-evident audit trail: one JSON record per decision, each chained to the previous one,
its head signed with the producer's Ed25519 key.

Every line of ``audit.jsonl`` is a JSON object with ``seq`` (0, 1, 2, ...), ``kind``, ``data``,
``prev`` (the hash of the previous record; 64 zeros for the first) and ``hash``: SHA-256 of the
record's canonical JSON without ``hash``. The last record of a finished trail has kind ``end``
and states how many records precede it, so editing, deleting, inserting or reordering any line,
or cutting the file short, is detected by :func:`verify_audit`. A later attempt in the same
folder (a rerun that retries what failed) continues the same chain: its first record, right
after the ``end``, has kind ``resumed``.

Anyone can rewrite a chain and recompute every hash, so the chain alone proves integrity, not
origin. A run given a signing key (:mod:`.signing`) names the key's fingerprint in ``data.signer``
of its ``end`` record and adds ``signature``: Ed25519 over the record's canonical JSON without
``hash`` and ``signature``. That JSON holds ``prev``, so the signature covers every record
before it; and ``hash`` is computed with the signature in, so a changed signature byte breaks
the chain even for a verifier without the public key. Only a verifier given the public key
(:func:`verify_audit` with ``public_key``) learns who signed.

Trails keyed with the shared-secret HMAC of earlier versions (``CLEARCUBE_AUDIT_KEY``) are not
read: they do not verify.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..scrub import scrub_value
from .signing import decode_signature, is_fingerprint

if TYPE_CHECKING:
    from .signing import PublicKey, SigningKey

__all__ = [
    "END",
    "GENESIS",
    "INPUTS_CHANGED",
    "RESUMED",
    "AuditLog",
    "AuditVerification",
    "latest_data",
    "record_hash",
    "signed_message",
    "verify_audit",
]

GENESIS = "0" * 64
END = "end"
RESUMED = "resumed"
#: The record of a rerun that found its inputs changed since the trail's last search.
INPUTS_CHANGED = "inputs_changed"


def _canonical(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON without its own ``hash`` field (a signature
    included)."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def signed_message(record: dict[str, Any]) -> bytes:
    """What an ``end`` record's signature signs: its canonical JSON without ``hash`` and
    ``signature`` (``prev`` in it chains every earlier record)."""
    return _canonical({k: v for k, v in record.items() if k not in ("hash", "signature")})


def latest_data(path: str | Path, kind: str) -> dict[str, Any] | None:
    """The ``data`` of the last record of ``kind`` in a trail (``None``: there is none, or no
    trail). Records are read up to the first line that is not JSON."""
    found: dict[str, Any] | None = None
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.split("\n"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        if isinstance(record, dict) and record.get("kind") == kind:
            data = record.get("data")
            found = data if isinstance(data, dict) else None
    return found


#: The longest time between two syncs of an open trail to disk, in seconds.
SYNC_EVERY_S = 1.0


class AuditLog:
    """Append-only writer of a chained audit trail.

    Each :meth:`append` writes and flushes one line, so a crash of the process leaves a valid
    (unfinished) prefix; the file is synced to disk at most every ``SYNC_EVERY_S`` seconds
    and at :meth:`close` (a sync per record cost 40 ms each while the COGs were written: 2 s
    of a 10 s run), so a power loss can take at most that much of the tail; every record's
    data is scrubbed of secrets first
    (:func:`clearcube.scrub.scrub_value`). :meth:`close` appends the ``end`` record, signed
    when the log has a ``signer``. Reopening an unfinished trail continues its chain (a
    resumed run), and so does reopening a finished one with ``reopen=True``.

    Raises
    ------
    ConfigError
        The existing trail is broken, or finished and ``reopen`` is false.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        signer: SigningKey | None = None,
        reopen: bool = False,
    ) -> None:
        self.path = Path(path)
        self.signer = signer
        self.seq = 0
        self.head = GENESIS
        if self.path.exists() and self.path.stat().st_size > 0:
            result = verify_audit(self.path, require_end=False)
            if not result.ok:
                raise ConfigError(
                    f"{self.path}: the existing audit trail is broken ({result.error}); "
                    "run `clearcube verify` on the folder, or start a new run folder"
                )
            if result.finished and not reopen:
                raise ConfigError(
                    f"{self.path}: the audit trail is finished; start a new run folder"
                )
            self.seq = result.records
            self.head = result.head
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._synced = time.monotonic()

    def append(self, kind: str, data: dict[str, Any] | None = None) -> str:
        """Append one record; returns its hash."""
        return self._write(self._record(kind, data))

    def close(self, data: dict[str, Any] | None = None) -> str:
        """Finish the trail with the ``end`` record (signed, with the signer's fingerprint in
        ``data.signer``, when the log has a signer); returns its hash."""
        body = {"records": self.seq, **(data or {})}
        if self.signer is not None:
            body["signer"] = self.signer.fingerprint
        record = self._record(END, body)
        if self.signer is not None:
            record["signature"] = self.signer.sign(signed_message(record))
        final = self._write(record)
        os.fsync(self._fh.fileno())
        self._fh.close()
        return final

    def _record(self, kind: str, data: dict[str, Any] | None) -> dict[str, Any]:
        if self._fh.closed:
            raise ValueError(f"{self.path}: audit trail is closed")
        return {
            "seq": self.seq,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "kind": kind,
            "data": scrub_value(data or {}),
            "prev": self.head,
        }

    def _write(self, record: dict[str, Any]) -> str:
        record["hash"] = record_hash(record)
        self._fh.write(_canonical(record).decode() + "\n")
        self._fh.flush()
        if time.monotonic() - self._synced >= SYNC_EVERY_S:
            os.fsync(self._fh.fileno())
            self._synced = time.monotonic()
        self.seq += 1
        self.head = str(record["hash"])
        return self.head

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


@dataclass
class AuditVerification:
    """Outcome of :func:`verify_audit`.

    Attributes
    ----------
    ok
        The chain is intact (and, with a public key, signed by it).
    records
        How many records the trail holds.
    head
        The hash of the last record.
    finished
        The last record is an ``end`` record.
    error
        The first problem, naming the line, the record and what is wrong.
    kinds
        How many records of each kind.
    signer
        The fingerprint the last ``end`` record names (``None``: the trail is not signed).
    origin_checked
        The last ``end`` record's signature was verified with the given public key.
    notes
        Facts that are no problem but that a verifier should know (an earlier attempt signed
        by another key).
    """

    ok: bool
    records: int = 0
    head: str = GENESIS
    finished: bool = False
    error: str | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    signer: str | None = None
    origin_checked: bool = False
    notes: list[str] = field(default_factory=list)


def verify_audit(
    path: str | Path,
    *,
    public_key: PublicKey | None = None,
    require_end: bool = True,
) -> AuditVerification:
    """Re-check every record's hash and link, and every ``end`` record's signature; name the
    first record that fails.

    Parameters
    ----------
    path
        The ``audit.jsonl`` file.
    public_key
        The producer's public key, obtained out of band. With it the trail must end with an
        ``end`` record signed by that key (a re-chained or unsigned trail fails); without it
        only the chain's integrity is checked, and :attr:`AuditVerification.signer` tells who
        the trail claims signed it.
    require_end
        A trail without a final ``end`` record (cut short, or still being written) fails.
    """
    out = AuditVerification(ok=False)
    prev = GENESIS
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        out.error = f"cannot be read: {exc.strerror or exc}"
        return out
    except UnicodeDecodeError as exc:
        out.error = f"byte {exc.start}: not UTF-8 text (the file was altered)"
        return out
    # records end with "\n" and nothing else: str.splitlines would also split at "\v", "\f",
    # "\x1c".. and "\u2028", letting such a byte replace a newline unseen
    lines = text.split("\n")
    unterminated = lines[-1] != ""
    if not unterminated:
        lines.pop()
    last_end: tuple[str, str | None] | None = None  # (where, signer) of the latest end record
    for n, line in enumerate(lines):
        where = f"line {n + 1}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.error = f"{where}: not a JSON record"
            return out
        if not isinstance(record, dict) or not isinstance(record.get("data", {}), dict):
            out.error = f"{where}: not a JSON record"
            return out
        if record.get("seq") != n:
            out.error = f"{where}: record seq {record.get('seq')!r}, expected {n} (deleted, "
            out.error += "inserted or reordered records)"
            return out
        kind = str(record.get("kind"))
        where = f"{where} (seq {n}, kind {record.get('kind')!r})"
        if record.get("prev") != prev:
            out.error = f"{where}: does not link to the previous record"
            return out
        try:
            expected = record_hash(record)
        except ValueError:  # NaN or Infinity, which the writer never writes
            out.error = f"{where}: not a JSON record (NaN or Infinity)"
            return out
        if record.get("hash") != expected:
            out.error = f"{where}: content was altered"
            return out
        if line != _canonical(record).decode():
            # same content, other bytes (spacing, key order, escapes): the writer's own form is
            # the only one, so that every byte of the trail is covered
            out.error = f"{where}: not in the canonical form the writer uses (the line was edited)"
            return out
        if out.finished:
            if kind != RESUMED:
                out.error = f"{where}: record after the end of the trail"
                return out
            out.finished = False  # a later attempt continues the chain
        if kind == END:
            if record.get("data", {}).get("records") != n:
                out.error = f"{where}: end record counts {record['data'].get('records')!r} records"
                return out
            problem = _check_signature(record, public_key, out.notes, where)
            if problem:
                out.error = f"{where}: {problem}"
                return out
            out.finished = True
            last_end = (where, record["data"].get("signer"))
        elif "signature" in record:
            out.error = f"{where}: a signature on a record that is not an end record"
            return out
        out.kinds[kind] = out.kinds.get(kind, 0) + 1
        prev = record["hash"]
    out.records = len(lines)
    out.head = prev
    if unterminated:
        out.error = f"line {len(lines)}: no newline at its end (the file was cut or edited)"
        return out
    if require_end and not out.finished:
        out.error = f"the trail ends after {len(lines)} records without an end record (cut short)"
        return out
    if last_end is not None:
        out.signer = last_end[1]
    if public_key is not None:
        if last_end is None or not out.finished:
            # records after the last end record are vouched for by no signature
            out.error = f"the trail ends after {len(lines)} records without a signed end record"
            return out
        where, signer = last_end
        if signer is None:
            out.error = (
                f"{where}: not signed, but a signed trail was expected (with key "
                f"{public_key.fingerprint}); an unsigned chain can be recomputed by anyone"
            )
            return out
        if signer != public_key.fingerprint:
            out.error = (
                f"{where}: signed by key {signer}, not by the given key "
                f"{public_key.fingerprint} ({public_key.source})"
            )
            return out
        out.origin_checked = True
    out.ok = True
    return out


def _check_signature(
    record: dict[str, Any], public_key: PublicKey | None, notes: list[str], where: str
) -> str | None:
    """What is wrong with an ``end`` record's signature (``None``: nothing that can be seen
    with the key at hand)."""
    signer = record["data"].get("signer")
    signature = record.get("signature")
    if signer is None and signature is None:
        return None
    if signature is None:
        return f"names signer {signer!r} but carries no signature (it was removed)"
    if not is_fingerprint(signer):
        return "a signature without a signer fingerprint (data.signer 'sha256:<hex>')"
    if decode_signature(signature) is None:
        return "the signature is not 64 bytes of base64"
    if public_key is None:
        return None
    if signer != public_key.fingerprint:
        notes.append(f"{where}: signed by key {signer}, not checked (another key)")
        return None
    if not public_key.verifies(signed_message(record), signature):
        return (
            f"the signature does not verify with key {public_key.fingerprint} "
            f"({public_key.source}): the trail was changed after it was signed"
        )
    return None
