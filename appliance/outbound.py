"""Where the service's own requests may connect — webhooks, and the pages and feeds tasks
read. Their URLs are whatever a client wrote, so the address a request goes to is checked when
it connects (every address its host resolves to, and the connection made to the one checked:
a second lookup could answer otherwise), redirects included.

This machine's loopback and the LAN are allowed: they are where a home server's targets and
feeds live (Home Assistant, ntfy, Gotify, a script, a podcast server). Refused: link-local
addresses (the cloud's metadata service at 169.254.169.254, which hands out the machine's
credentials; no one's webhook or feed), the metadata services' other addresses, the
unspecified address and multicast, also in the IPv6 forms that carry an IPv4 address (mapped,
NAT64, 6to4).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .ip_addresses import Address, carried_ipv4

METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "fd00:ec2::254",  # AWS over IPv6 (a unique-local address, LAN-like otherwise)
    "100.100.100.200",  # Alibaba Cloud (shared address space)
))


class RefusedAddress(ValueError):
    """A request's host is, or resolves to, an address the service does not connect to."""


def _forms(address: Address) -> list[Address]:
    carried = carried_ipv4(address)
    return [address] if carried is None else [address, carried]


def why_refused(address: Address) -> str | None:
    """Why a notification may not go to ``address``; None when it may."""
    for form in _forms(address):
        if form in METADATA or form.is_link_local:
            return "a link-local or cloud metadata address"
        if form.is_unspecified:
            return "the unspecified address"
        if form.is_multicast:
            return "a multicast address"
    return None


def literal_problem(host: str | None, what: str) -> str | None:
    """Why ``host``, when it is an IP address written out, is refused (a URL being saved);
    ``what`` names the requests (``notifications``)."""
    try:
        address = ipaddress.ip_address((host or "").strip("[]").split("%")[0])
    except ValueError:
        return None  # a name: checked when it is resolved, on connecting
    reason = why_refused(address)
    return f"its host {host} is {reason}, where {what} may not go" if reason else None


def _refusal(host: str, infos: list[Any], what: str) -> RefusedAddress | None:
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if (reason := why_refused(address)) is not None:
            return RefusedAddress(f"{host} is {address}, {reason}: {what} may not go there.")
    return None


def _checked(host: str, port: int, what: str) -> str:
    """The address to connect to for ``host``: every one it resolves to must be allowed."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if (refusal := _refusal(host, infos, what)) is not None:
        raise refusal
    return str(infos[0][4][0])


# Apprise connects by itself, through whichever library its plugin uses (requests, smtplib,
# an MQTT client...), so no session of ours is in the way; every one of them looks the host up
# with socket.getaddrinfo and connects to what it answers. Wrapped once, the lookup refuses a
# forbidden address while ``lookups_checked`` is on: the final form, however the URL wrote it
# (``json://2852039166/`` is 169.254.169.254). A context variable, not a thread's: Apprise
# sends from its own pool, with a copy of the caller's context.
@dataclasses.dataclass
class _Checking:
    what: str
    refused: RefusedAddress | None = None


_checking: contextvars.ContextVar[_Checking | None] = contextvars.ContextVar(
    "lookups_checked", default=None)
_wrapping = threading.Lock()


def _checked_getaddrinfo(real: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    @functools.wraps(real)
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        infos = real(host, port, *args, **kwargs)
        checking = _checking.get()
        if checking is not None and (
                refusal := _refusal(str(host), infos, checking.what)) is not None:
            checking.refused = refusal
            raise socket.gaierror(socket.EAI_FAIL, str(refusal))
        return infos

    getaddrinfo.checks_lookups = True  # type: ignore[attr-defined]
    return getaddrinfo


@contextlib.contextmanager
def lookups_checked(what: str) -> Iterator[Callable[[], RefusedAddress | None]]:
    """Within (and in work it hands to other threads with its context): every host looked up
    must resolve to allowed addresses only, else the lookup fails as for a name that does not
    exist. Yields what tells the refusal, if any; ``what`` names the requests in it."""
    with _wrapping:
        if not getattr(socket.getaddrinfo, "checks_lookups", False):
            socket.getaddrinfo = _checked_getaddrinfo(socket.getaddrinfo)
    checking = _Checking(what)
    token = _checking.set(checking)
    try:
        yield lambda: checking.refused
    finally:
        _checking.reset(token)


def checked_session(what: str) -> Any:
    """A requests session whose every connection goes to an address checked here; ``what``
    names its requests in a refusal (``notifications``). requests and urllib3 load with the
    first such request, not with the service."""
    import requests

    session = requests.Session()
    for scheme in ("http://", "https://"):
        adapter = _adapter_class(what)()
        adapter.poolmanager.pool_classes_by_scheme = _pool_classes(what)
        session.mount(scheme, adapter)
    return session


@functools.cache
def _adapter_class(what: str) -> type:
    from urllib.parse import urlsplit

    from requests.adapters import HTTPAdapter
    from requests.utils import select_proxy

    class CheckedAdapter(HTTPAdapter):
        """Through a proxy (HTTP(S)_PROXY, which requests follows) the connection is the
        proxy's and the proxy resolves the host: the host is checked here first. A name this
        machine cannot resolve is left to the proxy (a network where only it reaches out)."""

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if select_proxy(request.url, kwargs.get("proxies")):
                url = urlsplit(request.url)
                with contextlib.suppress(socket.gaierror):
                    _checked(url.hostname or "", url.port or 0, what)
            return super().send(request, *args, **kwargs)

    return CheckedAdapter


@functools.cache
def _pool_classes(what: str) -> dict[str, type]:
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Checked:
        """Connects to the address it checked, under the host's name (Host header, TLS)."""

        _dns_host: str
        port: int

        def _new_conn(self) -> Any:
            name = self._dns_host
            with contextlib.suppress(socket.gaierror):  # urllib3 words a name not found
                self._dns_host = _checked(name, self.port, what)
            try:
                return super()._new_conn()  # type: ignore[misc]
            finally:
                self._dns_host = name

    class CheckedHTTP(Checked, HTTPConnection):
        pass

    class CheckedHTTPS(Checked, HTTPSConnection):
        pass

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTP

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPS

    return {"http": HTTPPool, "https": HTTPSPool}
