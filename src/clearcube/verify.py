"""Verifying a run folder: the audit chain, every recorded product's checksum, the catalog."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .layout import RunLayout

__all__ = ["VerifyResult", "verify"]


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`.

    Attributes
    ----------
    ok
        Nothing was found altered, missing or unexpected.
    problems
        One line per problem, naming the file and the record.
    checked
        How many products were checked.
    """

    ok: bool
    problems: list[str]
    checked: int


def verify(out_dir: str | Path) -> VerifyResult:
    """Re-check the audit chain, every recorded product's checksum and the catalog."""
    from .products._files import sha256_file
    from .products.audit import verify_audit

    layout = RunLayout(Path(out_dir))
    problems: list[str] = []
    chain = verify_audit(layout.audit)
    if not chain.ok:
        return VerifyResult(False, [f"{layout.audit.name}: {chain.error}"], 0)
    latest: dict[str, tuple[str, int]] = {}
    catalog_sha = None
    for line in layout.audit.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "product":
            latest[record["data"]["path"]] = (record["data"]["sha256"], record["seq"])
        if record["kind"] == "end":
            catalog_sha = record["data"].get("catalog_sha256")
    checked = 0
    for rel, (want, seq) in latest.items():
        path = layout.path(rel)
        checked += 1
        if not path.exists():
            problems.append(f"{rel}: missing (record seq {seq})")
        elif sha256_file(path) != want:
            problems.append(
                f"{rel}: checksum differs from audit record seq {seq} (the product was altered)"
            )
    if catalog_sha is not None:
        checked += 1
        if not layout.catalog.exists() or sha256_file(layout.catalog) != catalog_sha:
            problems.append(f"{layout.rel(layout.catalog)}: checksum differs from the end record")
    return VerifyResult(not problems, problems, checked)
