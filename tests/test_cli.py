"""The console script: version, show-versions, exit codes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import clearcube
from clearcube.resources import demo_catalog_path

from ._cli import cli

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, timeout=120)


def test_version():
    done = run("--version")
    assert done.returncode == 0
    assert clearcube.__version__ in done.stdout


def test_show_versions_names_gdal():
    done = run("show-versions")
    assert done.returncode == 0
    assert "gdal:" in done.stdout
    assert "numpy:" in done.stdout


def test_unknown_command_is_usage_error():
    done = run("no-such-command")
    assert done.returncode == 2
    assert "No such command" in done.stderr


DEMO = "demo"
BBOX = ["--bbox", "-54.035", "-3.025", "-53.965", "-2.985"]


def test_search_table_json_and_save(tmp_path):
    import json

    done = run("search", "--source", DEMO, *BBOX, "--max-cloud", "20")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == [
        "id",
        "datetime",
        "platform",
        "cloud",
        "qa",
        "crs",
    ]
    assert "qa_pixel (landsat-qa-pixel)" in done.stdout
    assert "9 item(s)" in done.stderr
    saved = tmp_path / "aoi.json"
    done = run(
        "search", "--source", DEMO, *BBOX, "--max-cloud", "20", "--json", "--save", str(saved)
    )
    rows = json.loads(done.stdout)
    assert len(rows) == 9
    assert all(float(r["cloud"]) <= 20 for r in rows)
    again = run("search", "--source", str(saved), "--json")
    assert {r["id"] for r in json.loads(again.stdout)} == {r["id"] for r in rows}


def test_search_errors_are_one_line_exit_1():
    done = run("search", "--source", "nowhere", "--datetime", "2024-01-01")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "unknown provider 'nowhere'" in done.stderr
    assert "Traceback" not in done.stderr
    done = run("search", "--source", DEMO, "--bbox", "10", "50", "9", "51")
    assert done.returncode == 1
    assert "west 10.0 is east of east 9.0" in done.stderr
    done = run("search", "--bbox", "1", "2")
    assert done.returncode == 2  # click usage error


def test_inspect_shows_the_plan():
    item = (
        demo_catalog_path().parent
        / "landsat-c2-l2/LC08_L2SP_226062_20210819_02_T1/LC08_L2SP_226062_20210819_02_T1.json"
    )
    done = run("inspect", str(item))
    assert done.returncode == 0, done.stderr
    assert "qa_encoding: landsat-qa-pixel" in done.stdout
    assert "crs: EPSG:32622" in done.stdout


def test_inspect_by_id_in_the_demo_catalog():
    done = run("inspect", "S2B_22MBA_20220720_0_L2A", "--json")
    assert done.returncode == 0, done.stderr
    import json

    info = json.loads(done.stdout)
    assert info["processing_baseline"] == "04.00"
    assert info["bands"]["nir"]["offset"] == -0.1
    missing = run("inspect", "NO_SUCH_ITEM")
    assert missing.returncode == 1
    assert "no such item" in missing.stderr


HEAVY = ("pandas", "dask", "rasterio", "xarray", "odc", "pystac", "clearcube.engines")


def test_version_and_help_import_no_heavy_module():
    # the start-up cost of the CLI is what it imports: --version and --help need none of the
    # data stack (the speed itself is measured in benchmarks/startup.py, not asserted here)
    import sys

    probe = (
        "import sys\n"
        "from clearcube.cli import cli\n"
        "for args in (['--version'], ['run', '--help'], ['search', '--help']):\n"
        "    try:\n"
        "        cli.main(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted({m for m in sys.modules if m.startswith(heavy)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _demo_run(tmp_path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return cli("run", "--out", str(tmp_path / "run"), *args, timeout=timeout)


def test_run_json_is_one_document_and_pipes(tmp_path):
    import json
    import shlex
    import shutil
    import sys

    exe = shutil.which("clearcube")
    assert exe, "the console script is installed"
    out = tmp_path / "run"
    pipeline = (
        f"{shlex.quote(exe)} run --json --out {shlex.quote(str(out))} "
        f"| {shlex.quote(sys.executable)} -m json.tool"
    )
    done = subprocess.run(
        pipeline, shell=True, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # json.tool re-printed exactly one document
    assert set(doc) == {"run_id", "out_dir", "summary", "reused", "audit_head", "scenes"}
    assert doc["out_dir"] == str(out)
    assert len(doc["run_id"]) == 12
    assert doc["summary"]["scenes"] == len(doc["scenes"]) == 13
    assert sum(doc["summary"]["decisions"].values()) == 13
    assert (out / "run.json").is_file()
    assert json.loads((out / "run.json").read_text())["run_id"] == doc["run_id"]
    # progress and stage lines went to stderr, with the stage names and scene counts
    for line in ("[search] 13 item(s) in demo", "[plan] 13 scene(s) in 13 slice(s)", "[screen]"):
        assert line in done.stderr
    assert "% Completed" in done.stderr
    # a rerun reuses everything and says so in the same document
    again = _demo_run(tmp_path, "--json")
    assert json.loads(again.stdout)["reused"] == ["all"]


@pytest.mark.integration  # a dask LocalCluster
def test_run_json_on_a_cluster_keeps_progress_off_stdout(tmp_path, dask_cluster):
    import json

    done = _demo_run(tmp_path, "--json", "--scheduler", dask_cluster.scheduler_address)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["scenes"] == 13
    assert "[screen]" in done.stderr
    assert "[#" in done.stderr  # distributed's text bar, on stderr


def test_verbose_and_log_file(tmp_path):
    log = tmp_path / "run.log"
    done = cli(
        "-v", "search", "--source", "demo", "--datetime", "2023", "--log-file", str(log),
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "INFO clearcube.catalog: searching demo: bbox None, datetime 2023-01-01T00:00:00Z/" \
        "2023-12-31T23:59:59Z" in done.stderr  # fmt: skip
    assert "INFO clearcube.catalog: found 2 item(s)" in done.stderr
    assert "DEBUG" not in done.stderr
    text = log.read_text()
    assert "INFO clearcube.catalog: found 2 item(s)" in text
    assert text[:4].isdigit()  # timestamped
    # without -v: nothing but the result and the count; errors reach the log file too
    quiet = cli("search", "--source", "demo", "--datetime", "2023-8", "--log-file", str(log))
    assert quiet.returncode == 1
    assert quiet.stderr.count("\n") == 1
    assert "ERROR clearcube.cli: datetime '2023-8' is not understood" in log.read_text()


def test_aoi_polygon_counts_fractions_inside_it(tmp_path):
    import json

    import pandas as pd

    west, south, east, north = -54.035, -3.025, -53.965, -2.985
    triangle = {  # the lower-left half of the default bbox, as a Feature
        "type": "Feature",
        "properties": {"name": "lower-left"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [west, north], [west, south]]],
        },
    }
    aoi = tmp_path / "half.geojson"
    aoi.write_text(json.dumps(triangle))
    box = cli("run", "--quiet", "--out", str(tmp_path / "box"), timeout=300)
    assert box.returncode == 0, box.stderr
    half = cli("run", "--quiet", "--aoi", str(aoi), "--out", str(tmp_path / "half"), timeout=300)
    assert half.returncode == 0, half.stderr
    a = pd.read_csv(tmp_path / "box" / "scenes.csv").set_index("id")
    b = pd.read_csv(tmp_path / "half" / "scenes.csv").set_index("id")
    assert set(a.index) == set(b.index)
    ratio = b["aoi_px"] / a["aoi_px"]
    assert ratio.between(0.45, 0.55).all(), ratio
    assert (b["valid_px"] <= b["aoi_px"]).all()
    assert (b["cloud_fraction"] - a["cloud_fraction"]).abs().max() > 0.01  # counted inside
    cfg = json.loads((tmp_path / "half" / "run.json").read_text())["config"]["search"]
    assert cfg["aoi"] == str(aoi)
    assert cfg["bbox"] is None
    assert cfg["geometry"]["type"] == "Polygon"


def test_run_config_aoi_is_relative_to_the_config(tmp_path):
    import json

    from clearcube.resources import config_path
    from clearcube.runconfig import load_run_config

    ring = [[-54.03, -3.02], [-53.97, -3.02], [-53.97, -2.99], [-54.03, -3.02]]
    (tmp_path / "areas").mkdir()
    (tmp_path / "areas" / "site.geojson").write_text(
        json.dumps({"type": "Polygon", "coordinates": [ring]})
    )
    text = (
        config_path()
        .read_text()
        .replace("bbox = [-54.035, -3.025, -53.965, -2.985]", 'aoi = "areas/site.geojson"')
    )
    (tmp_path / "site.toml").write_text(text)
    cfg = load_run_config(tmp_path / "site.toml")
    assert cfg.search.aoi == str(tmp_path / "areas" / "site.geojson")
    assert cfg.search.geometry == {"type": "Polygon", "coordinates": [ring]}
    assert cfg.search.search_bbox == (-54.03, -3.02, -53.97, -2.99)
    # the AOI's content is part of the run id: a changed file is another run
    ring[1] = [-53.98, -3.02]
    (tmp_path / "areas" / "site.geojson").write_text(
        json.dumps({"type": "Polygon", "coordinates": [ring]})
    )
    assert load_run_config(tmp_path / "site.toml").digest() != cfg.digest()
    # a --bbox override replaces the AOI, an --aoi override the bbox
    boxed = cfg.with_overrides(search={"bbox": (-54.0, -3.0, -53.99, -2.99)})
    assert (boxed.search.aoi, boxed.search.geometry) == (None, None)


def test_config_takes_a_packaged_name(tmp_path):
    done = cli("run", "--quiet", "--config", "humid-tropics", "--out", str(tmp_path / "t"))
    assert done.returncode == 0, done.stderr
    import json

    cfg = json.loads((tmp_path / "t" / "run.json").read_text())["config"]
    assert cfg["mask"]["cloud_threshold"] == 0.6
    assert cfg["search"]["source"] == "demo"
