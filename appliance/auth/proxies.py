"""Who the client is when the service sits behind reverse proxies.

The failed-login throttle is keyed on the client's address. Behind a proxy every request comes
from the proxy, so that key would be one for everybody: one guesser would lock every user out.
``X-Forwarded-For`` names the client, but anybody can send it, so it is read only when the
peer is one of the configured trusted proxies (``YTP_TRUSTED_PROXIES``; none by default), and
then from the right: each trusted proxy appends the address it received from, so the
right-most entry that is not itself a trusted proxy is the first one nobody trusted could
have written. Whatever a client puts further left is never used.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOPS = 16  # entries read from the right of X-Forwarded-For; a longer chain is not real
# Peers whose X-Forwarded-For is ignored, said in the log: a stranger sending the header from
# many addresses must not fill it.
MAX_NOTED = 8

log = logging.getLogger(__name__)


def _parse(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:51234"
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:192.0.2.1 is 192.0.2.1
    return mapped or address


class TrustedProxies:
    """The trusted proxy networks; ``client(peer, forwarded_for)`` is the throttle's key."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )
        self._noted: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(
            address.version == n.version and address in n for n in self.networks
        )

    def trusts_peer(self, peer: str) -> bool:
        """Whether a socket's peer address (as text) is one of the trusted proxies."""
        return self.trusts(_parse(peer))

    def may_name_the_host(self, peer: str | None) -> bool:
        """Whether ``peer`` may say which scheme and host the client used (X-Forwarded-Host,
        -Proto, Forwarded), for the links and redirects the service answers with: anybody can
        send those headers. The trusted proxies; unset, this machine (gunicorn's default for
        the scheme, a reverse proxy on the same box)."""
        address = _parse((peer or "").strip())
        if self.networks:
            return self.trusts(address)
        return address is not None and address.is_loopback

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer's, unless the peer is a trusted proxy and
        ``X-Forwarded-For`` (all its values, comma-joined) names someone it does not trust."""
        peer_text = (peer or "").strip() or "-"
        address = _parse(peer_text)
        if not forwarded_for or not self.trusts(address):
            if forwarded_for and address is not None:
                self._note_untrusted(str(address))
            return str(address) if address is not None else peer_text
        for entry in reversed(forwarded_for.split(",")[-MAX_HOPS:]):
            hop = _parse(entry)
            if hop is None:
                # Not an address (a proxy writing "unknown", or garbage): nothing left of it
                # can be believed, and the proxy that wrote it is the best we know.
                return str(address)
            if not self.trusts(hop):
                return str(hop)
            address = hop
        return str(address)

    def _note_untrusted(self, peer: str) -> None:
        """Say once per peer (for the first few) that a proxy's clients count as one: the
        person who put a reverse proxy in front and did not name it sees why everyone behind
        it shares one throttle, one connection cap and one share of the transfers."""
        if peer in self._noted or len(self._noted) >= MAX_NOTED:
            return
        self._noted.add(peer)
        log.warning("Requests from %s carry X-Forwarded-For, but %s is not in "
                    "YTP_TRUSTED_PROXIES: every client behind it counts as this one address "
                    "(the login throttle, the connections per address, the share of file "
                    "transfers). If it is your reverse proxy, set YTP_TRUSTED_PROXIES=%s.",
                    peer, peer, peer)
