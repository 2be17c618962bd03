"""Which host names the service answers to while authentication is off (DNS rebinding).

With auth off, the browser's own rules are all that keeps a web page from the API: a page on
``evil.example`` may not read answers from ``192.168.1.20``. DNS rebinding walks around them:
the page's name is made to resolve to the service's address, and the browser then treats the
service as the page's own origin — every request same-origin, ``Origin`` and ``Host`` both
``evil.example:8081``, the answers readable (the history, the files). Only the ``Host`` header
tells: it carries the name the page used. So while auth is off a request must name the service
by something a stranger's DNS cannot answer for: an IP address, ``localhost``, a name of one
label (``raspberrypi``), a name under a suffix that only the LAN resolves (``.local``,
``.lan``, ``.home.arpa``, ``.internal``, ``.localdomain``, ``.home``), this machine's own
name, a host of ``YTP_CORS_ORIGINS``, or one of ``YTP_ALLOWED_HOSTS`` (names, ``*.domain``
for a domain's names, ``*`` for any). Anything else is 421 Misdirected Request, saying what to
set. With auth on a rebinding page gets nothing: the browser keeps credentials per origin.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from .. import errors
from .browsers import host_port

LAN_SUFFIXES = ("localhost", "local", "lan", "home.arpa", "internal", "localdomain", "home")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return True


class HostPolicy:
    """``allowed``: the ``YTP_ALLOWED_HOSTS`` entries; ``origins``: ``YTP_CORS_ORIGINS``."""

    def __init__(self, allowed: Iterable[str], origins: Iterable[str] = ()) -> None:
        entries = {a.lower().rstrip(".") for a in allowed}
        self.any = "*" in entries
        self.domains = tuple(e[2:] for e in entries if e.startswith("*."))
        self.names = {e for e in entries if not e.startswith("*")}
        self.names.update(n for o in origins if (n := urlsplit(o).hostname))
        self.names.add(socket.gethostname().lower().rstrip("."))

    def known(self, name: str) -> bool:
        if self.any or "." not in name or name in self.names or _is_address(name):
            return True
        return any(name.endswith("." + suffix) or name == suffix
                   for suffix in (*LAN_SUFFIXES, *self.domains))

    def refusal(self, header: str | None) -> errors.AppError | None:
        """Why a request sent to ``header`` (its ``Host``) is refused while auth is off; None
        when it is not. A request without ``Host`` (HTTP/1.0, not a browser) is not."""
        if header is None:
            return None
        parsed = host_port(header, 0)
        if parsed is not None and self.known(parsed[0]):
            return None
        shown = (parsed[0] if parsed else header)[:253]
        return errors.AppError(
            f"This service does not answer to the name {shown!r} while authentication is off: "
            "a web page could reach it under a name of its own (DNS rebinding). Use its IP "
            "address or local name, set a password (`appliance web passwd`), or add the name "
            "to YTP_ALLOWED_HOSTS.", errors.MISDIRECTED)
