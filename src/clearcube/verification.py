"""Verifying a run folder as a third party would: the audit chain and its signature, every file
the trail records, the output STAC's checksums, and files the trail does not name.

What is checked:

- ``audit.jsonl``: every record's hash and link, the ``end`` record, and with the producer's
  public key the signature over the chain's head (:func:`.products.audit.verify_audit`);
- every file a record names, at its latest record: each ``product`` (a directory product such
  as ``cube.zarr`` as a whole), ``catalog.json`` and ``run.json`` (named by the ``end`` record);
- each asset's ``file:checksum`` in ``stac/*.json`` against the file it names;
- that no other file is in the folder, and no symbolic link or special file (a run writes
  none; none is followed or read).

Without a public key this shows that the folder is as its trail says, not who wrote the trail.

An evidence bundle (:mod:`.products.bundle`) is verified the same way, as its zip (extracted
into a temporary folder, members that would leave it or are links refused) or extracted: its
run files as above, its own files (``bundle/``) against its manifest, the manifest against the
trail's head.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .layout import RunLayout

if TYPE_CHECKING:
    from .products.signing import PublicKey

__all__ = ["VerifyResult", "verify"]

#: ``end`` record fields holding the checksum of a file of the run folder.
_END_CHECKSUMS = {"catalog_sha256": "catalog", "run_json_sha256": "run_json"}


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`.

    Attributes
    ----------
    ok
        Nothing was found altered, missing or unexpected (and, with a public key, the trail is
        signed by it).
    problems
        One line per problem, naming the file and the record.
    checked
        How many recorded files (a directory product counts once) were checked.
    records
        How many records the audit trail holds.
    stac_assets
        How many STAC ``file:checksum`` values were checked.
    unrecorded
        Files (relative paths) that no record names; each is also in ``problems``.
    signer
        The key fingerprint the trail's last ``end`` record names (``None``: not signed).
    origin_checked
        The signature was verified with the given public key: the trail comes from its holder.
    notes
        Facts that are no problem but worth knowing (an earlier attempt signed by another key).
    bundle
        The folder (or zip) is an evidence bundle: its own files were checked against its
        manifest.
    """

    ok: bool
    problems: list[str]
    checked: int
    records: int = 0
    stac_assets: int = 0
    unrecorded: list[str] = field(default_factory=list)
    signer: str | None = None
    origin_checked: bool = False
    notes: list[str] = field(default_factory=list)
    bundle: bool = False

    @property
    def intact(self) -> bool:
        """Every recorded file is as recorded; unrecorded files aside (a rerun can reuse the
        run)."""
        return len(self.problems) == len(self.unrecorded)

    def summary(self) -> list[str]:
        """What was shown, one line per fact: what matched, and whether the origin was
        checked (integrity only, without a public key)."""
        lines = [
            f"audit chain intact ({self.records} records), {self.checked} recorded files and "
            f"{self.stac_assets} STAC checksums match, no unrecorded files"
        ]
        if self.origin_checked:
            lines.append(f"origin verified: the trail is signed by key {self.signer}")
        elif self.signer is not None:
            lines.append(
                f"integrity only, origin not checked: the trail names signer {self.signer}; "
                "pass --public-key with that key's public PEM, obtained from its holder, to "
                "check who signed it"
            )
        else:
            lines.append(
                "integrity only, origin not checked: the trail is not signed, so anyone could "
                "have rewritten the folder and recomputed every checksum and hash"
            )
        if self.bundle:
            lines.append("evidence bundle: its versions and clause map match its manifest")
        return lines + self.notes


def verify(
    out_dir: str | Path, *, public_key: str | Path | PublicKey | None = None
) -> VerifyResult:
    """Re-check a run folder: the audit chain (and with ``public_key`` its signature), every
    recorded file's checksum, the STAC checksums, and that no file is unrecorded.

    Parameters
    ----------
    out_dir
        The run folder, or an evidence bundle (its zip or extracted folder).
    public_key
        The producer's public key (a PEM file, from :func:`.products.signing.new_key_pair`),
        obtained out of band. Without it, only integrity is checked, not origin.

    Raises
    ------
    ConfigError
        ``out_dir`` is not a run folder (it has neither ``run.json`` nor ``audit.jsonl``), or
        ``public_key`` is not a readable Ed25519 public key.
    """
    from .products.audit import verify_audit
    from .products.bundle import bundle_problems
    from .products.signing import PublicKey, load_public_key

    if Path(out_dir).is_file():
        return _verify_zip(Path(out_dir), public_key)
    layout = RunLayout(Path(out_dir))
    _require_run(layout)
    key = (
        public_key
        if isinstance(public_key, PublicKey) or public_key is None
        else load_public_key(public_key)
    )
    check = _Check(layout)
    trail = layout.rel(layout.audit)
    if check.blocked(trail):  # a link or a pipe: never read (named with the folder's files)
        chain, records = None, []
    elif layout.audit.is_file():
        chain = verify_audit(layout.audit, public_key=key)
        if not chain.ok:
            check.problems.append(f"{trail}: {chain.error}")
        records = _records(layout.audit)
    else:
        chain = None
        check.problems.append(f"{trail}: missing (the audit trail)")
        records = []
    recorded = _recorded_files(layout, records)
    for rel, (want, where) in recorded.items():
        check.recorded(rel, want, where)
    for item in sorted(layout.stac.glob("*.json")) if layout.stac.is_dir() else []:
        rel = layout.rel(item)
        check.stac_item(item, recorded[rel][1] if rel in recorded else "no record")
    bundled: set[str] = set()
    is_bundle = layout.bundle_manifest.is_file() and not check.blocked(
        layout.rel(layout.bundle_manifest)
    )
    if is_bundle:
        problems, bundled = bundle_problems(layout, chain.head if chain is not None else None)
        check.problems += problems
    check.folder({trail, *recorded, *bundled})
    return VerifyResult(
        ok=not check.problems,
        problems=check.problems,
        checked=check.files,
        records=chain.records if chain is not None else 0,
        stac_assets=check.assets,
        unrecorded=check.extra,
        signer=chain.signer if chain is not None else None,
        origin_checked=bool(chain and chain.ok and chain.origin_checked),
        notes=chain.notes if chain is not None else [],
        bundle=is_bundle,
    )


def _verify_zip(path: Path, public_key: str | Path | PublicKey | None) -> VerifyResult:
    """Verify an evidence bundle's zip: extracted into a temporary folder, then checked as
    its extracted folder."""
    import zipfile

    from .products.bundle import extract_bundle, temporary_folder

    if not zipfile.is_zipfile(path):
        raise ConfigError(
            f"not a run folder or bundle: {path} is a file but not a zip; give the folder "
            "`clearcube run` wrote or the zip `clearcube bundle` wrote"
        )
    with temporary_folder() as tmp:
        try:
            refused = extract_bundle(path, Path(tmp))
        except (zipfile.BadZipFile, OSError) as exc:
            return VerifyResult(False, [f"{path.name}: cannot be read as a zip ({exc})"], 0)
        try:
            result = verify(tmp, public_key=public_key)
        except ConfigError:
            raise ConfigError(
                f"not a bundle: {path} holds no run.json and no audit.jsonl; give the zip "
                "`clearcube bundle` wrote"
            ) from None
    result.problems[:0] = refused
    result.ok = result.ok and not refused
    if not result.bundle:
        result.problems.append(f"{path.name}: no bundle/manifest.json (not a clearcube bundle)")
        result.ok = False
    return result


def _require_run(layout: RunLayout) -> None:
    if layout.root.is_dir() and (layout.run_json.exists() or layout.audit.exists()):
        return
    what = "is not a folder" if not layout.root.is_dir() else "has no run.json and no audit.jsonl"
    runs = (
        sorted(p.name for p in layout.root.iterdir() if RunLayout(p).is_run())
        if layout.root.is_dir()
        else []
    )
    hint = (
        f"; it holds run folders ({', '.join(runs[:3])}{', ...' if len(runs) > 3 else ''})"
        if runs
        else "; give the folder `clearcube run` wrote (out/<run-id>)"
    )
    raise ConfigError(f"not a run folder: {layout.root} {what}{hint}")


def _records(path: Path) -> list[dict[str, Any]]:
    """The records of a trail that parse (a broken trail is already reported; what parses still
    names files to check)."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("data"), dict):
            out.append(record)
    return out


def _recorded_files(
    layout: RunLayout, records: list[dict[str, Any]]
) -> dict[str, tuple[object, str]]:
    """Every file the trail names, at its latest record: relative path -> (sha256, which
    record)."""
    out: dict[str, tuple[object, str]] = {}
    for record in records:
        data, seq = record["data"], record.get("seq")
        seq = seq if isinstance(seq, int) else repr(seq)  # a forged seq stays on one line
        if record.get("kind") == "product" and isinstance(data.get("path"), str):
            out[data["path"]] = (data.get("sha256"), f"product record seq {seq}")
        if record.get("kind") == "end":
            for name, attr in _END_CHECKSUMS.items():
                if name in data:
                    path: Path = getattr(layout, attr)
                    out[layout.rel(path)] = (data[name], f"end record seq {seq}")
    return out


class _Check:
    """The file checks of one verification, collecting one line per problem.

    Nothing the folder links to is read, and nothing but regular files: a forged folder could
    link a product to any file of the machine, or to a pipe that never ends.
    """

    def __init__(self, layout: RunLayout) -> None:
        self.layout = layout
        self.problems: list[str] = []
        self.extra: list[str] = []
        self.files = 0
        self.assets = 0
        self._sha: dict[str, str] = {}
        self._regular: list[str] = []  # every regular file, in walk order
        self._odd: list[tuple[str, str]] = []  # (path, what it is) of links and special files
        top = os.fspath(layout.root)
        for folder, dirs, files in os.walk(top):  # links are not followed
            base = os.path.relpath(folder, top)
            dirs.sort()
            for name in [*dirs, *sorted(files)]:
                path = os.path.join(folder, name)
                rel = name if base == "." else f"{base}/{name}".replace(os.sep, "/")
                if os.path.islink(path):
                    self._odd.append((rel, "a symbolic link"))
                elif name in files:
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        self._regular.append(rel)
                    else:
                        self._odd.append((rel, "not a regular file"))
        self._unsafe = [rel for rel, _ in self._odd]

    def blocked(self, rel: str) -> bool:
        """Whether ``rel`` is, lies under or holds a link or a special file."""
        return any(_within(rel, odd) or _within(odd, rel) for odd in self._unsafe)

    def sha256(self, rel: str) -> str:
        from .products.files import sha256_file

        if rel not in self._sha:
            self._sha[rel] = sha256_file(self.layout.path(rel))
        return self._sha[rel]

    def recorded(self, rel: str, want: object, where: str) -> None:
        self.files += 1
        inside = _inside(rel)
        if inside is None:
            self.problems.append(f"{_shown(rel)}: {where} names a path outside the run folder")
        elif self.blocked(inside):
            pass  # named with the folder's links and special files, never read
        elif not self.layout.path(inside).exists():
            self.problems.append(f"{_shown(rel)}: missing ({where})")
        elif self.sha256(inside) != want:
            self.problems.append(
                f"{_shown(rel)}: checksum differs from {where} (the file was altered)"
            )

    def stac_item(self, item: Path, where: str) -> None:
        from .products.files import multihash_sha256

        rel = self.layout.rel(item)
        if self.blocked(rel):
            return
        try:
            doc = json.loads(item.read_text(encoding="utf-8"))
            assets = doc["assets"]
            if not isinstance(assets, dict):
                raise TypeError("assets")
        except (ValueError, KeyError, TypeError):
            self.problems.append(f"{_shown(rel)} ({where}): not a STAC item with assets")
            return
        for name, asset in sorted(assets.items()):
            href = asset.get("href") if isinstance(asset, dict) else None
            want = asset.get("file:checksum") if isinstance(asset, dict) else None
            label = f"{_shown(rel)} ({where}): asset {name!r}"
            if not isinstance(href, str) or "://" in href or href.startswith("/"):
                self.assets += 1
                self.problems.append(f"{label}: href {href!r} is not a path in the run folder")
                continue
            target = _inside(posixpath.join(posixpath.dirname(rel), href))
            if want is None and target == self.layout.rel(self.layout.audit):
                continue  # the trail is closed after the STAC is written: its chain checks it
            self.assets += 1
            if target is None:
                self.problems.append(f"{label}: href {href!r} leaves the run folder")
            elif want is None:
                self.problems.append(f"{label}: no file:checksum")
            elif self.blocked(target):
                pass
            elif not self.layout.path(target).exists():
                self.problems.append(f"{label}: {href!r} is missing")
            elif want != multihash_sha256(self.sha256(target)):
                self.problems.append(f"{label}: file:checksum does not match {_shown(target)}")

    def folder(self, covered: set[str]) -> None:
        """Name every link and special file, and every regular file no record covers (files
        inside a recorded directory are covered by its checksum)."""
        covered = {c for c in map(_inside, covered) if c is not None}
        for rel, what in self._odd:
            self.problems.append(f"{_shown(rel)}: {what} (a run writes none)")
        for rel in self._regular:
            if not any(_within(rel, c) for c in covered):
                self.extra.append(rel)
                self.problems.append(f"{_shown(rel)}: not recorded in the audit trail")


def _inside(rel: str) -> str | None:
    """``rel`` normalised, or ``None`` when it leaves the run folder (``..``, absolute)."""
    norm = posixpath.normpath(rel)
    if norm.startswith("/") or norm == ".." or norm.startswith("../"):
        return None
    return norm


def _within(rel: str, folder: str) -> bool:
    """Whether ``rel`` is ``folder`` or lies under it."""
    return rel == folder or rel.startswith(folder + "/")


def _shown(rel: str) -> str:
    """A path as a problem line shows it: quoted when it holds a line break or another
    control character, so that every problem stays one line."""
    return rel if rel.isprintable() else repr(rel)
