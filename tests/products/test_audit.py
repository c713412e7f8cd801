"""The audit chain detects any edit, deletion, insertion, reordering or truncation; its signed
end record tells a re-chained forgery from the producer's trail."""

from __future__ import annotations

import json

import pytest

from clearcube.products.audit import AuditLog, record_hash, signed_message, verify_audit
from clearcube.products.signing import load_public_key, load_signing_key, new_key_pair


@pytest.fixture
def trail(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("config", {"hash": "abc", "cloud_threshold": 0.3})
        log.append("scene_used", {"id": "S2B_22MBC_20240105_0_L2A", "cloud_fraction": 0.12})
        log.append(
            "scene_excluded",
            {
                "id": "LC09_L2SP_226062_20240110_02_T1",
                "reason": "over threshold",
                "cloud_fraction": 0.71,
            },
        )
        log.append("fallback", {"id": "S2A_21MZT_20240120_0_L2A", "reason": "QA unreadable"})
        log.close({"products": 2})
    return path


def lines(path):
    return path.read_text().splitlines()


def test_intact_trail_verifies(trail):
    result = verify_audit(trail)
    assert result.ok, result.error
    assert result.records == 5
    assert result.finished
    assert result.kinds["scene_used"] == 1


def test_any_changed_byte_is_detected(trail):
    original = trail.read_bytes()
    for offset in range(0, len(original), 7):
        changed = bytearray(original)
        changed[offset] = ord("#") if changed[offset] != ord("#") else ord("$")
        trail.write_bytes(bytes(changed))
        result = verify_audit(trail)
        assert not result.ok, offset
        assert result.error.startswith("line ")
    trail.write_bytes(original)
    assert verify_audit(trail).ok


def test_every_flipped_bit_and_inserted_blank_is_detected(trail):
    # a newline flipped to "\v" (which str.splitlines also splits at), a blank inserted between
    # JSON tokens, the last newline removed: the same records, other bytes
    original = trail.read_bytes()
    changes = [
        original[:i] + bytes([original[i] ^ bit]) + original[i + 1 :]
        for i in range(len(original))
        for bit in (0x01, 0x20)
    ]
    changes += [original[:i] + b" " + original[i:] for i in range(len(original) + 1)]
    changes += [original[:-1], original + b"\n", original.replace(b"\n", b"\r\n", 1)]
    for changed in changes:
        trail.write_bytes(changed)
        assert not verify_audit(trail).ok, changed
    trail.write_bytes(original.replace(b'"seq":1', b'"seq": 1'))
    assert verify_audit(trail).error == (
        "line 2 (seq 1, kind 'scene_used'): not in the canonical form the writer uses "
        "(the line was edited)"
    )
    trail.write_bytes(original[:-1])
    assert verify_audit(trail).error == (
        "line 5: no newline at its end (the file was cut or edited)"
    )
    trail.write_bytes(original.replace(b'"cloud_fraction":0.12', b'"cloud_fraction":NaN'))
    assert "NaN or Infinity" in verify_audit(trail).error
    trail.write_bytes(original[:40] + b"\xff" + original[41:])
    assert verify_audit(trail).error == "byte 40: not UTF-8 text (the file was altered)"


def test_edit_names_the_record(trail):
    rows = lines(trail)
    record = json.loads(rows[2])
    record["data"]["cloud_fraction"] = 0.21  # make an excluded scene look usable
    rows[2] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    trail.write_text("\n".join(rows) + "\n")
    result = verify_audit(trail)
    assert result.error == "line 3 (seq 2, kind 'scene_excluded'): content was altered"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r[:2] + r[3:], "line 3: record seq 3, expected 2"),
        (lambda r: [r[0], r[2], r[1], *r[3:]], "line 2: record seq 2, expected 1"),
        (lambda r: r[:-1], "without an end record"),
        (lambda r: r[:-2] + r[-1:], "line 4: record seq 4, expected 3"),
        (lambda r: [*r, r[1]], "line 6: record seq 1, expected 5"),
    ],
)
def test_deletion_reordering_truncation(trail, mutate, message):
    trail.write_text("\n".join(mutate(lines(trail))) + "\n")
    result = verify_audit(trail)
    assert not result.ok
    assert message in result.error


def test_resume_continues_the_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append("config", {"hash": "x"})
    log.__exit__()  # a run that died before finishing
    assert not verify_audit(path).ok
    with AuditLog(path) as resumed:
        assert resumed.seq == 1
        resumed.append("resumed", {})
        resumed.close()
    result = verify_audit(path)
    assert result.ok, result.error
    assert result.records == 3
    with pytest.raises(ValueError, match="finished"):
        AuditLog(path)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """The producer's key pair and another one (a forger's, or a wrong one)."""
    base = tmp_path_factory.mktemp("keys")
    return new_key_pair(base / "producer"), new_key_pair(base / "other")


def signed_trail(path, pair):
    with AuditLog(path, signer=load_signing_key(pair.private)) as log:
        log.append("scene_excluded", {"id": "a", "reason": "over threshold"})
        log.append("scene_used", {"id": "b", "cloud_fraction": 0.1})
        log.close({"run_id": "r"})
    return path


def rechain(records, *, signer=None):
    """What a forger does after editing records: renumber, relink and rehash every record
    (re-signing the end with ``signer``, the forger's own key, when given)."""
    prev = "0" * 64
    for n, record in enumerate(records):
        record["seq"], record["prev"] = n, prev
        if record["kind"] == "end":
            record["data"]["records"] = n
            if signer is not None:
                record["data"]["signer"] = signer.fingerprint
                record["signature"] = signer.sign(signed_message(record))
        record["hash"] = record_hash(record)
        prev = record["hash"]
    return records


def write(path, records):
    """As the writer does (any other form of the same records is refused)."""
    text = "".join(
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        for r in records
    )
    path.write_text(text)


def read(path):
    return [json.loads(line) for line in lines(path)]


def test_signed_trail_verifies_with_its_public_key_only(tmp_path, keys):
    producer, other = keys
    path = signed_trail(tmp_path / "audit.jsonl", producer)
    end = read(path)[-1]
    assert end["data"]["signer"] == producer.fingerprint
    plain = verify_audit(path)  # without a key: integrity, and who the trail says signed
    assert plain.ok, plain.error
    assert plain.signer == producer.fingerprint
    assert not plain.origin_checked
    checked = verify_audit(path, public_key=load_public_key(producer.public))
    assert checked.ok, checked.error
    assert checked.origin_checked
    wrong = verify_audit(path, public_key=load_public_key(other.public))
    assert not wrong.ok
    assert wrong.error == (
        f"line 3 (seq 2, kind 'end'): signed by key {producer.fingerprint}, not by the given key "
        f"{other.fingerprint} ({other.public})"
    )


def test_an_unsigned_trail_fails_when_a_signed_one_is_expected(trail, keys):
    result = verify_audit(trail, public_key=load_public_key(keys[0].public))
    assert not result.ok
    assert result.error.startswith("line 5 (seq 4, kind 'end'): not signed, but a signed trail")


@pytest.mark.parametrize("treatment", ["keep", "strip", "own"])
def test_rechained_forgery_passes_the_chain_but_not_the_signature(tmp_path, keys, treatment):
    producer, forger = keys
    path = signed_trail(tmp_path / "audit.jsonl", producer)
    records = read(path)
    records[0]["kind"] = "scene_used"  # an over-threshold scene made usable
    records[0]["data"] = {"id": "a", "cloud_fraction": 0.1}
    if treatment == "strip":
        del records[-1]["signature"]
        del records[-1]["data"]["signer"]
    write(
        path,
        rechain(records, signer=load_signing_key(forger.private) if treatment == "own" else None),
    )
    assert verify_audit(path).ok  # the chain alone cannot tell: integrity only
    result = verify_audit(path, public_key=load_public_key(producer.public))
    assert not result.ok
    expected = {
        "keep": "the signature does not verify with key",
        "strip": "not signed, but a signed trail was expected",
        "own": f"signed by key {forger.fingerprint}, not by the given key",
    }[treatment]
    assert expected in result.error
    assert result.error.startswith("line 3 (seq 2, kind 'end')")


def test_every_byte_of_the_signature_is_chained(tmp_path, keys):
    path = signed_trail(tmp_path / "audit.jsonl", keys[0])
    text = path.read_text()
    start = text.index('"signature":"') + len('"signature":"')
    for offset in range(start, start + 88):
        changed = bytearray(text.encode())
        changed[offset] = ord("A") if changed[offset] != ord("A") else ord("B")
        path.write_bytes(bytes(changed))
        result = verify_audit(path)  # detected without the public key
        assert not result.ok, offset
        assert result.error.startswith("line 3 (seq 2, kind 'end'): ")


def test_a_removed_signature_or_one_on_another_record_is_named(tmp_path, keys):
    path = signed_trail(tmp_path / "audit.jsonl", keys[0])
    records = read(path)
    del records[-1]["signature"]
    write(path, rechain(records))
    assert "names signer" in verify_audit(path).error
    assert "carries no signature (it was removed)" in verify_audit(path).error
    records = read(signed_trail(tmp_path / "again.jsonl", keys[0]))
    records[1]["signature"] = records[-1]["signature"]
    write(path, rechain(records))
    result = verify_audit(path)
    assert result.error == (
        "line 2 (seq 1, kind 'scene_used'): a signature on a record that is not an end record"
    )


def test_attempts_signed_by_two_keys(tmp_path, keys):
    first, second = keys
    path = signed_trail(tmp_path / "audit.jsonl", first)
    with AuditLog(path, signer=load_signing_key(second.private), reopen=True) as log:
        log.append("resumed", {"retrying": ["a"]})
        log.close({"run_id": "r"})
    latest = verify_audit(path, public_key=load_public_key(second.public))
    assert latest.ok, latest.error
    assert latest.origin_checked
    # the last signature covers the whole chain; the earlier one is named, not checked
    assert latest.notes == [
        f"line 3 (seq 2, kind 'end'): signed by key {first.fingerprint}, not checked (another key)"
    ]
    earlier = verify_audit(path, public_key=load_public_key(first.public))
    assert not earlier.ok
    assert earlier.error.startswith(
        f"line 5 (seq 4, kind 'end'): signed by key {second.fingerprint}"
    )


def test_an_altered_earlier_attempt_fails_its_own_signature(tmp_path, keys):
    producer = keys[0]
    signer = load_signing_key(producer.private)
    path = signed_trail(tmp_path / "audit.jsonl", producer)
    with AuditLog(path, signer=signer, reopen=True) as log:
        log.append("resumed", {})
        log.close()
    records = read(path)
    records[0]["data"]["reason"] = "clear enough"
    # the forger holds the key now (a stolen key, or the producer): re-signs only the last end
    prev = "0" * 64
    for record in records:
        record["prev"] = prev
        if record is records[-1]:
            record["signature"] = signer.sign(signed_message(record))
        record["hash"] = record_hash(record)
        prev = record["hash"]
    write(path, records)
    result = verify_audit(path, public_key=load_public_key(producer.public))
    assert result.error == (
        f"line 3 (seq 2, kind 'end'): the signature does not verify with key "
        f"{producer.fingerprint} ({producer.public}): the trail was changed after it was signed"
    )


def test_records_after_the_last_signed_end_fail_with_a_key(tmp_path, keys):
    path = signed_trail(tmp_path / "audit.jsonl", keys[0])
    with AuditLog(path, reopen=True) as log:  # a later attempt that did not finish
        log.append("resumed", {})
    result = verify_audit(path, require_end=False, public_key=load_public_key(keys[0].public))
    assert result.error == "the trail ends after 4 records without a signed end record"
    assert verify_audit(path, require_end=False).ok  # integrity of what is there
