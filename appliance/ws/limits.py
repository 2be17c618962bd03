"""Bounds on the websocket port's connections before they are websockets: the per-address cap
(shared logic with the HTTP port, ``appliance/peers.py``), the port's total and the handshake
deadline."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from appliance.config import Settings
from appliance.peers import REFUSAL_LOG_INTERVAL, PeerLimit, peer_address, peer_limit

log = logging.getLogger("appliance.ws")

# The opening handshake (the HTTP upgrade request, authentication included) must be done
# within this many seconds of the connection opening, as on the HTTP port (HEAD_TIMEOUT).
HANDSHAKE_TIMEOUT = 10.0
# The port's total, whatever the addresses: a share of the process's file descriptors, which
# HTTP, the database, the downloads and their processes need too (systemd gives a service
# 1,024 unless told otherwise: 256 sockets then), within these bounds.
FD_SHARE = 4
MIN_TOTAL = 16
MAX_TOTAL = 1024
# Each socket's kernel send buffer (Linux doubles it for its bookkeeping). Left to the
# kernel's tuning, a client that stops reading while its TCP stack still acknowledges took
# 2.8 MB of the box's memory each into its socket, outside the backlog budget, which sees
# only what waits in the process (1,024 such: the kernel's TCP memory under pressure, every
# connection of the box slowed). Fixed, it holds ~100 KB and the rest waits where the budget
# counts it; 128 KiB in flight still carries 2.6 MB/s to a client 50 ms away, more than the
# events' rate or a snapshot needs.
SEND_BUFFER = 64 * 1024


def default_total() -> int:
    """The port's total for this process's file descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_TOTAL
    return max(MIN_TOTAL, min(MAX_TOTAL, soft // FD_SHARE))


class TotalLimit:
    """The connections open on the port, in the order they opened, and its total. At the
    total a new connection takes the place of the oldest one still in its handshake (a
    stranger who never finishes one, or is being refused, holds no place a person needs);
    when every one was let in, the new one is refused. Loop thread only."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("the total of connections must be at least 1")
        self.total = total
        self.open: dict[ServerConnection, None] = {}  # in the order they opened
        self._warned = -math.inf
        self._since = 0

    def admit(self, connection: ServerConnection) -> bool:
        """Count ``connection``; False (not counted) when the port is full of sockets that
        were let in."""
        if len(self.open) >= self.total:
            victim = next((c for c in self.open if c.protocol.state is State.CONNECTING),
                          None)
            if victim is None:
                self._warn()
                return False
            del self.open[victim]
            if victim.transport is not None:
                victim.transport.abort()
        self.open[connection] = None
        return True

    def release(self, connection: ServerConnection) -> None:
        self.open.pop(connection, None)

    def _warn(self) -> None:
        # Once a minute: a flood must not flood the log too.
        now = time.monotonic()
        if now - self._warned < REFUSAL_LOG_INTERVAL:
            self._since += 1
            return
        log.warning("websocket: the port holds %d sockets, its most; closing new ones%s",
                    self.total, f" ({self._since} more since the last warning)"
                    if self._since else "")
        self._warned, self._since = now, 0


class CappedConnection(ServerConnection):
    """A connection counted against its address's cap and the port's total, aborted at once
    when over either."""

    def __init__(self, *args: Any, limit: PeerLimit, total: TotalLimit, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit = limit
        self.total = total
        self.peer: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = peer_address(transport.get_extra_info("peername"))
        if not self.limit.admit(peer):
            transport.abort()
        elif not self.total.admit(self):
            self.limit.release(peer)
            transport.abort()
        else:
            self.peer = peer
            sock = transport.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):  # (reset already; no socket)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.limit.release(self.peer)
            self.total.release(self)
            self.peer = None
        super().connection_lost(exc)


def capped_connections(settings: Settings, total: int) -> Callable[..., ServerConnection]:
    """``create_connection`` for ``websockets.serve``: the per-address cap of ``settings``
    and a total of ``total`` connections."""
    return functools.partial(CappedConnection, limit=peer_limit(settings, "websocket"),
                             total=TotalLimit(total))
