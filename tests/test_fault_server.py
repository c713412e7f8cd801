"""The fault-injecting loopback server the retry tests rely on (tests/servers/faults.py):
seeded, reproducible decisions, and each fault as a client sees it."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request

import pytest

from .servers.faults import Faults, Rule, flip

DATA = bytes(range(256)) * 400  # 102400 bytes


@pytest.fixture
def server(fault_server, tmp_path):
    (tmp_path / "blob.bin").write_bytes(DATA)
    return fault_server(root=tmp_path)


def get(url: str, rng: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    headers = {"Range": rng} if rng else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
        return r.status, r.read()


def faults_of(server, seed: int) -> list[tuple[str, str, int]]:
    server.configure(Faults(p503=0.3, seed=seed))
    for k in range(40):
        try:
            get(f"{server.url}/blob.bin", f"bytes={k * 100}-{k * 100 + 99}")
        except urllib.error.HTTPError as exc:
            exc.close()
    # sorted: a handler logs after its answer left, so two quick requests can log swapped
    return sorted((r.range, r.fault, r.attempt) for r in server.requests())


def test_decisions_depend_on_the_seed_only(server):
    first = faults_of(server, seed=1)
    assert first == faults_of(server, seed=1)
    assert first != faults_of(server, seed=2)
    share = sum(f == "503" for _, f, _ in first) / len(first)
    assert 0.1 < share < 0.5


def test_a_repeated_request_is_a_new_draw(server):
    server.configure(Faults(p503=0.5, seed=0))
    statuses = []
    for _ in range(20):
        try:
            statuses.append(get(f"{server.url}/blob.bin", "bytes=0-9")[0])
        except urllib.error.HTTPError as exc:
            exc.close()
            statuses.append(exc.code)
    assert {206, 503} == set(statuses)
    assert sorted(r.attempt for r in server.requests()) == list(range(1, 21))


def test_ranges_and_clean_answers(server):
    server.configure()
    assert get(f"{server.url}/blob.bin", "bytes=10-19") == (206, DATA[10:20])
    assert get(f"{server.url}/blob.bin", "bytes=-5") == (206, DATA[-5:])
    assert get(f"{server.url}/blob.bin") == (200, DATA)
    log = server.requests()
    assert [(r.status, r.bytes_sent, r.fault) for r in log] == [
        (206, 10, ""),
        (206, 5, ""),
        (200, len(DATA), ""),
    ]


def test_truncate_reset_and_stall_as_a_client_sees_them(server):
    url = f"{server.url}/blob.bin"
    server.configure(Faults(truncate=1.0))
    with pytest.raises(http.client.IncompleteRead):
        get(url)
    server.configure(Faults(reset=1.0, reset_modes=("mid-body",)))
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        get(url)
    server.configure(Faults(reset=1.0, reset_modes=("before",)))
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        get(url)
    server.configure(Faults(stall=1.0, stall_s=30, stall_modes=("no-body",)))
    with pytest.raises(TimeoutError):
        get(url, timeout=0.5)
    log = server.requests()
    assert log[0].fault == "stall-no-body"
    assert log[0].took_s < 5  # the stall ended when the client gave up


def test_corruption_spares_the_header_and_rules_persist(server):
    server.configure(Faults(corrupt=1.0, corrupt_from=1000))
    _, body = get(f"{server.url}/blob.bin")
    assert body[:1000] == DATA[:1000]
    changed = [k for k in range(len(DATA)) if body[k] != DATA[k]]
    assert changed
    assert min(changed) >= 1000
    assert flip(DATA, 0, 1000, 0) != flip(DATA, 0, 1000, 1)

    server.configure(rules={"/blob.bin": Rule(truncate_to=500)})
    assert get(f"{server.url}/blob.bin") == (200, DATA[:500])
    server.configure(rules={"/blob.bin": Rule(not_found=True)})
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError) as exc:
            get(f"{server.url}/blob.bin")
        assert exc.value.code == 404
        exc.value.close()
    assert [r.fault for r in server.requests()] == ["rule-404", "rule-404"]


def test_a_stall_rule_holds_every_request_of_its_path(server, tmp_path):
    (tmp_path / "other.bin").write_bytes(DATA[:100])
    server.configure(rules={"/blob.bin": Rule(stall_s=30)})
    for _ in range(2):
        with pytest.raises(TimeoutError):
            get(f"{server.url}/blob.bin", timeout=0.5)
    assert get(f"{server.url}/other.bin") == (200, DATA[:100])
    log = sorted(server.requests(), key=lambda r: r.at_s)
    assert [(r.path, r.fault) for r in log] == [
        ("/blob.bin", "rule-stall"),
        ("/blob.bin", "rule-stall"),
        ("/other.bin", ""),
    ]
    assert all(r.took_s < 5 for r in log)  # each stall ended when the client gave up


def test_proxy_passes_through_and_says_502_when_the_upstream_is_down(server, fault_server):
    server.configure()
    proxy = fault_server(upstream=server.url)
    assert get(f"{proxy.url}/blob.bin", "bytes=0-99") == (206, DATA[:100])
    server.stop()
    with pytest.raises(urllib.error.HTTPError) as exc:
        get(f"{proxy.url}/blob.bin")
    assert exc.value.code == 502
    exc.value.close()
