"""``clearcube.run(scheduler=client)``: a connected ``distributed.Client`` (what a dask-gateway
cluster hands out, its address alone lacking the cluster's TLS credentials) is computed on as
it is and left open."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clearcube.job import run
from clearcube.resources import config_path
from clearcube.runconfig import load_run_config


@pytest.mark.integration  # a dask LocalCluster
def test_run_on_a_connected_client(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    cfg = load_run_config(config_path("default"))
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        with distributed.get_task_stream(client) as stream:
            result = run(cfg, out=tmp_path / "client", scheduler=client, progress=True)
        assert len(stream.data) > 0  # the stages ran on the cluster
        assert client.status == "running"  # and the caller's client is still theirs
        assert client.submit(sum, [1, 2]).result() == 3
    local = run(cfg, out=tmp_path / "local")
    pd.testing.assert_frame_equal(result.scenes, local.scenes)
    a = xr.open_zarr(tmp_path / "client" / "cube.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "local" / "cube.zarr", consolidated=False)
    np.testing.assert_array_equal(a["flags"].values, b["flags"].values)
    assert "[screen]" in capsys.readouterr().err
