"""The loopback nginx the HTTP tests rely on: Range requests, byte counts, faults."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from .servers.nginx import Nginx


def test_range_requests_and_access_log(nginx):
    (nginx.root / "blob.bin").write_bytes(bytes(range(256)) * 64)
    nginx.clear_log()
    req = urllib.request.Request(f"{nginx.url}/data/blob.bin", headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 206
        assert resp.read() == bytes(range(10, 20))
    (logged,) = nginx.wait_for("/data/blob.bin")
    assert logged.status == 206
    assert logged.bytes_sent == 10
    assert logged.range == "bytes=10-19"


def test_down_answers_503(nginx):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{nginx.url}/down/blob.bin", timeout=5)
    assert exc.value.code == 503
    exc.value.close()


@pytest.mark.integration  # an nginx of its own
def test_a_port_taken_before_nginx_binds_it_is_given_up(tmp_path):
    (tmp_path / "root").mkdir()
    server = Nginx(tmp_path / "root", tmp_path / "work")
    with socket.socket() as squatter:  # another process took the free port meanwhile
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        taken = server.port
        server.start()
        try:
            assert server.port != taken
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
                assert resp.status == 200
        finally:
            server.stop()
