"""``verify`` as a third party runs it, on real runs of the demo, one signed and one not: against
a forger who recomputes every checksum and hash, another key, edits of run.json, added files,
folders that are not runs, and the tamper matrix over every file of the folder."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import clearcube as cc
from clearcube.job import run
from clearcube.products.audit import record_hash, signed_message
from clearcube.products.files import multihash_sha256, sha256_file
from clearcube.products.signing import (
    ENV_SIGNING_KEY,
    SigningKey,
    load_public_key,
    load_signing_key,
    new_key_pair,
)
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config
from clearcube.verification import VerifyResult, verify

from .._cli import cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    return {"producer": new_key_pair(base / "producer"), "other": new_key_pair(base / "other")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, keys):
    """The demo run twice: unsigned through Python, signed through the CLI with the key in
    ``CLEARCUBE_SIGNING_KEY``."""
    base = tmp_path_factory.mktemp("verify")
    with pytest.MonkeyPatch.context() as env:
        env.delenv(ENV_SIGNING_KEY, raising=False)
        env.delenv("CLEARCUBE_AUDIT_KEY", raising=False)
        unsigned = run(load_run_config(config_path("default")), out=base / "unsigned")
        env.setenv(ENV_SIGNING_KEY, str(keys["producer"].private))
        done = cli("run", "--quiet", "--out", str(base / "signed"))
    assert done.returncode == 0, done.stderr
    return {"unsigned": unsigned.out_dir, "signed": base / "signed"}


@pytest.fixture
def copy(tmp_path, runs) -> Callable[[str], Path]:
    """A fresh copy of one of the runs, to tamper with."""
    count = iter(range(1000))

    def make(name: str) -> Path:
        dest = tmp_path / f"{name}-{next(count)}"
        shutil.copytree(runs[name], dest, symlinks=True)
        return dest

    return make


def pub(keys, name="producer"):
    return str(keys[name].public)


# --- the forger ----------------------------------------------------------------------------


def records_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "audit.jsonl").read_text().splitlines()]


def write_trail(folder: Path, records: list[dict]) -> None:
    """The records in the writer's own canonical form."""
    lines = [
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for r in records
    ]
    (folder / "audit.jsonl").write_text("\n".join(lines) + "\n")


def reseal(folder: Path, records: list[dict], *, signature: str, own: SigningKey | None = None):
    """Everything a forger recomputes after an edit, with the project's own code: each STAC
    asset's file:checksum, each product record's checksum, the end record's checksums of
    catalog.json and run.json and its record count, then every seq, link and hash. The end
    record's signature is kept (now over other content), stripped, or made with ``own`` key."""
    for item in sorted((folder / "stac").glob("*.json")):
        doc = json.loads(item.read_text())
        for asset in doc["assets"].values():
            if "file:checksum" in asset:  # the trail's own asset carries none
                asset["file:checksum"] = multihash_sha256(sha256_file(item.parent / asset["href"]))
        item.write_text(json.dumps(doc, indent=1))
    prev = "0" * 64
    for n, record in enumerate(records):
        record["seq"], record["prev"], data = n, prev, record["data"]
        if record["kind"] == "product":
            data["sha256"] = sha256_file(folder / data["path"])
        if record["kind"] == "end":
            data.update(
                records=n,
                catalog_sha256=sha256_file(folder / "catalog.json"),
                run_json_sha256=sha256_file(folder / "run.json"),
            )
            if signature == "strip":
                record.pop("signature", None)
                data.pop("signer", None)
            elif signature == "own":
                assert own is not None
                data["signer"] = own.fingerprint
                record["signature"] = own.sign(signed_message(record))
        record["hash"] = record_hash(record)
        prev = record["hash"]
    write_trail(folder, records)


def edit_scenes(folder: Path, scene_id: str, change: Callable[[dict], dict | None]) -> None:
    """Change (or with ``None``, drop) one scene's row in scenes.csv and review.jsonl."""
    text = (folder / "scenes.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        new = change(dict(row)) if row["id"] == scene_id else row
        if new is not None:
            writer.writerow(new)
    (folder / "scenes.csv").write_text(out.getvalue())
    queue = (folder / "review.jsonl").read_text().splitlines()
    kept = [line for line in queue if json.loads(line)["id"] != scene_id]
    (folder / "review.jsonl").write_text("".join(line + "\n" for line in kept))


def promote(folder: Path, records: list[dict]) -> None:
    """An over-threshold scene made "used", as if it were clear enough."""
    scene = next(r for r in records if r["kind"] == "scene_excluded")
    scene["kind"] = "scene_used"
    scene["data"].update(decision="used", over_threshold=False, reason="")
    edit_scenes(
        folder,
        scene["data"]["id"],
        lambda row: {**row, "decision": "used", "over_threshold": "False", "reason": ""},
    )


def hide(folder: Path, records: list[dict]) -> None:
    """An over-threshold scene removed from the trail and the tables."""
    scene = next(r for r in records if r["kind"] == "scene_excluded")
    records.remove(scene)
    edit_scenes(folder, scene["data"]["id"], lambda row: None)


def clear_up(folder: Path, records: list[dict]) -> None:
    """A used scene's cloud fraction lowered."""
    scene = next(r for r in records if r["kind"] == "scene_used" and r["data"]["cloud_fraction"])
    scene["data"]["cloud_fraction"] = 0.001
    edit_scenes(folder, scene["data"]["id"], lambda row: {**row, "cloud_fraction": "0.001"})


def swap_composite(folder: Path, records: list[dict]) -> None:
    """The 2024 composite replaced by the 2023 one."""
    shutil.copyfile(folder / "composites/median_2023.tif", folder / "composites/median_2024.tif")


FORGERIES = {"promote": promote, "hide": hide, "clear_up": clear_up, "swap": swap_composite}


def forge(folder: Path, edit, *, signature: str, own: SigningKey | None = None) -> Path:
    records = records_of(folder)
    edit(folder, records)
    reseal(folder, records, signature=signature, own=own)
    return folder


# --- single checks -------------------------------------------------------------------------


def test_a_signed_run_passes_with_its_public_key(runs, keys):
    done = cli("verify", str(runs["signed"]), "--public-key", pub(keys))
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("ok: audit chain intact (")
    checksums = sum(
        "file:checksum" in asset
        for item in (runs["signed"] / "stac").glob("*.json")
        for asset in json.loads(item.read_text())["assets"].values()
    )
    assert checksums >= 11
    assert f"recorded files and {checksums} STAC checksums match, no unrecorded files" in first
    assert second == f"origin verified: the trail is signed by key {keys['producer'].fingerprint}"
    end = records_of(runs["signed"])[-1]
    assert end["data"]["signer"] == keys["producer"].fingerprint
    assert end["data"]["run_json_sha256"] == sha256_file(runs["signed"] / "run.json")


def test_without_a_key_verify_says_it_checked_integrity_only(runs, keys):
    unsigned = cli("verify", str(runs["unsigned"]))
    assert unsigned.returncode == 0, unsigned.stderr
    assert unsigned.stdout.splitlines()[1].startswith(
        "integrity only, origin not checked: the trail is not signed"
    )
    signed = cli("verify", str(runs["signed"]))
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.splitlines()[1].startswith(
        "integrity only, origin not checked: the trail names signer "
        f"{keys['producer'].fingerprint}; pass --public-key"
    )


@pytest.mark.parametrize("edit", sorted(FORGERIES))
def test_a_forged_unsigned_run_passes_integrity_only(copy, edit):
    folder = forge(copy("unsigned"), FORGERIES[edit], signature="strip")
    result = verify(folder)
    assert result.ok, result.problems  # what a chain alone cannot show
    assert not result.origin_checked
    assert result.summary()[1].startswith("integrity only, origin not checked")


@pytest.mark.parametrize("signature", ["keep", "strip", "own"])
def test_a_forged_signed_run_fails(copy, keys, signature):
    own = load_signing_key(keys["other"].private)
    folder = forge(copy("signed"), promote, signature=signature, own=own)
    assert verify(folder).ok  # the forger made it consistent...
    done = cli("verify", str(folder), "--public-key", pub(keys))
    assert done.returncode == 1  # ...but not signed by the producer
    problem, summary = done.stderr.splitlines()
    end = records_of(folder)[-1]["seq"]
    assert problem.startswith(f"audit.jsonl: line {end + 1} (seq {end}, kind 'end'): ")
    assert {
        "keep": "the signature does not verify with key",
        "strip": "not signed, but a signed trail was expected",
        "own": f"signed by key {own.fingerprint}, not by the given key",
    }[signature] in problem
    assert summary == f"verify failed: 1 problem(s) in {folder}"


def test_another_public_key_fails(runs, keys):
    done = cli("verify", str(runs["signed"]), "--public-key", pub(keys, "other"))
    assert done.returncode == 1
    end = records_of(runs["signed"])[-1]["seq"]
    assert done.stderr.splitlines()[0] == (
        f"audit.jsonl: line {end + 1} (seq {end}, kind 'end'): signed by key "
        f"{keys['producer'].fingerprint}, not by the given key {keys['other'].fingerprint} "
        f"({keys['other'].public})"
    )


def test_one_byte_of_run_json_changed_fails(copy, keys):
    folder = copy("signed")
    data = bytearray((folder / "run.json").read_bytes())
    at = data.index(b'"cloud_threshold": 0.3') + len('"cloud_threshold": 0.')
    data[at] = ord("9")  # a threshold of 0.9: every over-threshold scene would pass
    (folder / "run.json").write_bytes(bytes(data))
    result = verify(folder, public_key=pub(keys))
    records = records_of(folder)
    end = records[-1]["seq"]
    item = next(r for r in records if r["data"].get("path") == "stac/run.json")["seq"]
    assert result.problems == [
        f"run.json: checksum differs from end record seq {end} (the file was altered)",
        f"stac/run.json (product record seq {item}): asset 'config': file:checksum does not "
        "match run.json",
    ]


def test_an_added_file_is_named(copy):
    folder = copy("unsigned")
    (folder / "extra.txt").write_text("not from the run")
    (folder / "composites" / "notes.md").write_text("a note")
    done = cli("verify", str(folder))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "extra.txt: not recorded in the audit trail",
        "composites/notes.md: not recorded in the audit trail",
        f"verify failed: 2 problem(s) in {folder}",
    ]


def test_links_and_odd_file_names_are_named_on_one_line(copy, tmp_path):
    folder = copy("unsigned")
    (tmp_path / "outside.csv").write_bytes((folder / "scenes.csv").read_bytes())
    (folder / "scenes.csv").unlink()
    (folder / "scenes.csv").symlink_to(tmp_path / "outside.csv")  # same bytes, elsewhere
    (folder / "composites" / "a\nb.tif").write_text("x")
    os.mkfifo(folder / "stac" / "pipe.json")  # never opened: reading it would never end
    problems = verify(folder).problems
    assert problems == [
        "scenes.csv: a symbolic link (a run writes none)",
        "stac/pipe.json: not a regular file (a run writes none)",
        "'composites/a\\nb.tif': not recorded in the audit trail",
    ]


def test_a_rerun_keeps_a_finished_run_with_an_added_file(copy):
    folder = copy("unsigned")
    (folder / "notes.txt").write_text("reviewed on site")
    again = run(load_run_config(config_path("default")), out=folder)
    assert again.reused == ["all"]
    assert verify(folder).unrecorded == ["notes.txt"]


def test_a_stac_checksum_that_does_not_match_its_file_is_named(copy):
    folder = copy("unsigned")
    item = folder / "stac" / "run.json"
    doc = json.loads(item.read_text())
    doc["assets"]["scenes"]["file:checksum"] = "1220" + "0" * 64
    item.write_text(json.dumps(doc, indent=1))
    records = records_of(folder)
    record = next(r for r in records if r["data"].get("path") == "stac/run.json")
    # re-record the edited item and rechain, without recomputing the STAC checksums
    record["data"]["sha256"] = sha256_file(item)
    prev = "0" * 64
    for r in records:
        r["prev"] = prev
        r["hash"] = record_hash(r)
        prev = r["hash"]
    write_trail(folder, records)
    assert verify(folder).problems == [
        f"stac/run.json (product record seq {record['seq']}): asset 'scenes': "
        "file:checksum does not match scenes.csv"
    ]


def test_a_stac_href_or_a_record_outside_the_folder_is_refused(copy, tmp_path):
    folder = copy("unsigned")
    (tmp_path / "elsewhere.txt").write_text("x")
    item = folder / "stac" / "run.json"
    doc = json.loads(item.read_text())
    doc["assets"]["scenes"]["href"] = "../../elsewhere.txt"
    item.write_text(json.dumps(doc, indent=1))
    problems = verify(folder).problems
    assert any(
        "asset 'scenes': href '../../elsewhere.txt' leaves the run folder" in p for p in problems
    )


def test_cube_chunks_moved_into_another_chunk_are_seen(copy):
    folder = copy("unsigned")
    store = folder / "cube.zarr"
    chunks = sorted(p for p in store.rglob("*") if p.is_file())
    first, second = chunks[0], chunks[1]
    rel = second.relative_to(store).as_posix().encode()
    first.write_bytes(first.read_bytes() + rel + b"\0" + second.read_bytes())
    second.unlink()
    record = next(r for r in records_of(folder) if r["data"].get("path") == "cube.zarr")
    item = next(r for r in records_of(folder) if r["data"].get("path") == "stac/masked-cube.json")
    assert verify(folder).problems == [
        f"cube.zarr: checksum differs from product record seq {record['seq']} "
        "(the file was altered)",
        f"stac/masked-cube.json (product record seq {item['seq']}): asset 'cube': "
        "file:checksum does not match cube.zarr",
    ]


def test_a_missing_trail_or_run_json_is_altered_not_bad_usage(copy):
    folder = copy("unsigned")
    (folder / "run.json").unlink()
    records = records_of(folder)
    end = records[-1]["seq"]
    item = next(r for r in records if r["data"].get("path") == "stac/run.json")["seq"]
    assert verify(folder).problems == [
        f"run.json: missing (end record seq {end})",
        f"stac/run.json (product record seq {item}): asset 'config': '../run.json' is missing",
    ]
    folder = copy("unsigned")
    (folder / "audit.jsonl").unlink()
    result = verify(folder)
    assert result.problems[0] == "audit.jsonl: missing (the audit trail)"
    assert "run.json: not recorded in the audit trail" in result.problems


def test_not_a_run_folder(tmp_path, runs):
    (tmp_path / "notes.txt").write_text("x")
    done = cli("verify", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"not a run folder: {tmp_path} has no run.json and no audit.jsonl; give the folder "
        "`clearcube run` wrote (out/<run-id>)"
    ]
    parent = runs["signed"].parent
    done = cli("verify", str(parent))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"not a run folder: {parent} has no run.json and no audit.jsonl; it holds run folders "
        "(signed, unsigned)"
    )
    with pytest.raises(cc.ConfigError, match="not a run folder"):
        verify(tmp_path)


def test_signing_key_errors_are_one_line_before_any_work(tmp_path, runs):
    absent = tmp_path / "absent.pem"
    done = cli("run", "--quiet", "--out", str(tmp_path / "x"), "--signing-key", str(absent))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: signing key {absent}: cannot be read (No such file or directory); give a PEM file"
    ]
    assert not (tmp_path / "x").exists()
    junk = tmp_path / "junk.pem"
    junk.write_text("junk")
    with pytest.raises(cc.ConfigError, match="not a PEM private key"):
        run(out=tmp_path / "y", signing_key=junk)
    assert not (tmp_path / "y").exists()
    bad = cli("verify", str(runs["signed"]), "--public-key", str(junk))
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        f"public key {junk}: not a PEM public key (expected '-----BEGIN PUBLIC KEY-----'); give "
        "the clearcube-signing.pub.pem file of the key that signed the run"
    ]


def test_keys_commands(tmp_path):
    done = cli("keys", "new", str(tmp_path / "k"))
    assert done.returncode == 0, done.stderr
    fp = done.stdout.splitlines()[2].removeprefix("fingerprint: ")
    assert fp == load_public_key(tmp_path / "k" / "clearcube-signing.pub.pem").fingerprint
    shown = cli("keys", "fingerprint", str(tmp_path / "k" / "clearcube-signing.pub.pem"))
    assert shown.stdout.strip() == fp
    again = cli("keys", "new", str(tmp_path / "k"))
    assert again.returncode == 1
    assert len(again.stderr.splitlines()) == 1
    assert "an existing key is never replaced" in again.stderr


# --- the tamper matrix ---------------------------------------------------------------------

Change = dict[Path, bytes | None]  # path -> new content, None: removed


def text_lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def tamperings(folder: Path) -> Iterator[tuple[str, Change]]:
    """Every edit kind over the folder, as changes of files (each one a real change)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    pick = random.Random(13)
    for path in files:  # single-byte flips: a byte of every file, and the first and last byte
        data = path.read_bytes()  # of every file but the cube's (all of which one checksum covers)
        ends = {0, len(data) - 1} if "cube.zarr" not in path.parts else set()
        for at in sorted({pick.randrange(len(data)), *ends} if data else set()):
            yield "byte flipped", {path: data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]}
    chunks = [p for p in files if "cube.zarr" in p.parts]
    for path in [p for p in files if p not in chunks] + pick.sample(chunks, 10):
        yield "file deleted", {path: None}
    line_files = [folder / n for n in ("audit.jsonl", "scenes.csv", "review.jsonl")]
    line_files += [folder / "run.json", folder / "catalog.json", folder / "report.html"]
    line_files += sorted((folder / "stac").glob("*.json"))
    for path in line_files:
        lines = text_lines(path.read_bytes())
        every = path.suffix in (".jsonl", ".csv")  # records: every line; documents: one
        picks = range(len(lines)) if every else [len(lines) // 2]
        for i in picks:
            yield "line deleted", {path: b"".join(lines[:i] + lines[i + 1 :])}
            yield "line inserted", {path: b"".join(lines[: i + 1] + lines[i:])}
            if i + 1 < len(lines) and lines[i] != lines[i + 1]:
                swapped = [*lines[:i], lines[i + 1], lines[i], *lines[i + 2 :]]
                yield "lines reordered", {path: b"".join(swapped)}
    c = folder / "composites"
    for a, b in (
        (c / "median_2023.tif", c / "median_2024.tif"),
        (folder / "stac" / "composite-2023.json", folder / "stac" / "composite-2024.json"),
    ):
        yield "files swapped", {a: b.read_bytes(), b: a.read_bytes()}
    stray = (folder / "stac" / "masked-cube.json").read_bytes()
    for rel, data in (
        ("extra.txt", b"x"),
        ("composites/notes.md", b"x"),
        ("stac/extra-item.json", stray),
        (".scenes.csv.tmp/scenes.csv", (folder / "scenes.csv").read_bytes()),
        ("cube.zarr/red/c/99/0/0", b"x"),
    ):
        yield "extra file", {folder / rel: data}


def detected(folder: Path, change: Change, check: Callable[[], VerifyResult]) -> bool:
    """Apply ``change``, verify, and put every file back as it was."""
    before = {p: p.read_bytes() if p.exists() else None for p in change}
    try:
        for path, data in change.items():
            if data is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        return not check().ok
    finally:
        for path, data in before.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        for extra in (folder / ".scenes.csv.tmp", folder / "cube.zarr/red/c/99"):
            shutil.rmtree(extra, ignore_errors=True)


def test_tamper_matrix(copy, keys):
    """Each edit kind x detected / total, for an unsigned run (verified without a key) and a
    signed one (verified with its public key); printed (pytest -s) and asserted."""
    public = load_public_key(keys["producer"].public)
    own = load_signing_key(keys["other"].private)
    folders = {"unsigned": copy("unsigned"), "signed": copy("signed")}
    checks = {
        "unsigned": lambda f: verify(f),
        "signed": lambda f: verify(f, public_key=public),
    }
    table: dict[str, dict[str, list[int]]] = {}
    for name, folder in folders.items():
        assert checks[name](folder).ok
        for kind, change in tamperings(folder):
            cell = table.setdefault(kind, {}).setdefault(name, [0, 0])
            cell[0] += detected(folder, change, lambda f=folder, n=name: checks[n](f))
            cell[1] += 1
        assert checks[name](folder).ok  # every change was put back
    statements = []
    for name, treatments in (("unsigned", ["strip"]), ("signed", ["keep", "strip", "own"])):
        for edit in FORGERIES.values():
            for treatment in treatments:
                forged = forge(copy(name), edit, signature=treatment, own=own)
                result = checks[name](forged)
                cell = table.setdefault("re-chained forgery", {}).setdefault(name, [0, 0])
                cell[0] += not result.ok
                cell[1] += 1
                if result.ok:
                    statements.append(result.summary()[1])
    print("\nedit kind             unsigned (no key)   signed (--public-key)")
    for kind, cells in table.items():
        u, s = cells["unsigned"], cells["signed"]
        print(f"{kind:<22}{u[0]:>5} / {u[1]:<13}{s[0]:>5} / {s[1]}")
    for kind, cells in table.items():
        unsigned, signed = cells["unsigned"], cells["signed"]
        assert signed[0] == signed[1], (kind, signed)  # signed: everything is detected
        if kind == "re-chained forgery":
            assert unsigned == [0, len(FORGERIES)]  # unsigned: a re-chained forgery is not...
            assert signed[1] == 3 * len(FORGERIES)
        else:
            assert unsigned[0] == unsigned[1], (kind, unsigned)
    # ...and verify said it had checked integrity only
    assert len(statements) == len(FORGERIES)
    assert all(s.startswith("integrity only, origin not checked") for s in statements)
    n_files = sum(1 for p in folders["signed"].rglob("*") if p.is_file())
    assert table["byte flipped"]["signed"][1] > n_files  # every file, some three times
