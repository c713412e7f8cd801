"""The evidence bundle: one zip a verifier can take away and check.

``clearcube bundle RUN OUT.zip`` refuses a run folder that does not verify, then zips every
file of it (the audit trail, the config in ``run.json``, the source item snapshots, the scene
table, the review queue, the cube, the composites, the STAC, the report) with three files of
its own under ``bundle/``:

- ``versions.json``: Python, the platform, GDAL and every installed distribution's version
  (:mod:`importlib.metadata`) where the bundle was made (the audit trail's ``software``
  record has the main ones of the run itself);
- ``clause-map.md``: which artefact answers which VM0042 / ISO 14064-2 data-quality
  requirement;
- ``manifest.json``: the run's id and audit head and the SHA-256 of the other two (every
  field of it is checked).

``clearcube verify`` takes the zip or its extracted folder: the run's files are checked as in
any run folder (chain, checksums, STAC, no unrecorded file), the bundle's files against the
manifest, and the manifest's audit head against the trail. The bundle's own files are not
signed: with the run's public key a verifier knows who made the run's files, not who made the
bundle.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import posixpath
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..layout import RunLayout

__all__ = [
    "BUNDLE_FORMAT",
    "CLAUSES",
    "bundle_problems",
    "clause_map",
    "extract_bundle",
    "installed_versions",
    "write_bundle",
]

BUNDLE_FORMAT = "clearcube-evidence-bundle/1"

#: (requirement, where the standards ask it, the artefacts that answer it). Clause titles as
#: the standards' texts name them; check numbering against the edition in use.
CLAUSES: tuple[tuple[str, str, str], ...] = (
    (
        "Source of each data item",
        "VM0042, Monitoring: data and parameters (source of data); ISO 14064-2, principle "
        "of transparency",
        "`source-items/*.json` (each source STAC item as read, its SHA-256 in `scenes.csv` "
        "`item_digest`), the `derived_from` links of `stac/*.json`, the audit `search` record",
    ),
    (
        "Methods and procedures applied to the data",
        "VM0042, Monitoring: description of the measurement methods and procedures; "
        "ISO 14064-2, Monitoring the GHG project",
        "`run.json` (the whole run config and its digest), per scene in `scenes.csv`: QA "
        "asset and encoding, classes and tiers counted as cloud, dilation, processing "
        "baseline, scale/offset per band with their source and conflicts; COG tags",
    ),
    (
        "QA/QC procedures and their results",
        "VM0042, Monitoring: QA/QC procedures to be applied; ISO 14064-2, Managing data quality",
        "`scenes.csv` (cloud fraction over valid pixels, decision and reason for every "
        "scene, science checks), `review.jsonl` (the review queue), `review_resolution` "
        "records of `audit.jsonl` (a person's decision and reason), `report.html`",
    ),
    (
        "Completeness: no data item silently dropped",
        "ISO 14064-2, principle of completeness",
        "`scenes.csv` has a row for every item found, fallbacks and excluded scenes "
        "included; the audit `search` record lists every item's digest",
    ),
    (
        "Accuracy and conservativeness of the masks",
        "ISO 14064-2, principles of accuracy and conservativeness",
        "unreadable or undefined QA is never clear (fallback rows with their reason); "
        "per pixel: `composites/clear_count_*.tif`, `composites/clear_dates_*.tif` (first "
        "and last clear date), for a medoid `composites/source_index_*.tif` with "
        "`composites/source_scenes.json` (the scene behind each pixel)",
    ),
    (
        "Consistency and reproducibility",
        "ISO 14064-2, principle of consistency",
        "the config digest on every product, the audit `config` and `software` records, "
        "`bundle/versions.json` (every installed package)",
    ),
    (
        "Records kept and protected from alteration",
        "VM0042, Monitoring: data archiving; ISO 14064-2, Documenting the GHG project",
        "`audit.jsonl` (hash-chained records, the end record signed when the run was), the "
        "checksum of every product in it and in the STAC `file:checksum`; `clearcube verify "
        "BUNDLE.zip [--public-key PUB]` re-checks them all",
    ),
)


def clause_map() -> str:
    """The clause map as markdown."""
    lines = [
        "# Evidence bundle: clause map",
        "",
        "Which artefact of this bundle answers which data-quality requirement of Verra VM0042 "
        "and ISO 14064-2 (clause titles as the standards name them; check their numbering "
        "against the edition in use). Paths are relative to the bundle's root.",
        "",
        "| requirement | asked by | answered by |",
        "|---|---|---|",
    ]
    lines += [f"| {req} | {where} | {what} |" for req, where, what in CLAUSES]
    return "\n".join(lines) + "\n"


def installed_versions() -> dict[str, Any]:
    """Python, the platform, GDAL and every installed distribution's version."""
    import platform
    import sys
    from importlib.metadata import distributions

    import rasterio

    packages: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            packages.setdefault(str(name), str(dist.version))
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "gdal": str(rasterio.__gdal_version__),
        "packages": dict(sorted(packages.items(), key=lambda kv: kv[0].lower())),
    }


def _json(obj: Any) -> bytes:
    """The bytes a bundle file of JSON is written as (and a manifest must be)."""
    return (json.dumps(obj, indent=1) + "\n").encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(run_dir: str | Path, out: str | Path) -> Path:
    """Zip a verified run folder with its versions, clause map and manifest into ``out``.

    Raises
    ------
    ConfigError
        Not a run folder, a folder that does not verify, or ``out`` inside it.
    """
    from ..verification import verify
    from .audit import verify_audit
    from .files import atomic_path

    layout = RunLayout(Path(run_dir))
    target = Path(out)
    result = verify(layout.root)  # also: not a run folder
    if not result.ok:
        raise ConfigError(
            f"{layout.root} does not verify ({result.problems[0]}); only an intact run is "
            "bundled: run `clearcube verify` on it"
        )
    if target.resolve().is_relative_to(layout.root.resolve()):
        raise ConfigError(f"{target}: the bundle cannot go inside the run folder; choose another")
    from .. import __version__

    versions = {
        "bundled_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "bundled_by": f"clearcube {__version__}",
        **installed_versions(),
    }
    extra = {
        layout.rel(layout.bundle_versions): _json(versions),
        layout.rel(layout.bundle_clauses): clause_map().encode(),
    }
    manifest = {  # every field is checked by verify
        "format": BUNDLE_FORMAT,
        "run_id": json.loads(layout.run_json.read_text()).get("run_id"),
        "audit_head": verify_audit(layout.audit).head,
        "files": {rel: _sha(data) for rel, data in extra.items()},
    }
    extra[layout.rel(layout.bundle_manifest)] = _json(manifest)
    files = []
    for folder, dirs, names in os.walk(layout.root):
        dirs.sort()
        for name in sorted(names):
            files.append(Path(folder) / name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, layout.rel(path))
        for rel, data in extra.items():
            info = zipfile.ZipInfo(rel, date_time=dt.datetime.now().timetuple()[:6])
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return target


def extract_bundle(path: Path, into: Path) -> list[str]:
    """Extract a bundle zip into ``into``; returns one problem line per member that is not
    extracted (a path leaving the folder, a link or a special file, a duplicate)."""
    problems = []
    seen: set[str] = set()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            mode = info.external_attr >> 16
            norm = posixpath.normpath(name)
            if info.is_dir():
                continue
            if (
                "\\" in name
                or norm.startswith(("/", "../"))
                or norm in ("..", ".")
                or (len(norm) > 1 and norm[1] == ":")
            ):
                problems.append(f"{name!r}: a bundle member outside the bundle (not extracted)")
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # a link, a device, a pipe
                problems.append(f"{name!r}: not a regular file (not extracted)")
                continue
            if norm in seen:
                problems.append(f"{name!r}: a second member of that name (not extracted)")
                continue
            seen.add(norm)
            dest = into / norm
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, dest.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    return problems


def bundle_problems(layout: RunLayout, audit_head: str | None) -> tuple[list[str], set[str]]:
    """The problems of a bundle's own files (manifest, versions, clause map), and the
    relative paths the manifest covers."""
    rel = layout.rel(layout.bundle_manifest)
    try:
        raw = layout.bundle_manifest.read_bytes()
        manifest = json.loads(raw)
        files = manifest["files"]
        if not isinstance(files, dict) or manifest.get("format") != BUNDLE_FORMAT:
            raise TypeError("files")
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{rel}: not a clearcube bundle manifest ({BUNDLE_FORMAT})"], {rel}
    problems = []
    if set(manifest) != {"format", "run_id", "audit_head", "files"} or raw != _json(manifest):
        problems.append(f"{rel}: not in the form clearcube writes (the file was edited)")
    try:
        run_id = json.loads(layout.run_json.read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        run_id = None  # run.json itself is checked against the trail
    if manifest.get("run_id") != run_id:
        problems.append(f"{rel}: names run {manifest.get('run_id')!r}, run.json {run_id!r}")
    if manifest.get("audit_head") != audit_head:
        problems.append(
            f"{rel}: names audit head {str(manifest.get('audit_head'))[:16]}.., the trail's is "
            f"{str(audit_head)[:16]}.. (the bundle does not belong to this trail)"
        )
    covered = {rel}
    for name, want in sorted(files.items()):
        norm = posixpath.normpath(str(name))
        if not norm.startswith(layout.rel(layout.bundle) + "/"):
            problems.append(f"{rel}: names {name!r}, not a file of the bundle folder")
            continue
        covered.add(norm)
        path = layout.path(norm)
        if not path.is_file() or path.is_symlink():
            problems.append(f"{norm}: missing (named by {rel})")
        elif _sha(path.read_bytes()) != want:
            problems.append(f"{norm}: checksum differs from {rel} (the file was altered)")
    return problems, covered


def temporary_folder() -> tempfile.TemporaryDirectory[str]:
    """Where a zip bundle is extracted to be verified."""
    return tempfile.TemporaryDirectory(prefix="clearcube-bundle-")
