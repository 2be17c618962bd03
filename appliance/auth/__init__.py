"""Authentication: the one place that decides whether a request (HTTP or websocket handshake)
is authenticated. Nothing here knows Falcon or websockets; callers pass the raw
``Authorization`` header, the query (string or mapping), the ``Cookie`` header and the client
address.

Credential sources (authentication is on when either is configured):

1. ``YTP_AUTH_USERNAME`` / ``YTP_AUTH_PASSWORD``: ``Authorization: Basic …`` or
   ``?apikey=<urlsafe base64 of user:password>``.
2. The auth file (``appliance web passwd`` / ``showtoken`` / ``gentoken``, see
   :mod:`appliance.auth.authfile`): the password for user ``appliance`` (or the YTP user) by
   Basic, ``?apikey=`` or login; ``Authorization: Token <token>``.

Plus what a login hands out: a signed session cookie (``POST /api/auth/login``), for the
websocket single-use ``?ticket=`` values (``POST /api/auth/ws-ticket``), and for players that
cannot send credentials ``?ticket=`` values that open one file for a few hours
(``POST /api/auth/file-ticket``).

Beside it, on the same object: who the client is behind trusted proxies
(:mod:`~appliance.auth.proxies`, the throttle's key) and what a browser page may make the
service do (:mod:`~appliance.auth.browsers`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .. import errors
from ..config import Settings, SettingsHolder
from . import sessions
from .authfile import MAX_SESSIONS, AuthFile, AuthState, new_secret, new_token, with_changes
from .browsers import BrowserPolicy
from .budget import GuessBudget
from .checker import PasswordChecker
from .hosts import HostPolicy
from .passwords import MIN_LENGTH, hash_password
from .proxies import TrustedProxies
from .sessions import COOKIE_NAME, Tickets
from .throttle import Throttle

__all__ = [
    "COOKIE_NAME",
    "MIN_LENGTH",
    "USERNAME",
    "Authenticator",
    "Identity",
    "Session",
    "gen_token",
    "read_token",
    "set_password",
    "show_token",
]

log = logging.getLogger("appliance.auth")

USERNAME = "appliance"  # login name for the `web passwd` password (FlexGet's is "flexget")
REALM = 'Basic realm="appliance", charset="UTF-8"'
# The two passwords, as the throttle counts the guesses aimed at each (see
# :meth:`Authenticator._aimed_at`): a shared box may give them to different people.
ENV, FILE = "env", "file"
# One request is checked against at most this many credentials (a request with a thousand
# ?apikey= values must not cost a thousand scrypt runs).
_MAX_PRESENTED = 4


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a request is. ``method``: open, basic, apikey, token, session, ticket."""

    user: str
    method: str
    session_id: str | None = None

    @property
    def checked_what_it_presented(self) -> bool:
        """Let in by the passwords and tokens the request presented, each checked: not
        open, and not a session or ticket, beside which they are never looked at (asked
        again later, they are guesses)."""
        return self.method in {"basic", "apikey", "token"}


@dataclasses.dataclass(frozen=True)
class Session:
    """A login's cookie: its value, expiry (epoch) and ``max_age`` (None: browser session)."""

    cookie: str
    expires: int
    max_age: int | None


def unauthorized(message: str) -> errors.AppError:
    return errors.AppError(message, errors.UNAUTHORIZED, headers={"WWW-Authenticate": REALM})


def _decode_b64(text: str, *, urlsafe: bool) -> bytes | None:
    text = text.strip().replace(" ", "+")  # a query string turns an unescaped "+" into " "
    if not text:
        return None
    text += "=" * (-len(text) % 4)
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _requested_file(file_scope: Callable[[], str]) -> str | None:
    """The final path a request with a live file ticket asks for, or None for one refused:
    its holder is told "another file" either way, as it would otherwise learn which paths
    of the folder are symlinks leading out of it."""
    try:
        return file_scope()
    except errors.AppError:
        return None


def _query_values(query: str | Mapping[str, Any] | None, name: str) -> list[str]:
    if not query:
        return []
    if isinstance(query, str):
        return parse_qs(query, keep_blank_values=True).get(name, [])
    value = query.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


@dataclasses.dataclass
class _Presented:
    """Password-like credentials a request carries (the ones a guesser would send)."""

    pairs: list[tuple[str, bytes, bytes]]  # (how, user, password)
    tokens: list[str]
    other: bool = False  # an Authorization scheme we do not take, or undecodable input

    def __bool__(self) -> bool:
        return bool(self.pairs or self.tokens or self.other)

    def kinds(self) -> str:
        names = [how for how, _, _ in self.pairs] + ["token"] * len(self.tokens)
        return ", ".join(dict.fromkeys(names + ["unreadable"] * self.other))


def _presented(authorization: str | None, query: str | Mapping[str, Any] | None) -> _Presented:
    found = _Presented([], [])

    def add_pair(how: str, raw: bytes | None) -> None:
        if raw is None or b":" not in raw:
            found.other = True
            return
        user, _, password = raw.partition(b":")
        if len(found.pairs) < _MAX_PRESENTED:
            found.pairs.append((how, user, password))

    if authorization and authorization.strip():
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            add_pair("basic", _decode_b64(value, urlsafe=False))
        elif scheme == "token" and value.strip():
            found.tokens.append(value.strip()[:256])
        else:
            found.other = True
    for key in _query_values(query, "apikey"):
        add_pair("apikey", _decode_b64(key, urlsafe=True))
    return found


@dataclasses.dataclass(frozen=True)
class _Rules:
    """The parts of the settings authentication decides by."""

    proxies: TrustedProxies
    browsers: BrowserPolicy
    hosts: HostPolicy
    env_pair: tuple[bytes, bytes] | None


class Authenticator:
    """Thread-safe; one per service, shared by the HTTP middleware and the websocket.

    ``clock`` (epoch seconds) is injectable so that tests can expire cookies and tickets and
    step through the throttle without waiting.
    """

    def __init__(
        self,
        settings: Settings | SettingsHolder,
        *,
        clock: Callable[[], float] = time.time,
        throttle: Throttle | None = None,
        checker: PasswordChecker | None = None,
        budget: GuessBudget | None = None,
    ) -> None:
        self.settings = SettingsHolder.of(settings)
        self.clock = clock
        # The config folder is where the service keeps its state: fixed while it runs.
        self.file = AuthFile(self.settings.current.config_path)
        self.throttle = throttle or Throttle()
        self.budget = budget or GuessBudget()
        self.checker = checker or PasswordChecker()
        self.tickets = Tickets()
        self.file_tickets = Tickets(ttl=sessions.FILE_TICKET_SECONDS)
        self._rules: tuple[Settings, _Rules] | None = None

    def _current_rules(self) -> _Rules:
        """What the settings now say, rebuilt only when the settings object was replaced."""
        settings, kept = self.settings.current, self._rules
        if kept is not None and kept[0] is settings:
            return kept[1]
        rules = _Rules(
            TrustedProxies(settings.trusted_proxies),
            BrowserPolicy(settings.cors_origins, settings.port),
            HostPolicy(settings.allowed_hosts, settings.cors_origins),
            (settings.auth_username.encode(), settings.auth_password.encode())
            if settings.auth_username and settings.auth_password else None,
        )
        self._rules = (settings, rules)
        return rules

    @property
    def proxies(self) -> TrustedProxies:
        return self._current_rules().proxies

    @property
    def browsers(self) -> BrowserPolicy:
        return self._current_rules().browsers

    @property
    def _env_pair(self) -> tuple[bytes, bytes] | None:
        return self._current_rules().env_pair

    # --- state ---------------------------------------------------------------------------

    def state(self) -> AuthState:
        return self.file.current()

    @property
    def enabled(self) -> bool:
        """Authentication is on: YTP credentials are set or a password was set with
        ``web passwd`` (or the auth file is unreadable: fail closed)."""
        state = self.state()
        return self._env_pair is not None or state.password is not None or state.broken

    def describe(self) -> str:
        state = self.state()
        sources = []
        if self._env_pair is not None:
            sources.append("YTP_AUTH_USERNAME/YTP_AUTH_PASSWORD")
        if state.password is not None:
            sources.append(f"web passwd ({self.file.path})")
        if state.broken:
            sources.append(f"unreadable {self.file.path} (nothing accepted from it)")
        return " and ".join(sources) or "none"

    # --- checking a request ------------------------------------------------------------------

    def check_host(self, host: str | None) -> None:
        """While auth is off, :class:`AppError` ``MISDIRECTED`` (421) for a request whose
        ``Host`` a stranger's DNS could answer for (see :mod:`appliance.auth.hosts`)."""
        refusal = self._current_rules().hosts.refusal(host)
        if refusal is not None and not self.enabled:
            raise refusal

    def client_address(self, peer: str | None, forwarded_for: str | None = None) -> str:
        """The address a request is throttled under (see :mod:`appliance.auth.proxies`)."""
        return self.proxies.client(peer, forwarded_for)

    def authenticate(
        self,
        *,
        address: str,
        authorization: str | None = None,
        query: str | Mapping[str, Any] | None = None,
        cookie: str | None = None,
        allow_ticket: bool = False,
        file_scope: Callable[[], str] | None = None,
        guess: bool = True,
    ) -> Identity:
        """The caller's identity, or :class:`AppError` ``UNAUTHORIZED`` (401, with
        ``WWW-Authenticate``) or ``TOO_MANY_REQUESTS`` (429, with ``Retry-After``).

        ``allow_ticket``: a websocket ticket is taken. ``file_scope``: the request reads a
        file, and this gives its final normal path (as :meth:`issue_file_ticket` was given
        it; it may raise the path's own 400/403); a file ticket for it is taken, one for
        another file is 403. ``guess=False``: the credentials were let in once and are asked
        again by the service itself (an open websocket's, after a change): no guess, so
        neither held off by the address's block nor counted for or against it."""
        state = self.state()
        if not (self._env_pair is not None or state.password is not None or state.broken):
            return Identity("anonymous", "open")
        now = self.clock()
        cookies = sessions.cookie_values(cookie)
        for value in cookies:
            identity = self._session_identity(state, value, now)
            if identity is not None:
                return identity
        asked = allow_ticket or file_scope is not None
        tickets = _query_values(query, "ticket")[:_MAX_PRESENTED] if asked else []
        under = self._credentials(state)
        if allow_ticket and any(self.tickets.redeem(t, now, under) for t in tickets):
            return Identity("ticket", "ticket")
        scopes = {scope for t in tickets if file_scope is not None
                  and (scope := self.file_tickets.scope(t, now, under)) is not None}
        # The path is resolved only for a live file ticket: a stranger learns nothing of
        # the folder (what is a symlink out of it) by sending a made-up one.
        if scopes and file_scope is not None and _requested_file(file_scope) in scopes:
            return Identity("ticket", "ticket")
        presented = _presented(authorization, query)
        if presented:
            return self._presented_identity(state, presented, address, now, guess=guess)
        if scopes:
            log.info("file ticket from %s is for another file", address)
            raise errors.AppError("The ticket is for another file.", errors.FORBIDDEN)
        if tickets:
            log.info("ticket from %s is unknown, used or expired", address)
            raise unauthorized("The ticket is unknown, already used or expired.")
        if cookies:
            raise unauthorized("The session has expired or was ended; log in again.")
        raise unauthorized("Authentication required.")

    def _presented_identity(self, state: AuthState, presented: _Presented, address: str,
                            now: float, *, guess: bool) -> Identity:
        """The identity the presented passwords and tokens give, as :meth:`authenticate`
        says (a guess is held off by the throttle and counted), else AppError."""
        # Tokens are never guessed (256 bits): a request with no password is not held off by
        # the service-wide budget, so scripts and Home Assistant go on through an attack.
        passwords = bool(presented.pairs)
        if guess:
            self._check_throttle(address, now, passwords=passwords)
        checked = self._check_presented(state, presented)
        if checked is None:
            if guess:
                aimed = [scope for _, user, _ in presented.pairs
                         for scope in self._aimed_at(state, user)]
                if presented.tokens or presented.other:
                    aimed += self._aimed_at(state, None)
                self._failed(address, now, f"invalid credentials ({presented.kinds()})",
                             aimed, passwords=passwords)
            raise unauthorized("Invalid credentials.")
        identity, proved = checked
        if guess:
            self._succeeded(address, now, proved)
        return identity

    def _succeeded(self, address: str, now: float, proved: set[str]) -> None:
        """A right password forgives the typos aimed at it (a token is never typed, and
        forgiving on it let its holder guess the password without end: four guesses, the
        token once, four more); the other password's stay counted."""
        for scope in proved:
            self.throttle.success(address, scope)
        self.budget.known(address, now)

    def _aimed_at(self, state: AuthState, user: bytes | None) -> list[str]:
        """The passwords a failure as ``user`` may have been aimed at (None: a token or an
        unreadable credential, at any). The ``web passwd`` password opens "appliance" and the
        YTP user name, so a failure under the YTP name counts for both: one who knows either
        password must not be able to forgive, with it, the guesses at the other."""
        env = self._env_pair
        scopes = []
        if env is not None and (user is None or user == env[0] or user != USERNAME.encode()):
            scopes.append(ENV)
        if state.password is not None or state.broken or env is None:
            scopes.append(FILE)
        # "appliance" with the YTP credentials only opens nothing: a typo of the name.
        return scopes or [ENV]

    def _check_throttle(self, address: str, now: float, *, passwords: bool) -> None:
        wait = self.throttle.retry_after(address, now)
        message = "Too many failed attempts; try again in {}."
        if wait <= 0 and passwords and self.budget.stranger(address, now):
            wait = self.budget.retry_after(now)
            message = ("Too many failed attempts on this service from many addresses; try "
                       "again in {} (a login session, a token or the LAN are not held off).")
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise errors.AppError(
                message.format(f"{seconds} s"), errors.TOO_MANY_REQUESTS,
                headers={"Retry-After": str(seconds)},
            )

    def _failed(self, address: str, now: float, what: str, aimed: list[str], *,
                passwords: bool) -> None:
        count = self.throttle.failure(address, now, aimed)
        if passwords and self.budget.stranger(address, now):
            self.budget.spend(now, address)
        log.warning("authentication failed from %s: %s (failure %d)", address, what, count)

    def _check_presented(self, state: AuthState,
                         presented: _Presented) -> tuple[Identity, set[str]] | None:
        """The identity when every password and token presented is right, with the
        passwords it proved (``ENV``, ``FILE``). A right one does not carry wrong ones in:
        they would be guesses the throttle never counted (a token's holder trying the
        password, which a person may use elsewhere too, three a request; an open socket's,
        again at each change of the credentials)."""
        ok: Identity | None = None
        proved: set[str] = set()
        wrong = False
        for how, user, password in presented.pairs:  # check every one: no early exit
            checked = self._check_pair(state, user, password)
            wrong |= checked is None
            if checked is not None:
                proved.add(checked[1])
                if ok is None:
                    ok = Identity(checked[0], how)
        token = state.token
        for candidate in presented.tokens:
            right = token is not None and hmac.compare_digest(candidate.encode(), token.encode())
            wrong |= not right
            if right and ok is None:
                ok = Identity(USERNAME, "token")
        return None if wrong or ok is None else (ok, proved)

    def _check_pair(self, state: AuthState, user: bytes,
                    password: bytes) -> tuple[str, str] | None:
        """The user name and the password it proved (``ENV`` or ``FILE``) when
        ``user:password`` matches a configured credential."""
        if self._env_pair is not None:
            env_user, env_password = self._env_pair
            user_ok = hmac.compare_digest(user, env_user)
            if hmac.compare_digest(password, env_password) & user_ok:
                return env_user.decode(), ENV
        if state.password is None:
            return None
        names = [USERNAME.encode()] + ([self._env_pair[0]] if self._env_pair else [])
        matches = [hmac.compare_digest(user, n) for n in names]  # all compared: no short cut
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            return None
        # Hashed whatever the name: an unknown name answered without it sooner (and 401
        # where a known one was 429 with every slot busy), which told a stranger the YTP
        # user name. It costs a guesser nothing new: the name "appliance" is hashed anyway.
        right = self.checker.verify(text, state.password)
        return (user.decode(), FILE) if right and any(matches) else None

    def _signing_key(self, secret: str) -> str:
        """The cookie key: the file's secret, bound to the YTP credentials when they are set,
        so that changing either (``web passwd`` makes a new secret) ends every session."""
        if self._env_pair is None:
            return secret
        env = hashlib.sha256(b"\0".join(self._env_pair)).hexdigest()
        return f"{secret}:{env}"

    def _session_identity(self, state: AuthState, value: str, now: float) -> Identity | None:
        if state.secret is None:
            return None
        parsed = sessions.verify(self._signing_key(state.secret), value)
        if parsed is None:
            return None
        session_id, expires = parsed
        if expires <= now or state.sessions.get(session_id, 0) <= now:
            return None
        return Identity("session", "session", session_id)

    # --- login, logout, tickets --------------------------------------------------------------

    def login(self, username: str, password: str, *, address: str, remember: bool) -> Session:
        """Check ``username``/``password`` against either source and open a session."""
        if not self.enabled:
            raise errors.invalid(
                "No credentials are configured, so the API is open and there is nothing to "
                "log in to; set a password with `appliance web passwd`."
            )
        now = self.clock()
        self._check_throttle(address, now, passwords=True)
        state = self.state()
        checked = self._check_pair(state, username.encode(), password.encode())
        if checked is None:
            self._failed(address, now, f"login as {username[:64]!r}",
                         self._aimed_at(state, username.encode()), passwords=True)
            raise unauthorized("Invalid username or password.")
        name = checked[0]
        self._succeeded(address, now, {checked[1]})
        lifetime = sessions.REMEMBER_SECONDS if remember else sessions.BROWSER_SECONDS
        expires = int(now) + lifetime
        session_id = sessions.new_session_id()

        def add(old: AuthState) -> AuthState:
            live = {k: v for k, v in old.sessions.items() if v > now}
            live[session_id] = expires
            if len(live) > MAX_SESSIONS:
                keep = sorted(live.items(), key=lambda kv: kv[1])[-MAX_SESSIONS:]
                live = dict(keep)
            return with_changes(old, secret=old.secret or new_secret(), sessions=live)

        new = self._update(add)
        assert new.secret is not None
        log.info("login from %s as %s (%s)", address, name,
                 "remembered" if remember else "browser session")
        return Session(
            cookie=sessions.sign(self._signing_key(new.secret), session_id, expires),
            expires=expires,
            max_age=lifetime if remember else None,
        )

    def logout(self, cookie: str | None) -> bool:
        """End the session(s) named by the ``Cookie`` header; True when one was live."""
        state = self.state()
        ended = set()
        for value in sessions.cookie_values(cookie):
            parsed = (
                sessions.verify(self._signing_key(state.secret), value) if state.secret else None
            )
            if parsed is not None and parsed[0] in state.sessions:
                ended.add(parsed[0])
        if not ended:
            return False
        now = self.clock()

        def remove(old: AuthState) -> AuthState:
            live = {k: v for k, v in old.sessions.items() if v > now and k not in ended}
            return with_changes(old, sessions=live)

        self._update(remove)
        return True

    def _update(self, change: Callable[[AuthState], AuthState]) -> AuthState:
        try:
            return self.file.update(change)
        except (OSError, ValueError) as exc:
            log.error("cannot update %s: %s", self.file.path, exc)
            raise errors.AppError(
                "The session store cannot be written; see the server log.", errors.UNAVAILABLE
            ) from None

    def _credentials(self, state: AuthState) -> Hashable:
        """What a ticket is issued under: a change of it (a new password, token or YTP_AUTH_*
        pair) ends the tickets issued before, as it ends the websockets it no longer lets in."""
        return state.password, state.token, state.broken, self._env_pair

    def issue_ticket(self) -> tuple[str, float]:
        return self.tickets.issue(self.clock(), under=self._credentials(self.state()))

    def issue_file_ticket(self, path: str) -> tuple[str, float]:
        """A ticket that opens the file at ``path`` (its final normal path) until it expires
        or the credentials change."""
        return self.file_tickets.issue(self.clock(), scope=path,
                                       under=self._credentials(self.state()))


# --- the CLI's side (appliance web …): they only write the file -----------------------------


def set_password(config_path: Path, password: str) -> None:
    """Store a new password hash; ends every login session (new signing key, empty table)."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password must be at least {MIN_LENGTH} characters long")
    encoded = hash_password(password)
    AuthFile(config_path).update(
        lambda old: with_changes(old, password=encoded, secret=new_secret(), sessions={}),
        replace_broken=True,
    )


def read_token(config_path: Path) -> str | None:
    """The API token, or None when there is none (or the file cannot be read)."""
    try:
        return AuthFile(config_path).read().token
    except (OSError, ValueError):
        return None


def show_token(config_path: Path) -> str:
    """The API token, created on first use."""
    state = AuthFile(config_path).update(
        lambda old: old if old.token else with_changes(old, token=new_token())
    )
    assert state.token is not None
    return state.token


def gen_token(config_path: Path) -> str:
    """A new API token; the old one stops working at once."""
    state = AuthFile(config_path).update(lambda old: with_changes(old, token=new_token()))
    assert state.token is not None
    return state.token
