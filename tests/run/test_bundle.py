"""The evidence bundle: `clearcube bundle` + `clearcube verify` round-trip on the demo run, zip
and extracted, and any edited member fails."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from clearcube.job import run
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config

from .._cli import cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "run"
    run(load_run_config(config_path("default")), out=out)
    return out


@pytest.fixture(scope="module")
def bundle(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("zip") / "evidence.zip"
    done = cli("bundle", str(demo), str(path))
    assert done.returncode == 0, done.stderr
    assert f"bundle {path}" in done.stdout
    return path


def _rewrite(src, dest, target, edit):
    """A copy of the zip ``src`` with member ``target``'s bytes passed through ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, edit(data) if info.filename == target else data)
    return dest


def _flip(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def test_bundle_holds_the_evidence(demo, bundle):
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        versions = json.loads(zf.read("bundle/versions.json"))
        clauses = zf.read("bundle/clause-map.md").decode()
        manifest = json.loads(zf.read("bundle/manifest.json"))
    run_files = {p.relative_to(demo).as_posix() for p in demo.rglob("*") if p.is_file()}
    assert run_files <= names  # every file of the run
    assert names - run_files == {
        "bundle/versions.json",
        "bundle/clause-map.md",
        "bundle/manifest.json",
    }
    assert {"audit.jsonl", "run.json", "scenes.csv", "review.jsonl", "catalog.json"} <= names
    assert len([n for n in names if n.startswith("source-items/")]) == 13
    assert any(n.startswith("composites/clear_dates_") for n in names)
    assert {"numpy", "rasterio", "xarray", "clearcube"} <= set(versions["packages"])
    assert versions["gdal"]
    assert "VM0042" in clauses
    assert "ISO 14064-2" in clauses
    for artefact in ("audit.jsonl", "scenes.csv", "source-items/", "bundle/versions.json"):
        assert artefact in clauses
    assert manifest["run_id"] == json.loads((demo / "run.json").read_text())["run_id"]
    assert set(manifest["files"]) == {"bundle/versions.json", "bundle/clause-map.md"}


def test_verify_round_trips_on_the_zip_and_the_extracted_folder(bundle, tmp_path):
    done = cli("verify", str(bundle))
    assert done.returncode == 0, done.stderr
    assert "evidence bundle: its versions and clause map match its manifest" in done.stdout
    folder = tmp_path / "extracted"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder)
    done = cli("verify", str(folder))
    assert done.returncode == 0, done.stderr
    assert "evidence bundle" in done.stdout

    # edited or added files of the extracted bundle fail
    copy = tmp_path / "edited"
    shutil.copytree(folder, copy)
    (copy / "bundle" / "versions.json").write_text('{"packages": {}}\n')
    done = cli("verify", str(copy))
    assert done.returncode == 1
    assert "bundle/versions.json: checksum differs from bundle/manifest.json" in done.stderr
    copy = tmp_path / "added"
    shutil.copytree(folder, copy)
    (copy / "bundle" / "notes.txt").write_text("trust me\n")
    done = cli("verify", str(copy))
    assert done.returncode == 1
    assert "bundle/notes.txt: not recorded" in done.stderr


@pytest.mark.parametrize(
    "member",
    [
        "scenes.csv",
        "composites/median_2023.tif",
        "composites/clear_dates_2024.tif",
        "run.json",
        "audit.jsonl",
        "bundle/versions.json",
        "bundle/clause-map.md",
        "bundle/manifest.json",
    ],
)
def test_an_edited_member_fails(bundle, tmp_path, member):
    edited = _rewrite(bundle, tmp_path / "edited.zip", member, _flip)
    done = cli("verify", str(edited))
    assert done.returncode == 1, member
    name = member.split("/")[-1]
    assert name in done.stderr or "audit.jsonl" in done.stderr or "manifest" in done.stderr
    assert "verify failed" in done.stderr


def test_a_source_snapshot_edit_and_a_foreign_trail_fail(bundle, demo, tmp_path):
    with zipfile.ZipFile(bundle) as zf:
        snapshot = next(n for n in zf.namelist() if n.startswith("source-items/"))
    edited = _rewrite(bundle, tmp_path / "a.zip", snapshot, lambda d: d.replace(b"{", b"{ ", 1))
    done = cli("verify", str(edited))
    assert done.returncode == 1
    assert snapshot in done.stderr
    # the manifest of another run's bundle does not fit this trail
    other = tmp_path / "other"
    shutil.copytree(demo, other)
    done = cli("review", str(other), "S2A_21MZS_20240210_0_L2A", "--reject", "--reason", "x")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(bundle) as zf:
        old_manifest = zf.read("bundle/manifest.json")
    second = tmp_path / "second.zip"
    assert cli("bundle", str(other), str(second)).returncode == 0
    swapped = _rewrite(
        second, tmp_path / "swapped.zip", "bundle/manifest.json", lambda _: old_manifest
    )
    done = cli("verify", str(swapped))
    assert done.returncode == 1
    assert "does not belong to this trail" in done.stderr


def test_a_member_leaving_the_bundle_is_refused(bundle, tmp_path):
    evil = tmp_path / "evil.zip"
    shutil.copy(bundle, evil)
    with zipfile.ZipFile(evil, "a") as zf:
        zf.writestr("../outside.txt", "x")
    done = cli("verify", str(evil))
    assert done.returncode == 1
    assert "'../outside.txt': a bundle member outside the bundle" in done.stderr
    assert not (tmp_path / "outside.txt").exists()


def test_bundle_refuses_a_run_that_does_not_verify(demo, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(demo, copy)
    (copy / "scenes.csv").write_text("id\n")
    done = cli("bundle", str(copy), str(tmp_path / "b.zip"))
    assert done.returncode == 1
    assert "does not verify" in done.stderr
    assert not (tmp_path / "b.zip").exists()
