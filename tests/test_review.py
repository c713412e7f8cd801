"""Review resolutions on their own: how each decision changes, which are pending, what
`clearcube composite` uses."""

from __future__ import annotations

import pytest

from clearcube.decide import Decision
from clearcube.errors import ConfigError
from clearcube.products.audit import AuditLog
from clearcube.review import (
    RESOLUTION,
    Resolution,
    apply_resolution,
    composite_positions,
    has_pending,
    resolutions,
)

ACCEPT = Resolution("s", True, "checked by eye")
REJECT = Resolution("s", False, "striping")


@pytest.mark.parametrize(
    ("decision", "resolution", "want", "reason"),
    [
        (
            Decision("s", "over_threshold", "cloud fraction 0.372 > threshold 0.3", True),
            ACCEPT,
            "used",
            "accepted in review: checked by eye (was over_threshold: cloud fraction 0.372 > "
            "threshold 0.3)",
        ),
        (
            Decision("s", "review", "an outlier", True),
            REJECT,
            "rejected",
            "rejected in review: striping (was review: an outlier)",
        ),
        (Decision("s", "used"), REJECT, "rejected", "rejected in review: striping (was used)"),
        (Decision("s", "used"), ACCEPT, "used", "accepted in review: checked by eye (was used)"),
    ],
)
def test_a_resolution_decides_and_names_its_reason(decision, resolution, want, reason):
    out = apply_resolution(decision, resolution)
    assert (out.id, out.decision, out.reason, out.queued) == ("s", want, reason, False)


@pytest.mark.parametrize("kind", ["fallback", "no_valid_data"])
def test_a_scene_that_cannot_be_judged_is_never_accepted(kind):
    before = Decision("s", kind, "QA unreadable", True, "unreadable" if kind == "fallback" else "")
    out = apply_resolution(before, ACCEPT)
    assert out.decision == kind
    assert out.fallback == before.fallback
    assert out.reason.startswith("QA unreadable; accepted in review: checked by eye")
    assert "not applied" in out.reason
    assert apply_resolution(before, None) is before


def test_pending_means_recorded_after_the_last_run_attempt(tmp_path):
    trail = tmp_path / "audit.jsonl"
    with AuditLog(trail) as log:
        log.append("config", {"digest": "x"})
        log.close()
    assert not has_pending(trail)
    with AuditLog(trail, reopen=True) as log:
        log.append("resumed")
        log.append(RESOLUTION, {"id": "a", "resolution": "reject", "reason": "one"})
        log.append(RESOLUTION, {"id": "a", "resolution": "accept", "reason": "two"})
        log.close()
    assert has_pending(trail)
    (latest,) = resolutions(trail).values()
    assert (latest.id, latest.accept, latest.reason, latest.seq) == ("a", True, "two", 4)
    with AuditLog(trail, reopen=True) as log:
        log.append("resumed")
        log.append("config", {"digest": "x"})  # the next run applied it
        log.close()
    assert not has_pending(trail)
    assert resolutions(trail)["a"].accept  # still in force for later runs


def test_composite_uses_the_used_scenes_less_the_rejected(tmp_path):
    ids = ["a", "b", "c", "d"]
    decisions = ["used", "used", "over_threshold", "rejected"]
    assert composite_positions(ids, decisions, {}, tmp_path) == [0, 1]
    gone = {"b": Resolution("b", False, "x")}
    assert composite_positions(ids, decisions, gone, tmp_path) == [0]
    applied = {"a": Resolution("a", True, "x")}  # accepted and already used
    assert composite_positions(ids, decisions, applied, tmp_path) == [0, 1]
    waiting = {"c": Resolution("c", True, "x")}
    with pytest.raises(ConfigError, match="c was accepted in review after the run"):
        composite_positions(ids, decisions, waiting, tmp_path)
