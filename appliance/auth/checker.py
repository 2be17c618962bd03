"""Checking a password against the stored scrypt hash without letting hashing take the
service down.

scrypt costs 16 MiB and tens of milliseconds (much more on a Pi) by design. Two rules keep it
from occupying the request threads:

- At most ``slots`` verifications run at once. A request that finds them all busy is not
  queued (a queue is what let 400 wrong passwords from 100 addresses hold all 8 request
  threads for 15 s): it is refused at once with 429 and ``Retry-After: 1``.
- A credential that verified moments ago (``ttl``) is not hashed again: a client sending Basic
  auth on every request pays for one hash a minute. What is remembered is an HMAC of hash and
  password under a key made at start and never stored, so memory holds no password; at most
  ``limit`` of them, and only credentials that verified can get in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable

from .. import errors
from ..recent import Recent
from .passwords import verify_password

SLOTS = 2  # of gunicorn's 8 request threads (appliance.server.REQUEST_THREADS)
TTL = 60.0
LIMIT = 64


def busy() -> errors.AppError:
    return errors.AppError(
        "The server is busy checking other passwords; try again in a second.",
        errors.TOO_MANY_REQUESTS, headers={"Retry-After": "1"},
    )


class PasswordChecker:
    """Thread-safe; one per :class:`~appliance.auth.Authenticator`."""

    def __init__(
        self,
        *,
        slots: int = SLOTS,
        ttl: float = TTL,
        limit: int = LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._key = secrets.token_bytes(32)
        self._verified: Recent[bytes, bool] = Recent(ttl, limit, clock)  # marks verified

    def _mark(self, password: str, encoded: str) -> bytes:
        return hmac.new(self._key, f"{encoded}\0{password}".encode(), hashlib.sha256).digest()

    def verify(self, password: str, encoded: str) -> bool:
        """True when ``password`` matches the hash ``encoded``. Raises 429 (``busy``) when every
        hashing slot is taken and the credential was not verified moments ago."""
        mark = self._mark(password, encoded)
        if self._verified.get(mark):
            return True
        if not self._slots.acquire(blocking=False):
            raise busy()
        try:
            ok = verify_password(password, encoded)
        finally:
            self._slots.release()
        if ok:
            self._verified.keep(mark, True)
        return ok
