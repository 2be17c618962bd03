"""The HTTP worker's poller in this process (appliance/http_worker.py): real sockets, the
worker's own poller turned by the test; only the thread pool is left out (a request that is
whole is collected instead of handled). tests/test_slow_clients.py runs the same worker in a
real gunicorn; here each decision of the poller can be seen (and mutation testing can judge
it): when a request goes to a thread, what one address may hold, what memory big heads and
bodies may hold and who waits for it, what a deadline closes, and who is told why."""

from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from http import HTTPStatus
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import make_settings
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.errors import InvalidHeader, InvalidResponseHeader, LimitRequestLine
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, ThreadWorker

from appliance import errors
from appliance.http_pacing import PacedSocket, ResponseAborted
from appliance.http_refusals import error_response, parse_refusal
from appliance.http_worker import (
    BODIES_IN_MEMORY,
    CONTINUE,
    MIN_BODY_RATE,
    SMALL_BODY,
    STOPPING_RESPONSE,
    TIMEOUT_RESPONSE,
    BufferedConn,
    RequestBufferingWorker,
)
from appliance.peers import PeerLimit, peer_address

CAP = 3
MAX_BODY = 100_000  # over SMALL_BODY: such a body reserves memory
DEADLINE = 10.0  # for each wait on the poller; never reached when the worker is right


class Poller(RequestBufferingWorker):
    """The worker without its process: whole requests are kept in ``ready``."""

    def enqueue_req(self, conn: BufferedConn) -> None:
        self.ready.append(conn)

    def accept(self, listener: socket.socket) -> None:
        super().accept(listener)
        self.accepts += 1


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Poller]:
    listener = socket.create_server(("127.0.0.1", 0))
    cfg = Config()
    settings = make_settings(tmp_path, YTP_MAX_BODY=str(MAX_BODY),
                             YTP_MAX_CONNECTIONS_PER_ADDRESS=str(CAP))
    worker = Poller(0, os.getpid(), [listener], SimpleNamespace(settings=settings), 30, cfg,
                    Logger(cfg))
    worker.ready = []
    worker.accepts = 0
    worker.poller = selectors.DefaultSelector()
    worker.set_accept_enabled(True)
    yield worker
    for conn in [*worker.waiting, *worker.ready, *worker.answering]:
        conn.sock.close()
    worker.poller.close()
    listener.close()
    worker.tmp.close()


def turn_until(worker: Poller, done: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (result := done()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        worker.wait_for_and_dispatch_events(0.05)
    return result


def connect(worker: Poller, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(worker.sockets[0].getsockname(), timeout=DEADLINE,
                                    source_address=(source, 0))
    count = worker.accepts
    turn_until(worker, lambda: worker.accepts > count, "the connection to be accepted")
    return sock


def closed(sock: socket.socket, wait: bool = True) -> bool:
    """The server closed ``sock`` (what it sent first is read and dropped)."""
    sock.settimeout(DEADLINE if wait else 0.0)
    try:
        while data := sock.recv(65536):
            del data
        return True
    except (BlockingIOError, TimeoutError):
        return False
    except ConnectionResetError:
        return True


def conn_of(worker: Poller, index: int = -1) -> BufferedConn:
    return sorted(worker.waiting | set(worker.ready), key=lambda c: c.sock.fileno())[index]


def post(length: int, extra: bytes = b"") -> bytes:
    return (b"POST /api/history HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (length, extra))


def test_a_request_goes_to_a_thread_when_whole_with_what_follows_kept(worker: Poller) -> None:
    client = connect(worker)
    client.sendall(post(10, b"Expect: 100-continue\r\n")[:30])
    client.sendall(post(10, b"Expect: 100-continue\r\n")[30:])
    # The head is whole and the body is wanted: the client is told to send it, once.
    turn_until(worker, lambda: not conn_of(worker).framing.in_head, "the head")
    client.settimeout(DEADLINE)
    assert client.recv(100) == CONTINUE
    client.sendall(b"0123456789GET /api/ping HTTP/1.1\r\n")
    [conn] = turn_until(worker, lambda: worker.ready, "the request to be whole")
    assert conn.peer == "127.0.0.1" and not conn.framing.cut and conn not in worker.waiting
    assert conn.buffer.buf.getvalue().endswith(b"0123456789GET /api/ping HTTP/1.1\r\n")
    # The thread reads its request from those bytes, as gunicorn does, never the socket.
    worker.ready.clear()
    request = next(conn.parser)
    assert (request.method, request.body.read()) == ("POST", b"0123456789")
    # Done: the next request's start, read with this one, is where it is taken from.
    finished: Future[bool] = Future()
    finished.set_result(True)
    worker.finish_request(conn, finished)
    assert conn in worker.waiting and not worker.ready
    client.sendall(b"Host: x\r\n\r\n")
    assert turn_until(worker, lambda: worker.ready, "the pipelined request") == [conn]
    # A next request that came whole with this one goes on at once: no byte more will come.
    worker.ready.clear()
    conn.buffer.take_buffered()
    conn.buffer.feed(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n")
    worker.finish_request(conn, finished)
    assert worker.ready == [conn] and conn not in worker.waiting


def test_a_kept_alive_connection_takes_its_next_request(worker: Poller) -> None:
    client = connect(worker)
    client.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n")
    [conn] = turn_until(worker, lambda: worker.ready, "the first request")
    worker.ready.clear()
    conn.buffer.take_buffered()  # read by the thread
    finished: Future[bool] = Future()
    finished.set_result(True)
    worker.finish_request(conn, finished)
    assert conn in worker.keepalived_conns and conn not in worker.waiting
    client.sendall(b"GET /api/ping HTTP/1.1\r\n")
    turn_until(worker, lambda: conn in worker.waiting, "the next request's first bytes")
    assert conn.framing.started and not worker.ready
    client.sendall(b"Host: x\r\n\r\n")
    assert turn_until(worker, lambda: worker.ready, "the next request") == [conn]
    # An answer that ends the connection: the worker shuts its side, waits for the client's.
    worker.ready.clear()
    refused: Future[bool] = Future()
    refused.set_result(False)
    worker.finish_request(conn, refused)
    assert conn.linger_until is not None and closed(client)
    client.close()
    turn_until(worker, lambda: conn.closed, "the lingering connection to close")
    assert worker.nr_conns == 0 and not worker.peers.open


def test_one_address_holds_at_most_its_cap(worker: Poller,
                                          caplog: pytest.LogCaptureFixture) -> None:
    held = [connect(worker) for _ in range(CAP)]
    assert worker.peers.open["127.0.0.1"] == CAP
    for _ in range(3):  # refused at once, each time; said once a minute at most
        assert closed(connect(worker))
    assert worker.nr_conns == CAP
    assert caplog.text.count("HTTP: 127.0.0.1 already holds 3 connections") == 1
    other = connect(worker, "127.0.0.2")  # another address has its own count
    assert not closed(other, wait=False)
    # A client that leaves before its request is whole frees its place.
    held[0].sendall(b"GET /api/pi")
    held[0].close()
    turn_until(worker, lambda: worker.peers.open["127.0.0.1"] == CAP - 1, "the place back")
    again = connect(worker)
    assert not closed(again, wait=False) and worker.peers.open["127.0.0.1"] == CAP


def test_an_ipv6_network_holds_at_most_four_caps_whatever_its_addresses(
        caplog: pytest.LogCaptureFixture) -> None:
    """A /64 holds 2**64 addresses: a client connecting from a new one every time held every
    connection gunicorn takes, one per address."""
    limit = PeerLimit(2, "HTTP")
    assert [limit.admit(f"2001:db8:1:2::{n:x}") for n in range(1, 10)] == [True] * 8 + [False]
    assert "2001:db8:1:2::/64 already holds 8 connections, the most one IPv6 /64 may" in caplog.text
    assert limit.admit("2001:db8:1:3::1")  # the next /64 has its own count
    assert limit.admit("192.0.2.1") and limit.admit("192.0.2.1") and not limit.admit("192.0.2.1")
    assert limit.admit("192.0.2.2")  # IPv4 neighbours are separate clients
    limit.release("2001:db8:1:2::1")
    assert limit.admit("2001:db8:1:2::ff")  # a place of the /64 given back is taken again
    for n in range(2, 9):
        limit.release(f"2001:db8:1:2::{n:x}")
    limit.release("2001:db8:1:2::ff")
    assert not any(key.startswith("2001:db8:1:2:") for key in limit.open)


def test_at_gunicorns_cap_the_idle_connection_that_waited_longest_goes(
        worker: Poller, caplog: pytest.LogCaptureFixture) -> None:
    """gthread stopped accepting at its cap: idle connections from many addresses kept every
    new client waiting for their deadline. A connection kept alive goes first, then the one
    whose head began longest ago; an upload and the newest connection stay."""
    worker.worker_connections = 4
    upload = connect(worker, "127.0.3.1")
    upload.sendall(post(MAX_BODY) + b"{")
    turn_until(worker, lambda: not conn_of(worker).framing.in_head, "the upload")
    idle = [connect(worker, f"127.0.3.{n}") for n in (2, 3)]
    kept = connect(worker, "127.0.3.4")  # 4 connections: at the cap, an idle one went
    assert closed(idle[0]) and not closed(idle[1], wait=False)
    assert caplog.text.count("4 connections open, the most the HTTP worker takes") == 1
    kept.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n")
    [conn] = turn_until(worker, lambda: worker.ready, "the request")
    worker.ready.clear()
    conn.buffer.take_buffered()
    finished: Future[bool] = Future()
    finished.set_result(True)
    worker.finish_request(conn, finished)  # kept alive, idle between requests
    newest = connect(worker, "127.0.3.5")
    assert closed(kept) and not closed(idle[1], wait=False)
    assert not closed(upload, wait=False) and not closed(newest, wait=False)
    assert worker.nr_conns == 3 and sum(worker.peers.open.values()) == 3
    # With nothing idle but the newest, nothing goes (and gthread stops accepting).
    idle[1].close()
    turn_until(worker, lambda: worker.nr_conns == 2, "the idle one to leave")
    extra = connect(worker, "127.0.3.6")
    for sock in (newest, extra):
        sock.sendall(post(MAX_BODY) + b"{")
    turn_until(worker, lambda: not any(c.framing.in_head for c in worker.waiting), "uploads")
    last = connect(worker, "127.0.3.7")
    assert not any(closed(s, wait=False) for s in (upload, newest, extra, last))
    assert worker.nr_conns == 4


def test_big_bodies_wait_for_memory_first_come_first_served(
        worker: Poller, caplog: pytest.LogCaptureFixture) -> None:
    hogs = []
    for n in range(BODIES_IN_MEMORY + 2):
        hog = connect(worker, f"127.0.1.{n + 1}")
        hog.sendall(post(MAX_BODY) + b"{")
        hogs.append(hog)
        held, waiting = min(n + 1, BODIES_IN_MEMORY), max(0, n + 1 - BODIES_IN_MEMORY)
        turn_until(worker, lambda held=held, waiting=waiting: (
            worker.reserved == held * MAX_BODY and len(worker.paused) == waiting),
            "the body to be reserved or to wait")
    assert worker.reserved == worker.body_budget
    assert caplog.text.count("requests being received hold 1 MiB") == 1  # once a minute
    first, second = list(worker.paused)
    # A small JSON body is read however full memory is.
    small = connect(worker, "127.0.2.1")
    small.sendall(post(20) + b'{"url": "x"}' + b" " * 8)
    turn_until(worker, lambda: worker.ready, "the small request")
    # A hog that goes gives its memory to the first that waits, not to the second.
    hogs[0].close()
    turn_until(worker, lambda: first not in worker.paused, "the first waiting body to go on")
    assert first.reserved == MAX_BODY and list(worker.paused) == [second]
    assert worker.reserved == worker.body_budget
    for hog in hogs:
        hog.close()
    turn_until(worker, lambda: not worker.waiting, "every hog to be gone")
    assert worker.reserved == 0 and not worker.paused and not worker.peers.open.get("127.0.1.1")


def test_a_big_head_reserves_a_heads_bound_kept_while_its_body_comes(worker: Poller) -> None:
    client = connect(worker)
    pad = b"X-Pad: " + b"a" * 8000 + b"\r\n"
    client.sendall(b"POST /api/history HTTP/1.1\r\nHost: x\r\n" + pad * 5)  # under 64 KiB
    conn = turn_until(worker, lambda: conn_of(worker).framing.started and conn_of(worker),
                      "the head's start")
    turn_until(worker, lambda: len(conn.framing.head) > 40_000, "the head's start")
    assert conn.reserved == 0
    client.sendall(pad * 5)
    turn_until(worker, lambda: len(conn.framing.head) > SMALL_BODY, "the head past 64 KiB")
    assert conn.reserved == worker.reserved == conn.framing.head_limit
    client.sendall(b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n")
    turn_until(worker, lambda: not conn.framing.in_head, "the body")
    # (a chunked body's bound, 2 x max_body + 1, is less than the head holds)
    assert conn.reserved == worker.reserved == conn.framing.head_limit > 2 * MAX_BODY + 1
    client.sendall(b"x\r\n0\r\n\r\n")
    assert turn_until(worker, lambda: worker.ready, "the request") == [conn]
    assert worker.reserved == conn.framing.head_limit  # until the thread is done with it
    finished: Future[bool] = Future()
    finished.set_result(False)
    worker.ready.clear()
    worker.finish_request(conn, finished)
    assert worker.reserved == conn.reserved == 0


def test_one_request_alone_may_pass_the_budget(worker: Poller) -> None:
    worker.body_budget = SMALL_BODY  # a small max_body: a big head's bound is more
    client = connect(worker)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + (b"X-Pad: " + b"a" * 8000 + b"\r\n") * 9)
    conn = turn_until(worker, lambda: conn_of(worker).reserved and conn_of(worker),
                      "the head past 64 KiB")
    assert conn.reserved > worker.body_budget and not worker.paused
    other = connect(worker, "127.0.0.2")
    other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + (b"X-Pad: " + b"a" * 8000 + b"\r\n") * 9)
    turn_until(worker, lambda: worker.paused, "the second big head to wait")


@pytest.mark.parametrize(("sent", "answer"), [
    (b"", b""),  # nothing sent: closed without a word
    (b"GET /api/ping HTTP/1.1\r\n", TIMEOUT_RESPONSE),
    (post(MAX_BODY) + b"{", TIMEOUT_RESPONSE),
])
def test_what_passes_its_deadline_is_closed_and_told_why(worker: Poller, sent: bytes,
                                                          answer: bytes) -> None:
    client = connect(worker)
    if sent:
        client.sendall(sent)
        turn_until(worker, lambda: conn_of(worker).framing.started, "the bytes")
    conn = conn_of(worker)
    worker.murder_pending()
    assert not conn.closed  # within its deadlines
    conn.head_deadline = conn.body_started = time.monotonic() - 11
    worker.murder_pending()
    assert conn.closed and worker.nr_conns == 0 and worker.reserved == 0
    client.settimeout(DEADLINE)
    received = b""
    while data := client.recv(65536):
        received += data
    assert received == answer


def test_a_body_has_more_time_the_more_of_it_came(worker: Poller) -> None:
    client = connect(worker)
    client.sendall(post(MAX_BODY) + b"x" * 65_536)
    conn = turn_until(worker, lambda: conn_of(worker).framing.body_received == 65_536
                      and conn_of(worker), "the body's start")
    now = time.monotonic()
    conn.body_started = now - 11.9  # 10 s, and 2 s for the 64 KiB at 32 KiB/s
    assert not conn.expired(now)
    conn.body_started = now - 12.1
    assert conn.expired(now)


def test_a_stopping_worker_gives_heads_little_time_and_bodies_theirs_while_they_come(
        worker: Poller) -> None:
    head = connect(worker)
    head.sendall(b"GET /api/ping HTTP/1.1\r\n")
    body = connect(worker, "127.0.0.2")
    body.sendall(post(MAX_BODY) + b"{")
    turn_until(worker, lambda: all(c.framing.started for c in worker.waiting)
               and not conn_of(worker, 1).framing.in_head, "both requests to start")
    [waiting_head] = [c for c in worker.waiting if c.framing.in_head]
    [waiting_body] = [c for c in worker.waiting if not c.framing.in_head]
    head_deadline = waiting_head.head_deadline
    assert not waiting_body.expired(time.monotonic() + 9)  # BODY_TIMEOUT, alive
    worker.murder_pending()
    assert waiting_head.head_deadline == head_deadline  # alive: its own deadlines
    worker.alive = False
    # The body: STOP_KEEPALIVE_LINGER, and 1 s more for each MIN_BODY_RATE that comes on.
    now = time.monotonic()
    worker.hurry(now)
    assert not waiting_body.expired(now + STOP_KEEPALIVE_LINGER - 0.1)
    assert waiting_body.expired(now + STOP_KEEPALIVE_LINGER + 0.1)
    body.sendall(b"x" * MIN_BODY_RATE)
    turn_until(worker, lambda: waiting_body.framing.body_received == 1 + MIN_BODY_RATE,
               "the body's next part")
    worker.hurry(now + 1.5)  # a later turn: the time the body earned stays
    assert not waiting_body.expired(now + STOP_KEEPALIVE_LINGER + 0.9)
    assert waiting_body.expired(now + STOP_KEEPALIVE_LINGER + 1.1)
    worker.murder_pending()  # the loop's turn, stopping: the head has little time left
    assert head_deadline - 5 > waiting_head.head_deadline
    assert waiting_head.head_deadline <= time.monotonic() + STOP_KEEPALIVE_LINGER
    assert not waiting_head.closed and not waiting_body.closed


def test_a_stopping_worker_tells_a_request_it_cuts_short_why(worker: Poller) -> None:
    client = connect(worker)
    client.sendall(post(MAX_BODY) + b"{")
    conn = turn_until(worker, lambda: (c := conn_of(worker)).framing.started
                      and not c.framing.in_head and c, "the body's start")
    worker.alive = False
    conn.body_started = time.monotonic() - 11
    worker.murder_pending()
    assert conn.closed
    client.settimeout(DEADLINE)
    received = b""
    while data := client.recv(65536):
        received += data
    assert received == STOPPING_RESPONSE and received.startswith(b"HTTP/1.1 503 ")


def answering(serving: Poller, path: bytes) -> tuple[socket.socket, Future]:
    """A request thread sending the answer to ``path`` to a client that reads nothing (as
    gthread's pool runs it: its future, its connection among those being answered)."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(serving.sockets[0].getsockname())
    client.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
    [conn] = turn_until(serving, lambda: serving.ready, "the request")
    serving.ready.clear()
    fs: Future = Future()
    serving.answering[conn] = fs
    threading.Thread(target=lambda: fs.set_result(serving.handle(conn)), daemon=True).start()
    turn_until(serving, lambda: isinstance(conn.sock, PacedSocket) and conn.sock.waiting,
               "the answer to wait for its client")
    return client, fs


def test_a_stopping_worker_cuts_off_an_answer_its_client_does_not_take(
        serving: Poller, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "appliance.http_worker")
    serving.send_timeout = 60
    client, fs = answering(serving, b"/big")
    with client:
        now = time.monotonic()
        serving.hurry(now)  # alive or not: the loop asks only while stopping
        serving.hurry(now + STOP_KEEPALIVE_LINGER - 0.1)
        assert not fs.done()
        serving.hurry(now + STOP_KEEPALIVE_LINGER)
        assert fs.result(timeout=DEADLINE) is False  # at once, not after the 60 s stall
    assert "closing 127.0.0.1: the service is stopping, and it takes its answer at less than " \
           "16 KiB/s" in caplog.text


def test_what_is_still_answered_when_the_stop_ends_is_cut_off(
        serving: Poller, caplog: pytest.LogCaptureFixture) -> None:
    serving.send_timeout = 60
    serving.cfg.set("graceful_timeout", 15)
    client, fs = answering(serving, b"/big")
    with client:
        serving.murder_keepalived()  # a turn of the loop: nothing is cut
        assert not fs.done()
        serving.murder_keepalived(force=True)  # gthread's clean-up after the stop's time
        assert fs.done() and fs.result() is False  # ended before the clean-up goes on
    assert "stopping: answers not finished in the 15 s a stop gives them, cut off: 1" \
           in caplog.text


def test_refusals_carry_the_apis_error_with_the_clients_bytes_escaped() -> None:
    refusal = parse_refusal(LimitRequestLine(9000, 8190))
    assert refusal is not None and refusal.code == errors.URI_TOO_LONG
    refusal = parse_refusal(InvalidHeader("X-\x1b[2J\x07" + "a" * 300))
    assert refusal is not None and refusal.code == errors.INVALID_REQUEST
    assert refusal.message.startswith("The request could not be read: Invalid HTTP Header: ")
    assert "\\x1b[2J\\x07" in refusal.message and refusal.message.isprintable()
    assert len(refusal.message) < 300
    assert parse_refusal(InvalidResponseHeader("x")) is None  # the server's fault: a 500
    assert parse_refusal(ValueError("x")) is None
    answer = error_response(errors.AppError("Too big.", errors.PAYLOAD_TOO_LARGE))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"HTTP/1.1 413 " + HTTPStatus(413).phrase.encode(),
                                   b"Connection: close", b"Content-Type: application/json",
                                   b"Content-Length: %d" % len(body)]
    assert json.loads(body) == {"error": "Too big.", "code": "PAYLOAD_TOO_LARGE"}


# --- a request thread's side: what handle() makes of a request the poller gave it -----------


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    """Answers ``/big`` with 32 MiB (more than a socket's buffers), ``/broken`` with half
    of what it announced, ``/crash`` not at all, anything else with its body's length (413
    past max_body)."""
    path = environ["PATH_INFO"]
    if path == "/crash":
        raise RuntimeError("a bug")
    if path == "/big":
        start_response("200 OK", [("Content-Length", str(32 << 20))])
        return iter([b"x" * (32 << 20)])
    if path == "/broken":
        start_response("200 OK", [("Content-Length", "10")])

        def half() -> Iterator[bytes]:
            yield b"12345"
            raise ResponseAborted("the file went away")
        return half()
    body = environ["wsgi.input"].read(MAX_BODY + 1)  # as the API reads: no more than that
    status = "413 Content Too Large" if len(body) > MAX_BODY else "200 OK"
    start_response(status, [("Content-Length", str(len(str(len(body)))))])
    return iter([str(len(body)).encode()])


def handled(worker: Poller, client: socket.socket, request: bytes) -> tuple[Any, bytes]:
    """What a request thread's handle() says of ``request`` (keep the connection?) and what
    the client received."""
    client.sendall(request)
    [conn] = turn_until(worker, lambda: worker.ready, "the request")
    worker.ready.clear()
    keep = worker.handle(conn)
    assert not isinstance(conn.sock, PacedSocket)  # the socket itself again, for what follows
    conn.sock.shutdown(socket.SHUT_WR)  # (the worker's part after the thread, in short)
    client.settimeout(DEADLINE)
    received = b""
    while data := client.recv(65536):
        received += data
    return keep, received


@pytest.fixture
def serving(worker: Poller) -> Poller:
    worker.wsgi = app
    return worker


def test_an_answer_is_sent_and_the_connection_kept(serving: Poller) -> None:
    client = connect(serving)
    keep, answer = handled(serving, client, post(4) + b"abcd")
    assert keep is True and answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"4")


@pytest.mark.parametrize(("request_bytes", "status", "text"), [
    (b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
     400, "its chunked body is malformed (a chunk size line is not a hexadecimal size ending "
     "with CRLF)"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"),
    (b"GET /\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n", 400, "\\x1b[2J"),
])
def test_a_request_the_thread_cannot_read_gets_the_apis_error(
        serving: Poller, request_bytes: bytes, status: int, text: str,
        caplog: pytest.LogCaptureFixture) -> None:
    keep, answer = handled(serving, connect(serving), request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert keep is False and head.startswith(b"HTTP/1.1 %d " % status)
    refusal = json.loads(body)
    assert text in refusal["error"] + refusal["code"] and refusal["error"].isprintable()
    # Logged, never announced: anyone who can connect would choose a notification's text.
    [record] = [r for r in caplog.records if r.getMessage().startswith("refused a request")]
    assert record.announce is False
    assert record.getMessage().startswith("refused a request from 127.0.0.1: ")


def test_the_heartbeat_is_written_at_most_once_a_second(
        worker: Poller, monkeypatch: pytest.MonkeyPatch) -> None:
    """gthread's utime of its heartbeat file on every turn dirtied an inode (a journal write
    on a disk-backed /tmp) thousands of times a second under load."""
    beats: list[float] = []
    monkeypatch.setattr(ThreadWorker, "notify", lambda self: beats.append(time.monotonic()))
    worker.notify()
    worker.notify()
    assert len(beats) == 1 and worker.next_heartbeat > beats[0]


def test_a_peer_is_named_by_its_address() -> None:
    assert peer_address(("10.0.0.5", 51000)) == "10.0.0.5"
    assert peer_address(["::1", 8081, 0, 0]) == "::1"
    assert peer_address("local") == "local"  # a Unix socket's peer: its name, whole
    assert peer_address(None) == peer_address(()) == ""


def test_an_app_that_fails_gets_gunicorns_500(serving: Poller) -> None:
    keep, answer = handled(serving, connect(serving), b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
    assert keep is False and answer.startswith(b"HTTP/1.1 500 ")
    assert b"a bug" not in answer  # no traceback


def test_a_body_over_the_limit_is_answered_and_the_connection_closed(serving: Poller) -> None:
    client = connect(serving)
    client.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    keep, answer = handled(serving, client, b"%x\r\n" % (MAX_BODY + 1) + b"x" * (MAX_BODY + 1))
    # Where the next request would start is unknown: the connection is not kept.
    assert keep is False and answer.startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize("path", ["/big", "/broken"])
def test_an_answer_that_cannot_be_finished_closes_the_connection(serving: Poller,
                                                                 path: str) -> None:
    serving.send_timeout = 0.2  # a client that reads nothing is cut off after that
    client = connect(serving)
    client.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    [conn] = turn_until(serving, lambda: serving.ready, "the request")
    assert serving.handle(conn) is False
    assert not isinstance(conn.sock, PacedSocket)
    conn.sock.close()

