"""A cap on the connections one address may hold open, on the HTTP port and the websocket port.

An open connection costs a file descriptor and a buffer, even while its client sends nothing;
without a cap one client could hold them all. The cap counts the socket's peer address: behind
a reverse proxy every client shares the proxy's, which is why the cap is a setting
(``YTP_MAX_CONNECTIONS_PER_ADDRESS``), generous by default, and trusted proxies
(``YTP_TRUSTED_PROXIES``) are not capped at all. An IPv6 client can connect from a new address
of its /64 every time, so each /64 is capped too, at ``NETWORK_SHARE`` times the address's cap
(a home's devices share one).

Not thread-safe: each user keeps it on one thread (the HTTP worker's poller, the websocket
loop).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .ip_addresses import subscriber_network

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

# One warning per address per minute is enough to tell that something hammers the service;
# one per refused connection would let that client flood the log.
REFUSAL_LOG_INTERVAL = 60.0
# Addresses remembered for the rate limit of that warning, at most (many-address floods).
REMEMBERED_REFUSALS = 1024
NETWORK_SHARE = 4


def peer_address(peer: Any) -> str:
    """The address part of a socket's peer name (``("10.0.0.5", 51000)`` → ``"10.0.0.5"``)."""
    return str(peer[0]) if isinstance(peer, tuple | list) and peer else str(peer or "")


def peer_limit(settings: Settings, port_name: str) -> PeerLimit:
    """The cap of ``settings`` for one port, trusted proxies exempt."""
    # Here, not at the top: gunicorn's master imports this module (with the worker class) and
    # would hold the whole auth package it never uses.
    from .auth.proxies import TrustedProxies

    return PeerLimit(settings.max_connections_per_address, port_name,
                     TrustedProxies(settings.trusted_proxies).trusts_peer)


class PeerLimit:
    """Counts open connections per address and refuses those over ``cap``; addresses that
    ``exempt`` says are not counted."""

    def __init__(self, cap: int, port_name: str,
                 exempt: Callable[[str], bool] = lambda address: False) -> None:
        self.cap = cap
        self.port_name = port_name
        self.exempt = exempt
        self.open: Counter[str] = Counter()
        # address → (when it was last logged, refusals since then)
        self._refusals: dict[str, tuple[float, int]] = {}

    def admit(self, address: str) -> bool:
        """Count a new connection from ``address``; False (not counted) when it or its /64
        is over the cap."""
        if self.exempt(address):
            return True
        network = subscriber_network(address)
        if self.open[address] >= self.cap:
            self._log_refusal(address, self.cap, "one address may")
            return False
        if network is not None and self.open[network] >= self.cap * NETWORK_SHARE:
            self._log_refusal(network, self.cap * NETWORK_SHARE,
                              f"one IPv6 /64 may, {NETWORK_SHARE} times what one address may")
            return False
        for key in (address, network):
            if key is not None:
                self.open[key] += 1
        return True

    def release(self, address: str) -> None:
        """An admitted connection from ``address`` closed (exempt ones were never counted)."""
        for key in (address, subscriber_network(address)):
            if key is None:
                continue
            left = self.open[key] - 1
            if left > 0:
                self.open[key] = left
            else:
                self.open.pop(key, None)

    def _log_refusal(self, address: str, cap: int, most: str) -> None:
        now = time.monotonic()
        logged, since = self._refusals.get(address, (-math.inf, 0))
        if now - logged < REFUSAL_LOG_INTERVAL:
            self._refusals[address] = (logged, since + 1)
            return
        if len(self._refusals) >= REMEMBERED_REFUSALS:
            self._refusals = {a: v for a, v in self._refusals.items()
                              if now - v[0] < REFUSAL_LOG_INTERVAL}
        self._refusals[address] = (now, 0)
        log.warning(
            "%s: %s already holds %d connections, the most %s "
            "(YTP_MAX_CONNECTIONS_PER_ADDRESS); closing its new ones%s", self.port_name,
            address, cap, most, f" ({since} more since the last warning)" if since else "")
