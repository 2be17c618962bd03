"""Slowing down password and token guessing, per client address.

After ``threshold`` failures from one address, every further failure blocks that address for
``base * 2**(failures - threshold)`` seconds (0.5 s, 1 s, 2 s, … at most ``cap``). While blocked,
credential checks from it are not attempted: the caller answers 429 with ``Retry-After``
instead of sleeping in a request thread. An address that has not failed for ``forget_after``
seconds starts over.

The service has two passwords (the ``YTP_AUTH_*`` one and the ``web passwd`` one), which a
shared box may give to different people. A failure is counted for each credential it may have
been aimed at (its ``scopes``: the caller knows which a user name can open), and an entry's
count is the largest of them. A success (the authenticator's: a right password, not a token)
forgives the failures of the credential it proved only: one who knows one password cannot use
it to wipe out the guessing of the other. The table keeps at most ``max_entries`` addresses
(least recently failed dropped first), so a flood of addresses cannot grow memory.

An IPv6 client can pick a new address in its /64 for every guess, so failures are also
counted per /64 (:func:`~appliance.ip_addresses.subscriber_network`), blocked from
``network_threshold`` failures on (a home's devices share one /64: more than one address's
worth of typing errors before it slows them); and one given a /48 can pick a new /64 for every
guess, so they are counted per /48 too, blocked from ``site_threshold`` failures on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..ip_addresses import SITE_PREFIX, subscriber_network

# The scope of a caller that has one credential only (and the tests' default).
ANY = ""


@dataclass
class _Entry:
    failures: dict[str, int] = field(default_factory=dict)  # per credential aimed at
    last_failure: float = 0.0
    blocked_until: float = 0.0

    @property
    def count(self) -> int:
        return max(self.failures.values(), default=0)


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
            wait = 0.0
            for key, _ in self._keys(address):
                if (entry := self._entries.get(key)) is not None:
                    # Never longer than a block lasts: a clock stepped back (NTP correcting
                    # one that ran ahead) would otherwise hold the address off for the step.
                    entry.blocked_until = min(entry.blocked_until, now + self.cap)
                    wait = max(wait, entry.blocked_until - now)
            return wait

    def failure(self, address: str, now: float, scopes: Iterable[str] = (ANY,)) -> int:
        """Record a failed attempt, aimed at any of the credentials ``scopes``; returns the
        address's failure count."""
        scopes = tuple(dict.fromkeys(scopes)) or (ANY,)
        with self._lock:
            counts = [self._fail(key, threshold, now, scopes)
                      for key, threshold in self._keys(address)]
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return counts[0]

    def _fail(self, key: str, threshold: int, now: float, scopes: tuple[str, ...]) -> int:
        entry = self._entries.pop(key, None) or _Entry()
        if now - entry.last_failure > self.forget_after:
            entry = _Entry()
        for scope in scopes:
            entry.failures[scope] = entry.failures.get(scope, 0) + 1
        entry.last_failure = now
        count = entry.count
        if count >= threshold:
            exponent = min(count - threshold, 32)
            entry.blocked_until = now + min(self.cap, self.base * 2**exponent)
        self._entries[key] = entry  # most recent last
        return count

    def success(self, address: str, scope: str = ANY) -> None:
        """The right credential ``scope`` from ``address``: the failures that may have been
        aimed at it are forgiven there (and in its /64 and /48); the others' stay."""
        keys = [key for key, _ in self._keys(address) if key in self._entries]
        if keys:  # cheap unlocked peek first: the common case has no entry
            with self._lock:
                for key in keys:
                    entry = self._entries.get(key)
                    if entry is None:
                        continue
                    entry.failures.pop(scope, None)
                    if not entry.failures:
                        del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
