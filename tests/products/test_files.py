"""Atomic product writes and checksums."""

from __future__ import annotations

import hashlib

import pytest

from clearcube.products.files import atomic_path, multihash_sha256, sha256_file


def test_file_appears_only_when_complete(tmp_path):
    final = tmp_path / "out" / "composite.tif"
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"half")
        assert not final.exists()
    assert final.read_bytes() == b"half"
    assert [p.name for p in final.parent.iterdir()] == ["composite.tif"]


def test_failure_keeps_the_old_product(tmp_path):
    final = tmp_path / "cube.zarr"
    final.mkdir()
    (final / "zarr.json").write_text("old")

    def crashing_write():
        with atomic_path(final) as tmp:
            tmp.mkdir()
            (tmp / "zarr.json").write_text("new")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crashing_write()
    assert (final / "zarr.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["cube.zarr"]
    with atomic_path(final) as tmp:
        tmp.mkdir()
        (tmp / "zarr.json").write_text("new")
    assert (final / "zarr.json").read_text() == "new"


def test_checksums(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"clearcube")
    assert sha256_file(f) == hashlib.sha256(b"clearcube").hexdigest()
    assert multihash_sha256(sha256_file(f)) == "1220" + hashlib.sha256(b"clearcube").hexdigest()
    d = tmp_path / "store"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x").write_bytes(b"1")
    before = sha256_file(d)
    (d / "sub" / "x").write_bytes(b"2")
    assert sha256_file(d) != before


def test_directory_checksum_sees_bytes_moved_between_files(tmp_path):
    # without each file's size in the digest, deleting a file and appending its name and
    # bytes to the file before it kept the directory's checksum
    d = tmp_path / "store"
    (d / "c").mkdir(parents=True)
    (d / "c" / "0").write_bytes(b"chunk zero")
    (d / "c" / "1").write_bytes(b"chunk one")
    before = sha256_file(d)
    (d / "c" / "0").write_bytes(b"chunk zero" + b"c/1\0" + b"chunk one")
    (d / "c" / "1").unlink()
    assert sha256_file(d) != before
