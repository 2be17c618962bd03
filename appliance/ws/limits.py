"""Bounds on the websocket port's connections before they are websockets: the per-address cap
(shared logic with the HTTP port, ``appliance/peers.py``) and the handshake deadline."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection

from appliance.config import Settings
from appliance.peers import PeerLimit, peer_address, peer_limit

# The opening handshake (the HTTP upgrade request, authentication included) must be done
# within this many seconds of the connection opening, as on the HTTP port (HEAD_TIMEOUT).
HANDSHAKE_TIMEOUT = 10.0


class CappedConnection(ServerConnection):
    """A connection counted against its address's cap, aborted at once when over it."""

    def __init__(self, *args: Any, limit: PeerLimit, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit = limit
        self.peer: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = peer_address(transport.get_extra_info("peername"))
        if self.limit.admit(peer):
            self.peer = peer
        else:
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.limit.release(self.peer)
            self.peer = None
        super().connection_lost(exc)


def capped_connections(settings: Settings) -> Callable[..., ServerConnection]:
    """``create_connection`` for ``websockets.serve``: the per-address cap of ``settings``."""
    return functools.partial(CappedConnection, limit=peer_limit(settings, "websocket"))
