"""Property test: whatever happens to a real item's properties and assets, identify() returns a
ScenePlan or raises ItemError (one line, naming the item), and plan_items() never raises."""

from __future__ import annotations

import copy
import json
import math
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import clearcube as cc
from clearcube.sensors.plan import Fallback, ScenePlan, plan_items

from .conftest import realdata_dir

pytestmark = pytest.mark.realdata

# Fields the plan reads, so that mutations also hit keys a real item does not have.
KNOWN = {
    "item": ("id", "properties", "assets", "bbox", "collection", "links", "geometry"),
    "properties": (
        "datetime",
        "start_datetime",
        "platform",
        "constellation",
        "eo:cloud_cover",
        "proj:epsg",
        "proj:code",
        "proj:shape",
        "proj:transform",
        "s2:processing_baseline",
        "sentinel:processing_baseline",
        "processing:version",
        "s2:product_uri",
        "earthsearch:boa_offset_applied",
        "sentinel:boa_offset_applied",
        "processing:level",
    ),
    "asset": (
        "href",
        "proj:epsg",
        "proj:code",
        "proj:shape",
        "proj:transform",
        "raster:bands",
        "eo:bands",
        "bands",
        "nodata",
        "data_type",
        "raster:scale",
        "raster:offset",
    ),
    "raster": ("nodata", "data_type", "scale", "offset"),
    "assets": ("scl", "SCL", "red", "nir", "B04", "qa_pixel", "Fmask"),
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "",
            "abc",
            "yesterday",
            "unknown",
            "EPSG:abc",
            "EPSG:3271",
            "nan",
            "N0400",
            "04.00",
            "2024-13-45",
            "2024-01-31T10:00:00Z",
            "-1",
            "http://x/y.tif",
            "./rel.tif",
        ]
    )
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@cache
def real_items() -> tuple[str, ...]:
    root = realdata_dir()
    out = []
    for sub in ("stac", "stac-more"):
        for path in sorted(Path(root, sub).rglob("*.json")):
            if path.name in ("manifest.json", "itemcollection_all.json"):
                continue
            doc = json.loads(path.read_text())
            found = doc.get("features", [doc]) if isinstance(doc, dict) else doc
            out.extend(json.dumps(f) for f in found if f.get("type") == "Feature")
    return tuple(out)


def containers(item: dict) -> list[tuple[str, dict]]:
    """Every object of the item a mutation may edit, labelled by kind."""
    out: list[tuple[str, dict]] = [("item", item)]
    props, assets = item.get("properties"), item.get("assets")
    if isinstance(props, dict):
        out += [("properties", props)] * 4  # the fields that matter most, drawn more often
    if isinstance(assets, dict):
        out += [("assets", assets)] * 2
        for asset in assets.values():
            if isinstance(asset, dict):
                out.append(("asset", asset))
                bands = asset.get("raster:bands")
                if isinstance(bands, list) and bands and isinstance(bands[0], dict):
                    out.append(("raster", bands[0]))
    return out


def mutate(item: dict, data: st.DataObject) -> None:
    kind, target = data.draw(st.sampled_from(containers(item)), label="target")
    key = data.draw(st.sampled_from(sorted({*map(str, target), *KNOWN[kind]})), label=kind)
    if key in target and data.draw(st.booleans(), label="delete"):
        del target[key]
    else:
        target[key] = data.draw(junk, label=f"{kind}[{key}]")


@given(data=st.data())
def test_identify_gives_a_plan_or_an_item_error(realdata, data):
    items = real_items()
    item = json.loads(data.draw(st.sampled_from(items), label="item"))
    for _ in range(data.draw(st.integers(1, 5), label="mutations")):
        mutate(item, data)
    before = copy.deepcopy(item)
    try:
        plan = cc.identify(item)
    except cc.ItemError as exc:
        text = str(exc)
        assert "\n" not in text
        item_id = item.get("id")
        usable = isinstance(item_id, str) and item_id.strip() and item_id.isprintable()
        named = item_id if usable else "<no id>"
        assert text.startswith(f"{named}:"), text
        (result,) = plan_items([item])
        assert isinstance(result, Fallback)
        assert result.reason == text
        assert result.id == named
    else:
        assert isinstance(plan, ScenePlan)
        assert isinstance(plan.qa_nodata, int)
        assert isinstance(plan.qa_dtype, str)
        assert plan.crs is None or isinstance(plan.crs, str)
        assert plan.cloud_cover is None or 0 <= plan.cloud_cover <= 100
        assert plan.datetime.tzinfo is not None
        for band in plan.bands.values():
            assert math.isfinite(band.scale)
            assert math.isfinite(band.offset)
            assert isinstance(band.href, str)
            assert band.href
        assert all(isinstance(n, str) and "\n" not in n for n in plan.notes)
        (result,) = plan_items([item])
        assert isinstance(result, ScenePlan)
    assert item == before  # identify never edits what it is given
