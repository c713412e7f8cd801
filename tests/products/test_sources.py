"""Source-item snapshots: the item's JSON as the run read it, hrefs scrubbed, one file each."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from clearcube.layout import RunLayout
from clearcube.products.sources import source_snapshots, write_snapshot

SECRET = "sig=s3cr3t"


def item(
    item_id: str,
    collection: str | None = "c",
    href: str = "https://h.example/a.tif",
    self_href: str = "https://h.example/items/{id}",
):
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "collection": collection,
        "properties": {"datetime": "2024-01-01T00:00:00Z"},
        "assets": {"qa": {"href": href, "alternate": {"s3": {"href": href}}}},
        "links": [{"rel": "self", "href": self_href.format(id=item_id)}],
    }


def test_snapshot_is_the_canonical_json_and_its_digest(tmp_path: Path):
    layout = RunLayout(tmp_path)
    raw = item("S2B_1")
    (snap,) = source_snapshots([raw], layout).values()
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    assert snap.digest == hashlib.sha256(canonical.encode()).hexdigest()
    write_snapshot(snap.path, snap)
    assert snap.path == layout.source_item("S2B_1")
    assert snap.href == "source-items/S2B_1.json"
    # nothing to scrub: the file's own SHA-256 is the recorded digest
    assert hashlib.sha256(snap.path.read_bytes()).hexdigest() == snap.digest
    assert json.loads(snap.path.read_text()) == raw


def test_signed_hrefs_and_credentials_never_reach_the_snapshot(tmp_path: Path):
    raw = item(
        "x",
        href=f"https://h.example/a.tif?{SECRET}",
        self_href=f"https://user:pw@h.example/items/{{id}}?{SECRET}",
    )
    (snap,) = source_snapshots([raw], RunLayout(tmp_path)).values()
    assert SECRET not in snap.text
    assert "user:pw" not in snap.text
    data = json.loads(snap.text)
    assert data["assets"]["qa"]["href"] == "https://h.example/a.tif"
    assert data["assets"]["qa"]["alternate"]["s3"]["href"] == "https://h.example/a.tif"
    assert data["links"][0]["href"] == "https://h.example/items/x"
    # the digest is still that of the item as given, so the two differ here
    assert hashlib.sha256(snap.text.encode()).hexdigest() != snap.digest


def test_names_are_safe_and_unique(tmp_path: Path):
    items = [item("a/b"), item("a_b"), item("a/b", "other"), item("a/b"), {"id": ""}, 42]
    snaps = source_snapshots(items, RunLayout(tmp_path))
    # the same (id, collection) twice is one snapshot; items without an id or JSON have none
    assert list(snaps) == [("a/b", "c"), ("a_b", "c"), ("a/b", "other")]
    names = [s.path.name for s in snaps.values()]
    assert names[0] == "a_b.json"
    assert len(set(names)) == 3
    assert all(n.startswith("a_b-") for n in names[1:])
    assert all(s.path.parent == tmp_path / "source-items" for s in snaps.values())
