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


class WaitingSend:
    """A request thread's answer of 16 MiB on ``server``, waiting for the client, and the
    window of a stop's ``lagging`` started at ``now``."""

    def __init__(self, server: socket.socket) -> None:
        self.paced = PacedSocket(server, 60)
        self.raised: list[BaseException] = []
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()
        wait_for(lambda: self.paced.waiting, timeout=10,
                 message="the send to wait for the client")
        self.now = time.monotonic()
        assert not self.paced.lagging(self.now, WINDOW)

    def _send(self) -> None:
        try:
            self.paced.sendall(b"x" * (16 << 20))
        except OSError as exc:
            self.raised.append(exc)

    def cut_off(self) -> BaseException:
        """What the send raised once cut off (at once: not after its 60 s stall)."""
        self.paced.cut_off()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        [exc] = self.raised
        return exc


def test_a_stopping_service_cuts_off_a_send_its_client_does_not_take(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    send = WaitingSend(tcp_pair[0])
    assert not send.paced.lagging(send.now + WINDOW - 0.1, WINDOW)
    assert send.paced.lagging(send.now + WINDOW, WINDOW)
    assert not isinstance(send.cut_off(), SendTimeout)
    assert not send.paced.lagging(send.now + 2 * WINDOW, WINDOW)  # said once


def test_a_client_that_takes_its_answer_is_not_lagging(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = tcp_pair
    send = WaitingSend(server)
    wanted = send.paced.taken() + MIN_SEND_RATE * WINDOW
    while send.paced.taken() < wanted:  # the client reads on
        assert client.recv(65536)
    assert not send.paced.lagging(send.now + WINDOW, WINDOW)
    # the next window counts from there: what came before it does not carry over
    assert send.paced.lagging(send.now + 2 * WINDOW, WINDOW)
    assert isinstance(send.cut_off(), OSError)


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
