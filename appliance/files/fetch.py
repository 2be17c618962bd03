"""Server-side fetches of remote images (``/api/thumbnail``, history thumbnails, the random
background), safe against server-side request forgery.

The URL must be http(s). Its host is resolved here, every address is checked (this machine's
own — loopback, unspecified — private, link-local, multicast and reserved ones are refused
unless ``allow`` says otherwise), and the connection goes to the address that was checked
(a second lookup could answer differently: DNS rebinding). A redirect is a new URL and is
checked the same way, five at most. The answer must be an image (Content-Type ``image/…``),
not one that can carry scripts (SVG, XML), at most MAX_BYTES, and all of it must arrive within
TIMEOUT seconds.
"""

from __future__ import annotations

import dataclasses
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from .. import errors
from ..ip_addresses import NAT64_LOCAL, Address, carried_ipv4
from ..outbound import why_refused

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = 10.0
MAX_REDIRECTS = 5
USER_AGENT = "appliance (thumbnail fetch)"

def public_only(address: Address) -> bool:
    """The default policy: only addresses on the public internet."""
    # An IPv6 address that stands for an IPv4 one is judged as that one too: the IPv6 form of
    # a multicast or a private address is not multicast or private to the ipaddress module.
    if address in NAT64_LOCAL:
        return False
    return all(real.is_global and not real.is_multicast
               for real in (address, carried_ipv4(address) or address))


def any_address(address: Address) -> bool:
    """YTP_FETCH_PRIVATE_ADDRESSES: this machine and the LAN too, but never what no request of
    the service may reach (the cloud's metadata service, link-local, unspecified, multicast):
    a thumbnail URL is site metadata."""
    return why_refused(address) is None


def policy(private_addresses: bool) -> Callable[[Address], bool]:
    """Whose addresses a fetch of a site's image may reach (YTP_FETCH_PRIVATE_ADDRESSES)."""
    return any_address if private_addresses else public_only


@dataclasses.dataclass
class Image:
    data: bytes
    content_type: str


def upstream(message: str) -> errors.AppError:
    return errors.AppError(message, errors.UPSTREAM_ERROR)


def _addresses(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise upstream(f"Cannot resolve '{host}'.") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the URL's host for SNI and the certificate."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def fetch_image(url: str, allow: Callable[[Address], bool] = public_only) -> Image:
    """The image at ``url``; 400 for a URL that is not http(s), 403 for an address ``allow``
    refuses, 502 when the other end fails or answers with something else than an image."""
    deadline = time.monotonic() + TIMEOUT
    for _ in range(MAX_REDIRECTS + 1):
        response, conn = _open(url, allow, deadline)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise upstream("A redirect without a Location.")
                try:
                    url = urljoin(url, location)
                    urlsplit(url).port  # noqa: B018 - as _open reads it
                except ValueError as exc:  # "http://[::1": the other end's fault
                    raise upstream(f"A redirect to a URL that is not valid: {exc}.") from None
                continue
            if response.status != 200:
                raise upstream(f"The image's server answered {response.status}.")
            kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                raise upstream(f"Not an image (Content-Type: {kind or 'none'}).")
            if "svg" in kind or "xml" in kind:
                # served again from this service's own origin, opened as a page, its scripts
                # would run with the user's session (the thumbnail URL is a site's metadata)
                raise upstream(f"An image that can carry scripts is not served (Content-Type: "
                               f"{kind}).")
            return Image(_read(response, deadline), kind)
        finally:
            conn.close()
    raise upstream(f"More than {MAX_REDIRECTS} redirects.")


def _open(url: str, allow: Callable[[Address], bool], deadline: float
          ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    try:  # an unclosed "[::1", a bracketed host that is no address, a port out of range
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not one
    except ValueError as exc:
        raise errors.invalid(f"url '{url[:200]}' is not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise errors.invalid("Only http(s) URLs with a host can be fetched.")
    port = parts.port or (443 if scheme == "https" else 80)
    addresses = _addresses(parts.hostname, port)
    refused = [a for a in addresses if not allow(a)]
    if refused or not addresses:
        raise errors.AppError(
            f"Fetching from {refused[0] if refused else parts.hostname} is not allowed "
            "(this machine's own or a private address; YTP_FETCH_PRIVATE_ADDRESSES).",
            errors.FORBIDDEN)
    pinned = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    timeout = max(0.1, deadline - time.monotonic())
    conn = pinned(parts.hostname, str(addresses[0]), port, timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", target, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
        return conn.getresponse(), conn
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise upstream(f"Cannot fetch the image: {exc}.") from None


def _read(response: http.client.HTTPResponse, deadline: float) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > MAX_BYTES:
        raise upstream(f"The image is over {MAX_BYTES // (1024 * 1024)} MiB.")
    data = bytearray()
    try:
        while piece := response.read1(64 * 1024):
            data += piece
            if len(data) > MAX_BYTES:
                raise upstream(f"The image is over {MAX_BYTES // (1024 * 1024)} MiB.")
            if time.monotonic() > deadline:
                raise upstream(f"The image did not arrive within {TIMEOUT:g} s.")
    except (OSError, http.client.HTTPException) as exc:
        raise upstream(f"Cannot fetch the image: {exc}.") from None
    return bytes(data)
