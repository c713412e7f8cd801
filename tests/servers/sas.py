"""A loopback stand-in for Planetary Computer's storage: a token endpoint and a folder of COGs
readable only with a valid, unexpired SAS token.

- ``GET /api/sas/v1/token/{collection}`` answers ``{"token": ..., "msft:expiry": ...}`` as
  Planetary Computer's token endpoint does, each token living ``token_life_s`` seconds;
- ``GET``/``HEAD`` of a ``.tif`` under the folder (one ``Range`` per request) needs a token in
  the query that this server issued for the file's collection (the first folder of its path),
  that has not expired and was not revoked: else ``403``. Other files (catalog and item JSON)
  need none.

Every token issued and every file request is logged, for the tests to count.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .loopback import LoopbackServer, QuietHandler, Running

TOKEN_PATH = "/api/sas/v1/token/"


@dataclass(frozen=True)
class Issued:
    """One token as the server issued it."""

    collection: str
    sig: str
    token: str
    expires_at: float  # seconds since the epoch


@dataclass(frozen=True)
class FileRequest:
    """One request of a COG and how it was answered."""

    path: str
    status: int
    sig: str  # the token's signature it carried ("" when none)
    at: float  # seconds since the epoch


@dataclass
class _State:
    root: Path
    token_life_s: float
    issued: dict[str, Issued] = field(default_factory=dict)
    order: list[Issued] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    refuse_all: bool = False
    files: list[FileRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(QuietHandler):
    server: _Server

    def _reply(self, status: int, headers: dict[str, str], body: bytes, send_body: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            with contextlib.suppress(ConnectionError):
                self.wfile.write(body)

    def _answer(self, *, send_body: bool) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path.startswith(TOKEN_PATH):
            self._token(path.removeprefix(TOKEN_PATH), send_body)
            return
        file = (state.root / path.lstrip("/")).resolve()
        if state.root not in file.parents or not file.is_file():
            self._reply(404, {}, b"", send_body)
            return
        if file.suffix.lower() in (".tif", ".tiff"):
            sig = (parse_qs(parts.query).get("sig") or [""])[0]
            collection = path.lstrip("/").split("/", 1)[0]
            with state.lock:
                issued = state.issued.get(sig)
                valid = (
                    not state.refuse_all
                    and issued is not None
                    and issued.collection == collection
                    and sig not in state.revoked
                    and time.time() < issued.expires_at
                )
                state.files.append(FileRequest(path, 200 if valid else 403, sig, time.time()))
            if not valid:
                self._reply(403, {}, b"AuthenticationFailed", send_body)
                return
        self._file(file, send_body)

    def _token(self, collection: str, send_body: bool) -> None:
        state = self.server.state
        sig = secrets.token_hex(16)
        now = time.time()
        expires = now + state.token_life_s
        stamp = dt.datetime.fromtimestamp(expires, dt.UTC)
        start = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        token = f"st={start}&se={stamp.strftime('%Y-%m-%dT%H:%M:%SZ')}&sp=rl&sr=c&sig={sig}"
        issued = Issued(collection, sig, token, expires)
        with state.lock:
            state.issued[sig] = issued
            state.order.append(issued)
        # as Planetary Computer writes it (UTC with a Z), to the microsecond: tokens here are
        # short enough for whole seconds to matter
        expiry = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = json.dumps({"msft:expiry": expiry, "token": token}).encode()
        self._reply(200, {"Content-Type": "application/json"}, body, send_body)

    def _file(self, file: Path, send_body: bool) -> None:
        size = os.path.getsize(file)
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            else:
                start, end = max(size - int(m.group(2)), 0), size - 1
            if start >= size:
                self._reply(416, {"Content-Range": f"bytes */{size}"}, b"", send_body)
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        else:
            status, start, end = 200, 0, size - 1
        with file.open("rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        self._reply(status, headers, body, send_body)


class _Server(LoopbackServer):
    def __init__(self, state: _State) -> None:
        self.state = state
        super().__init__(_Handler)


class SasServer(Running):
    """The token endpoint and the guarded folder on a free loopback port, in a thread."""

    def __init__(self, root: Path, token_life_s: float = 2.0) -> None:
        self.state = _State(root=root.resolve(), token_life_s=token_life_s)
        super().__init__(_Server(self.state))

    @property
    def token_url(self) -> str:
        """The token endpoint (a collection's token is at ``{token_url}/{collection}``)."""
        return self.url + TOKEN_PATH.rstrip("/")

    @property
    def tokens(self) -> list[Issued]:
        """Every token issued, in order."""
        with self.state.lock:
            return list(self.state.order)

    @property
    def files(self) -> list[FileRequest]:
        """Every COG request, in order."""
        with self.state.lock:
            return list(self.state.files)

    def revoke_all(self) -> None:
        """Make every token issued so far invalid before its time."""
        with self.state.lock:
            self.state.revoked.update(self.state.issued)

    def refuse(self, refuse: bool = True) -> None:
        """Answer 403 to every COG request, whatever its token (a storage that denies)."""
        with self.state.lock:
            self.state.refuse_all = refuse

    def set_token_life(self, seconds: float) -> None:
        """How long the tokens issued from now on live."""
        with self.state.lock:
            self.state.token_life_s = seconds

    def reset_log(self) -> None:
        with self.state.lock:
            self.state.files.clear()
            self.state.order.clear()
