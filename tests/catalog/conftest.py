"""The STAC API loaded with the demo items (served over HTTP by nginx) and real provider items."""

from __future__ import annotations

import copy
import json

import pystac
import pytest

from clearcube.demo import generate_demo

from ..conftest import realdata_dir


def real_features() -> list[dict]:
    root = realdata_dir() / "stac"
    out: dict[tuple[str, str], dict] = {}
    for path in sorted(root.rglob("*.json")):
        doc = json.loads(path.read_text())
        features = (
            doc
            if isinstance(doc, list)
            else (doc["features"] if doc.get("type") == "FeatureCollection" else [doc])
        )
        for f in features:
            if f.get("type") == "Feature" and f.get("collection") and f.get("geometry"):
                out[(f["collection"], f["id"])] = f
    return list(out.values())


def antimeridian_item(template: dict) -> dict:
    item = copy.deepcopy(template)
    item["id"] = "S2A_01KAA_20240110_0_L2A"
    item["geometry"] = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[179.6, -17.1], [180.0, -17.1], [180.0, -16.9], [179.6, -16.9], [179.6, -17.1]]],
            [[[-180.0, -17.1], [-179.6, -17.1], [-179.6, -16.9], [-180.0, -16.9], [-180.0, -17.1]]],
        ],
    }
    item["bbox"] = [179.6, -17.1, -179.6, -16.9]
    item["properties"]["datetime"] = "2024-01-10T22:10:00Z"
    return item


#: Items on the edges of August 2023, in their own collection: where a month ends.
EDGES = {
    "EDGE_A": "2023-07-31T23:59:59Z",  # last second before August
    "EDGE_B": "2023-08-01T00:00:00Z",  # first second of August
    "EDGE_C": "2023-08-31T23:59:59Z",  # last second of August
    "EDGE_D": "2023-09-01T00:00:00Z",
}


def edge_items(template: dict) -> list[dict]:
    out = []
    for name, when in EDGES.items():
        item = copy.deepcopy(template)
        item["id"] = name
        item["collection"] = "edge-test"
        item["properties"]["datetime"] = when
        out.append(item)
    return out


def collection_doc(cid: str) -> dict:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": cid,
        "description": cid,
        "license": "proprietary",
        "links": [],
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [[None, None]]},
        },
    }


@pytest.fixture(scope="session")
def demo_http(nginx):
    """The demo catalog served by nginx, its items pointing at http:// hrefs."""
    root = nginx.root / "demo-api"
    generate_demo(root, href_base=f"{nginx.url}/data/demo-api")
    return root / "catalog.json"


@pytest.fixture(scope="session")
def loaded_api(stac_api, demo_http, realdata):
    demo = [
        i.to_dict(include_self_link=False, transform_hrefs=False)
        for i in pystac.Catalog.from_file(str(demo_http)).get_items(recursive=True)
    ]
    for d in demo:
        d["links"] = []
    real = real_features()
    extra = [antimeridian_item(demo[0])]
    edges = edge_items(demo[0])
    features = demo + real + extra + edges
    stac_api.load(
        [collection_doc(c) for c in sorted({f["collection"] for f in features})], features
    )
    return {"url": stac_api.url, "demo": demo, "real": real, "extra": extra, "edges": edges}
