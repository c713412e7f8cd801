"""What the small threaded test servers share: a server bound to a free loopback port,
serving in a daemon thread of the test process, and a quiet HTTP/1.1 handler."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive), no request log on stderr; GET and HEAD both go to
    ``_answer``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        raise NotImplementedError


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 and a port the system picks."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)


class Running:
    """A :class:`LoopbackServer` serving in a daemon thread until :meth:`stop`."""

    def __init__(self, server: LoopbackServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL by IP address (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
