"""The audit chain detects any edit, deletion, insertion, reordering or truncation."""

from __future__ import annotations

import json

import pytest

from clearcube.products.audit import AuditLog, verify_audit


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


def test_rehashed_forgery_fails_with_a_key(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, key=b"verifier-secret") as log:
        log.append("scene_excluded", {"id": "a", "reason": "over threshold"})
        log.close()
    assert verify_audit(path, key=b"verifier-secret").ok
    assert not verify_audit(path, key=b"wrong").ok
    assert not verify_audit(path).ok  # a keyed trail does not verify as a plain one


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
