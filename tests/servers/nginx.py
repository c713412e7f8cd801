"""A real nginx on loopback serving files with HTTP Range requests, for the COG-over-HTTP tests.

Locations:

- ``/data/``: the files under ``root``, with Range support;
- ``/flaky/``: the same files, but about 30 % of requests answer 503 (nginx ``split_clients``);
- ``/down/``: every request answers 503;
- ``/healthz``: 200 "ok".

The access log records, per request, the status, the bytes sent and the Range header, so a test
can prove what a read fetched (:meth:`Nginx.requests`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CONF = """\
daemon off;
worker_processes 1;
{user}
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include {mime};
    default_type application/octet-stream;
    log_format rng '$msec "$request" $status $body_bytes_sent range="$http_range"';
    access_log {work}/access.log rng;
    client_body_temp_path {work}/tmp/body; proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fcgi; uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    split_clients "${{request_id}}" $flaky_fail {{ 30% 1; * 0; }}
    server {{
        listen 127.0.0.1:{port};
        location /data/ {{ alias {root}/; }}
        location /flaky/ {{ alias {root}/; if ($flaky_fail) {{ return 503; }} }}
        location /down/ {{ return 503; }}
        location = /healthz {{ return 200 "ok\\n"; }}
    }}
}}
"""


@dataclass(frozen=True)
class Request:
    """One access-log line."""

    method: str
    path: str
    status: int
    bytes_sent: int
    range: str


class _PortTaken(RuntimeError):
    """nginx could not bind its port: another process took it after :func:`free_port`."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """Start, query and stop one nginx process (by pid)."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        self.work = work
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start nginx on a free port; a port taken between its choice and nginx's bind (by
        another test process) is given up for another, up to three times."""
        for _ in range(3):
            try:
                self._start(timeout_s)
                return
            except _PortTaken:
                self.port = free_port()
        self._start(timeout_s)

    def _start(self, timeout_s: float) -> None:
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(exe).exists():
            raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
        (self.work / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.work / "nginx.conf"
        user = "user root root;" if os.geteuid() == 0 else ""
        conf.write_text(
            CONF.format(
                user=user,
                work=self.work,
                root=self.root,
                port=self.port,
                mime="/etc/nginx/mime.types",
            )
        )
        with (self.work / "stderr.log").open("wb") as log:
            self.process = subprocess.Popen(
                [exe, "-p", str(self.work), "-c", str(conf), "-e", str(self.work / "error.log")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = (self.work / "stderr.log").read_text()
                if "Address already in use" in said:
                    raise _PortTaken(said)
                raise RuntimeError(f"nginx exited: {said}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nginx did not answer on {self.url} within {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def requests(self) -> list[Request]:
        """Every request logged so far."""
        path = self.work / "access.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            # 1732470000.123 "GET /data/x.tif HTTP/1.1" 206 16384 range="bytes=0-16383"
            _, rest = line.split(" ", 1)
            request, rest = rest[1:].split('" ', 1)
            status, sent, rng = rest.split(" ", 2)
            method, target = request.split(" ")[:2]
            out.append(Request(method, target, int(status), int(sent), rng[7:-1]))
        return out

    def wait_for(self, path: str, count: int = 1, timeout_s: float = 5.0) -> list[Request]:
        """The logged requests for ``path``, waiting until ``count`` are there: nginx writes a
        log line after the response has left, so a fast client can look before it does."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [r for r in self.requests() if r.path == path]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def clear_log(self) -> None:
        path = self.work / "access.log"
        if path.exists():
            path.write_text("")  # nginx keeps appending at its own offset: truncate in place
