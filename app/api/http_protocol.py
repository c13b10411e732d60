"""uvicorn's httptools protocol with a deadline on reading each request: slow clients are timed out.

uvicorn times out only an idle keep-alive connection (after a response). A client that connects and sends nothing,
sends its headers a byte at a time, or announces a body and never finishes it holds a connection, and the memory
of a half-read request, for as long as it likes: a handful of such clients (slowloris) is enough to use up the
file descriptors of one API process. Here each request must arrive whole, headers and body, within
`CART_REQUEST_READ_TIMEOUT_S` of its first byte (or of the connection, for the first request); if it does not, the
client gets a 408 with the usual error body and the connection is closed. The handler of a request whose body never
completes sees the client disconnect, so nothing is written for it.

Use: `uvicorn ... --http app.api.http_protocol:TimedHttpToolsProtocol` (`cart api` and `cart run` do).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import get_settings


def request_timeout_response(timeout_s: float) -> bytes:
    body = json.dumps(
        {"error": "RequestTimeout", "reason": f"the request did not arrive whole within {timeout_s:g} s"}
    ).encode()
    head = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


class TimedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout_s = get_settings().request_read_timeout_s
        self._read_deadline: asyncio.TimerHandle | None = None
        self._reading_headers = True

    def _arm(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        # Before this request's headers are complete no answer to it has begun (self.cycle is still the previous
        # request's); after, only if its handler has not started one (a 413 may have been sent early).
        if self._reading_headers or not (self.cycle is not None and self.cycle.response_started):
            self.transport.write(request_timeout_response(self.read_timeout_s))
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
