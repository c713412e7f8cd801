"""Shared fixtures: the real provider data in ../shared/realdata, the loopback servers, the
hypothesis profiles, and the test kinds as markers.

Every test gets one of two markers at collection: ``integration`` when it talks to a real
server (a fixture below that starts nginx, stac-fastapi-pgstac or the fault-injecting server,
a dask cluster, headless Chromium: marked by hand where no fixture says it), else ``unit``;
and ``realdata`` when it reads ../shared/realdata. ``python -m pytest -m unit`` runs the
server-free tests of every stage.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


#: Fixtures that start a server: a test using one (directly or through another fixture) is an
#: integration test.
SERVER_FIXTURES = frozenset(
    {"nginx", "stac_api", "fault_server", "route_server", "demo_http", "loaded_api", "sas_storage"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "realdata" in names and item.get_closest_marker("realdata") is None:
            item.add_marker(pytest.mark.realdata)
        if names & SERVER_FIXTURES and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)


def realdata_dir() -> Path:
    """Where the real provider rasters and items live (``../shared/realdata`` by default)."""
    env = os.environ.get("CLEARCUBE_REALDATA")
    return Path(env) if env else REPO.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real-data folder; skipped in a user's clone without it, a failure under CI."""
    path = realdata_dir()
    if not (path / "PROVENANCE.md").is_file():
        message = f"real provider data not found at {path} (set CLEARCUBE_REALDATA)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + "; CI must run with ../shared beside the clone")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory):
    """A real nginx on loopback serving ``nginx.root`` under ``/data/`` (see tests/servers)."""
    import shutil as _shutil

    from .servers.nginx import Nginx

    if _shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        message = "nginx is not installed (apt-get install nginx)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + "; .ci/run must install it")
        pytest.skip(message)
    base = tmp_path_factory.mktemp("nginx")
    root = base / "www"
    root.mkdir()
    server = Nginx(root=root, work=base / "work")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stac_api():
    """A real STAC API (stac-fastapi-pgstac on PostgreSQL/PostGIS) on loopback, empty."""
    from .servers.pgstac import PgstacServer, available

    why = available()
    if why is not None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(why + "; .ci/run must install it")
        pytest.skip(why)
    server = PgstacServer()
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def fault_server():
    """Start fault-injecting HTTP servers on loopback, in this process (tests/servers/faults.py):
    ``fault_server(root=folder)`` serves a folder, ``fault_server(upstream=url)`` proxies;
    ``.configure(Faults(...), rules)`` sets the faults. All are stopped after the test."""
    from .servers.faults import FaultServer

    started: list[FaultServer] = []

    def start(root: Path | None = None, upstream: str | None = None) -> FaultServer:
        server = FaultServer(root=root, upstream=upstream)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def route_server():
    """Start loopback HTTP servers whose answers are a function of the path
    (tests/servers/routes.py): ``route_server(answer)``; all are stopped after the test."""
    from .servers.routes import RouteServer

    started: list[RouteServer] = []

    def start(answer):
        server = RouteServer(answer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sas_storage(tmp_path_factory: pytest.TempPathFactory):
    """The demo catalog on disk, its COGs served on loopback only with a valid SAS token from
    the server's own token endpoint, each token living 1 s (tests/servers/sas.py): yields
    (server, catalog.json)."""
    from clearcube.demo import generate_demo

    from .servers.sas import SasServer

    root = tmp_path_factory.mktemp("sas") / "storage"
    root.mkdir()
    server = SasServer(root, token_life_s=1.0)
    try:
        catalog = generate_demo(root, href_base=server.url)
        yield server, catalog
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dask_cluster():
    """One dask LocalCluster of two worker processes for every test that computes on a
    cluster (starting one costs seconds: shared, the suite pays it once)."""
    import distributed

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster
