"""A kept-alive connection's next request, taken by the thread that answered the last one
(appliance/http_worker.py, ``next_request_came``): what it takes itself, what it leaves to the
poller, and when it does not wait at all. The worker runs in this process as in
tests/test_http_worker.py: real sockets, the request thread's ``handle`` called by the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from test_http_worker import DEADLINE, Poller, app, connect, poller, post, turn_until

from appliance.http_worker import CONTINUE, NEXT_REQUEST_WAITERS, BufferedConn

PING = b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Poller]:
    with poller(tmp_path) as worker:
        worker.wsgi = app
        yield worker


def first_request(worker: Poller, client: socket.socket, request: bytes) -> BufferedConn:
    """``request`` received by the poller and given to a thread (taken from ``ready``)."""
    client.sendall(request)
    [conn] = turn_until(worker, lambda: worker.ready, "the first request")
    worker.ready.clear()
    return conn


def answers(client: socket.socket, count: int) -> list[bytes]:
    """The next ``count`` answers (each whole: its head and its Content-Length's bytes)."""
    client.settimeout(DEADLINE)
    received, whole = b"", []
    while len(whole) < count:
        data = client.recv(65536)
        assert data, f"closed after {received!r}"
        received += data
        while (end := received.find(b"\r\n\r\n")) >= 0:
            length = int(received.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(received) < end + 4 + length:
                break
            whole.append(received[:end + 4 + length])
            received = received[end + 4 + length:]
    assert not received, f"more than {count} answers: {received!r}"
    return whole


def kept(worker: Poller, conn: BufferedConn) -> None:
    """The poller's part after the thread, for an answer that keeps the connection."""
    done: Future[bool] = Future()
    done.set_result(True)
    worker.finish_request(conn, done)


def test_a_next_request_already_there_is_answered_by_the_same_thread(serving: Poller) -> None:
    client = connect(serving)
    conn = first_request(serving, client, post(4) + b"abcd")
    client.sendall(post(5) + b"abcde")  # on the socket, not yet read by anyone
    assert serving.handle(conn) is True
    first, second = answers(client, 2)
    assert first.startswith(b"HTTP/1.1 200 OK") and first.endswith(b"4")
    assert second.startswith(b"HTTP/1.1 200 OK") and second.endswith(b"5")
    # The poller never saw it; the connection goes back to it idle.
    assert not serving.ready and not conn.buffer.buf.getvalue()
    kept(serving, conn)
    assert conn in serving.keepalived_conns


def test_a_next_request_that_came_in_part_is_left_to_the_poller(serving: Poller) -> None:
    client = connect(serving)
    conn = first_request(serving, client, PING)
    client.sendall(b"GET /api/ping HTTP/1.1\r\n")
    assert serving.handle(conn) is True
    [first] = answers(client, 1)
    assert first.startswith(b"HTTP/1.1 200 OK")
    # What came is kept for the poller, which waits for the rest against the head's deadline.
    assert conn.buffer.buf.getvalue() == b"GET /api/ping HTTP/1.1\r\n"
    kept(serving, conn)
    assert conn in serving.waiting and conn.framing.in_head and not serving.ready
    client.sendall(b"Host: x\r\n\r\n")
    assert turn_until(serving, lambda: serving.ready, "the rest of the request") == [conn]
    serving.ready.clear()
    assert serving.handle(conn) is True
    [second] = answers(client, 1)
    assert second.startswith(b"HTTP/1.1 200 OK") and second.endswith(b"0")


def test_a_next_request_that_expects_100_continue_is_told_once(serving: Poller) -> None:
    client = connect(serving)
    conn = first_request(serving, client, PING)
    client.sendall(post(4, b"Expect: 100-continue\r\n"))
    serving.handle(conn)
    answers(client, 1)
    kept(serving, conn)  # the poller says 100-continue, as for any request it waits for
    client.settimeout(DEADLINE)
    assert client.recv(100) == CONTINUE
    client.sendall(b"abcd")
    turn_until(serving, lambda: serving.ready, "the body")
    serving.ready.clear()
    serving.handle(conn)
    [second] = answers(client, 1)
    assert second.startswith(b"HTTP/1.1 200 OK") and second.endswith(b"4")


def test_a_client_that_closes_after_its_answer_is_closed_by_the_poller(serving: Poller) -> None:
    client = connect(serving)
    conn = first_request(serving, client, PING)
    client.shutdown(socket.SHUT_WR)
    assert serving.handle(conn) is True
    kept(serving, conn)
    turn_until(serving, lambda: conn.closed, "the connection to close")
    assert serving.nr_conns == 0 and not serving.peers.open


def assert_left_to_the_poller(worker: Poller, client: socket.socket) -> None:
    """A next request already on the socket is not read by the thread: the poller takes it."""
    conn = first_request(worker, client, PING)
    client.sendall(PING)
    worker.handle(conn)
    assert len(answers(client, 1)) == 1 and not conn.buffer.buf.getvalue()
    kept(worker, conn)
    assert turn_until(worker, lambda: worker.ready, "the poller to take it") == [conn]


def test_no_thread_waits_when_the_waiting_places_are_taken(serving: Poller) -> None:
    client = connect(serving)
    for _ in range(NEXT_REQUEST_WAITERS):
        assert serving.next_request_waiters.acquire(blocking=False)
    assert_left_to_the_poller(serving, client)


def test_a_next_request_begun_with_the_last_one_is_left_to_the_poller(serving: Poller) -> None:
    client = connect(serving)
    conn = first_request(serving, client, PING + b"GET /api/ping HTTP/1.1\r\n")
    client.sendall(b"Host: x\r\n\r\n")
    serving.handle(conn)
    # The poller frames it from its first byte: the thread does not read on from the socket.
    assert len(answers(client, 1)) == 1
    assert conn.buffer.buf.getvalue() == b"GET /api/ping HTTP/1.1\r\n"
    kept(serving, conn)
    assert turn_until(serving, lambda: serving.ready, "the rest of the request") == [conn]


def test_no_thread_waits_while_another_request_waits_for_a_thread(serving: Poller) -> None:
    """Each connection gets its turn: a client that sends request after request at once does
    not keep a thread from the requests queued behind it."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        release.wait(DEADLINE)

    assert serving.cfg.threads == 1
    busy = serving.tpool.submit(hold)
    held.wait(DEADLINE)
    queued = serving.tpool.submit(lambda: None)
    try:
        client = connect(serving)
        assert_left_to_the_poller(serving, client)
    finally:
        release.set()
    busy.result(DEADLINE), queued.result(DEADLINE)
