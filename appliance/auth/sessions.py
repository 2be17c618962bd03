"""Signed session cookies and single-use websocket tickets.

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

COOKIE_NAME = "appliance_session"
VERSION = "v1"
REMEMBER_SECONDS = 30 * 24 * 3600  # ?remember=true: a persistent cookie for 30 days
BROWSER_SECONDS = 24 * 3600  # otherwise a browser-session cookie, valid at most a day
TICKET_SECONDS = 60
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
    """Short-lived, single-use websocket tickets, kept in memory (the websocket runs in the
    same process as the API). At most ``MAX_TICKETS`` are outstanding; the oldest go first."""

    def __init__(self, ttl: float = TICKET_SECONDS, limit: int = MAX_TICKETS) -> None:
        self.ttl = ttl
        self.limit = limit
        self._lock = threading.Lock()
        self._tickets: OrderedDict[str, float] = OrderedDict()

    def issue(self, now: float) -> tuple[str, float]:
        ticket = secrets.token_urlsafe(32)
        expires = now + self.ttl
        with self._lock:
            self._prune(now)
            self._tickets[ticket] = expires
            while len(self._tickets) > self.limit:
                self._tickets.popitem(last=False)
        return ticket, expires

    def redeem(self, ticket: str, now: float) -> bool:
        """True once for a ticket that was issued and has not expired."""
        with self._lock:
            expires = self._tickets.pop(ticket, None)
        return expires is not None and expires > now

    def _prune(self, now: float) -> None:
        # Issued in order with one ttl, so the expired ones are at the front.
        while self._tickets:
            first, expires = next(iter(self._tickets.items()))
            if expires > now:
                return
            del self._tickets[first]
