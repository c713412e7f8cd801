"""The output STAC of a demo run, and the demo catalog, are valid STAC, checked offline.

Every object is validated with ``jsonschema`` against its core schema (by type and
``stac_version``) and the schema of every extension it declares, with every ``$ref`` resolved
from the schema store in ``../shared/stac-schemas`` (each file under the path of the URL it is
published at): nothing is fetched. Then what a schema cannot check: the Collection's extent,
each composite's own period and scenes, ``raster:bands`` against the files, checksums, and
relative ``derived_from`` links that still resolve after the run folder is moved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
import rasterio
from jsonschema import FormatChecker
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from clearcube.job import run
from clearcube.resources import config_path, demo_catalog_path
from clearcube.runconfig import load_run_config

REPO = Path(__file__).resolve().parents[2]
DEMO = demo_catalog_path().parent

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@pytest.fixture(scope="module")
def schemas() -> Path:
    """The offline STAC schema store; skipped in a user's clone without it, a failure in CI."""
    env = os.environ.get("CLEARCUBE_STAC_SCHEMAS")
    path = Path(env) if env else REPO.parent / "shared" / "stac-schemas"
    if not (path / "schemas.stacspec.org").is_dir():
        message = f"STAC schema store not found at {path} (set CLEARCUBE_STAC_SCHEMAS)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + "; CI must run with ../shared beside the clone")
        pytest.skip(message)
    return path


class Validator:
    """Validates STAC objects against the schema store, resolving nothing over the network."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.fetched: set[str] = set()

        def retrieve(uri: str) -> Resource:
            parts = urlsplit(uri)
            path = store / parts.netloc / parts.path.lstrip("/")
            if not path.is_file():
                raise FileNotFoundError(f"schema {uri} is not in the store ({path})")
            self.fetched.add(uri)
            return Resource.from_contents(
                json.loads(path.read_text()), default_specification=DRAFT7
            )

        self.registry: Registry = Registry(retrieve=retrieve)  # type: ignore[call-arg]
        self.formats = FormatChecker()
        # jsonschema checks date-time only with an optional package; check it here, strictly
        self.formats.checks("date-time", raises=ValueError)(self._date_time)

    @staticmethod
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.match(value):
            return False
        dt.datetime.fromisoformat(value.replace("z", "Z"))
        return True

    def core(self, obj: dict) -> str:
        version = obj["stac_version"]
        kind = {"Feature": "item", "Catalog": "catalog", "Collection": "collection"}[obj["type"]]
        return f"https://schemas.stacspec.org/v{version}/{kind}-spec/json-schema/{kind}.json"

    def errors(self, obj: dict) -> list[str]:
        """Every schema error of ``obj``, one line each, naming the schema and the field."""
        out = []
        for uri in (self.core(obj), *obj.get("stac_extensions", [])):
            schema = self.registry.get_or_retrieve(uri).value.contents
            cls = validator_for(schema)
            validator = cls(schema, registry=self.registry, format_checker=self.formats)
            for error in validator.iter_errors(obj):
                # an error under oneOf/anyOf sits at the top: name every field that failed in
                # its branches
                leaves, todo = [], [error]
                while todo:
                    e = todo.pop()
                    if e.context:
                        todo.extend(e.context)
                    else:
                        leaves.append(e)
                out.append(
                    f"{uri}: "
                    + "; ".join(
                        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:120]}"
                        for e in leaves
                    )
                )
        return out


@pytest.fixture(scope="module")
def validator(schemas) -> Validator:
    return Validator(schemas)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    cfg = load_run_config(config_path("default"))
    out = tmp_path_factory.mktemp("stac") / "run"
    run(cfg, out=out)
    return out


def stac_files(root: Path) -> list[Path]:
    """Every STAC object under ``root``, found by walking the links from its root."""
    seen: list[Path] = []
    todo = [root / "catalog.json"]
    while todo:
        path = todo.pop().resolve()
        if path in seen:
            continue
        seen.append(path)
        obj = json.loads(path.read_text())
        for link in obj.get("links", []):
            if link["rel"] in {"child", "item", "derived_from"}:
                todo.append(path.parent / link["href"])
    return seen


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_validator_is_not_vacuous(validator, demo_run):
    item = load(demo_run / "stac" / "masked-cube.json")
    assert validator.errors(item) == []
    # the old output's processing:config_digest is not a processing field
    bad = json.loads(json.dumps(item))
    bad["properties"]["processing:config_digest"] = "abc"
    assert any("processing" in e for e in validator.errors(bad))
    # the old demo items: projection v1.1.0 declared, its v2.0.0 field proj:code used
    old = load(next((DEMO / "sentinel-2-l2a").rglob("S2B_21MZS_20230804_0_L2A.json")))
    old["properties"]["proj:code"] = "EPSG:32721"
    assert any("projection/v1.1.0" in e for e in validator.errors(old))
    # a date-time that is not RFC 3339 and a checksum that is not hex
    bad = json.loads(json.dumps(item))
    bad["properties"]["start_datetime"] = "2021-01-01 00:00"
    bad["assets"]["cube"]["file:checksum"] = "sha256:xyz"
    errors = validator.errors(bad)
    assert any("start_datetime" in e for e in errors)
    assert any("file:checksum" in e for e in errors)


def test_every_object_of_a_run_validates_offline(validator, demo_run):
    files = stac_files(demo_run)
    kinds = {}
    for path in files:
        obj = load(path)
        kinds[obj["type"]] = kinds.get(obj["type"], 0) + 1
        assert validator.errors(obj) == [], path
    # the Collection, run + masked-cube + 4 composites, 13 source snapshots
    assert kinds == {"Collection": 1, "Feature": 6 + 13}
    assert all(p.is_relative_to(demo_run.resolve()) for p in files)
    # every core and extension schema came from the store
    assert any("projection/v2.0.0" in u for u in validator.fetched)
    assert any("schemas.stacspec.org/v1.1.0/item-spec" in u for u in validator.fetched)


def test_every_object_of_the_demo_catalog_validates_offline(validator):
    files = stac_files(DEMO)
    assert len(files) == 1 + 2 + 13
    for path in files:
        assert validator.errors(load(path)) == [], path


def run_items(root: Path) -> dict[str, dict]:
    catalog = load(root / "catalog.json")
    return {
        link["title"]: load(root / link["href"])
        for link in catalog["links"]
        if link["rel"] == "item"
    }


def test_collection_extent_covers_every_item(demo_run):
    catalog = load(demo_run / "catalog.json")
    assert catalog["type"] == "Collection"
    items = run_items(demo_run)
    assert set(items) == {"run", "masked-cube"} | {f"composite-{y}" for y in range(2021, 2025)}
    (w, s, e, n) = catalog["extent"]["spatial"]["bbox"][0]
    ((start, end),) = catalog["extent"]["temporal"]["interval"]
    for item in items.values():
        assert item["collection"] == catalog["id"]
        iw, is_, ie, in_ = item["bbox"]
        assert w <= iw
        assert s <= is_
        assert ie <= e
        assert in_ <= n
        assert start <= item["properties"]["start_datetime"]
        assert item["properties"]["end_datetime"] <= end
        assert not any(k.startswith("processing:config") for k in item["properties"])
        own = [k for k in item["properties"] if ":" not in k]
        assert set(own) <= {"datetime", "start_datetime", "end_datetime"}


def test_composites_carry_their_own_period_scenes_and_sources(demo_run):
    scenes = pd.read_csv(demo_run / "scenes.csv")
    slices = scenes[scenes["time"].notna()]
    years = pd.DatetimeIndex(slices["time"]).year
    items = run_items(demo_run)
    snapshot_of = dict(zip(slices["id"], slices["source_item"], strict=True))
    for year in range(2021, 2025):
        item = items[f"composite-{year}"]
        props = item["properties"]
        assert props["datetime"] is None
        assert props["start_datetime"] == f"{year}-01-01T00:00:00Z"
        assert props["end_datetime"] == f"{year}-12-31T23:59:59Z"
        used = slices[(years == year) & (slices["decision"] == "used")]
        assert props["clearcube:scenes"] == len(used) > 0
        assert [r["id"] for r in props["clearcube:evidence"]] == used["id"].tolist()
        derived = [link for link in item["links"] if link["rel"] == "derived_from"]
        assert sorted(link["href"] for link in derived) == sorted(
            f"../{snapshot_of[i]}" for i in used["id"]
        )
    over = set(slices.loc[slices["decision"] == "over_threshold", "id"])
    assert over, "the demo has over-threshold scenes"
    for name, item in items.items():
        if name.startswith("composite-"):
            titles = {link.get("title") for link in item["links"]}
            assert not titles & over, name
    cube = items["masked-cube"]
    assert cube["properties"]["clearcube:scenes"] == len(slices)
    assert len([link for link in cube["links"] if link["rel"] == "derived_from"]) == len(slices)


def test_cog_assets_declare_grid_and_raster_bands_as_the_files_do(demo_run):
    checked = 0
    for item in run_items(demo_run).values():
        for key, asset in item["assets"].items():
            if "geotiff" not in asset["type"]:
                continue
            path = (demo_run / "stac" / asset["href"]).resolve()
            bands = asset["raster:bands"]
            with rasterio.open(path) as src:
                assert len(bands) == src.count
                for i, band in enumerate(bands):
                    assert band["data_type"] == src.dtypes[i]
                    assert band["scale"] == src.scales[i]
                    assert band["offset"] == src.offsets[i]
                    nodata = src.nodatavals[i]
                    if nodata is None:
                        assert "nodata" not in band
                    elif nodata != nodata:
                        assert band["nodata"] == "nan"
                    else:
                        assert band["nodata"] == nodata
                t = src.transform
                for where in (item["properties"], asset):
                    assert where["proj:transform"] == [t.a, t.b, t.c, t.d, t.e, t.f]
                    assert where["proj:shape"] == [src.height, src.width]
                    assert where["proj:code"] == f"EPSG:{src.crs.to_epsg()}"
            if key == "reflectance":
                assert bands[0]["nodata"] == "nan"
                assert [b["name"] for b in asset["eo:bands"]] == ["red", "nir"]
            checked += 1
    assert checked == 12  # 4 periods: reflectance, clear count, clear dates


def test_every_asset_has_its_checksum_but_the_unfinished_audit(demo_run):
    unchecked = []
    for name, item in run_items(demo_run).items():
        for key, asset in item["assets"].items():
            path = (demo_run / "stac" / asset["href"]).resolve()
            assert path.exists(), (name, key)
            if "file:checksum" not in asset:
                unchecked.append(path.name)
                continue
            if path.is_file():
                want = hashlib.sha256(path.read_bytes()).hexdigest()
                assert asset["file:size"] == path.stat().st_size
            else:
                from clearcube.products.files import sha256_file

                want = sha256_file(path)
            assert asset["file:checksum"] == "1220" + want, (name, key)
    assert unchecked == ["audit.jsonl"]
    assert {"scenes", "review", "audit"} <= set(run_items(demo_run)["run"]["assets"])


def test_links_are_relative_and_survive_moving_the_run(demo_run, tmp_path):
    moved = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(demo_run, moved)
    for path in [moved / "catalog.json", *sorted((moved / "stac").glob("*.json"))]:
        for link in load(path)["links"]:
            href = link["href"]
            assert "://" not in href, (path.name, href)
            assert not href.startswith("/"), (path.name, href)
            target = (path.parent / href).resolve()
            assert target.is_file(), (path.name, href)
            assert target.is_relative_to(moved.resolve())
            if link["rel"] == "derived_from":
                assert load(target)["id"] == link["title"]
