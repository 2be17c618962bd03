"""What each connection was let in with, asked again when the credentials change.

HTTP authenticates every request; a socket is authenticated once, at its handshake, and may
then stay open for days. So that a new password (or token, or ``YTP_AUTH_*`` pair) ends the
sockets it no longer lets in, logout ends its session's sockets, and a socket opened while
authentication was off does not outlive it being turned on, the sidecar keeps what each
connection presented and, once the credentials have changed, asks the authenticator again:
a connection it no longer lets in is closed (1008).

A ticket is single-use and cannot be asked twice: a connection let in by one stands, after a
change, on whatever else it presented (a browser sends its session cookie along), else it
ends. Logins and logouts change the auth file too, but only the session a socket was let in
by matters to it: another login does not end anyone's socket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable

from appliance import errors
from appliance.auth import Authenticator
from appliance.config import Settings


def credentials(auth: Authenticator, settings: Settings) -> Hashable:
    """What decides who is let in, logins aside: equal while nothing of it changed."""
    state = auth.state()
    return (state.password, state.token, state.secret, state.broken,
            settings.auth_username, settings.auth_password)


@dataclasses.dataclass(frozen=True)
class Admission:
    """A connection's handshake: what it presented, under which credentials it was let in."""

    credentials: Hashable
    address: str
    authorization: str | None
    query: str
    cookie: str | None
    session_id: str | None  # the login session that let it in, if one did
    # What it presented was checked (False: let in while authentication was off, or by a
    # ticket or session, beside which a password is never looked at). Unchecked credentials
    # are guesses when asked: any page or program could open sockets then, each with a
    # password to try once authentication is turned on (or the password is changed).
    checked: bool


def _asked_again(auth: Authenticator, admission: Admission) -> Admission | None:
    """``admission`` as the authenticator lets it in now; None when it does not. Asked
    without ``allow_ticket``: the ticket it may have come with was used at its handshake.
    Credentials once checked are not asked as a guess: a person's tabs on a password just
    changed would count as failures against their address (and block their login with the
    new one), and a block would keep the socket open on the old password."""
    try:
        identity = auth.authenticate(address=admission.address,
                                     authorization=admission.authorization,
                                     query=admission.query, cookie=admission.cookie,
                                     guess=not admission.checked)
    except errors.AppError as exc:
        # Busy (every password hashing slot taken) is not refused: asked again at the next
        # check. A guess held off by its address's block is.
        return admission if exc.status == 429 and admission.checked else None
    return dataclasses.replace(admission, session_id=identity.session_id,
                               checked=identity.checked_what_it_presented)


def recheck(
    auth: Authenticator, settings: Settings, admitted: Iterable[tuple[str, Admission]]
) -> list[tuple[str, Admission | None]]:
    """(Pool thread.) For each ``(sid, admission)`` whose credentials changed or whose login
    session ended: the admission under the credentials now, or None when it is no longer
    let in. Connections nothing changed for are left out."""
    now_credentials = credentials(auth, settings)
    sessions = auth.state().sessions
    now = auth.clock()
    verdicts: list[tuple[str, Admission | None]] = []
    for sid, admission in admitted:
        session_ended = (admission.session_id is not None
                         and sessions.get(admission.session_id, 0) <= now)
        if admission.credentials == now_credentials and not session_ended:
            continue
        again = _asked_again(auth, admission)
        if again is None or again is admission:
            verdicts.append((sid, again))
        else:
            verdicts.append((sid, dataclasses.replace(again, credentials=now_credentials)))
    return verdicts
