"""Bad inputs as users give them, on the command line and through the Python API.

Each is one line on stderr (or one exception message) that names the value and the fix, exit
code 1 (2 for a usage error), nothing on stdout, and no product left in ``--out``. The CLI
cases call the console script's ``main`` in this process (the same code path as the
``clearcube`` script; a few also run the real script in a subprocess, ``test_real_script``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import clearcube as cc
from clearcube.catalog import search
from clearcube.cli import main
from clearcube.errors import ClearcubeError
from clearcube.job import run
from clearcube.resources import config_path
from clearcube.runconfig import RunConfig, SearchOptions

from ._cli import cli

DEFAULT = config_path("default").read_text()
BBOX_LINE = "bbox = [-54.035, -3.025, -53.965, -2.985]"
SQUARE = [[-54.03, -3.02], [-53.97, -3.02], [-53.97, -2.99], [-54.03, -2.99], [-54.03, -3.02]]


def polygon(ring: list[list[float]]) -> dict:
    return {"type": "Polygon", "coordinates": [ring]}


#: GeoJSON files the cases name as {aoi:NAME}.
AOIS: dict[str, object] = {
    "point": {"type": "Point", "coordinates": [-54.0, -3.0]},
    "line": {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "LineString", "coordinates": [[-54.0, -3.0], [-53.99, -3.01]]},
    },
    "nofeatures": {"type": "FeatureCollection", "features": []},
    "nogeometry": {"type": "Feature", "properties": {}, "geometry": None},
    "utm": polygon([[500000, 9660000], [510000, 9660000], [510000, 9670000], [500000, 9660000]]),
    "crs": {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32722"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": polygon(SQUARE)}],
    },
    "open": polygon(SQUARE[:-1]),
    "bowtie": polygon(
        [[-54.03, -3.02], [-53.97, -2.99], [-53.97, -3.02], [-54.03, -2.99], [-54.03, -3.02]]
    ),
    "positions": polygon([[-54.03], [-53.97], [-53.97], [-54.03]]),  # type: ignore[list-item]
    "flat": polygon([[-54.0, -3.0], [-53.9, -3.0], [-53.9, -3.0], [-54.0, -3.0]]),
    "europe": polygon([[10.0, 50.0], [10.1, 50.0], [10.1, 50.1], [10.0, 50.0]]),
}


@dataclass
class Case:
    """``clearcube ARGS`` (with ``{tmp}``, ``{aoi:NAME}``, ``{config:NAME}`` filled in)."""

    id: str
    args: list[str]
    code: int
    needles: tuple[str, ...]  # the value, then the fix


#: Run configs the cases name as {config:NAME}: the default with one line changed.
CONFIGS = {
    "serch": ("\n[search]\n", "\n[serch]\n"),
    "bboxx": (BBOX_LINE, "bboxx = [-54.035, -3.025, -53.965, -2.985]"),
    "bbox3": (BBOX_LINE, "bbox = [-54.035, -3.025, -53.965]"),
    "bboxswap": (BBOX_LINE, "bbox = [-53.965, -3.025, -54.035, -2.985]"),
    "bothareas": (BBOX_LINE, BBOX_LINE + '\naoi = "square.geojson"'),
    "aoimissing": (BBOX_LINE, 'aoi = "missing.geojson"'),
    "collection": (BBOX_LINE, BBOX_LINE + '\ncollections = ["sentinel-2-l2x"]'),
    "maxcloud": (BBOX_LINE, BBOX_LINE + "\nmax_cloud = 150"),
    "limit": (BBOX_LINE, BBOX_LINE + "\nlimit = 0"),
    "datetime": ('datetime = "2021-01-01/2024-12-31"', 'datetime = "2021-13"'),
    "engine": ('engine = "native"', 'engine = "gdal"'),
    "threshold": ("cloud_threshold = 0.30", "cloud_threshold = 2"),
    "toml": ("\n[search]\n", "\n[search\n"),
    "emptysearch": ('datetime = "2021-01-01/2024-12-31"', 'datetime = "2030"'),
}

CASES = [
    # --bbox
    Case("bbox-west-east-swapped", ["--bbox", "-53.965", "-3.025", "-54.035", "-2.985"], 1,
         ("west -53.965 is east of east -54.035", "order is W S E N")),
    Case("bbox-lat-lon-swapped", ["--bbox", "-3.025", "-54.035", "-2.985", "-53.965"], 1,
         ("bbox -3.025 -54.035 -2.985 -53.965", "bbox order is W S E N (longitude first)")),
    Case("bbox-south-above-north", ["--bbox", "-54.035", "-2.985", "-53.965", "-3.025"], 1,
         ("south -2.985 is north of north -3.025", "order is W S E N")),
    Case("bbox-latitude-95", ["--bbox", "-54", "95", "-53", "96"], 1,
         ("south latitude 95.0 outside [-90, 90]", "order is W S E N in degrees")),
    Case("bbox-longitude-200", ["--bbox", "200", "-3", "201", "-2"], 1,
         ("west longitude 200.0 outside [-180, 180]", "order is W S E N in degrees")),
    Case("bbox-nan", ["--bbox", "nan", "-3", "-53", "-2"], 1,
         ("west longitude nan", "order is W S E N")),
    Case("bbox-three-numbers", ["--bbox", "-54", "-3", "-53"], 2,
         ("'--bbox' requires 4 arguments", "--help")),
    Case("bbox-not-a-number", ["--bbox", "west", "-3", "-53", "-2"], 2,
         ("'west' is not a valid float", "--help")),
    Case("bbox-and-aoi", ["--bbox", "-54", "-3", "-53", "-2", "--aoi", "{aoi:square}"], 2,
         ("--bbox or --aoi", "not both")),
    # --datetime
    Case("datetime-word", ["--datetime", "yesterday"], 1,
         ("'yesterday' is not understood", "use a year, month, day or RFC 3339 time")),
    Case("datetime-month-13", ["--datetime", "2023-13"], 1,
         ("'2023-13' is not a valid date (month must be in 1..12)", "2023-08-14")),
    Case("datetime-february-30", ["--datetime", "2023-02-30"], 1,
         ("'2023-02-30' is not a valid date", "2023-08-14")),
    Case("datetime-hour-25", ["--datetime", "2023-08-14T25:00:00Z"], 1,
         ("'2023-08-14T25:00:00Z' is not a valid date", "2023-08-14T10:00:00Z")),
    Case("datetime-one-digit-month", ["--datetime", "2023-8"], 1,
         ("'2023-8' is not understood", "2023-08")),
    Case("datetime-reversed", ["--datetime", "2024/2023"], 1,
         ("'2024/2023' is reversed", "give start/end")),
    Case("datetime-open-both-ends", ["--datetime", "../.."], 1,
         ("'../..' is open at both ends", "give one end, or no datetime")),
    Case("datetime-three-parts", ["--datetime", "2021/2022/2023"], 1,
         ("'2021/2022/2023' is neither one instant nor a start/end pair", "open ends ..")),
    Case("datetime-finds-nothing", ["--datetime", "2030"], 1,
         ("datetime 2030 found no items", "widen the bbox, dates or max_cloud")),
    # --source
    Case("source-unknown-provider", ["--source", "earth-serch"], 1,
         ("unknown provider 'earth-serch'", "known providers: earth-search")),
    Case("source-missing-file", ["--source", "{tmp}/nowhere/catalog.json"], 1,
         ("nowhere/catalog.json: no such catalog file", "check the path")),
    Case("source-not-json", ["--source", "{tmp}/broken.json"], 1,
         ("broken.json: not valid JSON (Expecting property name", "fix the file")),
    Case("source-not-a-catalog", ["--source", "{tmp}/point.json"], 1,
         ("point.json: not a STAC catalog", "(type 'Point')")),
    # --aoi
    Case("aoi-missing", ["--aoi", "{tmp}/nowhere.geojson"], 1,
         ("nowhere.geojson not found", "check the path")),
    Case("aoi-not-json", ["--aoi", "{tmp}/broken.json"], 1,
         ("broken.json is not JSON", "give a GeoJSON file")),
    Case("aoi-point", ["--aoi", "{aoi:point}"], 1,
         ("point.geojson: a GeoJSON 'Point' is not an area", "give a GeoJSON Polygon")),
    Case("aoi-line-feature", ["--aoi", "{aoi:line}"], 1,
         ("'LineString' is not an area", "give a GeoJSON Polygon, MultiPolygon")),
    Case("aoi-no-features", ["--aoi", "{aoi:nofeatures}"], 1,
         ("nofeatures.geojson: the FeatureCollection has no features", "give a GeoJSON")),
    Case("aoi-feature-without-geometry", ["--aoi", "{aoi:nogeometry}"], 1,
         ("nogeometry.geojson: the Feature has no geometry", "give a GeoJSON")),
    Case("aoi-projected-coordinates", ["--aoi", "{aoi:utm}"], 1,
         ("position [500000, 9.66e+06] is not lon/lat", "reproject to EPSG:4326")),
    Case("aoi-crs-member", ["--aoi", "{aoi:crs}"], 1,
         ("in urn:ogc:def:crs:EPSG::32722, not lon/lat", "ogr2ogr -t_srs EPSG:4326")),
    Case("aoi-open-ring", ["--aoi", "{aoi:open}"], 1,
         ("open.geojson: a polygon ring needs at least 4 positions", "close the ring")),
    Case("aoi-self-intersecting", ["--aoi", "{aoi:bowtie}"], 1,
         ("bowtie.geojson: not a valid polygon (Self-intersection", "fix the geometry")),
    Case("aoi-positions-without-lat", ["--aoi", "{aoi:positions}"], 1,
         ("positions.geojson: a polygon ring is not a list of [lon, lat]", "give a GeoJSON")),
    Case("aoi-no-area", ["--aoi", "{aoi:flat}"], 1,
         ("flat.geojson: the polygon has no area", "give a GeoJSON Polygon")),
    Case("aoi-finds-nothing", ["--aoi", "{aoi:europe}"], 1,
         ("europe.geojson, datetime 2021-01-01/2024-12-31 found no items", "widen the bbox")),
    # --config and the run config's own values
    Case("config-missing", ["--config", "{tmp}/nowhere.toml"], 1,
         ("nowhere.toml: config file not found", "--config default")),
    Case("config-unknown-name", ["--config", "tropics"], 1,
         ("no packaged config named 'tropics'", "packaged configs: default, humid-tropics")),
    Case("config-not-toml", ["--config", "{config:toml}"], 1,
         ("toml.toml: not valid TOML", "(at line 11, column 8)")),
    Case("config-misspelled-table", ["--config", "{config:serch}"], 1,
         ("unknown top-level table 'serch'", "did you mean [search]?")),
    Case("config-misspelled-option", ["--config", "{config:bboxx}"], 1,
         ("bboxx: unknown option", "valid options: source, bbox, aoi")),
    Case("config-bbox-three-numbers", ["--config", "{config:bbox3}"], 1,
         ("got [-54.035, -3.025, -53.965]", "e.g. -54.1 -3.1 -53.9 -2.9")),
    Case("config-bbox-swapped", ["--config", "{config:bboxswap}"], 1,
         ("bboxswap.toml", "west -53.965 is east of east -54.035")),
    Case("config-bbox-and-aoi", ["--config", "{config:bothareas}"], 1,
         ("both bbox and aoi are set", "keep one")),
    Case("config-aoi-missing", ["--config", "{config:aoimissing}"], 1,
         ("{tmp}/missing.geojson not found", "check the path")),
    Case("config-unknown-collection", ["--config", "{config:collection}"], 1,
         ("collection 'sentinel-2-l2x' not in", "its collections: landsat-c2-l2, sentinel-2-l2a")),
    Case("config-max-cloud", ["--config", "{config:maxcloud}"], 1,
         ("max_cloud 150.0 outside [0, 100]", "give e.g. 40")),
    Case("config-limit-zero", ["--config", "{config:limit}"], 1,
         ("limit 0 must be at least 1", "give a count")),
    Case("config-datetime", ["--config", "{config:datetime}"], 1,
         ("'2021-13' is not a valid date", "2023-08-14")),
    Case("config-engine", ["--config", "{config:engine}"], 1,
         ("unknown engine 'gdal'", "valid engines: native, odc, stackstac")),
    Case("config-mask-threshold", ["--config", "{config:threshold}"], 1,
         ("threshold 2.0 outside [0, 1]", "0.3 = 30 %")),
    Case("config-finds-nothing", ["--config", "{config:emptysearch}"], 1,
         ("datetime 2030 found no items", "widen the bbox, dates or max_cloud")),
    # other options
    Case("log-file-in-missing-folder", ["--log-file", "{tmp}/no/such/run.log"], 2,
         ("cannot write {tmp}/no/such/run.log", "give a file in an existing folder")),
    Case("misspelled-option", ["--bboxx", "1"], 2,
         ("No such option '--bboxx'", "Did you mean '--bbox'?")),
]  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "point.json").write_text(json.dumps(AOIS["point"]))
    (tmp_path / "square.geojson").write_text(json.dumps(polygon(SQUARE)))
    for name, doc in AOIS.items():
        (tmp_path / f"{name}.geojson").write_text(json.dumps(doc))
    for name, (old, new) in CONFIGS.items():
        assert old in DEFAULT, name
        (tmp_path / f"{name}.toml").write_text(DEFAULT.replace(old, new, 1))
    return tmp_path


def fill(text: str, tmp: Path) -> str:
    text = text.replace("{tmp}", str(tmp))
    if text.startswith("{aoi:"):
        return str(tmp / f"{text[5:-1]}.geojson")
    if text.startswith("{config:"):
        return str(tmp / f"{text[8:-1]}.toml")
    return text


def clearcube(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capfd.readouterr()
    return int(done.value.code or 0), out, err


def test_the_matrix_is_large_and_distinct():
    assert len(CASES) + len(API_CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_cli_bad_input(case: Case, files: Path, capfd: pytest.CaptureFixture[str]):
    out_dir = files / "out"
    args = ["run", "--quiet", "--out", str(out_dir), *(fill(a, files) for a in case.args)]
    code, out, err = clearcube(capfd, *args)
    assert code == case.code, err
    assert out == ""  # stdout is for results only
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in case.needles:
        assert fill(needle, files) in lines[0], (needle, lines[0])
    assert not out_dir.exists(), sorted(p.name for p in out_dir.iterdir())


def test_a_failed_run_keeps_an_empty_out_folder_empty(files: Path, capfd):
    out_dir = files / "existing"
    out_dir.mkdir()
    code, _, err = clearcube(capfd, "run", "--quiet", "--out", str(out_dir), "--datetime", "2030")
    assert code == 1
    assert "found no items" in err
    assert out_dir.is_dir()
    assert list(out_dir.iterdir()) == []


def test_search_command_bad_inputs(files: Path, capfd):
    for args, needles in (
        (["--collections", "sentinel-2-l2a,,landsat-c2-l2"], ("collection id ''", "such as")),
        (["--collections", "sentinel-2-l2x"], ("'sentinel-2-l2x' not in", "its collections:")),
        (["--max-cloud", "150"], ("max_cloud 150.0 outside [0, 100]", "give e.g. 40")),
        (["--limit", "0"], ("limit 0 must be at least 1", "give a count")),
        (["--datetime", "2023-8"], ("'2023-8' is not understood", "2023-08")),
        (["--aoi", str(files / "point.geojson")], ("'Point' is not an area", "Polygon")),
    ):
        code, out, err = clearcube(capfd, "search", "--source", "demo", *args)
        assert code == 1, err
        assert out == ""
        assert len(err.splitlines()) == 1, err
        for needle in needles:
            assert needle in err, (needle, err)


def test_real_script(files: Path):
    """The installed console script gives the same one line and exit codes."""
    out_dir = files / "out"
    for args, code, needle in (
        (["--datetime", "2023-13"], 1, "'2023-13' is not a valid date"),
        (["--aoi", str(files / "bowtie.geojson")], 1, "not a valid polygon"),
        (["--bbox", "-3.025", "-54.035", "-2.985", "-53.965"], 1, "bbox order is W S E N"),
        (["--bbox", "1", "2"], 2, "'--bbox' requires 4 arguments"),
    ):
        done = cli("run", "--quiet", "--json", "--out", str(out_dir), *args)
        assert done.returncode == code, done.stderr
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert needle in done.stderr
        assert not out_dir.exists()


# The Python API: each call raises a ClearcubeError whose message is one line with the value
# and the fix, and leaves no run folder.
API_CASES = [
    ("search-bbox-string", lambda tmp: search("1 2 3", source="demo"),
     ("got '1 2 3'", "e.g. -54.1 -3.1 -53.9 -2.9")),
    ("search-datetime-int", lambda tmp: search(None, 2023, source="demo"),  # type: ignore[arg-type]
     ("datetime 2023 is not a string", "use a year, month, day")),
    ("search-datetime-triple", lambda tmp: search(None, ("2021", "2022", "2023"), source="demo"),
     ("neither one instant nor a start/end pair", "open ends ..")),
    ("search-collections-blank", lambda tmp: search(None, "2023", [""], source="demo"),
     ("collection id ''", "such as sentinel-2-l2a")),
    ("options-bbox", lambda tmp: SearchOptions(bbox=(10, 50, 9, 51)),
     ("west 10.0 is east of east 9.0", "order is W S E N")),
    ("options-geometry-point", lambda tmp: SearchOptions(geometry=AOIS["point"]),
     ("'Point' is not an area", "give a GeoJSON Polygon")),
    ("options-overrides", lambda tmp: RunConfig().with_overrides(search={"datetime": "2023-13"}),
     ("'2023-13' is not a valid date", "2023-08-14")),
    ("run-unknown-collection",
     lambda tmp: run(tmp / "collection.toml", out=tmp / "out"),
     ("collection 'sentinel-2-l2x' not in", "its collections: landsat-c2-l2, sentinel-2-l2a")),
    ("run-finds-nothing", lambda tmp: run(tmp / "emptysearch.toml", out=tmp / "out"),
     ("datetime 2030 found no items", "widen the bbox")),
    ("run-swapped-bbox",
     lambda tmp: run(
         cc.load_run_config(config_path()).with_overrides(
             search={"bbox": (-3.025, -54.035, -2.985, -53.965)}),
         out=tmp / "out"),
     ("bbox -3.025 -54.035 -2.985 -53.965", "bbox order is W S E N")),
    ("load-run-config-aoi", lambda tmp: cc.load_run_config(tmp / "aoimissing.toml"),
     ("missing.geojson not found", "check the path")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "call", "needles"), API_CASES, ids=[c[0] for c in API_CASES])
def test_python_api_bad_input(name, call, needles, files: Path):
    with pytest.raises(ClearcubeError) as exc:
        call(files)
    message = str(exc.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert not (files / "out").exists()
