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

Apprise connects by itself (its plugins make their own requests, in threads of its own), with
no place to hand it a checked session: within ``connections_checked`` the same refusal is put
on every socket's ``connect`` and ``sendto`` (the address it really goes to), by an audit
hook. It judges only
there (a context variable: Apprise sends from its own pool with a copy of the caller's
context), so nothing else the process connects to changes once a chat message was sent.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import ipaddress
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .ip_addresses import Address, carried_ipv4

METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "fd00:ec2::254",  # AWS over IPv6 (a unique-local address, LAN-like otherwise)
    "100.100.100.200",  # Alibaba Cloud (shared address space)
))


class RefusedAddress(ValueError):
    """A request's host is, or resolves to, an address the service does not connect to."""


class RefusedConnection(PermissionError):
    """A socket of this process was about to connect to such an address (an OSError: what
    the libraries below Apprise report as a connection that failed)."""


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
    address = _literal(host or "")
    if address is None:
        return None  # a name: checked when it is resolved, on connecting
    reason = why_refused(address)
    if reason is None:
        return None
    written = host if str(address) == host else f"{host} ({address})"
    return f"its host {written} is {reason}, where {what} may not go"


def _literal(host: str) -> Address | None:
    text = host.strip("[]").split("%")[0]
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(text)
    try:
        # The forms the C library also reads as an IPv4 address, as every connection here
        # resolves a host: one number (2852039166), hexadecimal or octal parts, three parts.
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def _checked(host: str, port: int, what: str) -> str:
    """The address to connect to for ``host``: every one it resolves to must be allowed."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if (reason := why_refused(address)) is not None:
            raise RefusedAddress(f"{host} is {address}, {reason}: {what} may not go there.")
    return str(infos[0][4][0])


def check_host(host: str | None, what: str) -> None:
    """RefusedAddress when ``host`` resolves to an address refused here: for a request that
    goes through a proxy, which resolves the host itself, so no connection made here shows
    it. A name this machine cannot resolve is left to the proxy (a network where only it
    reaches out)."""
    with contextlib.suppress(socket.gaierror, UnicodeError):
        _checked(host or "", 0, what)


def proxied(host: str | None) -> bool:
    """Whether a request to ``host`` would go through a proxy of the environment
    (``HTTP(S)_PROXY``, ``ALL_PROXY``, less ``NO_PROXY``), as requests itself reads them:
    urllib's reading takes no address ranges in ``NO_PROXY`` (``10.0.0.0/8``)."""
    from requests.utils import get_environ_proxies

    if not host:
        return False
    name = f"[{host}]" if ":" in host else host
    proxies = get_environ_proxies(f"http://{name}/")
    return any(proxies.get(k) for k in ("http", "https", "all"))


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
                check_host(urlsplit(request.url).hostname, what)
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


@dataclasses.dataclass
class _Checking:
    what: str
    refused: RefusedConnection | None = None
    # The sockets connected within, which its end cuts (``connections_checked``).
    sockets: weakref.WeakSet[socket.socket] = dataclasses.field(
        default_factory=weakref.WeakSet)


_checking: contextvars.ContextVar[_Checking | None] = contextvars.ContextVar(
    "connections_checked", default=None)
_hooking = threading.Lock()
_hooked: list[bool] = []
# The whole process's, in every thread (``every_connection_checked``): a download process's.
_everywhere: list[_Checking] = []


_SENDS = frozenset({"socket.connect", "socket.sendto"})


def _connect_audit(event: str, args: tuple[Any, ...]) -> None:  # pragma: no mutate block
    # Called for every audited event of the process (each file opened, each log record): it
    # looks no further than a connect. Out of mutation testing: mutmut's wrapper, failing on
    # purpose to check its setup, failed every event of the test process there.
    # (sendto: a datagram goes without a connect, rsyslog:// sends so)
    if event in _SENDS and (checking := _checking.get() or (
            _everywhere[0] if _everywhere else None)) is not None:
        _refuse_connection(checking, *args)


def _refuse_connection(checking: _Checking, sock: socket.socket, address: Any) -> None:
    """RefusedConnection when ``sock`` is about to connect to an address ``why_refused``
    refuses (``address`` a name: to any it resolves to); ``checking`` keeps it."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return
    host = str(address[0])
    try:
        found = [ipaddress.ip_address(host.split("%")[0])]
    except ValueError:  # a name, which connect() resolves itself: to one of these
        try:
            infos = socket.getaddrinfo(host, address[1], sock.family, sock.type)
        except (OSError, UnicodeError):
            return  # connect() fails the same way
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for real in found:
        if (reason := why_refused(real)) is not None:
            what = f"{host} is {real}, {reason}" if host != str(real) else f"{real} is {reason}"
            checking.refused = RefusedConnection(f"{what}: {checking.what} may not go there.")
            raise checking.refused
    checking.sockets.add(sock)


def _hook() -> None:
    with _hooking:
        if not _hooked:  # an audit hook stays for the process's life: one is enough
            sys.addaudithook(_connect_audit)
            _hooked.append(True)


def every_connection_checked(what: str) -> None:
    """From now on, every socket of this process, in any thread, is refused a connection to
    an address ``why_refused`` refuses (RefusedConnection; ``what`` names them). For a
    download process: yt-dlp connects wherever a site's page, redirect or playlist leads
    (a task's channel listing or a download of a hostile site's went on to 169.254.169.254,
    which the task's own feed requests were refused), in threads of its own (fragments)."""
    _hook()
    if not _everywhere:
        _everywhere.append(_Checking(what))


@contextlib.contextmanager
def connections_checked(what: str) -> Iterator[Callable[[], RefusedConnection | None]]:
    """Within (and in work handed to other threads with this context): every socket's connect
    to an address ``why_refused`` refuses raises RefusedConnection (an OSError: a connection
    that failed, to the libraries below). Yields what tells the refusal, if any; ``what``
    names the connections in it (``notifications``). At its end the sockets connected within
    are shut down."""
    _hook()
    checking = _Checking(what)
    token = _checking.set(checking)
    try:
        yield lambda: checking.refused
    finally:
        _checking.reset(token)
        # The work is over, or given up on at its deadline: a connection still open is cut.
        # Apprise gave up on a send after its timeout while its thread read on, an answer
        # that came a byte at a time (each read within the timeout) for hours, a thread more
        # at each retry, the service's exit waiting on them.
        for sock in list(checking.sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
