"""Slowing down password and token guessing, per client address.

After ``threshold`` failures from one address, every further failure blocks that address for
``base * 2**(failures - threshold)`` seconds (0.5 s, 1 s, 2 s, … at most ``cap``). While blocked,
credential checks from it are not attempted: the caller answers 429 with ``Retry-After``
instead of sleeping in a request thread. A success (the authenticator's: a right password,
not a token) resets the address; an address that has not failed for ``forget_after`` seconds
starts over. The table keeps at most ``max_entries`` addresses (least recently failed dropped
first), so a flood of addresses cannot grow memory.

An IPv6 client can pick a new address in its /64 for every guess, so failures are also
counted per /64 (:func:`~appliance.ip_addresses.subscriber_network`), blocked from
``network_threshold`` failures on (a home's devices share one /64: more than one address's
worth of typing errors before it slows them); and one given a /48 can pick a new /64 for every
guess, so they are counted per /48 too, blocked from ``site_threshold`` failures on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..ip_addresses import SITE_PREFIX, subscriber_network


@dataclass
class _Entry:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


class Throttle:
    def __init__(
        self,
        threshold: int = 5,
        base: float = 0.5,
        cap: float = 10.0,
        forget_after: float = 900.0,
        max_entries: int = 4096,
        network_threshold: int | None = None,
        site_threshold: int | None = None,
    ) -> None:
        self.threshold = threshold
        self.network_threshold = 4 * threshold if network_threshold is None else network_threshold
        self.site_threshold = (4 * self.network_threshold if site_threshold is None
                               else site_threshold)
        self.base = base
        self.cap = cap
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _keys(self, address: str) -> list[tuple[str, int]]:
        """The entries an attempt from ``address`` counts in, with their thresholds."""
        keys = [(address, self.threshold)]
        network = subscriber_network(address)
        if network is not None:
            keys += [(network, self.network_threshold),
                     (subscriber_network(address, SITE_PREFIX) or network, self.site_threshold)]
        return keys

    def retry_after(self, address: str, now: float) -> float:
        """Seconds ``address`` must still wait before its next attempt (0 when it may try)."""
        with self._lock:
            blocked = [entry.blocked_until for key, _ in self._keys(address)
                       if (entry := self._entries.get(key)) is not None]
            return max(0.0, max(blocked, default=0.0) - now)

    def failure(self, address: str, now: float) -> int:
        """Record a failed attempt; returns the address's failure count."""
        with self._lock:
            counts = [self._fail(key, threshold, now) for key, threshold in self._keys(address)]
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return counts[0]

    def _fail(self, key: str, threshold: int, now: float) -> int:
        entry = self._entries.pop(key, None) or _Entry()
        if now - entry.last_failure > self.forget_after:
            entry = _Entry()
        entry.failures += 1
        entry.last_failure = now
        if entry.failures >= threshold:
            exponent = min(entry.failures - threshold, 32)
            entry.blocked_until = now + min(self.cap, self.base * 2**exponent)
        self._entries[key] = entry  # most recent last
        return entry.failures

    def success(self, address: str) -> None:
        """The right credentials from ``address``: it (and its /64 and /48) start over."""
        keys = [key for key, _ in self._keys(address) if key in self._entries]
        if keys:  # cheap unlocked peek first: the common case has no entry
            with self._lock:
                for key in keys:
                    self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
