"""What a web page open in a browser may make the service do.

With authentication off (the default on a LAN) any page a LAN user opens can send requests to
the service; with it on, a browser may still attach a cached Basic credential. So requests
that change something are checked for the page that sent them, using what the browser itself
writes and no page can forge: ``Origin`` and the ``Sec-Fetch-*`` (fetch metadata) headers.
Programs that are not browsers send neither and are not affected.

- A request that can change state (``POST``/``PUT``/``PATCH``/``DELETE``, and the websocket
  handshake) is refused when it comes from a page on another origin: allowed are no
  ``Origin`` at all, ``Sec-Fetch-Site: same-origin``, an origin listed in
  ``YTP_CORS_ORIGINS``, and the service's own origin — the ``Origin`` host and port equal the
  ``Host`` the request was sent to, or the same host on the HTTP port (the websocket has a
  port of its own, so a page served by the API is on another port than the handshake).
- ``GET /api/history/add`` adds to the queue, for bookmarklets and links: see
  :meth:`BrowserPolicy.quick_add_refusal`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

Header = Callable[[str], str | None]  # a request's header by name, None when absent

DEFAULT_PORTS = {"http": 80, "https": 443}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _origin(value: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an ``Origin`` value; None for ``null`` or anything else
    that is not a plain http(s) origin."""
    try:
        url = urlsplit(value.strip())
        port = url.port
    except ValueError:
        return None
    if url.scheme not in DEFAULT_PORTS or not url.hostname or url.path not in {"", "/"} \
            or url.query or url.fragment or url.username is not None:
        return None
    return url.scheme, url.hostname.lower(), port or DEFAULT_PORTS[url.scheme]


def host_port(value: str, default_port: int) -> tuple[str, int] | None:
    """``(name, port)`` of a ``Host`` header, the name in lower case without a final dot;
    None when it is not a host and port at all."""
    try:
        url = urlsplit("//" + value.strip())
        port = url.port
    except ValueError:
        return None
    if not url.hostname or url.path or url.query or url.fragment or url.username is not None:
        return None
    name = url.hostname.lower().rstrip(".")
    return (name, port or default_port) if name else None


class BrowserPolicy:
    def __init__(self, cors_origins: Iterable[str], http_port: int) -> None:
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in cors_origins)
        self.http_port = http_port

    def listed(self, origin: str | None) -> bool:
        """``origin`` is one of ``YTP_CORS_ORIGINS``."""
        return origin is not None and origin.strip().rstrip("/").lower() in self.cors_origins

    def own(self, origin: str, host: str | None) -> bool:
        """``origin`` is the service's own: the ``Host`` the request went to, or that host on
        the HTTP port."""
        parts = _origin(origin)
        if parts is None or not host:
            return False
        scheme, name, port = parts
        target = host_port(host, DEFAULT_PORTS[scheme])
        return target is not None and target[0] == name and port in {target[1], self.http_port}

    def origin_refusal(self, header: Header) -> str | None:
        """Why a state-changing request (or websocket handshake) from this page is refused;
        None when it is allowed."""
        origin = header("Origin")
        if origin is None or header("Sec-Fetch-Site") == "same-origin":
            return None
        if self.listed(origin) or self.own(origin, header("Host")):
            return None
        return (f"Requests from pages on {origin[:200]} are refused: only the service's own "
                "pages and the origins listed in YTP_CORS_ORIGINS may send them.")

    def quick_add_refusal(self, header: Header) -> str | None:
        """Why this ``GET /api/history/add`` is refused; None when it is allowed.

        Allowed: a request with no fetch metadata (curl, scripts, older browsers); one from the
        service's own pages or a ``YTP_CORS_ORIGINS`` origin; and a top-level navigation
        (``Sec-Fetch-Mode: navigate``, ``Sec-Fetch-Dest: document``) that a person started —
        typed or a bookmark (``Sec-Fetch-Site: none``), or a click (``Sec-Fetch-User: ?1``),
        which is what a bookmarklet or a link is. Refused: the URL loaded as an image,
        script, style, frame or by ``fetch`` from another page, and a navigation another
        page started on its own.
        """
        site, mode, dest = (header(f"Sec-Fetch-{n}") for n in ("Site", "Mode", "Dest"))
        if site is None and mode is None and dest is None:
            return None
        if site == "same-origin" or self.listed(header("Origin")):
            return None
        if mode != "navigate" or dest not in {None, "document"}:
            what = dest if dest not in {None, "empty"} else f"{mode or 'unknown'}-mode"
            return (f"Refused: another page loaded this URL as a {what[:40]} request. It adds "
                    "to the queue only when a person opens it (a link, a bookmark or a "
                    "bookmarklet) or a program that is not a browser calls it.")
        if site != "none" and header("Sec-Fetch-User") != "?1":
            return ("Refused: another page navigated here without a click. It adds to the "
                    "queue only when a person opens it (a link, a bookmark or a bookmarklet).")
        return None
