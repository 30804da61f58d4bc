"""Listening for ``lbam serve``: the socket, uvicorn's limits and a deadline for request headers.

The socket is bound here, before uvicorn starts, so a port in use or an address this machine lacks
is one ``lbam: error: ...`` line (exit 2) instead of uvicorn's own log format. Connections that
send no complete request headers within :data:`HEADER_SECONDS` are closed (uvicorn keeps such a
connection open for as long as bytes trickle in), idle keep-alive connections after
:data:`KEEP_ALIVE_SECONDS`, and at most :data:`MAX_CONNECTIONS` are served at once (503 beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from lbam.errors import LbamError

HEADER_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 5
MAX_CONNECTIONS = 64


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for the first request's headers."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            HEADER_SECONDS, self._headers_too_slow
        )

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_deadline is not None and getattr(self, "cycle", None) is not None:
            self._header_deadline.cancel()  # the headers are in: a request is being served
            self._header_deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if getattr(self, "cycle", None) is None and not self.transport.is_closing():
            self.transport.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; LbamError naming the address when that fails."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        raise LbamError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def serve_forever(app: Any, sock: socket.socket) -> None:
    """Run ``app`` on the bound socket until Ctrl-C."""
    config = uvicorn.Config(
        app,
        http=HeaderDeadlineProtocol,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=MAX_CONNECTIONS,
        log_level="warning",
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn shuts down, then raises the Ctrl-C again
        uvicorn.Server(config).run(sockets=[sock])
