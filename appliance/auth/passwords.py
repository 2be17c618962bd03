"""Password hashing with the standard library's scrypt.

A hash is one self-describing string, ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash in
URL-safe base64 without padding), so the cost can be raised later without breaking old hashes:
verification reads the parameters from the string itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

MIN_LENGTH = 8
SCHEME = "scrypt"
# n=2**14, r=8: 16 MiB and some tens of milliseconds per hash on a Raspberry Pi 4 — slow for a
# guesser, fine for a login. Verified Basic credentials are cached by the caller, so a client
# sending Basic on every request does not pay it every time.
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
_MAXMEM = 64 * 1024 * 1024
_MAX_N = 2**20  # a hash string asking for more is refused rather than allowed to eat memory


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=size
    )


def hash_password(password: str) -> str:
    """A new salted hash of ``password`` (never the password itself)."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, N, R, P, KEY_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; False for a wrong password or a hash string
    that cannot be read (never raises for bad input)."""
    try:
        scheme, n_text, r_text, p_text, salt_text, key_text = encoded.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt, key = _unb64(salt_text), _unb64(key_text)
    except (ValueError, binascii.Error):
        return False
    if scheme != SCHEME or not (1 < n <= _MAX_N) or n & (n - 1) or r < 1 or p < 1 or not key:
        return False
    try:
        candidate = _derive(password, salt, n, r, p, len(key))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, key)
