"""A service-wide budget of failed password guesses from strangers.

The per-address throttle (:mod:`~appliance.auth.throttle`) counts each address, /64 and /48
on its own, and keeps a bounded table. One who holds many addresses (an IPv6 /32 is 65,536
/48s; a botnet has thousands of IPv4 addresses) guesses a few times from each, every one under
its own count, and by cycling through more keys than the table holds has the counts dropped
too: never slowed. So failed password guesses are also counted for the whole service, in a
bucket of ``size`` guesses that fills again at one guess every ``refill`` seconds (the
per-address throttle's longest block: spread over any number of addresses, guessing goes no
faster than from one blocked address). While the bucket is empty, a password from a stranger
is not checked: 429 with ``Retry-After``.

Who is no stranger, and so neither counted nor held off: an address on the LAN (loopback,
private IPv4, link-local, IPv6 unique local) and an address (IPv6: its /64) from which a
password or token was proved in the last ``known_for`` seconds (at most ``max_known`` kept,
in memory: a restart forgets them). A login session's cookie, a token and a ticket are never
held off either (they are not guessed). What it cannot do: while a spread attack goes on, the
owner's password from an address the service has not seen (a phone on a new network) is
refused like the guesses; a session cookie, a token, the LAN or a known address still work.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections import OrderedDict

from ..ip_addresses import subscriber_network

log = logging.getLogger("appliance.auth")

SIZE = 100
REFILL = 10.0  # seconds per guess: Throttle's cap
KNOWN_FOR = 30 * 86400.0  # a remembered login's cookie lives as long
MAX_KNOWN = 1024
# Said once when the bucket runs dry, then at most once in this many seconds.
WARN_EVERY = 3600.0

_LAN = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10",
))


def on_lan(address: str) -> bool:
    """Whether ``address`` (as the throttle gets it) is loopback or a private LAN address.
    Not the ipaddress module's ``is_private``: it counts documentation and other reserved
    ranges too, which a stranger on the internet can route from."""
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False  # no address known ("-"): not vouched for
    # Only the mapped form (a dual-stack socket's): a 6to4 or NAT64 address naming a LAN
    # one comes from elsewhere.
    parsed = getattr(parsed, "ipv4_mapped", None) or parsed
    return any(parsed.version == n.version and parsed in n for n in _LAN)


def _known_key(address: str) -> str:
    # An IPv6 client picks a new address of its /64 often (privacy addresses): the /64 is it.
    return subscriber_network(address) or address


class GuessBudget:
    """Thread-safe; one per :class:`~appliance.auth.Authenticator`. ``now`` is the caller's
    clock (epoch seconds)."""

    def __init__(self, size: int = SIZE, refill: float = REFILL, known_for: float = KNOWN_FOR,
                 max_known: int = MAX_KNOWN) -> None:
        self.size = size
        self.refill = refill
        self.known_for = known_for
        self.max_known = max_known
        self._lock = threading.Lock()
        self._left = float(size)
        self._at: float | None = None
        self._known: OrderedDict[str, float] = OrderedDict()  # key -> proved at
        self._warned_at: float | None = None

    def stranger(self, address: str, now: float) -> bool:
        """Whether guesses from ``address`` count in the budget (and wait when it is spent)."""
        if on_lan(address):
            return False
        with self._lock:
            proved = self._known.get(_known_key(address))
        return proved is None or now - proved > self.known_for

    def known(self, address: str, now: float) -> None:
        """``address`` proved a credential: it is no stranger for ``known_for`` seconds."""
        if on_lan(address):
            return
        key = _known_key(address)
        with self._lock:
            self._known.pop(key, None)
            self._known[key] = now
            while len(self._known) > self.max_known:
                self._known.popitem(last=False)

    def _fill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            self._left = min(float(self.size), self._left + (now - self._at) / self.refill)
        # A clock stepped back counts as no time passed, not as a wait for the step.
        self._at = now

    def retry_after(self, now: float) -> float:
        """Seconds a stranger's guess must still wait (0 when one may be checked)."""
        with self._lock:
            self._fill(now)
            return 0.0 if self._left >= 1 else (1 - self._left) * self.refill

    def spend(self, now: float, address: str) -> None:
        """A stranger's guess failed."""
        with self._lock:
            self._fill(now)
            self._left = max(0.0, self._left - 1)
            if self._left >= 1:
                return
            if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
                return
            self._warned_at = now
        log.warning(
            "Failed password guesses from addresses neither on the LAN nor logged in from "
            "before used up the service's budget (%d, one more every %g s), the last from %s: "
            "for now passwords from such addresses are checked at most one every %g s (the "
            "LAN, known addresses, login sessions and tokens are not held off)",
            self.size, self.refill, address, self.refill)
