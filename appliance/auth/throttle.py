"""Slowing down password and token guessing, per client address.

After ``threshold`` failures from one address, every further failure blocks that address for
``base * 2**(failures - threshold)`` seconds (0.5 s, 1 s, 2 s, … at most ``cap``). While blocked,
credential checks from it are not attempted: the caller answers 429 with ``Retry-After``
instead of sleeping in a request thread. A success resets the address; an address that has
not failed for ``forget_after`` seconds starts over. The table keeps at most ``max_entries``
addresses (least recently failed dropped first), so a flood of addresses cannot grow memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


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
    ) -> None:
        self.threshold = threshold
        self.base = base
        self.cap = cap
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def retry_after(self, address: str, now: float) -> float:
        """Seconds ``address`` must still wait before its next attempt (0 when it may try)."""
        with self._lock:
            entry = self._entries.get(address)
            if entry is None:
                return 0.0
            return max(0.0, entry.blocked_until - now)

    def failure(self, address: str, now: float) -> int:
        """Record a failed attempt; returns the address's failure count."""
        with self._lock:
            entry = self._entries.pop(address, None) or _Entry()
            if now - entry.last_failure > self.forget_after:
                entry = _Entry()
            entry.failures += 1
            entry.last_failure = now
            if entry.failures >= self.threshold:
                exponent = min(entry.failures - self.threshold, 32)
                entry.blocked_until = now + min(self.cap, self.base * 2**exponent)
            self._entries[address] = entry  # most recent last
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return entry.failures

    def success(self, address: str) -> None:
        if address in self._entries:  # cheap unlocked peek; the common case has no entry
            with self._lock:
                self._entries.pop(address, None)

    def __len__(self) -> int:
        return len(self._entries)
