"""Signed session cookies, single-use websocket tickets and file tickets.

Cookie value: ``v1.<session id>.<expiry>.<mac>``, where ``mac`` is the URL-safe base64 of
HMAC-SHA256(secret, ``v1.<session id>.<expiry>``). A cookie is good when the MAC matches, the
expiry (epoch seconds) is in the future and the session id is still in the auth file's session
table (logout and ``web passwd`` remove it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable

COOKIE_NAME = "appliance_session"
VERSION = "v1"
REMEMBER_SECONDS = 30 * 24 * 3600  # ?remember=true: a persistent cookie for 30 days
BROWSER_SECONDS = 24 * 3600  # otherwise a browser-session cookie, valid at most a day
TICKET_SECONDS = 60
# A file ticket lets a player that cannot send credentials (a cast device, a phone app) read
# one file for long enough to watch it, seeking as it goes.
FILE_TICKET_SECONDS = 3 * 3600
MAX_TICKETS = 1000


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: str, session_id: str, expires: int) -> str:
    payload = f"{VERSION}.{session_id}.{expires}"
    return f"{payload}.{_mac(secret, payload)}"


def verify(secret: str, value: str) -> tuple[str, int] | None:
    """``(session id, expiry)`` when the value carries a good MAC, else None (expiry and the
    session table are the caller's to check)."""
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        return None
    _, session_id, expires_text, mac = parts
    payload = f"{VERSION}.{session_id}.{expires_text}"
    if not hmac.compare_digest(_mac(secret, payload).encode(), mac.encode()):
        return None
    try:
        return session_id, int(expires_text)
    except ValueError:
        return None


def cookie_values(header: str | None, name: str = COOKIE_NAME) -> list[str]:
    """Every value of cookie ``name`` in a ``Cookie`` request header (a browser may send two
    with the same name for different paths)."""
    if not header:
        return []
    values = []
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            values.append(value.strip().strip('"'))
    return values


class Tickets:
    """Short-lived tickets, kept in memory (the websocket and the API run in one process).
    At most ``limit`` are outstanding; the oldest go first. A ticket may carry a scope (what
    it opens, e.g. one file): a websocket ticket has none and is redeemed once; a scoped
    ticket is asked for its scope as often as its holder likes until it expires.

    A ticket holds the credentials it was issued ``under`` and opens nothing once they
    changed: a new password or token (what one sets when a login or a token was stolen)
    left every ticket minted with the old ones reading its file for three hours."""

    def __init__(self, ttl: float = TICKET_SECONDS, limit: int = MAX_TICKETS) -> None:
        self.ttl = ttl
        self.limit = limit
        self._lock = threading.Lock()
        self._tickets: OrderedDict[str, tuple[float, str | None, Hashable]] = OrderedDict()

    def issue(self, now: float, scope: str | None = None, under: Hashable = None
              ) -> tuple[str, float]:
        ticket = secrets.token_urlsafe(32)
        expires = now + self.ttl
        with self._lock:
            self._prune(now)
            self._tickets[ticket] = (expires, scope, under)
            while len(self._tickets) > self.limit:
                self._tickets.popitem(last=False)
        return ticket, expires

    def redeem(self, ticket: str, now: float, under: Hashable = None) -> bool:
        """True once for an unscoped ticket that was issued ``under`` these credentials and
        has not expired."""
        with self._lock:
            if ticket not in self._tickets or self._tickets[ticket][1] is not None:
                return False
            expires, _, issued_under = self._tickets.pop(ticket)
        return expires > now and issued_under == under

    def scope(self, ticket: str, now: float, under: Hashable = None) -> str | None:
        """What a live scoped ticket opens (it stays live); None when unknown, expired or
        issued under other credentials."""
        with self._lock:
            expires, scope, issued_under = self._tickets.get(ticket, (0.0, None, None))
        return scope if expires > now and issued_under == under else None

    def _prune(self, now: float) -> None:
        # Issued in order with one ttl, so the expired ones are at the front.
        while self._tickets:
            first, (expires, _, _) = next(iter(self._tickets.items()))
            if expires > now:
                return
            del self._tickets[first]
