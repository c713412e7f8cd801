"""Searching a static catalog of mangled real items: results, or one-line ItemErrors that name
the item and the field; the command line shows a fallback row instead of a traceback."""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import clearcube as cc
from clearcube.sensors.plan import ScenePlan, plan_items

from ._cli import cli
from .test_plan_properties import mutate, real_items

pytestmark = pytest.mark.realdata

ES = "stac/earth-search-v1/sentinel-2-l2a/items/S2A_32TMT_20200305_1_L2A.json"
PC = (
    "stac-more/planetary-computer/sentinel-2-l2a/"
    "S2A_MSIL2A_20230216T145731_R082_T21UYT_20230217T083102.json"
)


def collection_file(folder: Path, features: list[dict]) -> str:
    path = folder / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return str(path)


@pytest.fixture(scope="module")
def es(realdata):
    return json.loads((realdata / ES).read_text())


@pytest.fixture(scope="module")
def unknown_baseline(realdata):
    """A Planetary Computer item whose baseline is "unknown" (and no product name)."""
    item = json.loads((realdata / PC).read_text())
    item["id"] += "-unknown-baseline"
    item["properties"]["s2:processing_baseline"] = "unknown"
    item["properties"].pop("s2:product_uri")
    return item


def test_an_unknown_baseline_is_searched_planned_and_listed(tmp_path, es, unknown_baseline):
    source = collection_file(tmp_path, [es, unknown_baseline])
    found = cc.search(source=source)
    assert [i.id for i in found] == [es["id"], unknown_baseline["id"]]
    plans = plan_items(found)
    assert all(isinstance(p, ScenePlan) for p in plans)
    odd = plans[1]
    assert odd.bands["red"].offset_source == "date-rule"
    assert "no usable processing baseline" in odd.offset_conflict
    assert "s2:processing_baseline 'unknown' is not a processing baseline (ignored)" in odd.notes
    junk_cloud = copy.deepcopy(es)
    junk_cloud["id"] += "-junk-cloud"
    junk_cloud["properties"]["eo:cloud_cover"] = "abc"
    source = collection_file(tmp_path, [es, unknown_baseline, junk_cloud])
    done = cli("search", "--source", source, "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["qa"] for r in rows] == ["scl (s2-scl)", "SCL (s2-scl)", "scl (s2-scl)"]
    assert rows[0]["cloud"] == f"{es['properties']['eo:cloud_cover']:.2f}"
    assert rows[2]["cloud"] == ""  # not a number: shown blank, and the plan ignores it
    assert cc.identify(junk_cloud).cloud_cover is None


@pytest.mark.parametrize(
    ("edit", "filters", "words"),
    [
        (lambda i: i["properties"].update({"eo:cloud_cover": "abc"}), {"max_cloud": 50}, "eo:c"),
        (lambda i: i["properties"].update({"datetime": "yesterday"}), {}, "not a valid STAC"),
        (
            lambda i: i["properties"].update({"datetime": "yesterday"}),
            {"datetime": "2020-01-01/2021-01-01"},
            "properties.datetime 'yesterday'",
        ),
        (lambda i: i.update({"bbox": [1, "a", 3, 4]}), {"bbox": (9, 47, 10, 48)}, "bbox"),
        (lambda i: i["assets"]["scl"].pop("href"), {}, "not a valid STAC item"),
        (lambda i: i.update({"properties": [1]}), {}, "not an object"),
    ],
)
def test_a_malformed_item_is_an_item_error(tmp_path, es, edit, filters, words):
    item = copy.deepcopy(es)
    edit(item)
    source = collection_file(tmp_path, [item])
    with pytest.raises(cc.ItemError) as exc:
        cc.search(source=source, **filters)
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith((f"{es['id']}:", "<no id>:"))
    assert words in text


@given(data=st.data())
def test_search_gives_items_or_an_item_error(realdata, data):
    item = json.loads(data.draw(st.sampled_from(real_items()), label="item"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        mutate(item, data)
    filters = data.draw(
        st.sampled_from(
            [
                {},
                {"datetime": "2000-01-01/2030-12-31"},
                {"max_cloud": 60},
                {"bbox": (-180, -90, 180, 90)},
                {"query": {"platform": {"eq": "sentinel-2a"}}},
            ]
        ),
        label="filters",
    )
    with tempfile.TemporaryDirectory() as folder:
        try:
            source = collection_file(Path(folder), [item])
        except ValueError:
            return  # JSON cannot hold what was drawn (a NaN key, a float beyond range)
        with warnings.catch_warnings():
            # pystac's own notices about odd extension fields are not under test here
            warnings.simplefilter("ignore", UserWarning)
            try:
                found, refusal = cc.search(source=source, **filters), None
            except cc.ItemError as exc:
                found, refusal = [], str(exc)
    if refusal is not None:
        assert "\n" not in refusal
        assert refusal.split(":", 1)[0] in (item.get("id"), "<no id>")
        return
    for plan in plan_items(found):  # whatever search let through plans or falls back
        assert plan.id
