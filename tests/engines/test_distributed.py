"""The engines run unchanged on a dask.distributed cluster of worker processes."""

from __future__ import annotations

import numpy as np
import pytest
from odc.geo.geobox import GeoBox

import clearcube as cc
from clearcube.engines import ReadRequest, get_engine
from clearcube.gdal_env import gdal_options
from clearcube.sensors import get_encoding

pytestmark = pytest.mark.integration  # a dask LocalCluster


@pytest.fixture(scope="module")
def cluster_client(dask_cluster):
    import distributed

    with distributed.Client(dask_cluster, set_as_default=False) as client:
        yield client


@pytest.mark.parametrize("engine", ["odc", "native"])
def test_cluster_equals_threads(engine, scl_tiles, cluster_client):
    items = (scl_tiles["T21"][0], scl_tiles["T22"][0])
    geobox = GeoBox.from_bbox((829000, 9695000, 836000, 9699000), crs="EPSG:32721", resolution=20)
    req = ReadRequest.from_items(
        items,
        "scl",
        geobox=geobox,
        dtype=np.dtype("uint8"),
        fill=0,
        chunks_yx=(64, 64),
        gdal=gdal_options(),
    )
    lazy = get_engine(engine).read(req)
    threaded = lazy.compute(scheduler="threads").values
    distributed = cluster_client.compute(lazy.data).result()
    np.testing.assert_array_equal(distributed, threaded)
    assert (threaded > 0).any()
    if engine == "native":
        flags = get_engine("native").read_flags(req, get_encoding("s2-scl"), cc.MaskConfig())
        np.testing.assert_array_equal(
            cluster_client.compute(flags.data).result(), cc.decode(threaded, "s2-scl")
        )
