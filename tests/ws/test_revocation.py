"""Sockets outlive their handshake: when the credentials change under them, those no longer
let in are closed (1008), as HTTP would refuse their next request; the others stay."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from support.ws_sidecar import (
    TIMEOUT,
    FakeService,
    apikey,
    basic,
    event,
    recv_json,
    recv_until,
    refusal,
    send,
    url,
    wait_until,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from appliance.auth import Authenticator, Identity, Session, gen_token, set_password, show_token
from appliance.auth.checker import PasswordChecker
from appliance.auth.sessions import COOKIE_NAME
from appliance.config import Settings
from appliance.events import EventBus
from appliance.ws import WebsocketServer

CHECK = 0.05  # how often the sidecar looks at the credentials here (2 s in service)
GUESSES_TIMEOUT = 60.0


def closed_with(ws: ClientConnection, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Read until the server closes the socket; its close code and reason."""
    with pytest.raises(ConnectionClosed) as exc:
        while True:
            ws.recv(timeout=timeout)
    assert exc.value.rcvd is not None
    return exc.value.rcvd.code, exc.value.rcvd.reason


def still_served(ws: ClientConnection, bus: EventBus, n: int) -> bool:
    """The socket still gets the bus's events (marker ``n``; frames before it skipped)."""
    bus.publish("marker", {"n": n})
    while True:
        message = recv_json(ws)
        if message.get("event") == "marker":
            return bool(message["data"] == {"n": n})


def test_turning_authentication_on_closes_the_sockets_opened_while_it_was_off(
    make_server: Callable[..., WebsocketServer], settings: Settings
) -> None:
    server = make_server(auth_check_interval=CHECK)
    with connect(url(server)) as ytp, connect(url(server, "/api/ws")) as flasharr:
        recv_json(ytp), recv_json(flasharr)
        set_password(settings.config_path, "correct horse")  # appliance web passwd
        assert closed_with(ytp) == (1008, "credentials no longer accepted")
        assert closed_with(flasharr)[0] == 1008
    assert refusal(url(server)).status_code == 401
    with connect(url(server), additional_headers=basic("appliance", "correct horse")) as ws:
        assert recv_json(ws)["event"] == "connected"


def cookie(session: Session) -> dict[str, str]:
    return {"Cookie": f"{COOKIE_NAME}={session.cookie}"}


def test_logout_closes_its_sessions_sockets_and_no_others(
    make_server: Callable[..., WebsocketServer], guarded: Settings, bus: EventBus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = Authenticator(guarded)
    server = make_server(guarded, authenticator=auth, auth_check_interval=CHECK)
    ending, staying = (auth.login("alice", "s3cr:et", address="127.0.0.1", remember=False)
                       for _ in range(2))
    ticket, _ = auth.issue_ticket()
    # the sockets nothing changed for first: each is judged, not just those before one
    with connect(url(server), additional_headers=cookie(staying)) as other, \
            connect(url(server), additional_headers=cookie(ending)) as ended, \
            connect(url(server), additional_headers=basic("alice", "s3cr:et")) as basic_ws, \
            connect(url(server, f"/ws?ticket={ticket}")) as by_ticket:
        sid = recv_json(ended)["data"]["sid"]
        for ws in (other, basic_ws, by_ticket):
            recv_json(ws)
        with caplog.at_level(logging.INFO, logger="appliance.ws"):
            assert auth.logout(cookie(ending)["Cookie"])
            assert closed_with(ended)[0] == 1008
        # the log says which one and why
        assert f"websocket client {sid} closed: its credentials are no longer accepted" in [
            r.getMessage() for r in caplog.records]
        # judged in the same pass: another session's end changes nothing for them (a
        # ticket, which cannot be asked twice, included)
        for ws in (other, basic_ws, by_ticket):
            assert still_served(ws, bus, 1)


def test_new_credentials_close_the_sockets_they_no_longer_let_in(
    make_server: Callable[..., WebsocketServer], guarded: Settings, bus: EventBus
) -> None:
    set_password(guarded.config_path, "first password")
    token = show_token(guarded.config_path)
    auth = Authenticator(guarded)
    server = make_server(guarded, auth_check_interval=CHECK, authenticator=auth)
    ticket, _ = auth.issue_ticket()
    session = auth.login("alice", "s3cr:et", address="127.0.0.1", remember=False)
    with connect(url(server), additional_headers=basic("appliance", "first password")) \
            as by_password, \
            connect(url(server, f"/ws?ticket={ticket}")) as by_ticket, \
            connect(url(server), additional_headers={"Authorization": f"Token {token}"}) \
            as by_token, \
            connect(url(server), additional_headers=cookie(session)) as by_session, \
            connect(url(server, f"/api/ws?apikey={apikey('alice', 's3cr:et')}")) as by_env:
        for ws in (by_password, by_ticket, by_token, by_session, by_env):
            recv_json(ws)
        gen_token(guarded.config_path)  # appliance web gentoken
        assert closed_with(by_token)[0] == 1008
        # a used ticket cannot be asked again, and it came with nothing else
        assert closed_with(by_ticket)[0] == 1008
        # the password and the login session did not change with the token
        assert still_served(by_password, bus, 1)
        assert still_served(by_session, bus, 1)
        set_password(guarded.config_path, "second password")  # also ends every login
        assert closed_with(by_password)[0] == 1008
        assert closed_with(by_session)[0] == 1008
        # the YTP_AUTH_* pair changed with neither
        bus.publish("item_deleted", {"id": "marker"})
        assert recv_until(by_env, lambda m: m.get("type") == "TASK_REMOVED")[0] == {
            "type": "TASK_REMOVED", "task_id": "marker"}


@pytest.mark.parametrize("past", [0.0, 1.0])  # at its end it has ended, as on HTTP
def test_a_session_that_runs_out_closes_its_sockets(
    make_server: Callable[..., WebsocketServer], guarded: Settings, past: float
) -> None:
    clock = [1_000_000.0]
    auth = Authenticator(guarded, clock=lambda: clock[0])
    server = make_server(guarded, authenticator=auth, auth_check_interval=CHECK)
    session = auth.login("alice", "s3cr:et", address="127.0.0.1", remember=False)
    with connect(url(server), additional_headers={
            "Cookie": f"{COOKIE_NAME}={session.cookie}"}) as ws:
        recv_json(ws)
        clock[0] = session.expires + past  # nothing else changes: no new password, no logout
        assert closed_with(ws)[0] == 1008


def test_asking_open_sockets_again_is_not_guessing(
    make_server: Callable[..., WebsocketServer], guarded: Settings, bus: EventBus
) -> None:
    # A person's tabs and programs, all on the password that is about to change. Asking them
    # again is the sidecar's doing, not a guesser's: it neither counts failures against their
    # address (which blocked the person's next login with the new password, 429) nor is held
    # off by a block (which kept the sixth socket open on the old password).
    set_password(guarded.config_path, "first password")
    auth = Authenticator(guarded, clock=lambda: 1_000_000.0)  # a block never runs out
    server = make_server(guarded, authenticator=auth, auth_check_interval=CHECK)
    old = basic("appliance", "first password")
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(url(server), additional_headers=old))
                   for _ in range(6)]
        for ws in sockets:
            recv_json(ws)
        set_password(guarded.config_path, "second password")
        for ws in sockets:
            assert closed_with(ws)[0] == 1008
    new = basic("appliance", "second password")
    with connect(url(server), additional_headers=new) as ws:
        assert recv_json(ws)["event"] == "connected"  # served from here on
        assert still_served(ws, bus, 1)


def test_a_check_that_fails_is_logged_and_the_next_one_still_runs(
    make_server: Callable[..., WebsocketServer], guarded: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fail = threading.Event()

    def clock() -> float:  # the authenticator's clock, failing once when asked to
        if fail.is_set():
            fail.clear()
            raise OSError("clock source gone")
        return time.time()

    set_password(guarded.config_path, "first password")
    auth = Authenticator(guarded, clock=clock)
    server = make_server(guarded, authenticator=auth, auth_check_interval=CHECK)
    with caplog.at_level(logging.ERROR, logger="appliance.ws"), \
            connect(url(server), additional_headers=basic("appliance", "first password")) as ws:
        recv_json(ws)
        fail.set()
        wait_until(lambda: any(r.exc_info for r in caplog.records))
        set_password(guarded.config_path, "second password")
        assert closed_with(ws)[0] == 1008
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.getMessage() == "websocket credential check failed"


@pytest.mark.parametrize("changed", [False, True])
def test_a_socket_is_not_closed_because_password_hashing_is_busy_but_asked_again(
    make_server: Callable[..., WebsocketServer], guarded: Settings, bus: EventBus,
    changed: bool,
) -> None:
    # Every hash asked (no memory of a verified one), and one slot to hash in.
    checker = PasswordChecker(slots=1, ttl=0)
    set_password(guarded.config_path, "the password")
    token = show_token(guarded.config_path)
    auth = Authenticator(guarded, checker=checker)
    server = make_server(guarded, authenticator=auth, auth_check_interval=CHECK)
    with connect(url(server), additional_headers=basic("appliance", "the password")) as kept, \
            connect(url(server), additional_headers={"Authorization": f"Token {token}"}) \
            as by_token:
        recv_json(kept), recv_json(by_token)
        # HTTP's logins hold the slot (the real semaphore, taken here)
        assert checker._slots.acquire(blocking=False)
        try:
            if changed:
                set_password(guarded.config_path, "another password")
            gen_token(guarded.config_path)
            # the pass that ended the old token's socket found no slot for the password
            assert closed_with(by_token)[0] == 1008
            assert still_served(kept, bus, 1)
        finally:
            checker._slots.release()
        # asked again once a slot is free: closed if its password is no longer the one
        if changed:
            assert closed_with(kept)[0] == 1008
        else:
            assert still_served(kept, bus, 2)

def opened(stack: contextlib.ExitStack, server: WebsocketServer, passwords: list[str]
           ) -> list[Any]:
    """A socket for each password (user ``appliance``), past its first frame, closed with
    ``stack``."""
    sockets = [stack.enter_context(connect(url(server), additional_headers=basic(
        "appliance", password))) for password in passwords]
    for ws in sockets:
        recv_json(ws)
    return sockets


def test_passwords_presented_while_authentication_was_off_are_guesses_when_it_is_on(
    make_server: Callable[..., WebsocketServer], settings: Settings, bus: EventBus
) -> None:
    # While auth is off anyone gets a socket, with whatever password it cares to send along:
    # when a password is set, those are tried as any guess is (throttled, counted), not
    # hundreds at once for free; one that was right stays.
    auth = Authenticator(settings, clock=lambda: 1_000_000.0)  # a block never runs out
    server = make_server(authenticator=auth, auth_check_interval=CHECK)
    with contextlib.ExitStack() as stack:
        right, *wrong = opened(stack, server, ["the new one", *map(str, range(7))])
        set_password(settings.config_path, "the new one")
        for ws in wrong:  # (each guess a scrypt, one at a time: over 10 s at a load of 10)
            assert closed_with(ws, GUESSES_TIMEOUT)[0] == 1008
        assert still_served(right, bus, 1)
    # the wrong ones counted against their address as guesses do
    assert refusal(url(server), additional_headers=basic("appliance", "the new one")
                   ).status_code == 429


class AskedAuthenticator(Authenticator):
    """An authenticator that counts the times the sidecar asks an open socket again (the
    handshake's ask takes tickets; the sidecar's never does)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked_again = 0

    def authenticate(self, **request: Any) -> Identity:
        if not request.get("allow_ticket"):
            self.asked_again += 1
        return super().authenticate(**request)


def test_a_socket_asked_again_still_ends_with_its_login_session(
    make_server: Callable[..., WebsocketServer], guarded: Settings, bus: EventBus
) -> None:
    # A new token asks every socket again; one let in by its login session stays, and must
    # still be the session's: its logout afterwards ends it, as on HTTP.
    auth = AskedAuthenticator(guarded)
    server = make_server(guarded, authenticator=auth, auth_check_interval=CHECK)
    session = auth.login("alice", "s3cr:et", address="127.0.0.1", remember=False)
    with connect(url(server), additional_headers=cookie(session)) as ws:
        recv_json(ws)
        gen_token(guarded.config_path)
        wait_until(lambda: auth.asked_again >= 1)
        assert still_served(ws, bus, 1)
        assert auth.logout(cookie(session)["Cookie"])
        assert closed_with(ws) == (1008, "credentials no longer accepted")


def test_a_password_right_when_authentication_was_turned_on_is_no_guess_after(
    make_server: Callable[..., WebsocketServer], settings: Settings, bus: EventBus
) -> None:
    # Sockets opened while auth was off with the password that was then set were guesses
    # once, and right: checked from then on. The next change of password asks them again as
    # the service's own doing, not as guesses counted against the person's address (six
    # would block their login with the new password, 429).
    auth = AskedAuthenticator(settings, clock=lambda: 1_000_000.0)  # a block never runs out
    server = make_server(authenticator=auth, auth_check_interval=CHECK)
    with contextlib.ExitStack() as stack:
        sockets = opened(stack, server, ["first password"] * 6)
        set_password(settings.config_path, "first password")
        wait_until(lambda: auth.asked_again >= len(sockets))
        bus.publish("marker", {"n": 1})
        for ws in sockets:  # all still served
            assert recv_until(ws, event("marker"))[0]["data"] == {"n": 1}
        set_password(settings.config_path, "second password")
        for ws in sockets:
            assert closed_with(ws)[0] == 1008
    with connect(url(server), additional_headers=basic("appliance", "second password")) as ws:
        assert recv_json(ws)["event"] == "connected"


def test_a_socket_is_asked_again_once_per_change_not_at_every_check(
    make_server: Callable[..., WebsocketServer], guarded: Settings
) -> None:
    # Each ask may hash a password (scrypt, on a small box's CPU): a socket that was let in
    # again is asked again at the next change, not every two seconds from then on.
    checks = [0]

    def clock() -> float:  # read once per pass of the sidecar's check
        checks[0] += 1
        return time.time()

    set_password(guarded.config_path, "the password")
    auth = AskedAuthenticator(guarded, clock=clock)
    server = make_server(guarded, authenticator=auth, auth_check_interval=CHECK)
    with connect(url(server), additional_headers=basic("appliance", "the password")) as ws:
        recv_json(ws)
        gen_token(guarded.config_path)
        wait_until(lambda: auth.asked_again == 1)
        passes = checks[0]
        wait_until(lambda: checks[0] >= passes + 3)
        assert auth.asked_again == 1
        gen_token(guarded.config_path)
        wait_until(lambda: auth.asked_again == 2)


def test_commands_that_hang_hold_neither_new_sockets_nor_the_credential_check(
    make_server: Callable[..., WebsocketServer], guarded: Settings, service: FakeService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A delete that never returns (its file on a disk that hangs) takes one of the service
    # threads for each client that asked. When they were all taken, a handshake's check
    # waited behind them until its deadline (nobody could connect) and so did the check of
    # open sockets: one whose password was changed stayed open, fed, until the disk woke.
    released = threading.Event()
    hung = threading.Semaphore(0)

    def delete(ids: list[str], remove_file: bool = False) -> dict[str, str]:
        hung.release()
        released.wait(timeout=30)
        return dict.fromkeys(ids, "ok")

    monkeypatch.setattr(service, "delete", delete)
    set_password(guarded.config_path, "first password")
    server = make_server(guarded, auth_check_interval=CHECK, service_threads=2)
    old = basic("appliance", "first password")
    try:
        with connect(url(server), additional_headers=old) as a, \
                connect(url(server), additional_headers=old) as b:
            for ws in (a, b):
                recv_json(ws)
                send(ws, "item_delete", {"id": "on-a-hung-disk"})
            for _ in range(2):
                assert hung.acquire(timeout=TIMEOUT)  # both service threads are taken
            with connect(url(server), additional_headers=old, open_timeout=TIMEOUT) as c:
                assert recv_json(c)["event"] == "connected"
                set_password(guarded.config_path, "second password")
                assert closed_with(c)[0] == 1008
    finally:
        released.set()


@pytest.mark.parametrize("let_in_by", ["ticket", "session"])
def test_passwords_sent_beside_a_ticket_or_session_are_guesses_when_asked_again(
    make_server: Callable[..., WebsocketServer], settings: Settings, bus: EventBus,
    let_in_by: str,
) -> None:
    # A ticket or a login session lets a socket in without a look at the password it sends
    # along. Asked again at a change of the credentials, those passwords were taken as once
    # checked (no guess, not counted): one who may use the API but does not know the
    # password (a token's holder, a shared session) opened a socket a guess, and the one
    # left open after `web passwd` named the new password, hundreds tried for free.
    set_password(settings.config_path, "first password")
    auth = Authenticator(settings, clock=lambda: 1_000_000.0)  # a block never runs out
    server = make_server(authenticator=auth, auth_check_interval=CHECK)

    def let_in(password: str) -> ClientConnection:
        headers = basic("appliance", password)
        if let_in_by == "session":
            session = auth.login("appliance", "first password", address="::1", remember=False)
            return connect(url(server), additional_headers={**headers, **cookie(session)})
        ticket, _ = auth.issue_ticket()
        return connect(url(server, f"/ws?ticket={ticket}"), additional_headers=headers)

    with contextlib.ExitStack() as stack:
        right, *wrong = [stack.enter_context(let_in(p))
                         for p in ["the new one", *map(str, range(7))]]
        for ws in (right, *wrong):
            recv_json(ws)
        set_password(settings.config_path, "the new one")  # ends the sessions too
        for ws in wrong:  # (each guess a scrypt, one at a time: over 10 s at a load of 10)
            assert closed_with(ws, GUESSES_TIMEOUT)[0] == 1008
        assert still_served(right, bus, 1)
    # the wrong ones counted against their address as guesses do
    assert refusal(url(server), additional_headers=basic("appliance", "the new one")
                   ).status_code == 429
