"""Atomic writes and checksums for products.

A product is written under a temporary name in its destination folder and renamed into place
only when complete, so a crash never leaves a half-written file under the final name and a
rerun can trust any product it finds (after checking its checksum).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "multihash_sha256",
    "remove_stale_temps",
    "sha256_file",
    "temp_folder",
]

#: How the temporary folders of products end (they begin with a dot and the product's name).
_TEMP_SUFFIX = ".tmp"


def temp_folder(name: str, parent: Path) -> Path:
    """A new temporary folder in ``parent`` for building ``name`` (``.<name>.<random>.tmp``):
    the one naming every product's temporary follows, so that the next run can remove what a
    killed run left (:func:`remove_stale_temps`)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=_TEMP_SUFFIX, dir=parent))


def remove_stale_temps(root: Path) -> list[str]:
    """Remove the temporary folders (:func:`temp_folder`) a killed run left anywhere in the run
    folder ``root``; returns their paths relative to it. Links are neither followed nor
    removed."""
    removed = []
    for folder, dirs, _ in os.walk(root):
        for name in list(dirs):
            path = Path(folder) / name
            if name.startswith(".") and name.endswith(_TEMP_SUFFIX) and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.relative_to(root).as_posix())
                dirs.remove(name)
    return sorted(removed)


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success rename it to ``final``.

    Works for files and for directories (e.g. a Zarr store): whatever the body creates at the
    temporary path replaces ``final`` in one rename. On error the temporary is removed and
    ``final`` is left as it was.
    """
    final = Path(final)
    tmp = temp_folder(final.name, final.parent)
    target = tmp / final.name
    try:
        yield target
        if not target.exists():
            raise FileNotFoundError(f"nothing was written to {target}")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(target, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, or of every file of a directory (sorted relative paths, each with
    its size, so no bytes can move from one file into another's name or content unseen)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            name = file.relative_to(path).as_posix().encode()
            digest.update(name + b"\0" + str(file.stat().st_size).encode() + b"\0")
        with file.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def multihash_sha256(hexdigest: str) -> str:
    """A sha256 hex digest in the STAC ``file:checksum`` form: multihash code 0x12
    (sha2-256), length 0x20, digest."""
    return "1220" + hexdigest
