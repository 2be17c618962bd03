"""A response writer's socket: answers that fit are sent at once, whole and in order; a client
that does not take them is cut off after the stall, however small the answer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import wait_for

from appliance.http_pacing import (
    MIN_SEND_RATE,
    SEND_PIECE,
    SENDFILE_PIECE,
    PacedSocket,
    SendTimeout,
)

STALL = 0.3
WINDOW = 2.0  # a stop's window, passed as the clock it reads


def _fill(sock: socket.socket) -> int:
    """Send until the peer's buffers are full (a client that stopped reading)."""
    sock.setblocking(False)
    filled = 0
    try:
        while True:
            filled += sock.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    sock.setblocking(True)
    return filled


def _receive_all(sock: socket.socket, size: int, into: bytearray) -> None:
    while len(into) < size:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return
        into += chunk


@pytest.mark.parametrize("size", [0, 1, 1000, SEND_PIECE, SEND_PIECE + 1, 5 * SEND_PIECE + 7])
def test_answers_arrive_whole_and_in_order(size: int) -> None:
    server, client = socket.socketpair()
    data = bytes(i % 251 for i in range(size))
    received = bytearray()
    reader = threading.Thread(target=_receive_all, args=(client, size, received))
    reader.start()
    with server, client:
        paced = PacedSocket(server, STALL)
        paced.sendall(data[:size // 2])
        paced.sendall(data[size // 2:])
        reader.join(timeout=10)
        assert bytes(received) == data
        assert paced.release() is server and server.gettimeout() is None


@pytest.mark.parametrize("size", [1, 1000, SEND_PIECE + 1])
def test_a_client_that_stopped_reading_is_cut_off(size: int) -> None:
    server, client = socket.socketpair()
    with server, client:
        _fill(server)
        with pytest.raises(SendTimeout):
            PacedSocket(server, STALL).sendall(b"x" * size)


def test_a_small_answer_that_only_partly_fits_waits_for_the_rest() -> None:
    server, client = socket.socketpair()
    with server, client:
        filled = _fill(server)
        client.recv(4096)  # room for part of the answer only
        data = b"y" * 60000
        received = bytearray()
        reader = threading.Thread(target=_receive_all, args=(client, filled - 4096 + len(data),
                                                             received))
        paced = PacedSocket(server, 10)
        reader.start()  # the client reads again while the rest waits
        paced.sendall(data)
        reader.join(timeout=10)
        assert bytes(received).endswith(data)


@pytest.mark.parametrize(("offset", "count"), [(0, None), (10, None), (10, SENDFILE_PIECE + 5)])
def test_a_file_is_sent_from_its_offset_piece_by_piece(tmp_path: Path, offset: int,
                                                       count: int | None) -> None:
    data = bytes(i % 251 for i in range(3 * SENDFILE_PIECE + 1234))
    (tmp_path / "film").write_bytes(data)
    expected = data[offset:] if count is None else data[offset:offset + count]
    server, client = socket.socketpair()
    received = bytearray()
    reader = threading.Thread(target=_receive_all, args=(client, len(expected), received))
    reader.start()
    with server, client, (tmp_path / "film").open("rb") as film:
        assert PacedSocket(server, 10).sendfile(film, offset, count) == len(expected)
        reader.join(timeout=30)
    assert bytes(received) == expected


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A loopback TCP connection (server side, client side) whose client reads nothing yet."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    with server, client:
        yield server, client


def _sending(paced: PacedSocket, size: int) -> tuple[threading.Thread, list[BaseException]]:
    """``paced`` sends ``size`` bytes in a thread (a request thread's answer); once it waits
    for the client, the thread and what it raised."""
    raised: list[BaseException] = []

    def send() -> None:
        try:
            paced.sendall(b"x" * size)
        except OSError as exc:
            raised.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    wait_for(lambda: paced.waiting, timeout=10, message="the send to wait for the client")
    return thread, raised


def test_a_stopping_service_cuts_off_a_send_its_client_does_not_take(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    server, _client = tcp_pair
    paced = PacedSocket(server, 60)
    thread, raised = _sending(paced, 16 << 20)
    now = time.monotonic()
    assert not paced.lagging(now, WINDOW)  # its window starts
    assert not paced.lagging(now + WINDOW - 0.1, WINDOW)
    assert paced.lagging(now + WINDOW, WINDOW)
    paced.cut_off()
    thread.join(timeout=10)  # at once, not after the 60 s stall
    assert not thread.is_alive()
    [exc] = raised
    assert not isinstance(exc, SendTimeout)
    assert not paced.lagging(now + 2 * WINDOW, WINDOW)  # said once


def test_a_client_that_takes_its_answer_is_not_lagging(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = tcp_pair
    paced = PacedSocket(server, 60)
    thread, raised = _sending(paced, 16 << 20)
    now = time.monotonic()
    assert not paced.lagging(now, WINDOW)
    before = paced.taken()
    wanted = before + MIN_SEND_RATE * WINDOW
    while paced.taken() < wanted:  # the client reads on
        assert client.recv(65536)
    assert not paced.lagging(now + WINDOW, WINDOW)
    # the next window counts from there: what came before it does not carry over
    assert paced.lagging(now + 2 * WINDOW, WINDOW)
    paced.cut_off()
    thread.join(timeout=10)
    assert not thread.is_alive() and raised


def test_time_between_sends_is_not_lagging(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = tcp_pair
    paced = PacedSocket(server, 60)
    paced.sendall(b"small")  # sent, nothing waits: the application works on
    now = time.monotonic()
    assert not paced.lagging(now, WINDOW) and not paced.lagging(now + 10 * WINDOW, WINDOW)
    assert client.recv(5) == b"small"
    wait_for(lambda: paced.taken() == 5, timeout=10, message="the client's acknowledgement")


def test_without_tcp_what_the_sends_handed_over_counts() -> None:
    server, client = socket.socketpair()
    with server, client:
        paced = PacedSocket(server, STALL)
        paced.sendall(b"abc")
        assert paced.taken() == 3
