"""Server-Sent Events on the WSGI worker: the live log stream and the terminal.

A stream holds one of gunicorn's request threads for as long as the client stays, so:

- At most ``max_streams`` are open at once (``runtime.streams``, a thread set aside for each);
  one more is answered 503 at once, before any body.
- The body is a ``slots.HeldBody``: gunicorn writes each chunk as it is produced and calls
  ``close()`` when the response ends or the client is gone (a failed write); ``close()``
  closes the generator (its ``finally`` runs: unsubscribe, kill the process) and frees the
  place even if the body was never iterated.
- The client leaving is noticed without waiting for a write to fail: the generator checks the
  connection's socket every half second (a peek that sees the end of the stream), and writes a
  ``: ping`` comment every 15 s, which also ends the stream on a dead connection.
- The service stopping (SIGTERM) ends every stream within half a second, so a browser tab left
  open does not hold up a restart.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import falcon
import orjson

from ..logs import LogSubscription
from ..runtime import Runtime
from ..slots import HeldBody, Slots

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
MAX_BATCH = 200  # lines in one write of a stream
PING = b": ping\n\n"
HELLO = b"retry: 3000\n\n"  # sent first, so the client gets the headers at once


def event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def comment(text: str) -> bytes:
    return b": " + text.replace("\n", " ").encode() + b"\n\n"


class Watch:
    """Whether the client is still there and the service still running; when to ping."""

    def __init__(self, req: falcon.Request, runtime: Runtime) -> None:
        self.sock: socket.socket | None = req.env.get("gunicorn.socket")
        self.stopping = runtime.stopping
        self.last_write = time.monotonic()

    def client_gone(self) -> bool:
        if self.sock is None:
            return False
        try:
            data = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        return data == b""  # the client closed its side

    def should_end(self) -> bool:
        return self.stopping.is_set() or self.client_gone()

    def wrote(self) -> None:
        self.last_write = time.monotonic()

    def ping_due(self) -> bool:
        return time.monotonic() - self.last_write >= HEARTBEAT_SECONDS


def open_stream(runtime: Runtime) -> Slots:
    """Take a stream's place or answer 503 (nothing started yet)."""
    runtime.streams.take()
    return runtime.streams


def respond(resp: falcon.Response, chunks: Iterator[bytes], slots: Slots) -> None:
    resp.content_type = "text/event-stream"
    resp.cache_control = ["no-cache"]
    resp.set_header("X-Accel-Buffering", "no")  # nginx: pass chunks through as they come
    resp.stream = HeldBody(chunks, slots)


def lines(subscription: LogSubscription, release: Callable[[], None], watch: Watch,
          render: Callable[[str, float], bytes],
          finished: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
    """A stream of the lines ``subscription`` receives, each rendered as an event, batched
    while more wait; ends when the client leaves, the service stops, or ``finished()`` says
    so and nothing is left to send. ``release`` ends the subscription."""
    try:
        yield HELLO
        watch.wrote()
        while not watch.should_end():
            item = subscription.get(POLL_SECONDS)
            if item is None:
                if finished():
                    return
                if watch.ping_due():
                    yield PING
                    watch.wrote()
                continue
            chunk = bytearray(render(*item))
            for _ in range(MAX_BATCH - 1):  # what else is waiting goes in the same write
                item = subscription.get_nowait()
                if item is None:
                    break
                chunk += render(*item)
            dropped = subscription.take_dropped()
            if dropped:
                chunk += comment(f"{dropped} line(s) dropped: the client reads too slowly")
            yield bytes(chunk)
            watch.wrote()
    finally:
        release()
