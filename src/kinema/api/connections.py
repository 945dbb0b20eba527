"""Connection hygiene below the ASGI app: header deadlines and a cap on open connections.

uvicorn arms no timer on a fresh connection until its first response is sent, so a client that connects and
sends nothing (or half a request line) holds a file descriptor for ever; 20,000 of them exhausted the
server's descriptors and ``/health`` failed until they went away. :class:`ConnectionGuard` watches every
connection of the server:

* a connection still waiting for its request headers after ``header_timeout_s`` is closed (also a keep-alive
  connection that started a second request and stalled in its headers);
* more than ``max_header_bytes`` received without a complete request head closes the connection;
* past ``max_connections`` open connections, the oldest connection that is waiting for headers is closed to make
  room, so a flood of idle sockets cannot starve real requests (the new connection is closed when every
  connection is busy with a request).

Body read deadlines live in :mod:`kinema.api.body` (they need the request); this module only sees bytes.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

from kinema.settings import Settings

__all__ = ["ConnectionGuard", "auto_max_connections", "guarded_protocol", "raise_fd_limit"]

log = logging.getLogger("kinema.api")

#: Descriptors kept free for the database, worker pipes, stored files and outgoing fetches and webhooks.
FD_RESERVE = 256
SWEEP_EVERY_S = 0.5


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def auto_max_connections(soft_limit: int) -> int:
    return max(16, soft_limit - FD_RESERVE)


@dataclass
class _State:
    since: float  #: when it started waiting for request headers
    busy: bool = False  #: a request is being handled
    head_bytes: int = 0  #: bytes received while waiting for headers


def _awaiting_head(proto: Any) -> bool:
    cycle = getattr(proto, "cycle", None)
    return cycle is None or bool(cycle.response_complete)


def _close(proto: Any) -> None:
    transport = getattr(proto, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()


class ConnectionGuard:
    """Tracks the server's HTTP connections (see the module doc); one per server process."""

    def __init__(self, *, header_timeout_s: float, max_connections: int, max_header_bytes: int = 64 * 1024):
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.max_header_bytes = max_header_bytes
        self._conns: dict[Any, _State] = {}  # insertion order = age
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed_slow = 0
        self.closed_for_room = 0

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def opened(self, proto: Any) -> None:
        self._conns[proto] = _State(self._now())
        if self._sweeper is None:
            self._schedule()
        if len(self._conns) > self.max_connections:
            self._make_room(proto)

    def received(self, proto: Any, size: int) -> None:
        state = self._conns.get(proto)
        if state is None:
            return
        if not _awaiting_head(proto):
            state.busy = True
            return
        if state.busy:  # the previous request finished: a new head starts now
            state.busy, state.since, state.head_bytes = False, self._now(), 0
        state.head_bytes += size
        if state.head_bytes > self.max_header_bytes:
            log.info(
                "closing a connection: request head over the size limit",
                extra={"bytes": state.head_bytes, "limit": self.max_header_bytes},
            )
            _close(proto)

    def closed(self, proto: Any) -> None:
        self._conns.pop(proto, None)

    def _make_room(self, newcomer: Any) -> None:
        for proto, state in self._conns.items():
            if proto is not newcomer and not state.busy and _awaiting_head(proto):
                self._conns.pop(proto)
                self.closed_for_room += 1
                if self.closed_for_room in (1, 10, 100) or self.closed_for_room % 1000 == 0:
                    log.warning(
                        "too many open connections: closing the oldest idle ones",
                        extra={"limit": self.max_connections, "closed_so_far": self.closed_for_room},
                    )
                _close(proto)
                return
        self._conns.pop(newcomer, None)
        _close(newcomer)

    def _schedule(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY_S, self._sweep)

    def _sweep(self) -> None:
        now = self._now()
        late: list[Any] = []
        for proto, state in self._conns.items():
            if not _awaiting_head(proto):
                state.busy = True
            elif state.busy:
                state.busy, state.since, state.head_bytes = False, now, 0
            elif now - state.since > self.header_timeout_s:
                late.append(proto)
        for proto in late:
            self._conns.pop(proto, None)
            self.closed_slow += 1
            _close(proto)
        if late:
            log.info(
                "closed connections that sent no complete request head in time",
                extra={"count": len(late), "header_timeout_s": self.header_timeout_s},
            )
        self._schedule()


def _base_protocol() -> type:
    """The class uvicorn's ``http="auto"`` would pick: httptools when installed, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


def guarded_protocol(settings: Settings, soft_fd_limit: int) -> tuple[type, ConnectionGuard]:
    """An HTTP protocol class for ``uvicorn.run(http=…)`` whose connections report to a new guard."""
    limit = settings.max_connections or auto_max_connections(soft_fd_limit)
    guard = ConnectionGuard(header_timeout_s=settings.header_timeout_s, max_connections=limit)
    base: Any = _base_protocol()

    class GuardedProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            guard.opened(self)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            guard.received(self, len(data))

        def connection_lost(self, exc: Exception | None) -> None:
            guard.closed(self)
            super().connection_lost(exc)

    return GuardedProtocol, guard
