"""Connections no slow or silent client can hold forever: uvicorn's HTTP/1.1 protocol with
deadlines and a cap.

uvicorn closes idle keep-alive connections but puts no deadline on a request's headers, keeps a
connection whose client stopped reading, and accepts until the process runs out of file
descriptors. `guarded_protocol` adds to its h11 protocol: the headers of each request must
arrive within `header_timeout` seconds (408, then closed); a response that cannot be written for
`write_timeout` seconds (the client reads nothing) closes the connection, which cancels its
generation; past `max_connections`, a new connection evicts the oldest one still waiting for
its headers (or is closed itself when none is); the kernel send buffer is bounded so that a
client that does not read is noticed after kilobytes, not megabytes.
"""

from __future__ import annotations

import json
import resource
import socket
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from parallel_r1.serve.payloads import error_body

SEND_BUFFER_BYTES = 16 * 1024  # kernel send buffer and asyncio's write buffer, each
FD_RESERVE = 128  # descriptors left for the model files, logs and the engine
_BODY_408 = json.dumps(error_body("the request headers did not arrive in time (serve "
                                  "--header-timeout)", code="request_timeout")).encode()
TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
               b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(_BODY_408) + _BODY_408)


def auto_max_connections() -> int:
    """A connection cap under the file-descriptor limit (raised to the hard limit first)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(8, min(4096, soft - FD_RESERVE))


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and the cap of this module (set per server by
    `guarded_protocol`)."""

    header_timeout = 10.0
    write_timeout = 30.0
    max_connections = 1024

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened, self._header_timer, self._write_timer = time.monotonic(), None, None
        self._seen_cycle = None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        transport.set_write_buffer_limits(high=SEND_BUFFER_BYTES)
        self._await_headers()
        if len(self.connections) > self.max_connections:
            self._evict()

    def _await_headers(self) -> None:
        if self._header_timer is None:
            self._opened = time.monotonic()
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _evict(self) -> None:
        waiting = [c for c in self.connections
                   if getattr(c, "_header_timer", None) is not None and c is not self]
        victim = min(waiting, key=lambda c: c._opened) if waiting else self
        victim._headers_late()

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(TIMEOUT_408)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and self.cycle is not self._seen_cycle:
            self._seen_cycle = self.cycle  # a new request's headers are complete
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.cycle is not self._seen_cycle:  # a pipelined request already started
            self._seen_cycle = self.cycle
        else:
            self._await_headers()  # the next request on this connection

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout,
                                                       self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._write_timer = None
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float, write_timeout: float, max_connections: int) -> type:
    """A `GuardedH11` class with these settings, for `uvicorn.Config(http=...)`."""
    return type("GuardedH11", (GuardedH11,), {"header_timeout": header_timeout,
                                              "write_timeout": write_timeout,
                                              "max_connections": max_connections})
