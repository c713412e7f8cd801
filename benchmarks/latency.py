"""A TCP proxy on loopback that delays every client request by a fixed time, to time HTTP reads
as if the COGs were on a distant object store (loopback answers in microseconds; S3 from another
region takes tens of milliseconds per request).

    with LatencyProxy("127.0.0.1", nginx_port, delay_ms=20) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/data/..."

Each chunk of bytes the client sends (a request's headers) waits ``delay_ms`` before it is
forwarded; responses flow back undelayed. One request costs one delay, like one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class LatencyProxy:
    def __init__(self, host: str, port: int, delay_ms: float) -> None:
        self.target = (host, port)
        self.delay = delay_ms / 1000
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the latency proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, delay: float) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await r.read(65536):
                    if delay:
                        await asyncio.sleep(delay)
                    w.write(data)
                    await w.drain()
            with contextlib.suppress(Exception):
                w.close()

        with contextlib.suppress(asyncio.CancelledError):  # the proxy is shutting down
            await asyncio.gather(
                pipe(client_r, server_w, self.delay), pipe(server_r, client_w, 0.0)
            )
