"""A real STAC API for the tests: stac-fastapi-pgstac on a throwaway PostgreSQL + PostGIS,
both on loopback, started and stopped by pid (recipe: ../shared/notes/servers.md)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .nginx import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> str | None:
    """None when the server can run here, else why not."""
    if not (PG_BIN / "initdb").exists():
        return "PostgreSQL 15 + PostGIS not installed (apt-get install postgresql-15-postgis-3)"
    for module in ("stac_fastapi.pgstac", "pypgstac", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} not installed (pip install -e '.[test]')"
    return None


class PgstacServer:
    """PostgreSQL (pgstac schema) + stac-fastapi-pgstac, on free loopback ports."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="clearcube-pgstac-"))
        os.chmod(self.work, 0o755)  # the postgres user must traverse it
        self.pg_port = free_port()
        self.api_port = free_port()
        self.api: subprocess.Popen[bytes] | None = None
        self.data = self.work / "pg" / "data"
        self.env = {
            **os.environ,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.pg_port),
            "PGUSER": "postgres",
            "PGDATABASE": "postgres",
            "PGPASSWORD": "unused-with-trust",
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _as_postgres(self, *cmd: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return list(cmd)

    def _run(self, cmd: list[str], **kw: Any) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True, env=self.env, **kw)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])} failed: {done.stderr[-2000:]}")

    def start(self) -> None:
        pg = self.work / "pg"
        pg.mkdir()
        if os.geteuid() == 0:
            shutil.chown(pg, "postgres", "postgres")
        self._run(
            self._as_postgres(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        )
        opts = (
            f"-p {self.pg_port} -k {pg} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            self._as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(pg / "log"),
                "-w",
                "-o",
                opts,
                "start",
            )
        )
        pypgstac = str(Path(sys.executable).parent / "pypgstac")
        self._run([pypgstac, "migrate"])
        # numeric sort/filter on cloud cover (pgstac sorts it as text otherwise)
        self._run(
            [
                "psql",
                "-qX",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                "SET search_path TO pgstac, public; INSERT INTO queryables "
                "(name, definition, property_wrapper, property_index_type) VALUES "
                '(\'eo:cloud_cover\', \'{"type":"number","minimum":0,"maximum":100}\','
                " 'to_float', 'BTREE') ON CONFLICT DO NOTHING;",
            ]
        )
        env = {
            **self.env,
            "STAC_FASTAPI_TITLE": "clearcube-test",
            "STAC_FASTAPI_DESCRIPTION": "test",
            "STAC_FASTAPI_LANDING_ID": "test",
            "STAC_FASTAPI_VERSION": "test",
        }
        with (self.work / "api.log").open("wb") as log:
            self.api = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "stac_fastapi.pgstac.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.api_port),
                    "--log-level",
                    "warning",
                ],
                cwd=self.work,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.api.poll() is not None:
                raise RuntimeError(f"STAC API exited: {(self.work / 'api.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_mgmt/ping", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("STAC API did not answer within 60 s")

    def load(
        self, collections: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]
    ) -> None:
        pypgstac = str(Path(sys.executable).parent / "pypgstac")
        cfile = self.work / "collections.ndjson"
        ifile = self.work / "items.ndjson"
        cfile.write_text("".join(json.dumps(c) + "\n" for c in collections))
        ifile.write_text("".join(json.dumps(i) + "\n" for i in items))
        self._run([pypgstac, "load", "collections", str(cfile), "--method", "upsert"])
        self._run([pypgstac, "load", "items", str(ifile), "--method", "upsert"])

    def stop(self) -> None:
        if self.api is not None and self.api.poll() is None:
            self.api.send_signal(signal.SIGTERM)
            try:
                self.api.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.api.kill()
                self.api.wait()
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._as_postgres(
                    str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
                ),
                capture_output=True,
                env=self.env,
            )
        shutil.rmtree(self.work, ignore_errors=True)
