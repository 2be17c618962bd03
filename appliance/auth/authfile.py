"""The auth file, ``<config_path>/auth.json``: FlexGet-style password hash, API token, session
signing key and the table of live login sessions.

Format (JSON, mode 0600, written atomically: temp file in the same folder, fsync,
``os.replace``)::

    {
      "version": 1,
      "password": "scrypt$16384$8$1$<salt>$<hash>",   # or null: no password set
      "token": "<secrets.token_urlsafe(32)>",         # or null: no token yet
      "secret": "<64 hex digits>",                    # HMAC-SHA256 key of session cookies
      "sessions": {"<session id>": <expiry, epoch seconds>, ...}
    }

Both the CLI (``appliance web passwd|showtoken|gentoken``) and the running service (login,
logout) change it; every change is a read-modify-write under an exclusive ``flock`` on
``auth.json.lock``, so neither loses the other's change. The service notices a change made by
another process with one ``os.stat`` per request (inode, size, mtime, ctime) and re-reads the
file only when that changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..atomic import private_folder, write_atomic

log = logging.getLogger("appliance.auth")

FILE_NAME = "auth.json"
VERSION = 1
MAX_SESSIONS = 200  # past this many live sessions the ones that expire soonest are dropped
_NO_TIME = 1e15  # epoch seconds: some thirty million years on


@dataclasses.dataclass(frozen=True)
class AuthState:
    """What the auth file said when it was last read."""

    password: str | None = None
    token: str | None = None
    secret: str | None = None
    sessions: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    # The file exists but could not be read or understood: authentication stays on with
    # nothing from the file accepted (fail closed) until it is fixed or rewritten.
    broken: bool = False


EMPTY = AuthState()


def _state_from(data: Any) -> AuthState:
    if not isinstance(data, dict):
        raise ValueError("top level is not an object")

    def text(name: str) -> str | None:
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{name} must be a non-empty string or null")
        return value

    raw_sessions = data.get("sessions") or {}
    if not isinstance(raw_sessions, dict):
        raise ValueError("sessions must be an object")
    # An expiry that is no time (too large for a float, Infinity, NaN: never past) drops
    # its session rather than keeping it for ever or failing every request.
    sessions = {
        str(sid): float(exp) for sid, exp in raw_sessions.items()
        if isinstance(exp, int | float) and not isinstance(exp, bool)
        and abs(exp) < _NO_TIME
    }
    return AuthState(
        password=text("password"), token=text("token"), secret=text("secret"),
        sessions=MappingProxyType(sessions),
    )


def _data_from(state: AuthState) -> dict[str, Any]:
    return {
        "version": VERSION,
        "password": state.password,
        "token": state.token,
        "secret": state.secret,
        "sessions": dict(state.sessions),
    }


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class AuthFile:
    """Reads (cached, reloaded on change) and atomically rewrites the auth file."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self.lock_path = self.folder / (FILE_NAME + ".lock")
        self._lock = threading.Lock()
        # (stat signature, state) replaced as one tuple, so a reader never pairs one with the
        # other's predecessor.
        self._cached: tuple[tuple[int, ...] | None, AuthState] = (None, EMPTY)
        self._folder_seen = False

    # --- reading ------------------------------------------------------------------------

    def current(self) -> AuthState:
        """The file's state; costs one ``os.stat`` unless the file changed since last read."""
        failure: str | None = None
        try:
            signature: tuple[int, ...] | None = _signature(os.stat(self.path))
            self._folder_seen = True
        except FileNotFoundError:
            signature = None
            # No file in the config folder is no password; the config folder gone once seen
            # (its disk unmounted, the folder renamed or deleted while the service runs) is
            # not: the password set there must not turn into an open API.
            if self.folder.is_dir():
                self._folder_seen = True
            elif self._folder_seen:
                signature = (-3,)
                failure = "the config folder is gone"
        except OSError as exc:
            signature = (-1,)
            failure = f"cannot stat: {exc.strerror}"
        cached_signature, state = self._cached
        if signature == cached_signature:
            return state
        with self._lock:
            cached_signature, state = self._cached
            if signature != cached_signature:
                state = self._load(signature, failure)
                self._cached = (signature, state)
            return state

    def _load(self, signature: tuple[int, ...] | None, failure: str | None) -> AuthState:
        if signature is None:
            return EMPTY
        if failure is None:
            try:
                state = self.read()
            except (OSError, ValueError) as exc:
                failure = f"cannot read: {exc}"
            else:
                if self._cached[0] is not None:
                    log.info("%s changed; reloaded", self.path)
                return state
        log.error("%s: %s; refusing every credential from it until it is fixed "
                  "(appliance web passwd rewrites it)", self.path, failure)
        return AuthState(broken=True)

    def read(self) -> AuthState:
        """The file's state from disk, uncached. Raises OSError or ValueError."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return EMPTY
        return _state_from(json.loads(text))

    # --- writing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        private_folder(self.folder)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def update(
        self, change: Callable[[AuthState], AuthState], *, replace_broken: bool = False
    ) -> AuthState:
        """Read, apply ``change``, write atomically; returns the new state. An unreadable file
        raises ``ValueError`` (its password would be lost), unless ``replace_broken``: then
        ``change`` sees an empty state and the file is rewritten."""
        with self._exclusive():
            try:
                old = self.read()
            except (OSError, ValueError) as exc:
                if not replace_broken:
                    raise ValueError(f"{self.path}: cannot read: {exc}") from None
                log.warning("%s was unreadable (%s); rewriting it", self.path, exc)
                old = EMPTY
            new = change(old)
            if new != old:
                self._write(new)
        return new

    def _write(self, state: AuthState) -> None:
        body = json.dumps(_data_from(state), indent=2, sort_keys=True) + "\n"
        write_atomic(self.path, body, mode=0o600, before_rename=self._bump_mtime)

    def _bump_mtime(self, tmp: Path) -> None:
        """Make the new file's mtime strictly later than the old one's, so that a reader
        comparing stat results sees the change even on a coarse clock with a reused inode."""
        try:
            old = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return
        new = os.stat(tmp).st_mtime_ns
        if new <= old:
            os.utime(tmp, ns=(old + 1, old + 1))


def with_changes(state: AuthState, **changes: Any) -> AuthState:
    if "sessions" in changes:
        changes["sessions"] = MappingProxyType(dict(changes["sessions"]))
    return dataclasses.replace(state, broken=False, **changes)


def new_secret() -> str:
    return secrets.token_hex(32)


def new_token() -> str:
    return secrets.token_urlsafe(32)
