"""Slow and idle clients on raw sockets (the slowloris family), for tests and
``bench/slow_clients.py``.

Each attack is what a client sends when it connects and what it then trickles, one piece per
tick, for as long as the server keeps the connection open.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Attack:
    opening: bytes
    trickle: bytes = b""


_POST = b"POST /api/history HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

HTTP_ATTACKS = {
    "idle": Attack(b""),  # connects and sends nothing
    "first-byte": Attack(b"G"),  # one byte, then nothing
    "request-line": Attack(b"GE"),
    "headers": Attack(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n"),
    "body": Attack(_POST + b"Content-Length: 100000\r\n\r\n{", b" "),
    "chunked-body": Attack(_POST + b"Transfer-Encoding: chunked\r\n\r\n", b"1\r\n \r\n"),
}

WS_ATTACKS = {
    "idle": Attack(b""),
    "first-byte": Attack(b"G"),
    "handshake": Attack(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"),
    "handshake-trickled": Attack(b"GET /ws HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n"),
}


def loopback_addresses(count: int, first: int = 2) -> list[str]:
    """``count`` source addresses 127.0.0.<first>…: all of 127/8 is this host on Linux."""
    return [f"127.0.{(n >> 8) & 255}.{n & 255}" for n in range(first, first + count)]


class SlowClients:
    """``count`` connections per attack to ``port``, from ``sources`` in turn; a thread
    trickles every ``tick`` seconds. Use as a context manager (closes what is left)."""

    def __init__(self, port: int, attacks: Iterable[Attack], count: int,
                 sources: Iterable[str] = ("127.0.0.1",), tick: float = 1.0) -> None:
        self.port = port
        self.plan = [a for a in attacks for _ in range(count)]
        self.sources = list(sources)
        self.tick = tick
        self.conns: list[tuple[socket.socket, Attack]] = []
        self.received: dict[socket.socket, bytes] = {}
        self.closed: set[socket.socket] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)

    def __enter__(self) -> SlowClients:
        for attack, source in zip(self.plan, itertools.cycle(self.sources), strict=False):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10,
                                            source_address=(source, 0))
            # Still in the kernel's accept queue? Then sending just fills a buffer: fine.
            if attack.opening:
                sock.sendall(attack.opening)
            sock.setblocking(False)
            self.conns.append((sock, attack))
            self.received[sock] = b""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock, _ in self.conns:
            sock.close()

    def _trickle(self) -> None:
        while not self._stop.wait(self.tick):
            for sock, attack in self.conns:
                if attack.trickle and sock not in self.closed:
                    with contextlib.suppress(OSError):
                        sock.send(attack.trickle)

    def open_count(self) -> int:
        """How many the server has not closed yet (reads what it sent meanwhile)."""
        for sock, _ in self.conns:
            if sock in self.closed:
                continue
            try:
                while data := sock.recv(65536):
                    self.received[sock] += data
            except BlockingIOError:
                continue
            except OSError:
                pass
            self.closed.add(sock)
        return len(self.conns) - len(self.closed)

    def answers(self, attack: Attack) -> list[bytes]:
        """What the server sent to each connection of ``attack`` before closing it."""
        return [self.received[sock] for sock, a in self.conns if a == attack]
