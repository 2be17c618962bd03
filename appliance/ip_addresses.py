"""What an IP address stands for: the IPv6 forms that carry an IPv4 address, which the
ipaddress module judges as IPv6 only (the IPv6 form of a multicast or a private address is
neither multicast nor private to it). Shared by every policy on where the service connects
(remote images, notifications)."""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64's well-known prefix carries an IPv4 address in its last 32 bits, which a NAT64 gateway
# on the LAN reaches on its IPv4 side (64:ff9b::c0a8:101 is 192.168.1.1); the ipaddress module
# calls the whole prefix global. The local-use prefix (RFC 8215) is never public.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def carried_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped (::ffff:a.b.c.d), NAT64 or 6to4."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped or address.sixtofour


# One IPv6 subscriber holds a /64 at least (a home's LAN, a server's interface): it can pick a
# new address in it for every connection or guess, so a cap per address alone bounds nothing.
SUBSCRIBER_PREFIX = 64
# And many hold a /48 (what RIPE advises a site be given; many ISPs and hosts do): 65,536 /64s.
SITE_PREFIX = 48


def subscriber_network(text: str, prefix: int = SUBSCRIBER_PREFIX) -> str | None:
    """The /64 (or ``prefix``) an IPv6 address (as text) belongs to (``"2001:db8:1:2::/64"``),
    for caps that count per address *and* per network; None for IPv4 (IPv6-mapped too) and
    non-addresses."""
    if ":" not in text:  # IPv4 or not an address: the common case, without parsing
        return None
    try:
        address = ipaddress.IPv6Address(text.strip("[]"))
    except ValueError:
        return None
    if address.ipv4_mapped is not None:
        return None
    return str(ipaddress.IPv6Network((address, prefix), strict=False))
