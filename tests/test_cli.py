"""The console script: version, show-versions, exit codes."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
