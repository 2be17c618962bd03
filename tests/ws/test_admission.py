"""Who gets past the handshake besides a password: pages on other origins (refused), tickets
and session cookies (taken, as on HTTP), guessers (throttled); and how many sockets one
address may hold, how many the port may, how long a handshake may take."""

from __future__ import annotations

import logging
import resource
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.ws_sidecar import TIMEOUT, apikey, basic, recv_json, refusal, send, url
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.sync.client import connect

from appliance.auth import Authenticator, set_password, show_token
from appliance.auth.sessions import COOKIE_NAME
from appliance.config import Settings
from appliance.peers import REFUSAL_LOG_INTERVAL
from appliance.ws import WebsocketServer, limits
from appliance.ws import server as ws_server

EVIL = "http://evil.example"
UI = "http://ui.example:3000"
GOOD = basic("alice", "s3cr:et")
BAD = basic("alice", "guess")
FIRST = {"/ws": "connected", "/api/ws": "SYNC_ALL"}  # each protocol's first frame


def opens(server: WebsocketServer, path: str, **kwargs: Any) -> bool:
    """The socket at ``path`` opens and its protocol's first frame arrives."""
    with connect(url(server, path), open_timeout=TIMEOUT, **kwargs) as ws:
        first = recv_json(ws)
    return first.get("event", first.get("type")) == FIRST[urlsplit(path).path]


@pytest.mark.parametrize("path", list(FIRST))
def test_page_on_a_foreign_origin_is_refused_403_even_with_the_password(
    make_server: Callable[..., WebsocketServer], guarded: Settings, path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server(guarded.replace(cors_origins=(UI,)))
    with caplog.at_level(logging.WARNING, logger="appliance.ws"):
        response = refusal(url(server, path), origin=EVIL, additional_headers=GOOD)
    assert response.status_code == 403
    assert EVIL in response.body.decode()
    [said] = [r.getMessage() for r in caplog.records]
    assert said.startswith("websocket handshake from ('127.0.0.1', ")
    assert f"refused: Requests from pages on {EVIL} are refused" in said
    # the service's own pages (on the websocket port or the HTTP port) and a listed origin
    for origin in (f"http://127.0.0.1:{server.port}", f"http://127.0.0.1:{guarded.port}", UI):
        assert opens(server, path, origin=origin, additional_headers=GOOD)
    # the browser's own word that the page is the service's
    assert opens(server, path, origin=EVIL,
                 additional_headers={**GOOD, "Sec-Fetch-Site": "same-origin"})
    # a foreign page with no credentials is refused as a page, not as a guess
    assert refusal(url(server, path), origin=EVIL).status_code == 403


@pytest.mark.parametrize("path", list(FIRST))
def test_a_ticket_opens_one_socket_once(
    make_server: Callable[..., WebsocketServer], guarded: Settings, path: str
) -> None:
    auth = Authenticator(guarded)
    server = make_server(guarded, authenticator=auth)
    ticket, _ = auth.issue_ticket()
    assert opens(server, f"{path}?ticket={ticket}")
    again = refusal(url(server, f"{path}?ticket={ticket}"))
    assert again.status_code == 401
    assert refusal(url(server, f"{path}?ticket=made-up")).status_code == 401


def test_a_session_cookie_opens_the_socket_until_logout(
    make_server: Callable[..., WebsocketServer], guarded: Settings
) -> None:
    auth = Authenticator(guarded)
    server = make_server(guarded, authenticator=auth)
    session = auth.login("alice", "s3cr:et", address="127.0.0.1", remember=False)
    # An HTTP/2 proxy may split the cookies over several Cookie headers; the session is in
    # the second one here.
    cookies = [("Cookie", "theme=dark"), ("Cookie", f"{COOKIE_NAME}={session.cookie}")]
    assert opens(server, "/ws", additional_headers=cookies)
    assert opens(server, "/api/ws", additional_headers=cookies)
    assert auth.logout(f"{COOKIE_NAME}={session.cookie}")
    assert refusal(url(server), additional_headers=cookies).status_code == 401


def test_guessing_is_answered_429_with_retry_after_even_for_the_right_password(
    make_server: Callable[..., WebsocketServer], guarded: Settings
) -> None:
    # A clock that stands still: the block the guesses earn cannot run out during the test.
    auth = Authenticator(guarded, clock=lambda: 1_000_000.0)
    server = make_server(guarded, authenticator=auth)
    answers = [refusal(url(server), additional_headers=BAD).status_code for _ in range(5)]
    assert answers == [401] * 5
    blocked = refusal(url(server, "/api/ws"), additional_headers=GOOD)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("behind_proxy", [True, False])
def test_the_throttle_believes_x_forwarded_for_only_from_a_trusted_proxy(
    make_server: Callable[..., WebsocketServer], guarded: Settings, behind_proxy: bool
) -> None:
    custom = guarded.replace(trusted_proxies=("127.0.0.1/32",) if behind_proxy else ())
    auth = Authenticator(custom, clock=lambda: 1_000_000.0)
    server = make_server(custom, authenticator=auth)
    guesser = {**BAD, "X-Forwarded-For": "10.0.0.1"}
    for _ in range(5):
        assert refusal(url(server), additional_headers=guesser).status_code == 401
    neighbour = {**GOOD, "X-Forwarded-For": "10.0.0.2"}
    if behind_proxy:
        # the proxy's other clients are not punished for one client's guesses
        assert opens(server, "/ws", additional_headers=neighbour)
        assert refusal(url(server), additional_headers=guesser).status_code == 429
    else:
        # a guesser cannot escape the throttle by writing a new X-Forwarded-For each time
        assert refusal(url(server), additional_headers=neighbour).status_code == 429


def test_a_proxy_chains_forwarded_for_lines_are_one_list(
    make_server: Callable[..., WebsocketServer], guarded: Settings
) -> None:
    # Two proxies, each adding an X-Forwarded-For line of its own: the client is the last
    # address no trusted proxy holds, as when they share one line (and as on HTTP)
    custom = guarded.replace(trusted_proxies=("127.0.0.1/32", "10.0.0.9/32"))
    auth = Authenticator(custom, clock=lambda: 1_000_000.0)
    server = make_server(custom, authenticator=auth)
    lines = [("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.9")]
    for _ in range(5):
        assert refusal(url(server), additional_headers=[*BAD.items(), *lines]).status_code == 401
    one_line = {**GOOD, "X-Forwarded-For": "10.0.0.1, 10.0.0.9"}
    assert refusal(url(server), additional_headers=one_line).status_code == 429
    assert opens(server, "/ws", additional_headers={**GOOD, "X-Forwarded-For": "10.0.0.2"})


def test_two_authorization_headers_are_refused_401_not_a_server_error(
    make_server: Callable[..., WebsocketServer], guarded: Settings
) -> None:
    server = make_server(guarded)
    both = [("Authorization", GOOD["Authorization"]), ("Authorization", BAD["Authorization"])]
    response = refusal(url(server), additional_headers=both)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def raw_socket(server: WebsocketServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)


def closed_by_server(sock: socket.socket) -> bool:
    """The server ended the connection (reset, or end of stream) before TIMEOUT."""
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_one_address_holds_at_most_its_cap_of_sockets(
    make_server: Callable[..., WebsocketServer], settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server(settings.replace(max_connections_per_address=2))
    with connect(url(server)) as first, connect(url(server, "/api/ws")) as second:
        recv_json(first), recv_json(second)
        # dropped as it opens, not once its handshake is late: no answer to a whole request
        with caplog.at_level(logging.WARNING, logger="appliance.peers"), \
                pytest.raises((InvalidMessage, ConnectionClosed, OSError)):
            connect(url(server), open_timeout=TIMEOUT)
        # the log says which port
        assert [r.getMessage().split(" already")[0] for r in caplog.records] == [
            "websocket: 127.0.0.1"]
    # both closed: the address's count went back down, so two more are admitted
    with connect(url(server)) as first, connect(url(server)) as second:
        assert recv_json(first)["event"] == recv_json(second)["event"] == "connected"


def test_a_trusted_proxy_is_not_capped(
    make_server: Callable[..., WebsocketServer], settings: Settings
) -> None:
    server = make_server(settings.replace(max_connections_per_address=1,
                                          trusted_proxies=("127.0.0.1",)))
    with connect(url(server)) as a, connect(url(server)) as b, connect(url(server)) as c:
        assert {recv_json(ws)["event"] for ws in (a, b, c)} == {"connected"}


def test_a_handshake_that_never_finishes_is_dropped(
    make_server: Callable[..., WebsocketServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deadline is 10 s in service; shortened so that the test waits a second, not ten.
    monkeypatch.setattr(ws_server, "HANDSHAKE_TIMEOUT", 0.5)
    server = make_server()
    with raw_socket(server) as slow:
        slow.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        assert closed_by_server(slow)
    assert opens(server, "/ws")


def test_a_rebound_name_is_refused_421_while_authentication_is_off(
    make_server: Callable[..., WebsocketServer], settings: Settings
) -> None:
    # DNS rebinding: a page on evil.example whose name now resolves to this machine opens
    # the socket same-origin; only the Host it names gives it away (appliance/auth/hosts.py)
    rebound = settings.replace(allowed_hosts=())
    for custom, expected in ((rebound, 421), (rebound.replace(
            auth_username="alice", auth_password="s3cr:et"), 401)):
        server = make_server(custom)
        target = f"ws://evil.example:{server.port}/ws"
        with raw_socket(server) as sock:
            answer = refusal(target, sock=sock, origin=f"http://evil.example:{server.port}")
        assert answer.status_code == expected
        # the same socket by the service's address is let in
        assert opens(server, "/ws", additional_headers=GOOD)


def test_the_port_holds_at_most_its_total_of_sockets_and_strangers_handshakes_give_way(
    make_server: Callable[..., WebsocketServer], guarded: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every socket is a file descriptor of the one process that also serves HTTP, writes the
    # database and the downloads: sixteen addresses at the per-address cap held the 1,024 a
    # service gets by default, and the whole service stopped opening files. The port holds
    # at most its total; at it, a stranger's handshake (never let in) gives way to a new
    # connection, the oldest first, and sockets that were let in keep theirs.
    server = make_server(guarded, max_connections=3)
    with raw_socket(server) as oldest, raw_socket(server) as second, \
            raw_socket(server) as third, caplog.at_level(logging.ERROR):
        for sock in (oldest, second, third):
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        with connect(url(server), additional_headers=GOOD) as first:
            assert recv_json(first)["event"] == "connected"
            assert closed_by_server(oldest)
            # the next oldest for the next one; each end an end like any other (the loop's
            # callbacks raised nothing)
            assert opens(server, "/ws", additional_headers=GOOD)
            assert closed_by_server(second)
        assert [r.getMessage() for r in caplog.records] == []
    with connect(url(server), additional_headers=GOOD) as a, \
            connect(url(server), additional_headers=GOOD) as b, \
            connect(url(server, "/api/ws"), additional_headers=GOOD) as c:
        recv_json(a), recv_json(b), recv_json(c)
        with caplog.at_level(logging.WARNING, logger="appliance.ws"):
            for _ in range(3):
                with pytest.raises((InvalidMessage, ConnectionClosed, OSError)):
                    connect(url(server), additional_headers=GOOD, open_timeout=TIMEOUT)
            # said once, not once a refusal
            assert [r.getMessage() for r in caplog.records if r.name == "appliance.ws"] == [
                "websocket: the port holds 3 sockets, its most; closing new ones"]
            # a minute later, the next refusal says how many were not said meanwhile
            [total] = {c.total for c in server._server.connections}  # type: ignore[union-attr]
            total._warned -= REFUSAL_LOG_INTERVAL
            with pytest.raises((InvalidMessage, ConnectionClosed, OSError)):
                connect(url(server), additional_headers=GOOD, open_timeout=TIMEOUT)
        assert [r.getMessage() for r in caplog.records if r.name == "appliance.ws"][1:] == [
            "websocket: the port holds 3 sockets, its most; closing new ones (2 more since "
            "the last warning)"]
        for ws in (a, b):
            send(ws, "item_start", "missing")  # each still answered
            assert recv_json(ws)["event"] == "log_error"
    assert opens(server, "/ws", additional_headers=GOOD)  # the places came back


@pytest.mark.parametrize(("soft", "total"), [(1024, 256), (40, 16), (8000, 1024)])
def test_the_ports_total_is_a_share_of_the_processs_file_descriptors(
    soft: int, total: int
) -> None:
    kept = resource.getrlimit(resource.RLIMIT_NOFILE)
    if kept[1] != resource.RLIM_INFINITY and kept[1] < soft:
        pytest.fail(f"this test needs a hard limit of {soft} file descriptors, not {kept[1]}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, kept[1]))
    try:
        assert limits.default_total() == total
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, kept)
    with pytest.raises(ValueError, match="at least 1"):
        limits.TotalLimit(0)
    assert limits.TotalLimit(1).total == 1


def test_a_right_token_does_not_carry_a_wrong_password_in(
    make_server: Callable[..., WebsocketServer], guarded: Settings
) -> None:
    # The token's holder trying the password (which a person may use elsewhere too) along
    # with it: a guess, refused and counted, not let in on the token's strength.
    set_password(guarded.config_path, "the password")
    token = show_token(guarded.config_path)
    server = make_server(guarded)
    by_token = {"Authorization": f"Token {token}"}
    wrong = refusal(url(server, f"/ws?apikey={apikey('appliance', 'a guess')}"),
                    additional_headers=by_token)
    assert wrong.status_code == 401
    assert wrong.body == b"Unauthorized: Invalid credentials.\n"
    assert opens(server, f"/ws?apikey={apikey('appliance', 'the password')}",
                 additional_headers=by_token)


def test_a_session_that_ran_out_opens_no_socket_and_is_told_so(
    make_server: Callable[..., WebsocketServer], guarded: Settings
) -> None:
    clock = [1_000_000.0]
    auth = Authenticator(guarded, clock=lambda: clock[0])
    server = make_server(guarded, authenticator=auth)
    session = auth.login("alice", "s3cr:et", address="127.0.0.1", remember=False)
    cookie = {"Cookie": f"{COOKIE_NAME}={session.cookie}"}
    assert opens(server, "/ws", additional_headers=cookie)
    clock[0] = session.expires
    answer = refusal(url(server), additional_headers=cookie)
    assert answer.status_code == 401
    assert answer.body == (b"Unauthorized: The session has expired or was ended; "
                           b"log in again.\n")
