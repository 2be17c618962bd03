"""The service announces itself on the local network (mDNS / DNS-SD, ``_appliance._tcp``) so
Home Assistant and other clients find it without being told its address.

python-zeroconf answers queries from its own thread. Registering probes the network for
name conflicts (about two seconds), so it runs in a thread of its own and start-up never
waits for it. Before it, the announcer listens for ``LISTEN_FIRST`` seconds to the service
type's answers: the probes wait about half a second for an answer, and a holder of the name
on a busy box or network (a Pi at full load) answered later, so the name was taken twice.
The listening ends early once the name is heard held: registering then takes another.
A network that refuses multicast costs one warning, never the service. It is started in
the worker after fork (threads made before a fork do not survive it).

The TXT record carries what a client needs before it asks anything: ``id`` (the instance id
of :mod:`appliance.instance`, stable across restarts and address changes), ``version``,
``base_path`` and ``ws_port``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable

import ifaddr
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, Zeroconf

from . import __version__
from .config import Settings

log = logging.getLogger(__name__)

SERVICE_TYPE = "_appliance._tcp.local."
STOP_WAIT = 5.0
LISTEN_FIRST = 1.5
_ANY = {"", "0.0.0.0", "::"}
MAX_LABEL = 63
MAX_TXT = 255


def local_addresses(host: str) -> list[str]:
    """The IPv4 addresses to announce: the listening address (a name's, when it is one),
    or every non-loopback address of this machine when the service listens on all of
    them."""
    if host not in _ANY:
        try:
            ipaddress.ip_address(host)
        except ValueError:  # a name, such as "localhost" or the machine's own
            try:
                found = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
            except OSError:
                return []
            return list(dict.fromkeys(str(entry[4][0]) for entry in found))
        return [host]
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if ip.is_IPv4 and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(str(ip.ip))
    return list(dict.fromkeys(found))


def _cut(text: str, size: int) -> str:
    """``text`` in at most ``size`` bytes of UTF-8, cut between characters."""
    return text.encode()[:size].decode(errors="ignore")


def service_info(settings: Settings, instance_id: str, addresses: list[str]) -> ServiceInfo:
    """The announcement. The instance name and the host name are DNS labels (63 bytes at
    most: a machine's name may be longer), each TXT entry 255 bytes at most."""
    hostname = _cut(socket.gethostname().split(".")[0], MAX_LABEL) or "appliance"
    tail = f" {instance_id[:6]}"
    name = f"appliance {_cut(hostname, MAX_LABEL - len('appliance ') - len(tail))}{tail}"
    properties = {
        "id": instance_id,
        "version": __version__,
        "base_path": settings.base_path,
        "ws_port": str(settings.websocket_port),
    }
    for key, value in properties.items():
        if len(f"{key}={value}".encode()) > MAX_TXT:
            raise ValueError(f"its {key} is longer than an announcement holds ({MAX_TXT} bytes)")
    return ServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", port=settings.port,
                       properties=properties, server=f"{hostname}.local.",
                       parsed_addresses=addresses)


class Announcer:
    """``start()`` returns at once; ``stop()`` says goodbye on the network and closes."""

    def __init__(self, settings: Settings, instance_id: str) -> None:
        self.settings = settings
        self.instance_id = instance_id
        self.name: str | None = None  # the registered name, once announced
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set by stop() and by hearing our name held
        self._zeroconf: Zeroconf | None = None
        self._thread: threading.Thread | None = None
        self.announced = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._announce, name="zeroconf", daemon=True)
        self._thread.start()

    def _announce(self) -> None:
        host = self.settings.host
        addresses = local_addresses(host)
        if not addresses:
            log.warning("zeroconf: no network address to announce; not announced")
            return
        try:
            zeroconf = Zeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
        except OSError as exc:
            log.warning("zeroconf: cannot use the network for announcements (%s); "
                        "set YTP_ZEROCONF=false to silence this", exc)
            return
        with self._lock:
            if self._stopping.is_set():
                zeroconf.close()
                return
            self._zeroconf = zeroconf
        try:
            info = service_info(self.settings, self.instance_id, addresses)
            # The holders of the type answer into the cache, where registering looks for
            # the name before its own probes and takes another when it is held.
            browser = ServiceBrowser(zeroconf, SERVICE_TYPE,
                                     handlers=[self._heard_held(info.name)])
            try:
                self._wake.wait(LISTEN_FIRST)
            finally:
                browser.cancel()
            if self._stopping.is_set():
                return
            zeroconf.register_service(info, allow_name_change=True)
        except Exception as exc:  # the announcement is a convenience: never the service's end
            log.warning("zeroconf: announcement failed (%s)", exc)
            return
        self.name = info.name
        log.info("announced on the local network as %r (%s port %d)",
                 info.name, ", ".join(addresses), self.settings.port)
        self.announced.set()  # after the line: whoever waits on it reads the name said

    def _heard_held(self, ours: str) -> Callable[..., None]:
        """A browser's handler: what it hears is kept in the cache; hearing our own name
        ends the listening."""
        def heard(name: str, **_: object) -> None:
            if name.lower() == ours.lower():
                self._wake.set()
        return heard

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)
        zeroconf = self._zeroconf
        if zeroconf is not None:
            try:
                zeroconf.unregister_all_services()
            finally:
                zeroconf.close()
