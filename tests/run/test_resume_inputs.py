"""The inputs key the resume: a rerun whose source items changed since the recorded attempt
recomputes the run, says so on stderr and in the audit, and leaves a folder that verifies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from clearcube.errors import ConfigError
from clearcube.job import run
from clearcube.resources import demo_catalog_path
from clearcube.runconfig import load_run_config
from clearcube.verification import verify

from .._cli import REPO, cli

#: The item the tests change, and the provider's cloud cover they give it.
CHANGED = "S2B_22MBA_20230804_0_L2A"
NEW_COVER = 87.125


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A copy of the demo catalog, to change."""
    root = tmp_path / "catalog"
    shutil.copytree(demo_catalog_path().parent, root)
    return root / "catalog.json"


def _change_item(catalog: Path) -> None:
    (path,) = catalog.parent.rglob(f"{CHANGED}.json")
    doc = json.loads(path.read_text())
    assert doc["properties"]["eo:cloud_cover"] != NEW_COVER
    doc["properties"]["eo:cloud_cover"] = NEW_COVER
    path.write_text(json.dumps(doc))


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]


def _row(out: Path) -> pd.Series:
    scenes = pd.read_csv(out / "scenes.csv").set_index("id")
    return scenes.loc[CHANGED]


def _kill_after_records(args: list[str], records: int, timeout: float = 120) -> int:
    """Start ``clearcube ARGS``, SIGKILL it once its audit trail holds ``records`` records;
    returns how many it held."""
    out = Path(args[args.index("--out") + 1])
    cmd = [sys.executable, "-c", "from clearcube.cli import main; main()", *args]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            trail = out / "audit.jsonl"
            if trail.exists() and trail.read_text().count("\n") >= records:
                os.kill(proc.pid, signal.SIGKILL)
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.01)
        else:
            raise AssertionError("the audit trail never reached the record count")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return (out / "audit.jsonl").read_text().count("\n")


def test_kill_9_then_a_changed_item_is_recomputed(catalog, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--quiet", "--source", str(catalog), "--out", str(out)]
    held = _kill_after_records(args, records=5)
    kinds = [r["kind"] for r in _records(out)[:held]]
    assert "search" in kinds
    assert "end" not in kinds
    search = next(r for r in _records(out) if r["kind"] == "search")["data"]
    before = search["inputs"][f"sentinel-2-l2a/{CHANGED}"]
    assert len(search["inputs"]) == search["items"] == len(search["digests"])

    _change_item(catalog)
    left = [p for p in out.rglob("*.tmp") if p.is_dir()]  # what the killed run was building
    done = cli(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "inputs changed" in done.stderr
    assert CHANGED in done.stderr
    records = _records(out)
    (note,) = [r for r in records if r["kind"] == "inputs_changed"]
    assert note["data"] == {"changed": [f"sentinel-2-l2a/{CHANGED}"], "added": [], "removed": []}
    last_search = [r for r in records if r["kind"] == "search"][-1]["data"]
    assert last_search["inputs"][f"sentinel-2-l2a/{CHANGED}"] != before
    row = _row(out)
    assert row["provider_cloud_cover"] == NEW_COVER  # the scene was computed from the new item
    assert row["item_digest"] == last_search["digests"][last_search["ids"].index(CHANGED)]
    assert not any(p.exists() for p in left)  # stale temporaries removed at the start
    assert list(out.rglob("*.tmp")) == []
    assert verify(out).ok


def test_a_finished_run_with_a_changed_item_is_recomputed(catalog, tmp_path, caplog):
    cfg = load_run_config("default").with_overrides(search={"source": str(catalog)})
    out = tmp_path / "run"
    first = run(cfg, out=out)
    old = _row(out)
    assert run(cfg, out=out).reused == ["all"]  # same inputs: nothing recomputed

    _change_item(catalog)
    with caplog.at_level("WARNING", logger="clearcube.job"):
        again = run(cfg, out=out)
    assert again.reused != ["all"]
    assert any("inputs changed" in m and CHANGED in m for m in caplog.messages)
    assert _row(out)["provider_cloud_cover"] == NEW_COVER != old["provider_cloud_cover"]
    assert _row(out)["item_digest"] != old["item_digest"]
    kinds = [r["kind"] for r in _records(out)]
    assert kinds.count("end") == 2
    assert kinds.index("inputs_changed") > kinds.index("end")
    assert verify(out).ok
    # a product the change touched is written anew, one it did not (another year) is kept
    assert "scenes.csv" not in again.reused
    assert "composites/median_2021.tif" in again.reused
    assert first.scenes["id"].tolist() == again.scenes["id"].tolist()
    # and a third run over the same inputs reuses everything again
    assert run(cfg, out=out).reused == ["all"]
    # another config into the folder is refused, or with overwrite replaces the run and says so
    other = cfg.with_overrides(mask={"cloud_threshold": 0.5})
    with pytest.raises(ConfigError, match="another config"):
        run(other, out=out)
    caplog.clear()
    with caplog.at_level("WARNING", logger="clearcube.job"):
        replaced = run(other, out=out, overwrite=True)
    assert any("replacing the run of another config" in m for m in caplog.messages)
    assert replaced.reused == []
    assert verify(out).ok
