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
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

# 16 KiB/s is a 128 kbit/s link: a phone on a bad one still gets its file.
MIN_SEND_RATE = 16 * 1024
SEND_PIECE = 64 * 1024
SENDFILE_PIECE = 1024 * 1024


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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _wait_for(self, piece: int) -> float:
        """Seconds the next ``piece`` bytes may take."""
        allowed = self._stall + (self._sent + piece) / MIN_SEND_RATE - self._waited
        if allowed <= 0:
            raise SendTimeout(f"the client took {self._sent} bytes in {self._waited:.0f} s")
        return min(self._stall, allowed)

    def _done_waiting(self, started: float) -> None:
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

    def release(self) -> socket.socket:
        """The socket, blocking again, for the next request or the poller."""
        with contextlib.suppress(OSError):  # closed already, after an answer that broke off
            self._sock.settimeout(None)
        return self._sock
