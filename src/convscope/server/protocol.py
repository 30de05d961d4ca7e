"""uvicorn's HTTP protocol (httptools) with the limits a server on a network needs, which uvicorn leaves out:

- a deadline for each request's head (request line and headers): uvicorn times out only idle kept-alive
  connections, so a client that connects and sends nothing, or dribbles its headers a byte at a time (slowloris),
  holds a connection and a file descriptor for ever; enough of them and no one else is answered;
- a size limit for the head: httptools has none (a 256 MB header was read); over it, 431 and the connection closed;
- a cap on open connections per worker process: one more is answered 503 and closed at once, before the process
  runs out of file descriptors (1,024 by default on Linux).

The limits come from the server settings in the environment (``convscope serve`` puts them there for its worker
processes). The body's deadline is the security middleware's (``security.py``): the application reads the body.
"""

from __future__ import annotations

import asyncio
import functools

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .settings import ServerSettings


@functools.cache
def _settings() -> ServerSettings:
    return ServerSettings()


def plain_response(status: int, reason: str, message: str) -> bytes:
    body = message.encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}"
            f"\r\nconnection: close\r\n\r\n").encode() + body


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        settings = _settings()
        self.header_timeout = settings.header_timeout
        self.max_connections = settings.max_connections
        self.max_head_bytes = settings.max_header_bytes
        self.head_deadline: asyncio.TimerHandle | None = None
        self.head_complete = False
        # The head being read, measured two ways: the parts the parser has handed over (a head that comes whole
        # in one read), and the reads since the one it began in (a head that dribbles in, held by the parser
        # until complete). The larger is the head's size, short by at most part of one read.
        self.parsed_bytes = self.read_bytes = 0
        self.began_in_this_read = False
        self.head_started = False  # whether any of a request has come (a silent connection is closed unanswered)
        self.head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.logger.warning("over %d open connections: refusing one", self.max_connections)
            self._answer(503, "Service Unavailable", "the server has too many open connections; try again shortly")
            return
        self.head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def data_received(self, data: bytes) -> None:
        self.began_in_this_read = False
        super().data_received(data)  # the parser's callbacks below run in here
        if self.head_complete or self.transport.is_closing():
            return
        if not self.began_in_this_read:
            self.read_bytes += len(data)
        if self.read_bytes > self.max_head_bytes:
            self.head_too_large = True
            self.send_400_response("")
        elif self.head_deadline is None:  # the first bytes of the next request on a kept-alive connection
            self.head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_complete, self.head_too_large, self.began_in_this_read, self.head_started = False, False, True, True
        self.parsed_bytes = self.read_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self.parsed_bytes += size
        if self.parsed_bytes > self.max_head_bytes:
            self.head_too_large = True
            raise ValueError("head too large")  # stops the parser: data_received answers with send_400_response

    def send_400_response(self, msg: str) -> None:
        if self.head_too_large:
            self._answer(431, "Request Header Fields Too Large",
                         f"the request's head is over the limit of {self.max_head_bytes:,} bytes")
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self.head_complete = True
        self._cancel_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_too_slow(self) -> None:
        self.head_deadline = None
        if self.head_complete or self.transport.is_closing():
            return
        if self.head_started:
            self._answer(408, "Request Timeout", f"the request's head did not arrive within {self.header_timeout:g} s")
        else:  # a connection that never said anything: nothing to answer
            self.transport.close()

    def _answer(self, status: int, reason: str, message: str) -> None:
        self._cancel_deadline()
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head went wrong while the previous answer is still being sent (an event stream): that
            # answer ends first, then the connection closes. Writing now would cut into it.
            self.cycle.keep_alive = False
            return
        self.transport.write(plain_response(status, reason, message))
        self.transport.close()
