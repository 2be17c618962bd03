"""A response writer's socket: answers that fit are sent at once, whole and in order; a client
that does not take them is cut off after the stall, however small the answer."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from appliance.http_pacing import SEND_PIECE, SENDFILE_PIECE, PacedSocket, SendTimeout

STALL = 0.3


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
