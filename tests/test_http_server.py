"""The loopback nginx the HTTP tests rely on: Range requests, byte counts, faults."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest


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
