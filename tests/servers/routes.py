"""A tiny loopback HTTP server whose answers a test writes as a function of the path.

``RouteServer(answer)`` calls ``answer(path)`` for every GET and HEAD and sends what it
returns: ``(status, headers, body)``, where ``body`` is bytes (sent with its
``Content-Length``) or an iterable of byte pieces (sent one by one with no length and the
connection closed after, so a client cannot know the size in advance). It serves what the
fault server (a folder, or a proxy) cannot: redirects, documents made up on the fly (an
endless chain of catalogs), bodies streamed for ever. ``sent`` counts the body bytes that
left, ``paths`` the paths asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from .loopback import LoopbackServer, QuietHandler, Running

Answer = tuple[int, dict[str, str], bytes | Iterable[bytes]]


class _Handler(QuietHandler):
    server: _Server

    def _answer(self, *, send_body: bool) -> None:
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.paths.append(path)
        status, headers, body = self.server.answer(path)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if isinstance(body, bytes):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)
                self._count(len(body))
            return
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if not send_body:
            return
        try:
            for piece in body:
                self.wfile.write(piece)
                self._count(len(piece))
        except OSError:  # the client gave up: what a size cap should make it do
            pass

    def _count(self, n: int) -> None:
        with self.server.lock:
            self.server.sent += n


class _Server(LoopbackServer):
    def __init__(self, answer: Callable[[str], Answer]) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.sent = 0
        self.paths: list[str] = []
        super().__init__(_Handler)


class RouteServer(Running):
    """The server on a free loopback port, in a thread of this process."""

    _server: _Server

    def __init__(self, answer: Callable[[str], Answer]) -> None:
        super().__init__(_Server(answer))

    @property
    def url_by_name(self) -> str:
        """The same server under another host name (``http://localhost:PORT``)."""
        return f"http://localhost:{self.port}"

    @property
    def sent(self) -> int:
        with self._server.lock:
            return self._server.sent

    @property
    def paths(self) -> list[str]:
        with self._server.lock:
            return list(self._server.paths)
