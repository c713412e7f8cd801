"""The Prefect flow (the ``prefect`` extra) runs the job's stages as tasks, against a temporary
Prefect server (``prefect_test_harness``), and writes what ``clearcube run`` writes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import rasterio
from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings
from prefect.states import Failed
from prefect.testing.utilities import prefect_test_harness

from clearcube import flows
from clearcube.errors import AssetReadError, CatalogError, ConfigError, ItemError
from clearcube.products.zarr import open_cube
from clearcube.verification import verify

from ._cli import cli

#: the stages, in the order the flow runs them, and whether each reads remote data
STAGES = {
    "search": True,
    "plan": True,
    "screen": True,
    "decide": False,
    "read": True,
    "products": False,
    "audit": False,
}

pytestmark = pytest.mark.integration  # a Prefect API server on a free loopback port


@pytest.fixture(scope="module")
def harness():
    # offline: the temporary server sends no telemetry; it takes a minute to start on a busy
    # two-core machine
    with (
        temporary_settings(updates={PREFECT_SERVER_ANALYTICS_ENABLED: False}),
        prefect_test_harness(server_startup_timeout=240),
    ):
        yield


@pytest.fixture(scope="module")
def both(harness, tmp_path_factory):
    """The default job run by ``clearcube run`` and by the flow, each into its own folder."""
    root = tmp_path_factory.mktemp("flows")
    done = cli("run", "--quiet", "--out", str(root / "cli"))
    assert done.returncode == 0, done.stderr
    result = flows.clearcube_run("default", out=root / "flow")
    return root / "cli", root / "flow", result


def test_the_flow_writes_what_clearcube_run_writes(both):
    by_cli, by_flow, result = both
    assert result.out_dir == by_flow
    assert result.run_id == json.loads((by_cli / "run.json").read_text())["run_id"]
    assert result.audit_head
    assert not result.reused
    assert {"scenes.csv", "cube.zarr", "report.html"} <= set(result.products)
    # scenes.csv: the same rows and values
    a = pd.read_csv(by_cli / "scenes.csv")
    b = pd.read_csv(by_flow / "scenes.csv")
    pd.testing.assert_frame_equal(a, b)
    assert (b["decision"] == "used").sum() >= 5
    assert list(result.scenes["id"]) == list(b["id"])
    assert list(result.scenes["decision"]) == list(b["decision"])
    # the cube: every variable and coordinate equal
    ca, cb = open_cube(by_cli / "cube.zarr"), open_cube(by_flow / "cube.zarr")
    assert set(ca.variables) == set(cb.variables)
    for name in ca.variables:
        assert ca[name].equals(cb[name]), name
    assert ca.odc.geobox == cb.odc.geobox
    assert np.isfinite(cb["red"].values).any()
    # the composites: the same files, the same pixels
    cogs = sorted(p.name for p in (by_cli / "composites").glob("*.tif"))
    assert len(cogs) >= 4
    assert cogs == sorted(p.name for p in (by_flow / "composites").glob("*.tif"))
    for name in cogs:
        with (
            rasterio.open(by_cli / "composites" / name) as x,
            rasterio.open(by_flow / "composites" / name) as y,
        ):
            px, py = dict(x.profile), dict(y.profile)
            np.testing.assert_equal(px.pop("nodata", None), py.pop("nodata", None))
            assert px == py, name
            np.testing.assert_array_equal(x.read(), y.read(), err_msg=name)


def test_the_flows_folder_verifies_and_records_every_stage(both):
    _, by_flow, _ = both
    assert verify(by_flow).intact
    lines = (by_flow / "audit.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds[0] == "config"
    assert "search" in kinds
    assert kinds[-1] == "end"


def test_a_finished_folder_is_reused(both):
    _, by_flow, first = both
    again = flows.clearcube_run("default", out=by_flow)
    assert again.reused == ["all"]
    assert again.audit_head == first.audit_head


def test_a_bad_config_fails_the_flow_with_its_one_line_error(harness, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[serch]\nsource = "demo"\n')
    with pytest.raises(ConfigError, match="serch"):
        flows.clearcube_run(bad, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_io_stages_are_retried_on_io_errors_only():
    for name, io in STAGES.items():
        stage = getattr(flows, name)
        assert stage.name == name
        assert stage.retries == (flows.IO_RETRIES[0] if io else 0), name
    retried = flows.search.retry_condition_fn
    assert retried is not None
    for exc, again in (
        (CatalogError("http://x/catalog.json: 503"), True),
        (AssetReadError("B04.tif: connection reset"), True),
        (ConnectionResetError(), True),
        (ConfigError("bbox: swapped"), False),
        (ItemError("no QA asset"), False),
    ):
        assert retried(flows.search, None, Failed(data=exc)) is again, exc


def test_the_package_imports_without_prefect():
    code = (
        "import sys; sys.modules['prefect'] = None\n"
        "import clearcube, clearcube.job, clearcube.cli\n"
        "try:\n"
        "    import clearcube.flows\n"
        "except ImportError:\n"
        "    print('flows need prefect')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "flows need prefect"
