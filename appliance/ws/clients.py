"""One connected websocket client: its bounded outgoing buffer and its sender task.

Everything here runs on the sidecar's event loop thread; nothing is locked.

The buffer holds encoded frames waiting to be written to the client. Two kinds of frame:

- *state* frames (item added, moved, deleted, log messages, replies) are never dropped. If a
  client falls so far behind that ``max_state`` of them, or ``max_state_bytes`` of them, wait,
  the client is closed with 1013 (try again later): it will reconnect and resync, and the
  service does not grow memory for a peer that stopped reading (10,000 whole items of a few
  KiB each would be tens of MiB on a small box).
- *progress* frames carry a coalescing key (the item id). Only the newest frame per key is
  kept, and it moves to the back of the queue so it never overtakes a state frame published
  before it. When ``max_progress`` distinct keys already wait, a new progress frame is dropped.

A slow client only ever fills its own buffer: publishing into it is O(1) and never waits.
What all the buffers hold together is counted against one budget (:mod:`appliance.ws.budget`).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import uuid
from collections.abc import Hashable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from appliance.ws.budget import CLOSE_TOO_SLOW, FRAME_COST, PROGRESS_ENTRY, STATE_ENTRY, Budget

log = logging.getLogger("appliance.ws")

__all__ = ["CLOSE_TOO_SLOW", "BufferClosed", "Client", "ClientBuffer"]

CLOSE_INTERNAL_ERROR = 1011
# Close code sent to every client when the service stops.
CLOSE_GOING_AWAY = 1001
# Close code sent to a client whose credentials are no longer accepted (policy violation).
CLOSE_POLICY = 1008
# The bytes of state frames one client may have waiting (see max_state_bytes).
MAX_STATE_BYTES = 16 * 2**20


class BufferClosed(Exception):
    """The buffer was closed; the sender stops."""


class ClientBuffer:
    """Bounded, coalescing queue of encoded frames for one client (loop thread only)."""

    def __init__(self, *, max_state: int, max_progress: int,
                 max_state_bytes: int = MAX_STATE_BYTES, budget: Budget | None = None) -> None:
        if max_state < 1 or max_progress < 1 or max_state_bytes < 1:
            raise ValueError("buffer caps must be at least 1")
        self.max_state = max_state
        self.max_progress = max_progress
        self.max_state_bytes = max_state_bytes
        self.budget = budget if budget is not None else Budget()
        self._held = 0  # what this buffer's entries cost, its shared frames in full
        # Keys: int (a state frame, unique) or ("p", key) (a progress frame, coalesced).
        self._frames: collections.OrderedDict[Hashable, bytes] = collections.OrderedDict()
        self._seq = itertools.count()
        self._state = 0
        self._state_bytes = 0
        self._ready = asyncio.Event()
        self._taken = asyncio.Event()  # set when a frame leaves (or the buffer closes)
        self._closed = False
        self.coalesced = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._frames)

    @property
    def pending_state(self) -> int:
        return self._state

    @property
    def pending_state_bytes(self) -> int:
        return self._state_bytes

    @property
    def held(self) -> int:
        """The bytes this buffer's entries hold, a frame shared with others counted in full."""
        return self._held

    @property
    def closed(self) -> bool:
        return self._closed

    def _hold(self, frame: bytes, entry: int) -> None:
        self.budget.take(frame, entry)
        self._held += len(frame) + FRAME_COST + entry

    def _let_go(self, frame: bytes, entry: int) -> None:
        self.budget.release(frame, entry)
        self._held -= len(frame) + FRAME_COST + entry

    def push_state(self, frame: bytes) -> bool:
        """Queue a state frame. False when the backlog is already at a cap (not queued); a
        frame over the byte cap is taken into an empty backlog."""
        if self._closed:
            return True
        if self._state >= self.max_state or self._state_bytes >= self.max_state_bytes:
            return False
        self._frames[next(self._seq)] = frame
        self._hold(frame, STATE_ENTRY)
        self._state += 1
        self._state_bytes += len(frame)
        self._ready.set()
        return True

    def push_front(self, frame: bytes) -> None:
        """Queue a state frame ahead of everything else, regardless of the cap."""
        if self._closed:
            return
        key = next(self._seq)
        self._frames[key] = frame
        self._hold(frame, STATE_ENTRY)
        self._frames.move_to_end(key, last=False)
        self._state += 1
        self._state_bytes += len(frame)
        self._ready.set()

    def push_progress(self, key: Hashable, frame: bytes) -> None:
        """Queue a progress frame, replacing a waiting one with the same key."""
        if self._closed:
            return
        slot = ("p", key)
        if slot in self._frames:
            self._let_go(self._frames[slot], PROGRESS_ENTRY)
            self._frames[slot] = frame
            self._frames.move_to_end(slot)
            self.coalesced += 1
        elif len(self._frames) - self._state >= self.max_progress:
            self.dropped += 1
            return
        else:
            self._frames[slot] = frame
        self._hold(frame, PROGRESS_ENTRY)
        self._ready.set()

    async def get(self) -> bytes:
        """The oldest waiting frame; waits for one. Raises BufferClosed once closed."""
        while not self._frames:
            if self._closed:
                raise BufferClosed
            self._ready.clear()
            await self._ready.wait()
        key, frame = self._frames.popitem(last=False)
        state = isinstance(key, int)
        self._let_go(frame, STATE_ENTRY if state else PROGRESS_ENTRY)
        if state:
            self._state -= 1
            self._state_bytes -= len(frame)
            self._taken.set()
        return frame

    async def below(self, count: int) -> None:
        """Returns once fewer than ``count`` state frames wait, or the buffer is closed."""
        while self._state >= count and not self._closed:
            self._taken.clear()
            await self._taken.wait()

    def close(self) -> None:
        """Drop everything waiting and wake the sender so it stops."""
        self._closed = True
        for key, frame in self._frames.items():
            self.budget.release(frame, STATE_ENTRY if isinstance(key, int) else PROGRESS_ENTRY)
        self._frames.clear()
        self._held = 0
        self._state = 0
        self._state_bytes = 0
        self._ready.set()
        self._taken.set()


class Client:
    """A connected peer: its id, its buffer, the task that writes the buffer out."""

    def __init__(
        self,
        connection: ServerConnection,
        protocol: str,
        *,
        max_state: int,
        max_progress: int,
        budget: Budget | None = None,
    ) -> None:
        self.sid = str(uuid.uuid4())
        self.connection = connection
        self.protocol = protocol
        self.budget = budget if budget is not None else Budget()
        self.buffer = ClientBuffer(max_state=max_state, max_progress=max_progress,
                                   budget=self.budget)
        self.closing = False
        self.sent = 0
        # What the sender handed to the socket's write buffer (a copy of its own): counted in
        # the budget until the client closes.
        self.in_flight = 0
        self._sender: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self.budget.join(self)

    @property
    def holding(self) -> int:
        """The bytes held for this client: its buffer (shared frames in full), its socket's."""
        return self.buffer.held + self.in_flight

    def send(self, frame: bytes, key: Hashable | None = None) -> None:
        """Queue a frame: a state frame when ``key`` is None, else a coalescable progress
        frame. Never waits; closes the client with 1013 when its state backlog overflows,
        and the clients holding the most when all together are over the budget."""
        if self.closing:
            return
        if key is not None:
            self.buffer.push_progress(key, frame)
        elif not self.buffer.push_state(frame):
            log.warning(
                "websocket client %s (%s) fell %d state events (%d bytes) behind; closing it "
                "so it reconnects and resyncs",
                self.sid, self.protocol, self.buffer.pending_state,
                self.buffer.pending_state_bytes,
            )
            self.close(CLOSE_TOO_SLOW, "client too slow; reconnect to resync")
            return
        self.budget.relieve()

    def send_first(self, frame: bytes) -> None:
        """Queue a state frame ahead of everything else, whatever the client's cap (a
        snapshot on connect); the budget still applies."""
        if self.closing:
            return
        self.buffer.push_front(frame)
        self.budget.relieve()

    def start(self) -> None:
        """Start the sender task (call on the loop thread)."""
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._send_loop(), name=f"ws-send-{self.sid}"
            )

    def _handed(self, size: int) -> None:
        """The socket's write buffer holds ``size`` bytes for this client now."""
        if self.closing:
            return
        self.budget.adjust(size - self.in_flight)
        self.in_flight = size
        self.budget.relieve()

    async def _send_loop(self) -> None:
        transport = self.connection.transport
        try:
            while True:
                frame = await self.buffer.get()
                # Until the peer takes it, the frame is copied into the socket's write buffer
                # (websockets waits there while that buffer is over its high-water mark).
                self._handed(transport.get_write_buffer_size() + len(frame))
                await self.connection.send(frame, text=True)
                self._handed(transport.get_write_buffer_size())
                self.sent += 1
        except (BufferClosed, ConnectionClosed):
            return
        except Exception:
            log.exception("websocket sender for client %s failed", self.sid)
            self.close(CLOSE_INTERNAL_ERROR, "internal error")

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake without waiting for it (idempotent)."""
        if self.closing:
            return
        self._let_go()
        self._closer = asyncio.get_running_loop().create_task(
            self._close(code, reason), name=f"ws-close-{self.sid}"
        )

    async def _close(self, code: int, reason: str) -> None:
        # A peer that reads nothing never takes the close frame, and websockets waits for its
        # socket's write buffer to drain before its own close timeout begins: the socket, and
        # the bytes it holds, stayed until the heartbeat's next ping noticed (10 s or more),
        # with no heartbeat for good. Cut after the close timeout.
        try:
            async with asyncio.timeout(self.connection.close_timeout):
                await self.connection.close(code, reason)
        except TimeoutError:
            self.connection.transport.abort()

    def _let_go(self) -> None:
        """Closing: what is held for this client leaves the budget (its socket's write buffer
        goes within the close timeout)."""
        self.closing = True
        self.buffer.close()
        self.budget.adjust(-self.in_flight)
        self.in_flight = 0
        self.budget.leave(self)

    async def finish(self) -> None:
        """Stop the sender once the connection is gone."""
        if not self.closing:
            self._let_go()
        sender = self._sender
        if sender is not None and not sender.done():
            sender.cancel()
            try:
                await sender
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    def stats(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "protocol": self.protocol,
            "pending": self.buffer.pending,
            "pending_state": self.buffer.pending_state,
            "pending_state_bytes": self.buffer.pending_state_bytes,
            "coalesced": self.buffer.coalesced,
            "dropped": self.buffer.dropped,
            "sent": self.sent,
            "holding": self.holding,
            "closing": self.closing,
        }
