"""A small HTTP/1.1 server that injects faults, deterministically, for the retry tests.

It serves a folder (GET and HEAD, one ``Range`` per request, keep-alive) or proxies every
request to an upstream URL (e.g. the pgstac STAC API fixture), and on any request can answer:

- ``503``: status 503 with an empty body;
- ``reset``: an abrupt close (TCP RST), before the response or in the middle of its body;
- ``stall``: nothing at all, the headers and then no body, or a body that stops half way,
  for ``stall_s`` seconds, then a close;
- ``truncate``: fewer body bytes than ``Content-Length``, then a clean close;
- ``corrupt``: the whole body, with bytes flipped wherever the file offset is at least
  ``corrupt_from`` (tile data of a COG, not its header).

Which fault a request gets is decided from a hash of (seed, method, target, Range, request
body, the n-th time that same request arrives), so a run with the same seed injects the same
faults whatever the thread interleaving (only identical requests share a counter), and a
retry of a faulted request is a new draw.
Persistent per-path rules (:class:`Rule`) come on top: always 404, always corrupt from a byte
offset, a file truncated to a size, or every request stalled. Every request is logged
(:class:`Logged`).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .loopback import LoopbackServer, Running

FAULTS = ("503", "reset", "stall", "truncate", "corrupt")


@dataclass(frozen=True)
class Faults:
    """Shares (0-1) of requests that get each fault; the rest are answered normally."""

    p503: float = 0.0
    reset: float = 0.0
    stall: float = 0.0
    truncate: float = 0.0
    corrupt: float = 0.0
    stall_s: float = 5.0
    #: which kinds of stall and reset are drawn from (one by the seeded hash)
    stall_modes: tuple[str, ...] = ("before-headers", "no-body", "mid-body")
    reset_modes: tuple[str, ...] = ("before", "mid-body")
    #: corrupt only body bytes at file offsets >= this (0: anywhere in the body)
    corrupt_from: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.p503 + self.reset + self.stall + self.truncate + self.corrupt > 1:
            raise ValueError("the fault shares add up to more than 1")
        if not self.stall_modes or not set(self.stall_modes) <= {
            "before-headers",
            "no-body",
            "mid-body",
        }:
            raise ValueError(
                f"stall modes: before-headers, no-body, mid-body, not {self.stall_modes}"
            )
        if not self.reset_modes or not set(self.reset_modes) <= {"before", "mid-body"}:
            raise ValueError(f"reset modes: before, mid-body, not {self.reset_modes}")


@dataclass(frozen=True)
class Rule:
    """A persistent fault of one path: ``not_found``, ``corrupt_from`` (a byte offset),
    ``truncate_to`` (the file is served as if it had only that many bytes) or ``stall_s``
    (every request gets no answer for that many seconds, or until the client gives up, and
    then a close)."""

    not_found: bool = False
    corrupt_from: int | None = None
    truncate_to: int | None = None
    stall_s: float | None = None


@dataclass(frozen=True)
class Logged:
    """One request as the server saw and answered it."""

    method: str
    path: str
    range: str
    status: int
    bytes_sent: int
    fault: str  # "" (none), one of FAULTS with a detail ("reset-before"), or "rule-..."
    attempt: int  # 1 for the first time this exact request arrived, 2 for its repeat, ...
    at_s: float  # when it arrived, in seconds since the last ``configure``
    took_s: float  # from its arrival to the end of the answer (or the cut)


class _Abort(Exception):
    """The handler closed the connection on purpose."""


def flip(body: bytes, offset: int, start: int, salt: int) -> bytes:
    """``body`` (the file's bytes from ``offset``) with one byte in every 251 inverted from
    file offset ``start`` on; which ones depends on ``salt``."""
    out = bytearray(body)
    first = max(start, offset)
    step = 251
    phase = (first - start + salt) % step
    for k in range(first - offset + (step - phase) % step, len(out), step):
        out[k] ^= 0xFF
    return bytes(out)


@dataclass
class _State:
    root: Path | None
    upstream: str | None
    faults: Faults = field(default_factory=Faults)
    rules: dict[str, Rule] = field(default_factory=dict)
    seen: Counter[tuple[str, ...]] = field(default_factory=Counter)
    log: list[Logged] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    epoch: float = field(default_factory=time.monotonic)
    busy: int = 0  # requests being answered right now
    idle: threading.Condition = field(default_factory=threading.Condition)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every request goes to the structured log instead

    # -- decisions ---------------------------------------------------------------------
    def _decide(self, body: bytes) -> tuple[str, int, int]:
        """(fault, attempt, salt) of this request, from the seeded hash."""
        state = self.server.state
        rng = self.headers.get("Range") or ""
        key = (self.command, self.path, rng, hashlib.sha256(body).hexdigest())
        with state.lock:
            state.seen[key] += 1
            attempt = state.seen[key]
            f = state.faults
        digest = hashlib.sha256(repr((f.seed, *key, attempt)).encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        salt = int.from_bytes(digest[8:12], "big")
        edge = 0.0
        for name, share in zip(
            FAULTS, (f.p503, f.reset, f.stall, f.truncate, f.corrupt), strict=True
        ):
            edge += share
            if u < edge:
                return name, attempt, salt
        return "", attempt, salt

    def _record(self, status: int, sent: int, fault: str, attempt: int) -> None:
        """Log the answer; a stalled one is logged when the stall ends."""
        self._pending = (status, sent, fault, attempt)

    def _flush_record(self) -> None:
        pending = getattr(self, "_pending", None)
        if pending is None:
            return
        self._pending = None
        state = self.server.state
        now = time.monotonic()
        entry = Logged(
            self.command,
            self.path,
            self.headers.get("Range") or "",
            *pending,
            at_s=round(self._arrived - state.epoch, 3),
            took_s=round(now - self._arrived, 3),
        )
        with state.lock:
            if self._epoch == state.epoch:  # not a leftover of an earlier configuration
                state.log.append(entry)

    # -- sending -----------------------------------------------------------------------
    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), as a crashed peer or middlebox does."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # close now: the server's own shutdown(SHUT_WR) would send a clean FIN first
            self.rfile.close()
            self.connection.close()
        self.close_connection = True
        raise _Abort

    def _stall(self, seconds: float) -> None:
        """Send nothing for ``seconds``, or until the client gives up and closes."""
        end = time.monotonic() + seconds
        while not self.server.state.stop.is_set() and time.monotonic() < end:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    # a request sent meanwhile on this connection is swallowed: the stalled
                    # response still blocks it, as it would on a real server
                    if not self.connection.recv(65536):
                        return  # the client closed its end
                except OSError:
                    return

    def _close(self) -> None:
        self.close_connection = True
        raise _Abort

    def _send(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        draw: tuple[str, int, int],
        *,
        send_body: bool,
        offset: int = 0,
        label: str = "",
    ) -> None:
        """Answer, applying the drawn fault to the response; ``label`` names a persistent
        rule in the log when no random fault applies."""
        state = self.server.state
        fault, attempt, salt = draw
        if fault == "503":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self._record(503, 0, fault, attempt)
            return
        faults = state.faults
        stall_mode = faults.stall_modes[salt % len(faults.stall_modes)]
        reset_mode = faults.reset_modes[salt % len(faults.reset_modes)]
        if not body or not send_body:  # nothing to cut in the middle of
            stall_mode = "no-body" if stall_mode == "mid-body" else stall_mode
            reset_mode = "before"
        if fault == "reset" and reset_mode == "before":
            self._record(0, 0, "reset-before", attempt)
            self._reset()
        if fault == "corrupt" and send_body and body:
            body = flip(body, offset, faults.corrupt_from, salt)
        if fault == "stall" and stall_mode == "before-headers":
            self._record(0, 0, "stall-before-headers", attempt)
            self._stall(faults.stall_s)
            self._close()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "stall" and stall_mode == "no-body":
            self._record(status, 0, "stall-no-body", attempt)
            self._stall(faults.stall_s)
            self._close()
        if not send_body:
            self._record(status, 0, label, attempt)
            return
        half = len(body) // 2
        if fault == "reset":
            self.wfile.write(body[:half])
            self._record(status, half, "reset-mid-body", attempt)
            self._reset()
        if fault == "stall":
            self.wfile.write(body[:half])
            self._record(status, half, "stall-mid-body", attempt)
            self._stall(faults.stall_s)
            self._close()
        if fault == "truncate" and body:
            cut = len(body) * (1 + salt % 3) // 4  # a quarter, half or three quarters
            self.wfile.write(body[:cut])
            self._record(status, cut, "truncate", attempt)
            self._close()
        self.wfile.write(body)
        applied = fault if fault == "corrupt" and body else ""
        self._record(status, len(body), applied or label, attempt)

    # -- serving -----------------------------------------------------------------------
    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (_Abort, ConnectionError):
            self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_POST(self) -> None:
        self._serve(send_body=True)

    def _serve(self, *, send_body: bool) -> None:
        state = self.server.state
        self._arrived = time.monotonic()
        self._epoch = state.epoch
        with state.idle:
            state.busy += 1
        try:
            self._answer(send_body=send_body)
        finally:
            self._flush_record()
            with state.idle:
                state.busy -= 1
                state.idle.notify_all()

    def _answer(self, *, send_body: bool) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(n) if n else b""
        draw = self._decide(request_body)
        if self.server.state.upstream is not None:
            self._proxy(request_body, draw, send_body)
        else:
            self._file(draw, send_body)

    def _file(self, draw: tuple[str, int, int], send_body: bool) -> None:
        state = self.server.state
        assert state.root is not None
        path = self.path.split("?", 1)[0]
        rule = state.rules.get(path, Rule())
        if rule.stall_s is not None:
            self._record(0, 0, "rule-stall", draw[1])
            self._stall(rule.stall_s)
            self._close()
        root = state.root.resolve()
        file = (root / path.lstrip("/")).resolve()
        if rule.not_found or root not in file.parents or not file.is_file():
            label = "rule-404" if rule.not_found else ""
            self._send(404, {}, b"", draw, send_body=send_body, label=label)
            return
        size = os.path.getsize(file)
        label = ""
        if rule.truncate_to is not None:
            size = min(size, rule.truncate_to)
            label = "rule-truncated"
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            else:
                start, end = max(size - int(m.group(2)), 0), size - 1
            if start >= size:
                headers["Content-Range"] = f"bytes */{size}"
                self._send(416, headers, b"", draw, send_body=send_body, label=label)
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        else:  # no Range, or several: a server may ignore Range and send the whole file
            status, start, end = 200, 0, size - 1
        with file.open("rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        if rule.corrupt_from is not None:
            body = flip(body, start, rule.corrupt_from, 0)
            label = "rule-corrupt"
        self._send(status, headers, body, draw, send_body=send_body, offset=start, label=label)

    def _proxy(self, request_body: bytes, draw: tuple[str, int, int], send_body: bool) -> None:
        state = self.server.state
        assert state.upstream is not None
        if draw[0] == "503":  # answered without bothering the upstream
            self._send(503, {}, b"", draw, send_body=False)
            return
        up = urlsplit(state.upstream)
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=60)
        try:
            # the Host header passes through, so the upstream builds its links (next pages,
            # self) on the proxy's address and every later request comes back through it
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn.request(self.command, self.path, body=request_body or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            status = resp.status
            kept = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP}
        except (OSError, http.client.HTTPException):
            status, kept, body = 502, {}, b""  # the upstream is down: a real proxy says so
        finally:
            conn.close()
        self._send(status, kept, body, draw, send_body=send_body)


#: headers that belong to one connection (or that the proxy sets itself)
_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "accept-encoding",
        "date",
        "server",
    )
)


class _Server(LoopbackServer):
    def __init__(self, state: _State) -> None:
        self.state = state
        super().__init__(_Handler)


class FaultServer(Running):
    """The fault-injecting server on a free loopback port, in a thread of this process."""

    def __init__(self, root: Path | None = None, upstream: str | None = None) -> None:
        if (root is None) == (upstream is None):
            raise ValueError("give a folder to serve or an upstream URL, not both")
        self.state = _State(root=root, upstream=upstream.rstrip("/") if upstream else None)
        super().__init__(_Server(self.state))

    def configure(
        self, faults: Faults | None = None, rules: Mapping[str, Rule] | None = None
    ) -> None:
        """Set the random faults and the persistent rules (by URL path, e.g.
        ``{"/qa.tif": Rule(not_found=True)}``); attempts are counted and logged afresh."""
        with self.state.lock:
            self.state.faults = faults or Faults()
            self.state.rules = dict(rules or {})
            self.state.seen.clear()
            self.state.log.clear()
            self.state.epoch = time.monotonic()

    def requests(self, settle_s: float = 5.0) -> list[Logged]:
        """Every request answered (or cut) since the last :meth:`configure`, once none is
        being answered (a client can see a response before its handler has logged it)."""
        with self.state.idle:
            self.state.idle.wait_for(lambda: self.state.busy == 0, timeout=settle_s)
        with self.state.lock:
            return list(self.state.log)

    def stop(self) -> None:
        self.state.stop.set()  # stalled responses end now
        super().stop()
