"""Slow and idle clients cannot take the service down (issue 9 §3).

Every attack opens far more connections than the worker has request threads (8): with
gunicorn's gthread worker, eight connections that sent ``GE`` and stopped were enough to make
``/api/ping`` time out for as long as they stayed open. Here the API, an authenticated
request, a download and a websocket client keep working, and the server closes every slow
connection after a bounded time. The client timeouts are deadlines, not measurements.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import resource
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from support.origin import MediaOrigin
from support.server import Server, wait_for
from support.slow import HTTP_ATTACKS, WS_ATTACKS, Attack, SlowClients, loopback_addresses
from websockets.sync.client import connect

from appliance.http_worker import HEAD_TIMEOUT

pytestmark = pytest.mark.e2e

USER, PASSWORD = "admin", "secret-for-slow-clients"
AUTH = (USER, PASSWORD)
SLOW = 200  # connections per flood: 25 times the request threads
# A client's patience for one answer during a flood; well above what an answer takes.
ANSWER_DEADLINE = 5
# Every slow connection must be gone by then: the head deadline (10 s), the body deadline
# (10 s plus 1 s per 32 KiB) for a trickled body, and room for a busy test machine.
CLOSE_DEADLINE = 3 * HEAD_TIMEOUT


AUTH_HEADER = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


def service_answers(server: Server) -> None:
    """The API, an authenticated request and a websocket client are served."""
    assert requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).status_code == 200
    live = requests.get(server.url + "/api/history/live", auth=AUTH, timeout=ANSWER_DEADLINE)
    assert live.status_code == 200, live.text
    assert "queue" in live.json()
    with connect(server.ws_url, additional_headers=AUTH_HEADER,
                 open_timeout=ANSWER_DEADLINE) as ws:
        assert json.loads(ws.recv(timeout=ANSWER_DEADLINE))["event"] == "connected"


def flood(server: Server, sources: list[str]) -> tuple[SlowClients, SlowClients]:
    per_kind_http = SLOW // len(HTTP_ATTACKS) + 1
    per_kind_ws = SLOW // len(WS_ATTACKS)
    return (SlowClients(server.port, HTTP_ATTACKS.values(), per_kind_http, sources),
            SlowClients(server.port + 1, WS_ATTACKS.values(), per_kind_ws, sources))


def survive_flood(server: Server, sources: list[str], origin: MediaOrigin) -> None:
    http, ws = flood(server, sources)
    with http, ws:
        assert http.open_count() >= SLOW and ws.open_count() >= SLOW  # all in, none refused
        [queued] = requests.post(server.url + "/api/history", json={"url": origin.clip_url},
                                 auth=AUTH, timeout=ANSWER_DEADLINE).json()
        for _ in range(3):
            service_answers(server)
        wait_for(lambda: http.open_count() == 0, timeout=CLOSE_DEADLINE,
                 message="the server to close every slow HTTP connection")
        wait_for(lambda: ws.open_count() == 0, timeout=CLOSE_DEADLINE,
                 message="the server to close every slow websocket connection")
        # A client that had begun its request is told why (408, JSON error body).
        for answer in http.answers(HTTP_ATTACKS["body"]):
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b'"code": "REQUEST_TIMEOUT"' in answer
        assert all(a == b"" for a in http.answers(HTTP_ATTACKS["idle"]))
        server.session.auth = AUTH
        assert server.wait_status(queued["id"], {"finished", "error"})["status"] == "finished"
    service_answers(server)


def test_flood_from_one_address(make_server: Callable[..., Server],
                                origin: MediaOrigin) -> None:
    """Every attack form from 127.0.0.1, the cap raised so that all of it gets in."""
    server = make_server(YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD,
                         YTP_MAX_CONNECTIONS_PER_ADDRESS="1000")
    survive_flood(server, ["127.0.0.1"], origin)


def test_flood_from_many_addresses(make_server: Callable[..., Server],
                                   origin: MediaOrigin) -> None:
    """Every attack form from 200 loopback addresses, one connection each per form, under
    the default cap."""
    server = make_server(YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD)
    survive_flood(server, loopback_addresses(SLOW), origin)


# --- the rest share one server with a small cap ---------------------------------------------

CAP = 8
MAX_BODY = 256 * 1024
TRUSTED_PROXY = "127.0.4.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("slow-clients")
    running = Server(root, {"YTP_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
                            "YTP_MAX_BODY": str(MAX_BODY),
                            "YTP_TRUSTED_PROXIES": TRUSTED_PROXY}).start()
    yield running
    if running.proc is not None:
        running.stop()


def _closed_at_once(sock: socket.socket) -> bool:
    """The server closed it; well within HEAD_TIMEOUT, so not by the head deadline."""
    sock.settimeout(HEAD_TIMEOUT / 2)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


@pytest.mark.parametrize(("port_offset", "port_name"), [(0, "HTTP"), (1, "websocket")])
def test_cap_per_address(server: Server, port_offset: int, port_name: str) -> None:
    source = f"127.0.1.{10 + port_offset}"
    port = server.port + port_offset
    held = [_connect(port, source) for _ in range(CAP)]
    with SlowClients(port, [HTTP_ATTACKS["idle"]], 1, [source]) as probe:
        wait_for(lambda: probe.open_count() == 0, timeout=HEAD_TIMEOUT / 2,
                 message="a connection over the cap to be closed at once")
    over = [_connect(port, source) for _ in range(3)]
    assert all(_closed_at_once(s) for s in over)
    # Other addresses are served meanwhile.
    assert requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).ok
    # Refusals are logged, once per address (rate limited), not once per connection.
    wait_for(lambda: f"{port_name}: {source} already holds" in server.log(), timeout=10,
             message="the refusal warning")
    assert server.log().count(f"{port_name}: {source} already holds") == 1
    # A closed connection frees its place.
    held.pop().close()
    wait_for(lambda: _accepted(port, source), timeout=10,
             message="a place under the cap to be given back")
    for sock in held + over:
        sock.close()


def test_trusted_proxies_are_not_capped(server: Server) -> None:
    """Behind a reverse proxy every client has the proxy's address."""
    held = [_connect(server.port, TRUSTED_PROXY) for _ in range(CAP + 4)]
    for sock in held:
        sock.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for sock in held:
        assert _statuses(_read_response(sock)) == [200]
        sock.close()


def _accepted(port: int, source: str) -> bool:
    with _connect(port, source) as sock:
        sock.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return _read_response(sock).startswith(b"HTTP/1.1 ")


def _read_response(sock: socket.socket, until: bytes | None = None) -> bytes:
    """Read until the server closes (or ``until`` appears); HEAD_TIMEOUT is the deadline for
    each read (TimeoutError past it)."""
    sock.settimeout(HEAD_TIMEOUT)
    data = b""
    while until is None or until not in data:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
    return data


def _statuses(data: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def _post(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /api/history HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (len(body), extra))


def test_slow_but_steady_upload_is_served(server: Server) -> None:
    """A body trickled in small pieces over a few seconds, under the limit, is a request."""
    body = json.dumps([{"url": f"https://example.invalid/{n}", "auto_start": False}
                       for n in range(40)]).encode()
    with _connect(server.port) as sock:
        sock.sendall(_post(body, b"Connection: close\r\n"))
        for start in range(0, len(body), 100):
            sock.sendall(body[start:start + 100])
            time.sleep(0.1)  # the pace of the upload under test, not a wait for the server
        answer = _read_response(sock)
    assert _statuses(answer) == [200], answer[:300]
    assert len(json.loads(answer.split(b"\r\n\r\n", 1)[1])) == 40


def test_pipelined_requests_and_100_continue(server: Server) -> None:
    body = json.dumps({"url": "https://example.invalid/continue", "auto_start": False}).encode()
    with _connect(server.port) as sock:
        # Three requests in one packet: all answered, in order, on the connection.
        sock.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n" * 2
                     + b"GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _statuses(_read_response(sock)) == [200, 200, 200]
    with _connect(server.port) as sock:
        # Expect: 100-continue is answered by the worker before the body is sent, once.
        sock.sendall(_post(body, b"Expect: 100-continue\r\n"))
        assert _read_response(sock, until=b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body + b"GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _statuses(_read_response(sock)) == [200, 200]


def test_body_over_the_limit_is_refused_from_its_head(server: Server) -> None:
    with _connect(server.port) as sock:
        sock.sendall(b"POST /api/history HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (MAX_BODY + 1))
        answer = _read_response(sock)  # the server closes after it: the body never came
    assert _statuses(answer) == [413], answer[:300]
    assert b'"code":"PAYLOAD_TOO_LARGE"' in answer.replace(b" ", b"")


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /api/ping?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"),
    (b"GET /api/ping HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431,
     "HEADERS_TOO_LARGE"),
    (b"GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431,
     "HEADERS_TOO_LARGE"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 <b>\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"GET /api/ping HTTP/9.1\r\nHost: x\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"GET /api/ping HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"POST /api/history HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n"
     b"0\r\n\r\n", 501, "NOT_IMPLEMENTED"),
    (b"POST /api/history HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400, "INVALID_REQUEST"),
])
def test_requests_the_parser_refuses_get_the_apis_json_error(
        server: Server, request_bytes: bytes, status: int, code: str) -> None:
    """gunicorn answered these with an HTML page; a client of this API reads ``error``."""
    with _connect(server.port) as sock:
        sock.sendall(request_bytes)
        answer = _read_response(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert _statuses(head) == [status], answer[:300]
    assert b"Content-Type: application/json" in head
    refusal = json.loads(body)
    assert refusal["code"] == code
    assert refusal["error"].startswith("The request could not be read: ")
    assert refusal["error"].isprintable()  # the client's bytes, escaped
    # The service goes on answering.
    assert requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).ok


def test_a_chunked_body_of_extensions_is_refused_at_its_bound(server: Server) -> None:
    """One-byte chunks behind 8 KB extensions: the worker kept every byte (1.7 GB in 8 s
    from one connection); the request is refused once its size lines take YTP_MAX_BODY."""
    line = b"1;" + b"e" * 8000 + b"\r\nx\r\n"
    with _connect(server.port) as sock:
        sock.sendall(b"POST /api/history HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n" + line * (MAX_BODY // len(line) + 2))
        answer = _read_response(sock)
    assert _statuses(answer) == [400], answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == (
        "The request could not be read: its chunked body is malformed (its size lines and "
        f"line ends take more than {MAX_BODY} bytes).")


def test_kept_alive_connection_is_reused_then_closed_when_idle(server: Server) -> None:
    with _connect(server.port) as sock:
        for _ in range(2):
            sock.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _statuses(_read_response(sock, until=b"pong")) == [200]
        # then gunicorn's keepalive (5 s) closes it, before the read's deadline
        assert _read_response(sock) == b""


def test_kept_alive_connection_takes_its_next_request_in_pieces(server: Server) -> None:
    """The poller reads a kept-alive connection's next request as soon as it is readable:
    whole, it goes to a thread at once; in pieces, the rest is waited for as for a new one."""
    with _connect(server.port) as sock:
        sock.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _statuses(_read_response(sock, until=b"pong")) == [200]
        for piece in (b"GET /api/pi", b"ng HTTP/1.1\r\nHo", b"st: x\r\nConnection: close\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(0.2)  # the pace of the client under test, not a wait for the server
        assert _statuses(_read_response(sock)) == [200]


def _open_files(pid: int) -> list[tuple[Path, str]]:
    """``pid``'s open file descriptors (/proc links) and what they point to; one closed while
    they are read is left out (the worker opens and closes sockets all the time)."""
    found = []
    for link in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found.append((link, os.readlink(link)))
    return found


def test_idle_worker_keeps_telling_the_master_it_is_alive(server: Server) -> None:
    """The worker's heartbeat (gunicorn's file, whose time the master checks against its
    timeout) moves on while nothing happens, though no longer on every turn of its loop."""
    assert server.proc is not None
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    [(heartbeat, _)] = [entry for pid in children.split() for entry in _open_files(int(pid))
                        if "wgunicorn-" in entry[1]]
    first = heartbeat.stat().st_mtime
    wait_for(lambda: heartbeat.stat().st_mtime > first, timeout=10,
             message="the worker's heartbeat to move on")


def test_clients_that_never_close_do_not_stall_the_others(server: Server) -> None:
    """gthread waited up to 2 s in its poller for each such client's FIN after the last
    response; 30 of them stalled every other connection for a minute."""
    stuck = [_connect(server.port, f"127.0.2.{n}") for n in range(1, 31)]
    for sock in stuck:
        sock.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for _ in range(3):
        assert requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).ok
    for sock in stuck:  # answered, then closed by the server
        assert _statuses(_read_response(sock)) == [200]
        sock.close()


def test_stop_is_not_held_by_slow_clients(make_server: Callable[..., Server]) -> None:
    server = make_server()
    with SlowClients(server.port, [HTTP_ATTACKS["idle"], HTTP_ATTACKS["request-line"]], 4,
                     loopback_addresses(8, first=300)):
        assert server.stop(timeout=3 * HEAD_TIMEOUT) == 0


def test_out_of_file_descriptors_the_worker_waits_instead_of_dying(
        make_server: Callable[..., Server]) -> None:
    """gthread's accept() raised on EMFILE, which ended the worker (and the engine in it)."""
    server = make_server()
    worker = next(p for p in server.pids() if _parent(p) == server.proc.pid)
    in_use = len(os.listdir(f"/proc/{worker}/fd"))
    _, hard = resource.prlimit(worker, resource.RLIMIT_NOFILE)
    resource.prlimit(worker, resource.RLIMIT_NOFILE, (in_use + 10, hard))
    with SlowClients(server.port, [HTTP_ATTACKS["idle"]], 30, loopback_addresses(30, first=400)):
        wait_for(lambda: "cannot accept connections" in server.log(), timeout=HEAD_TIMEOUT,
                 message="the worker to run out of descriptors")
    resource.prlimit(worker, resource.RLIMIT_NOFILE, (hard, hard))
    wait_for(lambda: requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).ok,
             timeout=3 * HEAD_TIMEOUT, message="the service to answer again")
    assert worker in server.pids()


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def test_bodies_held_in_memory_are_bounded(server: Server) -> None:
    """16 x YTP_MAX_BODY (4 MiB here) of big bodies at once: past that, a big body waits
    unread for memory to be given back, while small ones (JSON requests) are read."""
    hog = Attack(_post(b"x" * MAX_BODY) + b"x" * 1000)  # reserves MAX_BODY
    body = json.dumps({"url": "https://example.invalid/late", "auto_start": False}).encode()
    with SlowClients(server.port, [hog], 20, loopback_addresses(20, first=500)) as hogs:
        wait_for(lambda: "requests being received hold 4 MiB" in server.log(),
                 timeout=10, message="the worker to keep bodies waiting")
        assert requests.post(server.url + "/api/history", data=body, timeout=ANSWER_DEADLINE,
                             headers={"Content-Type": "application/json"}).ok
        with _connect(server.port) as sock:
            sock.sendall(_post(body, b"Connection: close\r\n"))
            sock.sendall(body)
            for conn, _ in hogs.conns:
                conn.close()
            assert _statuses(_read_response(sock)) == [200]


def test_big_heads_held_in_memory_are_bounded(make_server: Callable[..., Server]) -> None:
    """A head past 64 KiB reserves gunicorn's bound on a head (~800 KB) in the same budget as
    big bodies (16 x YTP_MAX_BODY, 4 MiB here): 1,000 connections holding a head just under
    that bound held some 700 MB. Past the budget a big head waits unread; small requests are
    read, and a big head that completes is still served once memory is given back."""
    server = make_server(YTP_MAX_BODY=str(MAX_BODY))
    pad = b"X-Pad: " + b"a" * 8000 + b"\r\n"
    big_head = b"GET /api/ping HTTP/1.1\r\nHost: x\r\n" + pad * 12  # ~96 KB, never ended
    with SlowClients(server.port, [Attack(big_head)], 6, loopback_addresses(6, first=600)) as hogs:
        wait_for(lambda: "requests being received hold 3 MiB" in server.log(),
                 timeout=10, message="the worker to keep a big head waiting")
        assert requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).ok
        with _connect(server.port) as sock:
            sock.sendall(big_head + b"Connection: close\r\n\r\n")
            for conn, _ in hogs.conns:
                conn.close()
            assert _statuses(_read_response(sock)) == [200]


def test_idle_connections_past_gunicorns_cap_do_not_hold_new_clients(
        make_server: Callable[..., Server]) -> None:
    """1,100 connections that send nothing, from 18 addresses (64 each, the default cap):
    gthread stopped accepting at its 1,000 and a new client waited for their deadline (10 s);
    the worker now closes the idle one that waited longest."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Room for 1,100 descriptors here and in the server, which inherits the limit.
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(limit[0], min(4096, limit[1])), limit[1]))
    server = make_server()
    sources = loopback_addresses(18, first=700)
    held = []
    try:
        for n in range(1100):
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind((sources[n // 64], 0))
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", server.port))
            held.append(sock)
        wait_for(lambda: "the most the HTTP worker takes" in server.log(), timeout=HEAD_TIMEOUT,
                 message="the worker to reach its cap")
        for _ in range(3):
            assert requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).ok
    finally:
        for sock in held:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)
