"""Responses must keep moving: a client that stops reading (or reads a big file a few bytes at
a time) cannot hold a request thread.

gunicorn writes a response with blocking ``sendall`` and ``sendfile`` calls that have no
deadline; with eight threads, eight clients that stop reading a big download stop the API.
The worker hands gunicorn a ``PacedSocket`` instead: every send waits at most ``stall``
seconds for the client (``send_timeout``), and once the sends have waited ``stall`` seconds in
all, the client must have taken MIN_SEND_RATE for each further second it made them wait —
checked before each piece (1 MiB of a file, 64 KiB of other bodies). Only time spent in sends
counts: a live stream (logs, terminal) that has nothing to say for minutes is not slow.
Otherwise the send fails with SendTimeout and the connection is closed.

While the service stops, a send that waits on its client is held to MIN_SEND_RATE by what the
client's side has acknowledged (``lagging``), window by window: a client that takes its answer
a byte a second is cut off within seconds instead of holding the stop for ``send_timeout``.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from typing import Any

# 16 KiB/s is a 128 kbit/s link: a phone on a bad one still gets its file.
MIN_SEND_RATE = 16 * 1024
SEND_PIECE = 64 * 1024
SENDFILE_PIECE = 1024 * 1024
# struct tcp_info (linux/tcp.h) up to tcpi_bytes_acked, the bytes the client's side has
# acknowledged: Linux 4.1 and later. The bytes a send handed to the system would count a full
# socket buffer (megabytes on a fast link) as taken.
TCP_INFO_SIZE = 128
BYTES_ACKED = slice(120, 128)


class SendTimeout(TimeoutError):
    """The client did not take the answer in time."""


class ResponseAborted(OSError):
    """The application cannot finish an answer it has begun (its length is announced): the
    worker closes the connection, saying why in one line, and the rest never comes."""


class PacedSocket:
    """A connection's socket as a response writer sees it (everything else is the socket's)."""

    def __init__(self, sock: socket.socket, stall: float) -> None:
        self._sock = sock
        self._stall = stall
        self._waited = 0.0  # seconds spent in sends
        self._sent = 0
        self.waiting = False  # a send is waiting for the client now
        self._mark: tuple[float, int] | None = None  # (when, taken) for ``lagging``
        self._cut = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _wait_for(self, piece: int) -> float:
        """Seconds the next ``piece`` bytes may take."""
        allowed = self._stall + (self._sent + piece) / MIN_SEND_RATE - self._waited
        if allowed <= 0:
            raise SendTimeout(f"the client took {self._sent} bytes in {self._waited:.0f} s")
        return min(self._stall, allowed)

    def _done_waiting(self, started: float) -> None:
        self.waiting = False
        self._waited += time.monotonic() - started
        # Blocking again between sends: others use the socket too (a live stream peeks at it
        # with MSG_DONTWAIT to see the client leave, which a timeout would turn into a wait).
        self._sock.settimeout(None)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if len(view) <= SEND_PIECE:
            # Most answers fit in the socket's buffer: sent without waiting, they need no
            # deadline (three system calls fewer per send, two sends per answer).
            try:
                sent = self._sock.send(view, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            self._sent += sent
            view = view[sent:]
        for start in range(0, len(view), SEND_PIECE):
            piece = view[start:start + SEND_PIECE]
            # sendall's timeout bounds the whole call (Python 3.5+): the piece must go in time
            self._sock.settimeout(self._wait_for(len(piece)))
            started = time.monotonic()
            self.waiting = True
            try:
                self._sock.sendall(piece)
            except TimeoutError:
                raise SendTimeout(f"no progress for {self._stall:g} s") from None
            finally:
                self._done_waiting(started)
            self._sent += len(piece)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        self.sendall(data)
        return len(data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        total = 0
        while count is None or total < count:
            piece = SENDFILE_PIECE if count is None else min(SENDFILE_PIECE, count - total)
            # sendfile's timeout bounds each wait for the client, not the whole call
            self._sock.settimeout(self._wait_for(piece))
            started = time.monotonic()
            self.waiting = True
            try:
                sent = self._sock.sendfile(file, offset + total, piece)
            except TimeoutError:
                raise SendTimeout(f"no progress for {self._stall:g} s") from None
            finally:
                self._done_waiting(started)
            if not sent:
                break
            total += sent
            self._sent += sent
        return total

    def taken(self) -> int:
        """The bytes of the connection the client's side has acknowledged (where the system
        does not say: the bytes this socket's sends handed over)."""
        try:
            info = self._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
        except OSError:  # not TCP (a Unix socket), or closed
            return self._sent
        if len(info) < TCP_INFO_SIZE:
            return self._sent
        return int.from_bytes(info[BYTES_ACKED], sys.byteorder)

    def lagging(self, now: float, window: float) -> bool:
        """Asked again and again (by another thread) while the service stops: True once a send
        has waited ``window`` seconds or more in which the client took less than
        MIN_SEND_RATE. Time between sends does not count (the application is working)."""
        if self._cut or not self.waiting:
            self._mark = None
            return False
        taken = self.taken()
        if self._mark is None:
            self._mark = (now, taken)
            return False
        since, before = self._mark
        if now - since < window:
            return False
        if taken - before < MIN_SEND_RATE * (now - since):
            return True
        self._mark = (now, taken)
        return False

    def cut_off(self) -> None:
        """End the answer from another thread: the send waiting on the client fails at once
        (EPIPE), and no other send waits."""
        self._cut = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def release(self) -> socket.socket:
        """The socket, blocking again, for the next request or the poller."""
        with contextlib.suppress(OSError):  # closed already, after an answer that broke off
            self._sock.settimeout(None)
        return self._sock
