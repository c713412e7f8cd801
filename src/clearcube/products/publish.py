"""Publishing products: each written atomically, recorded in the audit trail with its
checksum, and kept as it is when a resumed run finds it already written with that checksum."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..layout import RunLayout
from .audit import AuditLog
from .files import sha256_file, temp_folder

__all__ = ["Publisher", "recorded_products"]


def recorded_products(audit_path: Path) -> dict[str, str]:
    """Products recorded in a trail (the latest record of each): relative path -> sha256."""
    import json

    out: dict[str, str] = {}
    if not audit_path.exists():
        return out
    for line in audit_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        if record.get("kind") == "product":
            out[record["data"]["path"]] = record["data"]["sha256"]
    return out


class Publisher:
    """Writes and records the products of one run.

    Parameters
    ----------
    layout
        The run folder.
    audit
        The trail each product is recorded in.
    recorded
        Products an earlier, unfinished attempt recorded (relative path -> sha256).
    """

    def __init__(self, layout: RunLayout, audit: AuditLog, recorded: Mapping[str, str]) -> None:
        self.layout = layout
        self.audit = audit
        self.recorded = dict(recorded)
        self.products: dict[str, Path] = {}
        self.reused: list[str] = []
        self._sha256: dict[str, str] = {}

    def is_current(self, path: Path) -> bool:
        """Whether ``path`` is already there as an earlier attempt recorded it."""
        rel = self.layout.rel(path)
        return rel in self.recorded and path.exists() and sha256_file(path) == self.recorded[rel]

    def publish(self, path: Path, write: Callable[[Path], Any]) -> Path:
        """Write the product with ``write(tmp)`` next to ``path`` and record it; when an
        earlier attempt recorded the same content and it is still there, keep that file."""
        import os
        import shutil

        rel = self.layout.rel(path)
        folder = temp_folder(path.name, path.parent)
        try:
            built = folder / path.name
            write(built)
            if self.is_current(path) and sha256_file(built) == self.recorded[rel]:
                self.reused.append(rel)
                self._sha256[rel] = self.recorded[rel]
            else:
                os.replace(built, path)
                self.record(path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.products[rel] = path
        return path

    def publish_built(
        self, path: Path, built: Path, move: Callable[[], Any], discard: Callable[[], Any]
    ) -> Path:
        """Record a product built elsewhere (at ``built``): ``move()`` puts it in place. When
        the product is already there as recorded, with the same content, it is kept and
        ``discard()`` drops the new copy."""
        rel = self.layout.rel(path)
        if self.is_current(path) and sha256_file(built) == self.recorded[rel]:
            discard()
            self.reused.append(rel)
            self._sha256[rel] = self.recorded[rel]
        else:
            move()
            self.record(path)
        self.products[rel] = path
        return path

    def record(self, path: Path) -> str:
        """Record ``path`` as written now; returns its sha256."""
        rel = self.layout.rel(path)
        sha = sha256_file(path)
        self.audit.append("product", {"path": rel, "sha256": sha})
        self.products[rel] = path
        self._sha256[rel] = sha
        return sha

    def sha256(self, path: Path) -> str:
        """The sha256 of a published product as recorded (the files are not read again: the
        cube store alone is hundreds of MB); of any other file, computed now."""
        rel = self.layout.rel(path)
        return self._sha256.get(rel) or sha256_file(path)
