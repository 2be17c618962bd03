"""A stop (SIGTERM from systemd, a restart from Home Assistant) with slow clients connected, on
a real gunicorn: the slow clients are closed, the answers that move are finished, and the
service exits before gunicorn's graceful timeout. A client that read its answer a byte a
second held every stop to that timeout (30 s): the thread sending to it was joined at exit."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import threading
from pathlib import Path

import pytest
from support.server import Server, wait_for
from support.slow import HTTP_ATTACKS, SlowClients

from appliance.server import GRACEFUL_TIMEOUT

pytestmark = pytest.mark.e2e

# The answer that moves: more than the buffers between the two hold (a 4 MiB send buffer, the
# client's 128 KiB), read at about 2.5 MiB/s, far above the 16 KiB/s a stop asks of it.
STEADY_SIZE = 16 << 20
STEADY_PIECE = 128 * 1024
STEADY_PAUSE = 0.05
# Below the graceful timeout, with room for the runtime's own stop: a stop that waits for the
# slow clients does not end before it.
EXIT_DEADLINE = GRACEFUL_TIMEOUT - 5


def _get(port: int, path: str, receive_buffer: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(EXIT_DEADLINE)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
    return sock


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The answer's head and the start of its body."""
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(4096)
        assert data, received
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def test_a_stop_closes_slow_clients_and_finishes_the_answers_that_move(tmp_path: Path) -> None:
    server = Server(tmp_path / "service").start()
    (server.download_path / "film.mkv").open("wb").truncate(1 << 30)
    steady_bytes = os.urandom(STEADY_SIZE)
    (server.download_path / "clip.mkv").write_bytes(steady_bytes)
    done = threading.Event()
    steady_body = bytearray()
    slow_open_at_end: list[int] = []
    try:
        with (SlowClients(server.port, [HTTP_ATTACKS["request-line"], HTTP_ATTACKS["body"]], 1)
              as slow,
              _get(server.port, "/api/download/film.mkv", 4096) as lagging,
              _get(server.port, "/api/download/clip.mkv", STEADY_PIECE) as steady):
            assert _read_head(lagging)[0].startswith(b"HTTP/1.1 200 ")
            head, start = _read_head(steady)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"content-length: %d" % STEADY_SIZE in head.lower()
            steady_body += start

            def byte_a_second() -> None:
                with contextlib.suppress(OSError):
                    while lagging.recv(1) and not done.wait(1.0):
                        pass

            def steadily() -> None:
                with contextlib.suppress(OSError):
                    while len(steady_body) < STEADY_SIZE and (data := steady.recv(STEADY_PIECE)):
                        steady_body.extend(data)
                        done.wait(STEADY_PAUSE)
                slow_open_at_end.append(slow.open_count())

            readers = [threading.Thread(target=byte_a_second, daemon=True),
                       threading.Thread(target=steadily, daemon=True)]
            for reader in readers:
                reader.start()
            try:
                assert server.stop(timeout=EXIT_DEADLINE) == 0
                wait_for(lambda: not readers[1].is_alive(), timeout=10,
                         message="the steady reader to end")
            finally:
                done.set()
                for reader in readers:
                    reader.join(timeout=10)
            # The slow clients were closed while the steady answer was still coming (so it
            # was in flight when the stop came); a request cut short is told why.
            assert slow_open_at_end == [0]
            for answer in slow.answers(HTTP_ATTACKS["body"]):
                assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
                assert b"The service is stopping" in answer and b'"UNAVAILABLE"' in answer
    finally:
        if server.proc is not None:
            os.killpg(server.proc.pid, signal.SIGKILL)
    assert hashlib.sha256(steady_body).digest() == hashlib.sha256(steady_bytes).digest()
    log = server.log()
    assert "closing 127.0.0.1: the service is stopping, and it takes its answer at less " \
           "than 16 KiB/s" in log, log[-3000:]
    # The steady answer ended on its own, within the stop's time.
    assert "answers not finished in the" not in log
    assert "appliance stopped" in log
